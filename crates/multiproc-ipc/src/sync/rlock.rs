//! The process-shared [`RLock`] (Python's `multiprocessing.RLock`): a robust lock word and
//! the owner's depth in a shared segment.

use std::fmt;
use std::time::Duration;

use multiproc_sync::Result;
use multiproc_sync::raw::{LevelGuard, RawRLock, SharedFutex};

use super::{deadline, handle_impls};
use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};
use crate::wait::robust::RobustLock;

#[repr(C)]
struct RLockState {
    raw: RawRLock<SharedFutex>,
}

// SAFETY: two atomic words; all-zero is an unlocked lock of depth 0.
unsafe impl SharedState for RLockState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.RLock`: re-entrant for its owner, a thread of one process (the
/// kernel thread id names it, unique across processes); survives its owner's death as
/// [`Lock`](crate::Lock) does. Each guard releases one level; a non-owner cannot release it
/// (guards stay on their thread).
///
/// ```
/// let r = multiproc_ipc::RLock::new()?;
/// let a = r.acquire();
/// let b = r.acquire(); // same thread: no deadlock
/// assert_eq!(r.depth(), 2);
/// drop(b);
/// drop(a);
/// assert!(!r.locked());
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct RLock {
    obj: Object<RLockState>,
}

handle_impls!(RLock);

/// One level of an [`RLock`]; dropping it releases that level.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    core: Level<'a>,
}

/// The guard core: a level of the one re-entrant lock behaviour, over the robust word.
type Level<'a> = LevelGuard<'a, RobustLock>;

impl RLock {
    /// A new, unlocked re-entrant lock.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::RLock::new()?.depth(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<RLock> {
        Ok(RLock {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    fn raw(&self) -> &RawRLock<SharedFutex> {
        &self.obj.state().raw
    }

    /// Takes one level, waiting while another thread (of any process) holds it.
    ///
    /// # Panics
    ///
    /// If one thread nests it more than `u32::MAX` times.
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _g = r.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_> {
        RLockGuard {
            core: Level::acquire(self.raw()),
        }
    }

    /// Takes one level if it is free, already ours, or its owner is dead.
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _a = r.acquire();
    /// assert!(r.try_acquire().is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        Level::try_acquire(self.raw()).map(|core| RLockGuard { core })
    }

    /// Takes one level, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = multiproc_ipc::RLock::new()?;
    /// assert!(r.acquire_timeout(Duration::from_millis(1)).is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        Level::acquire_until(self.raw(), deadline(timeout)).map(|core| RLockGuard { core })
    }

    /// Whether some thread of some process holds it.
    ///
    /// ```
    /// assert!(!multiproc_ipc::RLock::new()?.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.raw().is_locked()
    }

    /// How many levels the calling thread holds (0 if it does not own it).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _g = r.acquire();
    /// assert_eq!(r.depth(), 1);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn depth(&self) -> u32 {
        Level::depth(self.raw())
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

impl RLockGuard<'_> {
    /// Whether the previous owner died holding the lock (see
    /// [`LockGuard::previous_owner_died`](crate::LockGuard::previous_owner_died)).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// assert!(!r.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.core.previous_owner_died()
    }

    /// Releases this level (same as dropping the guard).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// r.acquire().release();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("previous_owner_died", &self.previous_owner_died())
            .finish()
    }
}
