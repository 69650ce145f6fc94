//! Seed 002, "线程同步" example: two threads count a global `count` down from 20 under a
//! `threading.Lock`; each value from 19 to 1 is printed once. `delay_second` 1 s is scaled
//! down to 10 ms.
//!
//! Expected output:
//! ```text
//! Starting thread_1
//! Starting thread_2
//! [{*}] thread_{n} ---> 19
//! [{*}] thread_{n} ---> 18
//! [{*}] thread_{n} ---> 17
//! [{*}] thread_{n} ---> 16
//! [{*}] thread_{n} ---> 15
//! [{*}] thread_{n} ---> 14
//! [{*}] thread_{n} ---> 13
//! [{*}] thread_{n} ---> 12
//! [{*}] thread_{n} ---> 11
//! [{*}] thread_{n} ---> 10
//! [{*}] thread_{n} ---> 9
//! [{*}] thread_{n} ---> 8
//! [{*}] thread_{n} ---> 7
//! [{*}] thread_{n} ---> 6
//! [{*}] thread_{n} ---> 5
//! [{*}] thread_{n} ---> 4
//! [{*}] thread_{n} ---> 3
//! [{*}] thread_{n} ---> 2
//! [{*}] thread_{n} ---> 1
//! 主线程退出
//! ```

use multiproc::threading::{Lock, Thread, current_thread};
use multiproc_examples::now;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// 定义一个 "线程锁"
static THREAD_LOCK: Lock = Lock::new();
static COUNT: AtomicI32 = AtomicI32::new(20);

fn print_time() -> i32 {
    // 获得锁, 成功获得锁定后返回
    let _g = THREAD_LOCK.acquire();
    let count = COUNT.load(Ordering::Relaxed) - 1;
    COUNT.store(count, Ordering::Relaxed);
    count
    // 释放锁 (guard dropped)
}

fn run(delay_second: Duration) {
    let name = current_thread().name;
    println!("Starting {name}");
    let mut result = print_time();
    while result > 0 {
        println!("[{}] {} ---> {}", &now()[..19], name, result);
        result = print_time();
        std::thread::sleep(delay_second);
    }
}

fn main() -> multiproc::Result<()> {
    let tid_list = [
        Thread::builder()
            .name("thread_1")
            .spawn(|| run(Duration::from_millis(10)))?,
        Thread::builder()
            .name("thread_2")
            .spawn(|| run(Duration::from_millis(10)))?,
    ];
    for tid in tid_list {
        tid.join()?;
    }
    println!("主线程退出");
    Ok(())
}
