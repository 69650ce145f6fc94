//! Python's `threading.Lock` and the data-holding [`Mutex`] on the same lock word.

use std::fmt;
use std::time::{Duration, Instant};

use crate::raw::{RawLock, ThreadFutex, WordGuard, deadline_after};

/// Python's `threading.Lock`: a plain mutual-exclusion lock; the guard releases it.
///
/// Uncontended acquire + release is one compare-and-swap and one swap, as fast as
/// `parking_lot::Mutex`. Not re-entrant: acquiring it twice on one thread deadlocks (use
/// [`RLock`](crate::RLock)); `acquire_timeout` is the way out of that.
///
/// ```
/// use multiproc_sync::Lock;
/// use std::time::Duration;
/// let lock = Lock::new();
/// {
///     let _g = lock.acquire();
///     assert!(lock.locked());
///     assert!(lock.try_acquire().is_none());
///     assert!(lock.acquire_timeout(Duration::from_millis(1)).is_none());
/// }
/// assert!(!lock.locked());
/// ```
#[derive(Default)]
pub struct Lock {
    raw: RawLock<ThreadFutex>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it releases the lock.
///
/// ```
/// let lock = multiproc_sync::Lock::new();
/// let g = lock.acquire();
/// assert!(!g.previous_owner_died());
/// g.release();
/// assert!(!lock.locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    core: WordGuard<'a, RawLock<ThreadFutex>>,
}

impl Lock {
    /// An unlocked lock (usable in a `static`).
    ///
    /// ```
    /// static LOCK: multiproc_sync::Lock = multiproc_sync::Lock::new();
    /// drop(LOCK.acquire());
    /// ```
    #[cfg(not(multiproc_loom))]
    pub const fn new() -> Self {
        Lock {
            raw: RawLock::new(),
        }
    }

    /// An unlocked lock.
    #[cfg(multiproc_loom)]
    pub fn new() -> Self {
        Lock {
            raw: RawLock::new(),
        }
    }

    /// Waits for the lock and takes it.
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// let _g = lock.acquire();
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockGuard<'_> {
        LockGuard {
            core: WordGuard::acquire(&self.raw),
        }
    }

    /// Takes the lock if it is free (Python's `acquire(blocking=False)`).
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// assert!(lock.try_acquire().is_some());
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        WordGuard::try_acquire(&self.raw).map(|core| LockGuard { core })
    }

    /// Waits at most `timeout` for the lock (Python's `acquire(timeout=…)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = multiproc_sync::Lock::new();
    /// assert!(lock.acquire_timeout(Duration::from_secs(1)).is_some());
    /// ```
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.acquire_until(deadline_after(timeout))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<LockGuard<'_>> {
        WordGuard::acquire_until(&self.raw, deadline).map(|core| LockGuard { core })
    }

    /// Whether some thread holds it (Python's `locked()`).
    ///
    /// ```
    /// assert!(!multiproc_sync::Lock::new().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.raw.is_locked()
    }
}

impl LockGuard<'_> {
    /// Always `false` for a thread lock; a process-shared lock says `true` when the previous
    /// owner died holding it and the lock was recovered.
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// assert!(!lock.acquire().previous_owner_died());
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.core.previous_owner_died()
    }

    /// Releases the lock (same as dropping the guard; reads like Python's `release()`).
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// lock.acquire().release();
    /// ```
    pub fn release(self) {}
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// A data-holding mutex on the same lock algorithm: `lock_api::Mutex` over [`RawLock`].
///
/// ```
/// static BALANCE: multiproc_sync::Mutex<i64> = multiproc_sync::Mutex::new(0);
/// *BALANCE.lock() += 5;
/// assert_eq!(*BALANCE.lock(), 5);
/// ```
#[cfg(not(multiproc_loom))]
pub type Mutex<T> = lock_api::Mutex<RawLock<ThreadFutex>, T>;
/// The guard of a [`Mutex`].
#[cfg(not(multiproc_loom))]
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawLock<ThreadFutex>, T>;
#[cfg(multiproc_loom)]
pub use std::sync::{Mutex, MutexGuard};
