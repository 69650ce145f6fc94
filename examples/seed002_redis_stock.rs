//! Seed 002, the Redis stock counter: 10 process-pool workers take a stock of 100 down to 0
//! with `WATCH`/`MULTI`/`EXEC`, each retrying when another client changed the count under
//! it (Python's `WatchError`, printed as the seed prints it). Exactly 100 decrements succeed.
//!
//! The server is the one named by `MULTIPROC_REDIS_URL` (`cargo xtask examples` starts one);
//! without it, the example starts a throwaway `redis-server` itself.
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
//! successful decrements: 100, stock:count = 0
//! ...
//! ```
//!
//! (The `...` stands for the `Watched variable changed.` lines: how many depends on the
//! interleaving.)

use multiproc::futures::ProcessPoolExecutor;
use multiproc::redis::raw::{self, Commands};
use multiproc::redis::{Client, LocalServer, URL_ENV};
use std::io::Write;

fn redis_err(e: raw::RedisError) -> multiproc::Error {
    multiproc::Error::Redis(e.to_string())
}

// 减库存函数, 循环直到减库存完成
// 库存充足, 减库存成功, 返回True
// 库存不足, 减库存失败, 返回False
fn reduce_stock(con: &mut raw::Connection) -> Result<bool, raw::RedisError> {
    loop {
        // watch库存键, multi后如果该key被其他客户端改变, 事务操作会失败
        raw::cmd("WATCH").arg("stock:count").query::<()>(con)?;
        let count: i64 = con.get("stock:count")?;
        if count > 0 {
            // 事务开始: MULTI, DECR, EXEC; EXEC answers nil when the watched key changed
            let done: Option<(i64,)> = raw::pipe().atomic().decr("stock:count", 1).query(con)?;
            match done {
                Some((left,)) => {
                    println!("{left}");
                    let _ = std::io::stdout().flush();
                    return Ok(true);
                }
                // 打印WatchError异常, 观察被watch锁住的情况
                None => {
                    println!("Watched variable changed.");
                    raw::cmd("UNWATCH").query::<()>(con)?;
                }
            }
        } else {
            raw::cmd("UNWATCH").query::<()>(con)?;
            return Ok(false);
        }
    }
}

/// One client: decrements until the stock is gone; answers how many of its decrements won.
fn worker(url: String) -> u32 {
    let mut con = Client::open(&url)
        .and_then(|c| c.raw_connection())
        .expect("the parent checked the server");
    let mut won = 0;
    // 没有库存就退出
    while reduce_stock(&mut con).expect("redis answers") {
        won += 1;
    }
    won
}

fn main() -> multiproc::Result<()> {
    let _own;
    let url = match std::env::var(URL_ENV) {
        Ok(u) => u,
        Err(_) => {
            let s = LocalServer::start()?;
            let u = s.url().to_string();
            _own = s;
            u
        }
    };
    // 设置库存为100
    let mut con = Client::open(&url)?.raw_connection()?;
    con.set::<_, _, ()>("stock:count", 100).map_err(redis_err)?;
    // 多进程模拟多个客户端提交
    let pool = ProcessPoolExecutor::new(10)?;
    let futures: Vec<_> = (0..10)
        .map(|_| pool.submit(worker, url.clone()))
        .collect::<Result<_, _>>()?;
    let mut won = 0;
    for f in futures {
        won += f.result()?;
    }
    pool.shutdown(true, false);
    let left: i64 = con.get("stock:count").map_err(redis_err)?;
    println!("successful decrements: {won}, stock:count = {left}");
    Ok(())
}
