//! Seed 002, "threading.RLock 和 threading.Lock 的区别": acquiring a `Lock` twice on one thread
//! deadlocks (shown here with a 50 ms timeout instead of hanging), an `RLock` may be acquired
//! again by its owner and must be released as many times.
//!
//! Expected output:
//! ```text,ordered
//! main_1: lock.acquire() 第二次: 死锁 (50 ms 后超时)
//! main_2: rLock.acquire() 第二次: 不会阻塞, 深度 2
//! main_2: 释放两次后 locked = false
//! ```

use multiproc::threading::{Lock, RLock};
use std::time::Duration;

fn main_1(lock: &Lock) {
    let _first = lock.acquire();
    match lock.acquire_timeout(Duration::from_millis(50)) {
        // 产生了死锁 (without the timeout this would wait for ever)
        None => println!("main_1: lock.acquire() 第二次: 死锁 (50 ms 后超时)"),
        Some(_) => println!("main_1: unexpected second acquire"),
    }
}

fn main_2(r_lock: &RLock) {
    let first = r_lock.acquire();
    let second = r_lock.acquire(); // 在同一线程内, 程序不会堵塞
    println!(
        "main_2: rLock.acquire() 第二次: 不会阻塞, 深度 {}",
        r_lock.depth()
    );
    second.release();
    first.release();
    println!("main_2: 释放两次后 locked = {}", r_lock.locked());
}

fn main() {
    let lock = Lock::new(); // Lock对象
    let r_lock = RLock::new(); // RLock对象
    main_1(&lock);
    main_2(&r_lock);
}
