//! Seed 002, "通过 继承 threading.Thread 来实现多线程": `myThread` with a thread id, a name and a
//! delay, checking a global `exitFlag`. Delays of 1 s / 2 s are scaled down to 10 ms / 20 ms.
//!
//! Expected output:
//! ```text
//! 开始线程:Thread-1
//! 开始线程:Thread-2
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! 退出线程:Thread-1
//! 退出线程:Thread-2
//! 退出主线程
//! ```

use multiproc::threading::Thread;
use multiproc_examples::now;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static EXIT_FLAG: AtomicBool = AtomicBool::new(false);

/// The tutorial's `myThread`.
#[allow(dead_code)] // thread_id is kept as in the tutorial
struct MyThread {
    thread_id: u32,
    name: String,
    delay: Duration,
}

impl MyThread {
    fn run(self) {
        println!("开始线程:{}", self.name);
        print_time(&self.name, self.delay, 5);
        println!("退出线程:{}", self.name);
    }

    fn start(self) -> multiproc::Result<Thread<()>> {
        let name = self.name.clone();
        Thread::builder().name(name).spawn(move || self.run())
    }
}

fn print_time(thread_name: &str, delay: Duration, mut counter: u32) {
    while counter > 0 {
        if EXIT_FLAG.load(Ordering::Relaxed) {
            return; // threadName.exit()
        }
        std::thread::sleep(delay);
        println!("{}: {}", thread_name, now());
        counter -= 1;
    }
}

fn main() -> multiproc::Result<()> {
    // 创建新线程, 开启新线程
    let thread1 = MyThread {
        thread_id: 1,
        name: "Thread-1".into(),
        delay: Duration::from_millis(10),
    }
    .start()?;
    let thread2 = MyThread {
        thread_id: 2,
        name: "Thread-2".into(),
        delay: Duration::from_millis(20),
    }
    .start()?;
    thread1.join()?;
    thread2.join()?;
    println!("退出主线程");
    Ok(())
}
