//! `concurrent.futures.ThreadPoolExecutor.map`, as seed 002 introduces it ("它提供了
//! ThreadPoolExecutor 和 ProcessPoolExecutor 两个类"): four threads count the words of each
//! text; `map` gives the results back in input order, whichever thread finished first.
//!
//! Expected output:
//! ```text,ordered
//! trouble is a friend: 4 words
//! 变形金刚: 1 words
//! all over in order: true
//! ```

use multiproc::futures::ThreadPoolExecutor;
use std::time::Duration;

fn count_words(text: &str) -> usize {
    // The first text takes longest, so it finishes last.
    std::thread::sleep(Duration::from_millis(if text.len() > 10 { 30 } else { 1 }));
    text.split_whitespace().count()
}

fn main() -> multiproc::Result<()> {
    let texts = ["trouble is a friend", "变形金刚"];
    let pool = ThreadPoolExecutor::new(4);
    let counts: Vec<usize> = pool.map(count_words, texts)?.collect::<Result<_, _>>()?;
    for (text, n) in texts.iter().zip(&counts) {
        println!("{text}: {n} words");
    }
    println!("all over in order: {}", counts == [4, 1]);
    Ok(())
}
