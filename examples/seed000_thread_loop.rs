//! Seed 000, "多线程 Thread": a thread named LoopThread runs `run_loop`; the main thread joins it.
//! The tutorial's `time.sleep(random.random() * 2)` is scaled down to at most 20 ms.
//!
//! Expected output:
//! ```text,ordered
//! 当前线程是: MainThread
//! 当前线程是: LoopThread
//! 线程 LoopThread 处理 0
//! 线程 LoopThread 处理 1
//! 线程 LoopThread 处理 2
//! 线程 LoopThread 处理 3
//! 线程 LoopThread 处理 4
//! 线程 LoopThread 处理 5
//! 线程 LoopThread 结束.
//! 线程 MainThread 结束.
//! ```

use multiproc::threading::{Thread, current_thread};
use std::time::Duration;

fn run_loop() {
    println!("当前线程是: {}", current_thread().name);
    for i in 0..6 {
        println!("线程 {} 处理 {}", current_thread().name, i);
        std::thread::sleep(Duration::from_secs_f64(random() * 0.02));
    }
    println!("线程 {} 结束.", current_thread().name);
}

fn main() -> multiproc::Result<()> {
    println!("当前线程是: {}", current_thread().name);
    // 创建一个线程, 启动它
    let td = Thread::builder().name("LoopThread").spawn(run_loop)?;
    // 等待子线程执行完毕
    td.join()?;
    println!("线程 {} 结束.", current_thread().name);
    Ok(())
}

/// Python's `random.random()`: a float in [0, 1).
fn random() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}
