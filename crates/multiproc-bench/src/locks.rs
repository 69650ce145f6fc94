//! One small trait over "take and release a lock", so that ours and the baselines run the
//! very same loop, and that loop for the uncontended case.

use std::hint::black_box;

use crate::{Measure, PerOp};

/// Takes the lock, runs `f`, releases the lock.
///
/// ```
/// use multiproc_bench::BenchLock;
/// let lock = parking_lot::Mutex::new(());
/// let mut ran = false;
/// lock.with(|| ran = true);
/// assert!(ran);
/// ```
pub trait BenchLock {
    /// `f` under the lock.
    fn with(&self, f: impl FnOnce());
}

impl BenchLock for multiproc::Lock {
    #[inline]
    fn with(&self, f: impl FnOnce()) {
        let _g = self.acquire();
        f()
    }
}

impl BenchLock for multiproc_sync::Lock {
    #[inline]
    fn with(&self, f: impl FnOnce()) {
        let _g = self.acquire();
        f()
    }
}

impl BenchLock for std::sync::Mutex<()> {
    #[inline]
    fn with(&self, f: impl FnOnce()) {
        let _g = self.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }
}

impl BenchLock for parking_lot::Mutex<()> {
    #[inline]
    fn with(&self, f: impl FnOnce()) {
        let _g = self.lock();
        f()
    }
}

/// Per take-and-release of `l` by one thread that nobody else contends with.
pub fn uncontended<L: BenchLock>(l: &L) -> PerOp {
    Measure::new(15, 2_000_000).per_op(|n| {
        for i in 0..n {
            l.with(|| {
                black_box(i);
            });
        }
    })
}
