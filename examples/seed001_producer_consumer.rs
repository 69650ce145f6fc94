//! Seed 001, "Inter process communication using queues" (between threads): a Producer thread
//! puts 0..5 into a `queue.Queue`, a Consumer thread gets them. `time.sleep(random.random())` is
//! scaled down to at most 10 ms.
//!
//! Expected output:
//! ```text
//! Producer, 0
//! Producer, 1
//! Producer, 2
//! Producer, 3
//! Producer, 4
//! Consumer, 0
//! Consumer, 1
//! Consumer, 2
//! Consumer, 3
//! Consumer, 4
//! ```

use multiproc::queue::Queue;
use multiproc::threading::{Thread, current_thread};
use std::sync::Arc;
use std::time::Duration;

fn producer(data: Arc<Queue<i32>>) -> multiproc::Result<()> {
    for i in 0..5 {
        println!("{}, {}", current_thread().name, i);
        data.put(i)?;
        std::thread::sleep(Duration::from_secs_f64(random() * 0.01));
    }
    Ok(())
}

fn consumer(data: Arc<Queue<i32>>) -> multiproc::Result<()> {
    for _ in 0..5 {
        let val = data.get()?;
        println!("{}, {}", current_thread().name, val);
        std::thread::sleep(Duration::from_secs_f64(random() * 0.01));
    }
    Ok(())
}

fn main() -> multiproc::Result<()> {
    let queue = Arc::new(Queue::new(0));
    let q = queue.clone();
    let producer = Thread::builder()
        .name("Producer")
        .spawn(move || producer(q))?;
    let q = queue.clone();
    let consumer = Thread::builder()
        .name("Consumer")
        .spawn(move || consumer(q))?;
    producer.join()??;
    consumer.join()??;
    Ok(())
}

/// Python's `random.random()`: a float in [0, 1).
fn random() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
