//! Seed 003, "多线程": `loop` runs in a thread named LoopThread; `time.sleep(1)` is scaled down
//! to 10 ms.
//!
//! Expected output:
//! ```text,ordered
//! thread MainThread is running...
//! thread LoopThread is running...
//! thread LoopThread >>> 1
//! thread LoopThread >>> 2
//! thread LoopThread >>> 3
//! thread LoopThread >>> 4
//! thread LoopThread >>> 5
//! thread LoopThread ended.
//! thread MainThread ended.
//! ```

use multiproc::threading::{Thread, current_thread};
use std::time::Duration;

/// 新线程执行的代码
fn run_loop() {
    println!("thread {} is running...", current_thread().name);
    let mut n = 0;
    while n < 5 {
        n += 1;
        println!("thread {} >>> {}", current_thread().name, n);
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("thread {} ended.", current_thread().name);
}

fn main() -> multiproc::Result<()> {
    println!("thread {} is running...", current_thread().name);
    let t = Thread::builder().name("LoopThread").spawn(run_loop)?;
    t.join()?;
    println!("thread {} ended.", current_thread().name);
    Ok(())
}
