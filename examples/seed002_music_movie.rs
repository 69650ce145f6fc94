//! Seed 002, "Python 单线程": `music` then `movie` on the main thread, one after the other.
//! `time.sleep(1)` / `time.sleep(5)` are scaled down to 10 ms / 50 ms.
//!
//! Expected output:
//! ```text,ordered
//! 听音乐  trouble is a friend. {*}
//! 听音乐  trouble is a friend. {*}
//! 看电影  变形金刚. {*}
//! 看电影  变形金刚. {*}
//! all over {*}
//! ```

use multiproc_examples::now;
use std::time::Duration;

fn music(argv: &str) {
    for _ in 0..2 {
        println!("听音乐  {}. {}", argv, now());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn movie(argv: &str) {
    for _ in 0..2 {
        println!("看电影  {}. {}", argv, now());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    music("trouble is a friend");
    movie("变形金刚");
    println!("all over {}", now());
}
