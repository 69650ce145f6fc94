//! Seed 002, "setDaemon(True) 设置守护线程": both threads are daemons, so the program ends as
//! soon as the main thread prints 父进程退出, without waiting for them (the tutorial's 1 s and
//! 5 s sleeps are kept: they never finish). To make the output repeatable the main thread waits
//! until each thread has printed its first line.
//!
//! Expected output:
//! ```text
//! [{*}] 听音乐 trouble is a friend
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
        std::thread::sleep(Duration::from_millis(1000));
    }
}

fn movie(movie_name: &str, started: &Barrier) {
    for i in 0..2 {
        println!("[{}] 看电影 {}", &now()[..19], movie_name);
        if i == 0 {
            let _ = started.wait();
        }
        std::thread::sleep(Duration::from_millis(5000));
    }
}

fn main() -> multiproc::Result<()> {
    let started = Arc::new(Barrier::new(3));
    let (s1, s2) = (started.clone(), started.clone());
    let daemon = true;
    let tid_list = [
        Thread::builder()
            .daemon(daemon)
            .spawn(move || music("trouble is a friend", &s1))?,
        Thread::builder()
            .daemon(daemon)
            .spawn(move || movie("变形金刚", &s2))?,
    ];
    started.wait()?;
    drop(tid_list); // daemon threads: not waited for
    println!("父进程退出");
    Ok(())
}
