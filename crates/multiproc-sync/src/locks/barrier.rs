//! Python's `threading.Barrier`: `parties` threads wait until all have arrived.

use std::fmt;
use std::time::{Duration, Instant};

use super::to_u32;
use crate::raw::{RawBarrier, ThreadFutex, deadline_after};
use crate::{Error, Result};

/// Python's `threading.Barrier`: `parties` threads wait until all have arrived.
///
/// ```
/// use multiproc_sync::Barrier;
/// use std::sync::Arc;
/// let b = Arc::new(Barrier::new(2));
/// let b2 = b.clone();
/// let t = std::thread::spawn(move || b2.wait());
/// let mine = b.wait()?;
/// let theirs = t.join().unwrap()?;
/// assert_eq!(mine + theirs, 1); // indices 0 and 1
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub struct Barrier {
    raw: RawBarrier<ThreadFutex>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("broken", &self.broken())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` threads (0 counts as 1).
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Barrier::new(3).parties(), 3);
    /// ```
    pub fn new(parties: usize) -> Self {
        Barrier {
            raw: RawBarrier::new(to_u32(parties)),
        }
    }

    /// Waits for all parties; returns a distinct index in `0..parties`.
    /// `Err(BrokenBarrier)` if it is or becomes broken (abort, reset, another party's timeout).
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Barrier::new(1).wait()?, 0);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(None)
    }

    /// Like [`wait`](Self::wait), at most `timeout`; a timeout breaks the barrier (for everyone)
    /// and returns `Err(BrokenBarrier)`, as in Python.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc_sync::Barrier::new(2);
    /// assert!(b.wait_timeout(Duration::from_millis(1)).is_err());
    /// assert!(b.broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_until(deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize> {
        self.raw
            .wait_until(deadline)
            .map(|i| i as usize)
            .ok_or(Error::BrokenBarrier)
    }

    /// Breaks the barrier: waiting and future calls get `Err(BrokenBarrier)` until `reset`.
    ///
    /// ```
    /// let b = multiproc_sync::Barrier::new(2);
    /// b.abort();
    /// assert!(b.wait().is_err());
    /// ```
    pub fn abort(&self) {
        tracing::debug!(
            parties = self.parties(),
            waiting = self.n_waiting(),
            "barrier aborted: waiters get Err(BrokenBarrier)"
        );
        self.raw.abort()
    }

    /// Returns it to the empty state; threads waiting now get `Err(BrokenBarrier)`.
    ///
    /// ```
    /// let b = multiproc_sync::Barrier::new(1);
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// ```
    pub fn reset(&self) {
        self.raw.reset()
    }

    /// How many threads it takes to pass.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Barrier::new(2).parties(), 2);
    /// ```
    pub fn parties(&self) -> usize {
        self.raw.parties() as usize
    }

    /// How many threads wait now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Barrier::new(2).n_waiting(), 0);
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.raw.n_waiting() as usize
    }

    /// Whether it is broken.
    ///
    /// ```
    /// assert!(!multiproc_sync::Barrier::new(2).broken());
    /// ```
    pub fn broken(&self) -> bool {
        self.raw.broken()
    }
}
