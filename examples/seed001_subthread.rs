//! Seed 001, "Create a Thread using the Thread subclass": `SubThread.run` prints
//! "Child thread" + name + i three times. `time.sleep(1)` is scaled down to 10 ms.
//!
//! Expected output:
//! ```text
//! Child threadThread-10
//! Child threadThread-11
//! Child threadThread-12
//! Child threadThread-20
//! Child threadThread-21
//! Child threadThread-22
//! ```

use multiproc::threading::{Thread, current_thread};
use std::time::Duration;

/// The tutorial's `SubThread(threading.Thread)`: `run` is the thread body.
struct SubThread;

impl SubThread {
    fn run(&self) {
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(10));
            // name stores the name of the current thread
            let msg = format!("Child thread{}{}", current_thread().name, i);
            println!("{msg}");
        }
    }

    fn start(self) -> multiproc::Result<Thread<()>> {
        Thread::spawn(move || self.run())
    }
}

fn main() -> multiproc::Result<()> {
    let t1 = SubThread.start()?;
    let t2 = SubThread.start()?;
    t1.join()?;
    t2.join()?;
    Ok(())
}
