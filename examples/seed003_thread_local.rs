//! Seed 003, "ThreadLocal": a global `threading.local()` binds each thread's student.
//!
//! Expected output:
//! ```text
//! Hello, Alice (in Thread-A)
//! Hello, Bob (in Thread-B)
//! ```

use multiproc::threading::{Local, Thread, current_thread};
use std::sync::LazyLock;

/// 创建全局 ThreadLocal 对象
static LOCAL_SCHOOL: LazyLock<Local<String>> = LazyLock::new(Local::new);

fn process_student() {
    // 获取当前线程关联的 student
    let std = LOCAL_SCHOOL.get().unwrap_or_default();
    println!("Hello, {} (in {})", std, current_thread().name);
}

fn process_thread(name: &str) {
    // 绑定 ThreadLocal 的 student
    LOCAL_SCHOOL.set(name.to_owned());
    process_student();
}

fn main() -> multiproc::Result<()> {
    let t1 = Thread::builder()
        .name("Thread-A")
        .spawn(|| process_thread("Alice"))?;
    let t2 = Thread::builder()
        .name("Thread-B")
        .spawn(|| process_thread("Bob"))?;
    t1.join()?;
    t2.join()?;
    Ok(())
}
