//! Seed 002, "join() 方法, 等待线程终止": the same two threads, joined before the main thread
//! prints 父进程退出. Sleeps of 1 s / 5 s are scaled down to 10 ms / 50 ms.
//!
//! Expected output:
//! ```text
//! [{*}] 听音乐 trouble is a friend
//! [{*}] 听音乐 trouble is a friend
//! [{*}] 看电影 变形金刚
//! [{*}] 看电影 变形金刚
//! 父进程退出
//! ```

use multiproc::threading::{Barrier, Thread};
use multiproc_examples::now;
use std::sync::Arc;
use std::time::Duration;

fn music(music_name: &str, started: &Barrier) {
    for i in 0..2 {
        println!("[{}] 听音乐 {}", &now()[..19], music_name);
        if i == 0 {
            let _ = started.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn movie(movie_name: &str, started: &Barrier) {
    for i in 0..2 {
        println!("[{}] 看电影 {}", &now()[..19], movie_name);
        if i == 0 {
            let _ = started.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() -> multiproc::Result<()> {
    let started = Arc::new(Barrier::new(3));
    let (s1, s2) = (started.clone(), started.clone());
    let daemon = false;
    let tid_list = [
        Thread::builder()
            .daemon(daemon)
            .spawn(move || music("trouble is a friend", &s1))?,
        Thread::builder()
            .daemon(daemon)
            .spawn(move || movie("变形金刚", &s2))?,
    ];
    started.wait()?;
    for tid in tid_list {
        tid.join()?;
    }
    println!("父进程退出");
    Ok(())
}
