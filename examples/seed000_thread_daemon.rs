//! Seed 000, "使用继承类创建": the `MyThread(Thread)` pattern with `setDaemon(True)`. In Rust the
//! subclass is a struct holding the parameters whose `run` becomes the thread's closure; the
//! daemon flag lets the program end while the thread still runs (it would run for ever).
//!
//! Expected output:
//! ```text
//! MyThread 是守护线程: true
//! 守护线程 MyThread 处理 parameter1
//! 主线程结束, 守护线程随之停止
//! ```

use multiproc::threading::{Event, Thread, current_thread};
use std::sync::Arc;
use std::time::Duration;

/// The tutorial's `MyThread`: its parameters, and `run`.
struct MyThread {
    parameter1: String,
    started: Arc<Event>,
}

impl MyThread {
    fn run(self) {
        function_name(&self.parameter1);
        self.started.set();
        loop {
            // A daemon thread: stopped when the program ends.
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn start(self) -> multiproc::Result<Thread<()>> {
        Thread::builder()
            .name("MyThread")
            .daemon(true) // self.setDaemon(True)
            .spawn(move || self.run())
    }
}

fn function_name(parameter1: &str) {
    println!("守护线程 {} 处理 {}", current_thread().name, parameter1);
}

fn main() -> multiproc::Result<()> {
    let started = Arc::new(Event::new());
    let t = MyThread {
        parameter1: "parameter1".into(),
        started: started.clone(),
    }
    .start()?;
    println!("{} 是守护线程: {}", t.name(), t.is_daemon());
    started.wait();
    println!("主线程结束, 守护线程随之停止");
    Ok(())
}
