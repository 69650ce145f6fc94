//! Seed 001, "Use mutex": `threading.Lock` with `acquire([blocking])` and `release()`, then the
//! reason for it: ten threads changing one global variable under the lock.
//!
//! Expected output:
//! ```text,ordered
//! mutex.acquire(): True
//! mutex.acquire(blocking=False) while held: False
//! mutex.release()
//! mutex.acquire(blocking=False) after release: True
//! num = 10000
//! ```

use multiproc::threading::{Lock, Thread};
use std::sync::atomic::{AtomicU64, Ordering};

static MUTEX: Lock = Lock::new(); // mutex = threading.Lock()
static NUM: AtomicU64 = AtomicU64::new(0);

fn main() -> multiproc::Result<()> {
    let g = MUTEX.acquire(); // locking
    println!("mutex.acquire(): True");
    let again = MUTEX.try_acquire();
    println!(
        "mutex.acquire(blocking=False) while held: {}",
        if again.is_some() { "True" } else { "False" }
    );
    g.release(); // release
    println!("mutex.release()");
    let after = MUTEX.try_acquire();
    println!(
        "mutex.acquire(blocking=False) after release: {}",
        if after.is_some() { "True" } else { "False" }
    );
    drop(after);

    let threads = (0..10)
        .map(|_| {
            Thread::spawn(|| {
                for _ in 0..1000 {
                    let _g = MUTEX.acquire();
                    // A read-modify-write that is only safe under the lock.
                    let n = NUM.load(Ordering::Relaxed);
                    NUM.store(n + 1, Ordering::Relaxed);
                }
            })
        })
        .collect::<multiproc::Result<Vec<_>>>()?;
    for t in threads {
        t.join()?;
    }
    println!("num = {}", NUM.load(Ordering::Relaxed));
    Ok(())
}
