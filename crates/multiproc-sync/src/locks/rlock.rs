//! Python's `threading.RLock`: re-entrant for its owning thread.

use std::fmt;
use std::time::Duration;

use crate::raw::{LevelGuard, RawLock, RawRLock, ThreadFutex, deadline_after};

/// The guard core of a thread `RLock`.
type Level<'a> = LevelGuard<'a, RawLock<ThreadFutex>>;

/// Python's `threading.RLock`: the owning thread may acquire it again; each guard releases one
/// level. Release by another thread is impossible: the guards cannot leave their thread.
///
/// ```
/// let r = multiproc_sync::RLock::new();
/// let a = r.acquire();
/// let b = r.acquire(); // no deadlock: same thread
/// assert_eq!(r.depth(), 2);
/// drop(b);
/// drop(a);
/// assert!(!r.locked());
/// ```
#[derive(Default)]
pub struct RLock {
    raw: RawRLock<ThreadFutex>,
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// One level of an [`RLock`]; dropping it releases that level.
///
/// ```
/// let r = multiproc_sync::RLock::new();
/// let g = r.acquire();
/// assert!(!g.previous_owner_died());
/// ```
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    core: Level<'a>,
}

impl RLock {
    /// An unlocked re-entrant lock.
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// ```
    pub fn new() -> Self {
        RLock {
            raw: RawRLock::new(),
        }
    }

    /// Takes one level, waiting while another thread holds it.
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// let _g = r.acquire();
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_> {
        // 4 billion nested levels on one thread: a fatal bug in the caller (panics).
        RLockGuard {
            core: Level::acquire(&self.raw),
        }
    }

    /// Takes one level if free or already ours.
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// let _a = r.acquire();
    /// assert!(r.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        Level::try_acquire(&self.raw).map(|core| RLockGuard { core })
    }

    /// Takes one level, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = multiproc_sync::RLock::new();
    /// assert!(r.acquire_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        Level::acquire_until(&self.raw, deadline_after(timeout)).map(|core| RLockGuard { core })
    }

    /// Whether some thread holds it.
    ///
    /// ```
    /// assert!(!multiproc_sync::RLock::new().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// How many levels the calling thread holds (0 if it does not own it).
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// assert_eq!(r.depth(), 0);
    /// ```
    pub fn depth(&self) -> u32 {
        Level::depth(&self.raw)
    }
}

impl RLockGuard<'_> {
    /// Always `false` for a thread lock (see [`LockGuard::previous_owner_died`](crate::LockGuard::previous_owner_died)).
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// assert!(!r.acquire().previous_owner_died());
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.core.previous_owner_died()
    }

    /// Releases this level (same as dropping the guard).
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// r.acquire().release();
    /// ```
    pub fn release(self) {}
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}
