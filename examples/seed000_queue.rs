//! Seed 000, "进程通信 Queue": a writer process puts 0..5 into a queue, a reader process prints
//! what it takes.
//!
//! Python's reader loops for ever and the main process terminates it "if the queue is empty"
//! after the writer joined, which hangs for ever whenever the reader has not yet taken the last
//! item. Here the main process simply drops its handle: once the writer is gone and the queue
//! is drained, the reader's `get` answers `Err(Closed)` and it ends on its own.
//!
//! Expected output:
//! ```text
//! 当前 write 进程是: {pid}
//! 通道装载数据: 0
//! 通道装载数据: 1
//! 通道装载数据: 2
//! 通道装载数据: 3
//! 通道装载数据: 4
//! 当前 read 进程是: {pid}
//! 从通道中获取:  0
//! 从通道中获取:  1
//! 从通道中获取:  2
//! 从通道中获取:  3
//! 从通道中获取:  4
//! 进程结束
//! ```

use std::time::Duration;

use multiproc::{Process, Queue};

fn os_write(qu: Queue<u32>) {
    println!("当前 write 进程是: {}", std::process::id());
    for i in 0..5 {
        println!("通道装载数据: {i}");
        qu.put(i).unwrap();
        std::thread::sleep(Duration::from_millis(20 * u64::from(i % 3)));
    }
}

fn os_read(qu: Queue<u32>) {
    println!("当前 read 进程是: {}", std::process::id());
    while let Ok(v) = qu.get() {
        println!("从通道中获取:  {v}");
    }
}

fn main() -> multiproc::Result<()> {
    let qu = Queue::new()?;
    let pw = Process::builder().spawn(os_write, qu.clone())?;
    let pr = Process::builder().spawn(os_read, qu.clone())?;
    pw.join()?;
    drop(qu); // the reader now ends by itself once it has taken everything
    pr.join()?;
    println!("进程结束");
    Ok(())
}
