//! Seed 000, "创建线程本地数据": `threading.local()`: the main thread's `L.num` stays 1 while a
//! thread sets its own to 5.
//!
//! Expected output:
//! ```text
//! 1
//! 5
//! 1
//! ```

use multiproc::threading::{Local, Thread};
use std::sync::Arc;

fn main() -> multiproc::Result<()> {
    let l: Arc<Local<i32>> = Arc::new(Local::new());
    l.set(1);
    // 此时操作的是主线程的 local 对象, 输出 1
    println!("{}", l.get().unwrap_or_default());
    let l2 = l.clone();
    let t = Thread::spawn(move || {
        l2.set(5);
        println!("{}", l2.get().unwrap_or_default());
    })?;
    // 主线程中的 L.num 依然是 1
    println!("{}", l.get().unwrap_or_default());
    t.join()?;
    Ok(())
}
