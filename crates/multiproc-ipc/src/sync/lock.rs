//! The process-shared [`Lock`] (Python's `multiprocessing.Lock`): one robust lock word in
//! a shared segment; its guard says whether the previous owner died holding it.

use std::fmt;
use std::time::Duration;

use multiproc_sync::Result;
use multiproc_sync::raw::WordGuard;

use super::{deadline, handle_impls};
use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};
use crate::wait::robust::RobustLock;

#[repr(C)]
struct LockState {
    lock: RobustLock,
}

// SAFETY: one atomic word; all-zero is an unlocked lock.
unsafe impl SharedState for LockState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Lock`: a mutual-exclusion lock shared by processes, that
/// survives its owner's death.
///
/// A handle is cheap to clone and travels to children in their spawn arguments (under every
/// start method). Uncontended acquire + release is one compare-and-swap and one swap, no
/// system call; a contended acquire spins, then sleeps on the futex. When the owner dies
/// holding it (`kill -9` included), the next acquirer takes it over and its guard's
/// [`previous_owner_died`](LockGuard::previous_owner_died) says so: the data it protects may
/// be half-updated. Not re-entrant (use [`RLock`](crate::RLock)).
///
/// ```
/// use multiproc_ipc::Lock;
/// use std::time::Duration;
/// let lock = Lock::new()?;
/// let other = lock.clone(); // what a child would hold
/// {
///     let g = lock.acquire();
///     assert!(!g.previous_owner_died());
///     assert!(other.try_acquire().is_none());
///     assert!(other.acquire_timeout(Duration::from_millis(1)).is_none());
/// }
/// assert!(other.try_acquire().is_some());
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Lock {
    obj: Object<LockState>,
}

handle_impls!(Lock);

/// Holds a process-shared [`Lock`]; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    core: WordGuard<'a, RobustLock>,
}

impl Lock {
    /// A new, unlocked lock in its own shared segment.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Lock> {
        Ok(Lock {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    #[inline(always)]
    fn word(&self) -> &RobustLock {
        &self.obj.state().lock
    }

    /// Waits for the lock (taking it over from a dead owner) and takes it.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockGuard<'_> {
        LockGuard {
            core: WordGuard::acquire(self.word()),
        }
    }

    /// Takes the lock if it is free, or if its owner is dead (Python's
    /// `acquire(block=False)`).
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let g = lock.try_acquire();
    /// assert!(g.is_some() && lock.try_acquire().is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        WordGuard::try_acquire(self.word()).map(|core| LockGuard { core })
    }

    /// Waits at most `timeout` for the lock (Python's `acquire(timeout=…)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        WordGuard::acquire_until(self.word(), deadline(timeout)).map(|core| LockGuard { core })
    }

    /// [`acquire`](Self::acquire) for async code: waits without blocking the executor (the
    /// task is parked on the lock word by a shared waiter thread, see
    /// [`multiproc_sync::async_wait`]), takes over from a dead owner as `acquire` does.
    ///
    /// The guard is not `Send`, as the lock word names the thread that holds it: hold it on
    /// one thread (a current-thread runtime or a `LocalSet` may keep it across `.await`; on a
    /// multi-threaded runtime, release it before the next `.await`). Dropping the future
    /// before it resolves takes nothing.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::yield_now();
    /// #     }
    /// # }
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let g = block_on(lock.acquire_async());
    /// assert!(lock.locked() && !g.previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[cfg(not(multiproc_loom))]
    pub async fn acquire_async(&self) -> LockGuard<'_> {
        let died = self.word().lock_async().await;
        // SAFETY: `lock_async` returned holding the word, on this thread.
        let core = unsafe { WordGuard::from_taken(self.word(), died) };
        LockGuard { core }
    }

    /// Whether some thread of some process (live or dead) holds it now.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// assert!(lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.word().is_locked()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

impl LockGuard<'_> {
    /// Whether the previous owner died holding the lock, which was then recovered (not
    /// lost): the data it protects may be half-updated.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// assert!(!lock.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.core.previous_owner_died()
    }

    /// Releases the lock (same as dropping the guard; reads like Python's `release()`).
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// lock.acquire().release();
    /// assert!(!lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("previous_owner_died", &self.previous_owner_died())
            .finish()
    }
}
