//! Seed 003, "pool": `Pool(4)` runs 5 `long_time_task`s; task 4 waits until one of the first
//! four finishes, because at most 4 run at once. `random.random() * 3` seconds is scaled down
//! to at most 300 ms.
//!
//! Expected output:
//! ```text
//! Parent process {pid}.
//! Waiting for all subprocesses done...
//! Run task 0 ({pid})...
//! Run task 1 ({pid})...
//! Run task 2 ({pid})...
//! Run task 3 ({pid})...
//! Run task 4 ({pid})...
//! Task 0 runs {n}.{n} seconds.
//! Task 1 runs {n}.{n} seconds.
//! Task 2 runs {n}.{n} seconds.
//! Task 3 runs {n}.{n} seconds.
//! Task 4 runs {n}.{n} seconds.
//! All subprocesses done.
//! ```

use multiproc::pool::Pool;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `random.random()`: std has no random numbers, so hash the clock and the pid.
fn random() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn long_time_task(name: u32) {
    println!("Run task {} ({})...", name, std::process::id());
    let _ = std::io::stdout().flush();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(random() * 0.3));
    println!(
        "Task {} runs {:.2} seconds.",
        name,
        start.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
}

fn main() -> multiproc::Result<()> {
    println!("Parent process {}.", std::process::id());
    let p = Pool::new(4)?;
    for i in 0..5 {
        let _ = p.apply_async(long_time_task, i)?;
    }
    println!("Waiting for all subprocesses done...");
    let _ = std::io::stdout().flush();
    p.close();
    p.join()?;
    println!("All subprocesses done.");
    Ok(())
}
