//! `Pool.imap_unordered` with a progress bar: the iterator knows its length
//! (`ExactSizeIterator`), so `indicatif` wraps it as it would a `tqdm` over Python's
//! `imap_unordered`. The input is read lazily, a bounded number of tasks ahead. (The bar draws on
//! standard error when that is a terminal.)
//!
//! Expected output:
//! ```text,ordered
//! checked 2000 numbers: 349 primes, largest 17957
//! ```

use indicatif::{ProgressBar, ProgressIterator, ProgressStyle};
use multiproc::pool::Pool;

fn prime(n: u64) -> Option<u64> {
    let is_prime = n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d));
    is_prime.then_some(n)
}

fn main() -> multiproc::Result<()> {
    let pool = Pool::new(2)?;
    let numbers: Vec<u64> = (0..2000).map(|i| i * 9 + 2).collect();
    let results = pool.imap_unordered(prime, numbers)?;
    let bar = ProgressBar::new(results.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut primes = Vec::new();
    let mut checked = 0;
    for r in results.progress_with(bar) {
        checked += 1;
        primes.extend(r?);
    }
    println!(
        "checked {checked} numbers: {} primes, largest {}",
        primes.len(),
        primes.iter().max().copied().unwrap_or(0)
    );
    Ok(())
}
