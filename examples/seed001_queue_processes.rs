//! Seed 001, "Use queues to communicate between processes": `write_task` puts five messages,
//! `read_task` prints them.
//!
//! Python's reader sleeps a second and then reads "while not q.empty()", which misses
//! messages if the writer is slow. This reader takes messages until the queue is drained and
//! no writer is left (`Err(Closed)`), so it needs no sleep and never misses one.
//!
//! Expected output:
//! ```text,ordered
//! msg0
//! msg1
//! msg2
//! msg3
//! msg4
//! ```

use std::time::Duration;

use multiproc::{Process, Queue};

fn write_task(q: Queue<String>) {
    if !q.full() {
        for i in 0..5 {
            q.put(format!("msg{i}")).unwrap();
        }
    }
}

fn read_task(q: Queue<String>) {
    while let Ok(message) = q.get_timeout(Duration::from_secs(2)) {
        println!("{message}");
    }
}

fn main() -> multiproc::Result<()> {
    let q = Queue::new()?;
    let pw = Process::builder().spawn(write_task, q.clone())?;
    let pr = Process::builder().spawn(read_task, q.clone())?;
    drop(q);
    pw.join()?;
    pr.join()?;
    Ok(())
}
