//! Seed 001, "Creating threads using the threading module": four threads with default names,
//! each printing its name three times. `time.sleep(1)` is scaled down to 10 ms.
//!
//! Expected output:
//! ```text
//! thread name is Thread-1
//! thread name is Thread-1
//! thread name is Thread-1
//! thread name is Thread-2
//! thread name is Thread-2
//! thread name is Thread-2
//! thread name is Thread-3
//! thread name is Thread-3
//! thread name is Thread-3
//! thread name is Thread-4
//! thread name is Thread-4
//! thread name is Thread-4
//! ```

use multiproc::threading::{Thread, current_thread};
use std::time::Duration;

fn process() {
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        println!("thread name is {}", current_thread().name);
    }
}

fn main() -> multiproc::Result<()> {
    // Create 4 threads and store them in a list (they start at once in Rust).
    let threads = (0..4)
        .map(|_| Thread::spawn(process))
        .collect::<multiproc::Result<Vec<_>>>()?;
    for t in threads {
        t.join()?; // Wait for the child thread to end
    }
    Ok(())
}
