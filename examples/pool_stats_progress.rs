//! A pool's counters beside a progress bar: what Python's `Pool` cannot show or do. Tasks
//! that run too long are stopped (`task_timeout`), a task that grabs too much memory fails
//! alone (`memory_limit_per_worker`), a panicking task fails alone, and `pool.stats()` is
//! cheap enough to read after every result for a live line next to an `indicatif` bar. (The
//! bar draws on standard error when that is a terminal.)
//!
//! Expected output:
//! ```text,ordered
//! 200 tasks: 190 done, 4 timed out, 1 past the memory limit, 5 panicked
//! stats: submitted 200, completed 190, failed 6, timed out 4, waiting 0
//! ```

use indicatif::{ProgressBar, ProgressStyle};
use multiproc::Error;
use multiproc::pool::Pool;
use std::time::Duration;

/// Squares `n`; every 50th task hangs, every 40th (offset 7) panics, task 123 hoards memory.
fn work(n: u64) -> u64 {
    if n % 50 == 25 {
        std::thread::sleep(Duration::from_secs(60)); // stopped by the time limit
    }
    if n % 40 == 7 {
        panic!("task {n} is unlucky");
    }
    if n == 123 {
        // 8 GiB: past the 512 MiB ceiling (black_box: the optimiser must not elide it).
        let hoard = std::hint::black_box(vec![1u8; 8 << 30]);
        return hoard.len() as u64;
    }
    n * n
}

/// Each worker's initializer: a task's panic is caught and becomes its result, so the
/// workers need not print it (nor spend time on a backtrace).
fn quiet_panics(_: ()) {
    std::panic::set_hook(Box::new(|_| {}));
}

fn main() -> multiproc::Result<()> {
    let pool = Pool::builder()
        .processes(2)
        .initializer(quiet_panics, ())
        .task_timeout(Duration::from_secs(1))
        .memory_limit_per_worker(512 << 20)
        .build()?;
    let tasks: Vec<_> = (0..200)
        .map(|n| pool.apply_async(work, n))
        .collect::<multiproc::Result<_>>()?;
    let bar = ProgressBar::new(tasks.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut done, mut timed_out, mut memory, mut panicked) = (0, 0, 0, 0);
    for task in tasks {
        match task.get() {
            Ok(_) => done += 1,
            Err(Error::Timeout) => timed_out += 1,
            Err(Error::MemoryLimit { .. }) => memory += 1,
            Err(Error::TaskFailed { .. }) => panicked += 1,
            Err(e) => return Err(e),
        }
        let s = pool.stats();
        bar.set_message(format!(
            "ok {} failed {} timed out {} replaced {} waiting {}",
            s.completed, s.failed, s.timed_out, s.workers_replaced, s.waiting
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "200 tasks: {done} done, {timed_out} timed out, {memory} past the memory limit, \
         {panicked} panicked"
    );
    let s = pool.stats();
    println!(
        "stats: submitted {}, completed {}, failed {}, timed out {}, waiting {}",
        s.submitted, s.completed, s.failed, s.timed_out, s.waiting
    );
    pool.close();
    pool.join()
}
