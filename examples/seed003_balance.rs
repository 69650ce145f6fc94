//! Seed 003, "Lock": two threads each run `change_it` 100000 times under one lock, so the
//! shared balance ends where it began.
//!
//! Expected output:
//! ```text,ordered
//! balance = 0
//! ```

use multiproc::threading::{Lock, Thread};
use std::sync::atomic::{AtomicI64, Ordering};

static BALANCE: AtomicI64 = AtomicI64::new(0);
static LOCK: Lock = Lock::new();

/// Two separate read-modify-writes: only correct while the lock is held.
fn change_it(n: i64) {
    BALANCE.store(BALANCE.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    BALANCE.store(BALANCE.load(Ordering::Relaxed) - n, Ordering::Relaxed);
}

fn run_thread(n: i64) {
    for _ in 0..100_000 {
        // 先要获取锁; 改完了, guard 离开作用域时一定释放锁
        let _g = LOCK.acquire();
        change_it(n);
    }
}

fn main() -> multiproc::Result<()> {
    let t1 = Thread::spawn(|| run_thread(5))?;
    let t2 = Thread::spawn(|| run_thread(8))?;
    t1.join()?;
    t2.join()?;
    println!("balance = {}", BALANCE.load(Ordering::Relaxed));
    Ok(())
}
