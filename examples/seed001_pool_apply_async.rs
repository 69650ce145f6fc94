//! Seed 001, "Create a process using the process Pool": `Pool(3)` with `apply_async` over 10
//! tasks, then `close()` and `join()`. The task's `time.sleep(1)` is scaled down to 50 ms.
//!
//! Expected output:
//! ```text
//! Subprocess{pid} implement task 0
//! Subprocess{pid} implement task 1
//! Subprocess{pid} implement task 2
//! Subprocess{pid} implement task 3
//! Subprocess{pid} implement task 4
//! Subprocess{pid} implement task 5
//! Subprocess{pid} implement task 6
//! Subprocess{pid} implement task 7
//! Subprocess{pid} implement task 8
//! Subprocess{pid} implement task 9
//! ```

use multiproc::pool::Pool;
use std::io::Write;
use std::time::Duration;

fn task(name: u32) {
    println!("Subprocess{} implement task {}", std::process::id(), name);
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_millis(50));
}

fn main() -> multiproc::Result<()> {
    let p = Pool::new(3)?;
    for i in 0..10 {
        // As in the tutorial, the AsyncResult is not kept: close + join waits for the work.
        let _ = p.apply_async(task, i)?;
    }
    p.close();
    p.join()?;
    Ok(())
}
