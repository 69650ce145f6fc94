//! Seed 002, "减库存" (reduce stock): ten processes sell from a stock of 100 until it is
//! empty. The tutorial keeps `stock:count` in Redis and retries on `WatchError`; here the
//! count is a process-shared `Value` and a process-shared `Lock` makes each check-and-
//! decrement one step, so no retry is needed and no item is sold twice. Each sale prints the
//! new count (under the lock, so in order).
//!
//! Expected output:
//! ```text,ordered
//! 99
//! ...
//! 0
//! sold 100 items in 10 processes, stock:count = 0
//! ```

use multiproc::{Lock, Process, Value};

/// 减库存函数: 库存充足, 减库存成功, 返回 true; 库存不足, 减库存失败, 返回 false.
fn reduce_stock(lock: &Lock, stock: &Value<i64>) -> bool {
    let _g = lock.acquire();
    let count = stock.get();
    if count > 0 {
        // 有库存
        stock.set(count - 1);
        println!("{}", count - 1);
        true
    } else {
        false
    }
}

/// 没有库存就退出; returns how many items this worker sold.
fn worker((lock, stock): (Lock, Value<i64>)) -> u32 {
    let mut sold = 0;
    while reduce_stock(&lock, &stock) {
        sold += 1;
    }
    sold
}

fn main() -> multiproc::Result<()> {
    // 设置库存为100
    let stock = Value::new(100i64)?;
    let lock = Lock::new()?;
    // 多进程模拟多个客户端提交
    let workers: Vec<_> = (0..10)
        .map(|_| Process::builder().spawn(worker, (lock.clone(), stock.clone())))
        .collect::<multiproc::Result<_>>()?;
    let mut sold = 0;
    for w in workers {
        sold += w.join()?;
    }
    println!(
        "sold {sold} items in 10 processes, stock:count = {}",
        stock.get()
    );
    Ok(())
}
