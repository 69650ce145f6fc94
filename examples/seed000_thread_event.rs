//! Seed 000, "线程事件通知": a thread waits on an `Event` until the main thread sets it. As in
//! Python, the main thread does not join: the program waits for the non-daemon thread at exit.
//!
//! Expected output:
//! ```text
//! run...
//! Set Event...
//! end...
//! ```

use multiproc::threading::{Event, Thread};
use std::sync::Arc;

fn test_event(e: &Event) {
    println!("run...");
    // 让这个线程进入睡眠状态
    e.wait();
    // 当线程被唤醒以后, 会输出下面的语句
    println!("end...");
}

fn main() -> multiproc::Result<()> {
    let e = Arc::new(Event::new());
    let e2 = e.clone();
    let _t = Thread::builder().spawn(move || test_event(&e2))?;
    println!("Set Event...");
    // 唤醒线程会看到 end...
    e.set();
    Ok(())
}
