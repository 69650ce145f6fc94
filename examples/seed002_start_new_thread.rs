//! Seed 002, "start_new_thread() 函数来产生新线程": two bare threads print the time five times,
//! every 2 s and 4 s in the tutorial (20 ms and 40 ms here). `_thread` threads do not keep the
//! program alive, so they are daemon threads; instead of the tutorial's `while True: pass` the
//! main thread joins them.
//!
//! Expected output:
//! ```text
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! ```

use multiproc::threading::Thread;
use multiproc_examples::now;
use std::time::Duration;

/// 为线程定义一个函数
fn print_time(thread_name: &str, delay: Duration) {
    let mut count = 0;
    while count < 5 {
        std::thread::sleep(delay);
        count += 1;
        println!("{}: {}", thread_name, now());
    }
}

fn start_new_thread(name: &'static str, delay: Duration) -> multiproc::Result<Thread<()>> {
    Thread::builder()
        .daemon(true)
        .spawn(move || print_time(name, delay))
}

fn main() {
    let threads = [
        start_new_thread("Thread-1", Duration::from_millis(20)),
        start_new_thread("Thread-2", Duration::from_millis(40)),
    ];
    for t in threads {
        match t {
            Ok(t) => drop(t.join()),
            Err(be) => println!("Error: 无法启动线程 ---> {be}"),
        }
    }
}
