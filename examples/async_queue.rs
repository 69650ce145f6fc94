//! Awaiting queues and processes from tokio: 1,000 numbers go to a worker process through one
//! `Queue`, their squares come back through another, and the awaiting task shares its thread
//! with a timer. `get_async` parks the task (a shared waiter thread sleeps on the queue's futex
//! word) instead of blocking the runtime, so the timer keeps ticking while the squares come.
//! Python's counterpart is `loop.run_in_executor(None, q.get)`, a thread per waiting call.
//!
//! Expected output:
//! ```text,ordered
//! sent 1000 numbers to the worker process
//! received 1000 squares, sum 332833500
//! the timer ticked {n} times on the same thread meanwhile
//! the worker squared 1000 numbers and exited
//! ```

use multiproc::{Process, Queue};
use std::time::Duration;

/// The worker process: squares every number until the `None` that ends the stream, pausing
/// 2 ms every hundred numbers as if the work were heavier, so the timer has time to tick.
fn square_all((numbers, squares): (Queue<Option<u64>>, Queue<u64>)) -> usize {
    let mut done = 0;
    while let Some(x) = numbers.get().expect("the parent stays alive") {
        if x % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
        squares.put(x * x).expect("the parent stays alive");
        done += 1;
    }
    done
}

fn main() -> multiproc::Result<()> {
    let numbers: Queue<Option<u64>> = Queue::with_maxsize(64)?;
    let squares: Queue<u64> = Queue::new()?;
    let worker = Process::builder().spawn(square_all, (numbers.clone(), squares.clone()))?;

    // One thread runs everything below: the sender, the receiver and the timer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let sender = async {
            for x in 0..1000 {
                // Bounded queue: waits for room without blocking the thread.
                numbers.put_async(Some(x)).await?;
            }
            numbers.put_async(None).await?;
            println!("sent 1000 numbers to the worker process");
            Ok::<_, multiproc::Error>(())
        };
        let receiver = async {
            let mut timer = tokio::time::interval(Duration::from_millis(1));
            let (mut received, mut sum, mut ticks) = (0, 0u64, 0u32);
            while received < 1000 {
                tokio::select! {
                    // `get_async` is cancel-safe: a tick that wins takes nothing from the queue.
                    square = squares.get_async() => {
                        sum += square?;
                        received += 1;
                    }
                    _ = timer.tick() => ticks += 1,
                }
            }
            Ok::<_, multiproc::Error>((received, sum, ticks))
        };
        let (sent, got) = tokio::join!(sender, receiver);
        sent?;
        let (received, sum, ticks) = got?;
        println!("received {received} squares, sum {sum}");
        println!("the timer ticked {ticks} times on the same thread meanwhile");
        let done = worker.join_async().await?;
        println!("the worker squared {done} numbers and exited");
        Ok(())
    })
}
