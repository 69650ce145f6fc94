//! Seed 002, the `ProcessPoolExecutor` example: 10 workers, each calling `reduce_stock` until
//! the stock runs out, take a stock of 100 down to 0; every new count is printed once.
//!
//! The tutorial keeps the count in Redis and retries on `WatchError`. Here the count lives in
//! a process-shared queue holding a single token: taking the token is the lock, putting it
//! back the release. The queue reaches the workers through the pool's initializer (its
//! handles travel at worker start-up, as Python passes them through `initargs`).
//!
//! Expected output:
//! ```text
//! 99
//! 98
//! 97
//! 96
//! 95
//! 94
//! 93
//! 92
//! 91
//! 90
//! 89
//! 88
//! 87
//! 86
//! 85
//! 84
//! 83
//! 82
//! 81
//! 80
//! 79
//! 78
//! 77
//! 76
//! 75
//! 74
//! 73
//! 72
//! 71
//! 70
//! 69
//! 68
//! 67
//! 66
//! 65
//! 64
//! 63
//! 62
//! 61
//! 60
//! 59
//! 58
//! 57
//! 56
//! 55
//! 54
//! 53
//! 52
//! 51
//! 50
//! 49
//! 48
//! 47
//! 46
//! 45
//! 44
//! 43
//! 42
//! 41
//! 40
//! 39
//! 38
//! 37
//! 36
//! 35
//! 34
//! 33
//! 32
//! 31
//! 30
//! 29
//! 28
//! 27
//! 26
//! 25
//! 24
//! 23
//! 22
//! 21
//! 20
//! 19
//! 18
//! 17
//! 16
//! 15
//! 14
//! 13
//! 12
//! 11
//! 10
//! 9
//! 8
//! 7
//! 6
//! 5
//! 4
//! 3
//! 2
//! 1
//! 0
//! all over: stock 0
//! ```

use multiproc::Queue;
use multiproc::futures::ProcessPoolExecutor;
use std::io::Write;
use std::sync::OnceLock;

/// The worker's handle on the stock (set by the initializer in each worker process).
static STOCK: OnceLock<Queue<i64>> = OnceLock::new();

fn init(stock: Queue<i64>) {
    let _ = STOCK.set(stock);
}

/// Takes one item off the stock: `true` if there was one.
fn reduce_stock() -> bool {
    let stock = STOCK.get().expect("the initializer ran");
    let count = stock.get().expect("the parent holds the stock");
    let left = count > 0;
    let count = if left {
        println!("{}", count - 1);
        let _ = std::io::stdout().flush();
        count - 1
    } else {
        count
    };
    stock.put(count).expect("the parent holds the stock");
    left
}

fn worker(_: ()) {
    // 没有库存就退出
    while reduce_stock() {}
}

fn main() -> multiproc::Result<()> {
    // 设置库存为100
    let stock = Queue::new()?;
    stock.put(100i64)?;
    // 多进程模拟多个客户端提交
    let pool = ProcessPoolExecutor::builder()
        .max_workers(10)
        .initializer(init, stock.clone())
        .build()?;
    let futures: Vec<_> = (0..10)
        .map(|_| pool.submit(worker, ()))
        .collect::<Result<_, _>>()?;
    for f in futures {
        f.result()?;
    }
    pool.shutdown(true, false);
    println!("all over: stock {}", stock.get()?);
    Ok(())
}
