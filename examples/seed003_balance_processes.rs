//! Seed 003, "Lock", across processes: the shared balance lives in a process-shared
//! `Value`, and four processes each run `change_it` 100000 times under its lock
//! (`Value::lock()`, Python's `with balance.get_lock():`), so it ends where it began; a
//! counter bumped by every process under the same kind of lock shows that no update was lost.
//!
//! Expected output:
//! ```text,ordered
//! balance = 0
//! counter = 400000
//! ```

use multiproc::{Process, Value};

/// Two separate read-modify-writes: only correct while the lock is held.
fn change_it(balance: &mut i64, n: i64) {
    *balance += n;
    *balance -= n;
}

fn run_proc((balance, counter, n): (Value<i64>, Value<u64>, i64)) {
    for _ in 0..100_000 {
        // 先要获取锁; 改完了, guard 离开作用域时一定释放锁
        let mut b = balance.lock();
        change_it(&mut b, n);
        drop(b);
        *counter.lock() += 1;
    }
}

fn main() -> multiproc::Result<()> {
    let balance = Value::new(0i64)?;
    let counter = Value::new(0u64)?;
    let workers: Vec<_> = [5, 8, 13, 21]
        .into_iter()
        .map(|n| Process::builder().spawn(run_proc, (balance.clone(), counter.clone(), n)))
        .collect::<multiproc::Result<_>>()?;
    for w in workers {
        w.join()?;
    }
    println!("balance = {}", balance.get());
    println!("counter = {}", counter.get());
    Ok(())
}
