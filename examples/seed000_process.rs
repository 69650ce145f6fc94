//! Seed 000, "多进程 Process": run `run_something` in a child process and join it.
//!
//! Python: `Process(target=run_something, args=('Hello',)).start(); pro.join()`.
//!
//! Expected output:
//! ```text,ordered
//! 当前进程是: {pid}
//! 这里使用 {pid}进程 处理 Hello.
//! 子进程结束.
//! ```

use multiproc::Process;

fn run_something(name: String) {
    println!("这里使用 {}进程 处理 {}.", std::process::id(), name);
}

fn main() -> multiproc::Result<()> {
    println!("当前进程是: {}", std::process::id());
    let pro = Process::builder().spawn(run_something, "Hello".to_string())?;
    pro.join()?;
    println!("子进程结束.");
    Ok(())
}
