//! The process-shared [`Condition`] (Python's `multiprocessing.Condition`): a robust lock
//! word and the condition's words (seq, waiters, tokens) in one shared segment.

use std::fmt;
use std::time::Duration;

use multiproc_sync::Result;
use multiproc_sync::raw::{CondGuard, RawCondition, SharedFutex};

use super::{deadline, handle_impls};
use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};
use crate::wait::robust::RobustLock;

#[repr(C)]
struct ConditionState {
    lock: RobustLock,
    cond: RawCondition<SharedFutex>,
}

// SAFETY: atomic words; all-zero is an unlocked lock and a condition nobody waits on.
unsafe impl SharedState for ConditionState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Condition`: a robust lock plus wait/notify across processes.
///
/// `notify(n)` wakes at most `n` waiters, exactly: each woken waiter takes one notification.
/// A wait takes the lock back even if its holder died meanwhile; the guard's
/// [`previous_owner_died`](ConditionGuard::previous_owner_died) then says so.
///
/// ```
/// use std::time::Duration;
/// let c = multiproc_ipc::Condition::new()?;
/// let mut g = c.acquire();
/// assert!(!g.wait_timeout(Duration::from_millis(1))); // nobody notifies
/// assert!(g.wait_for(|| true, None));
/// g.notify_all();
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Condition {
    obj: Object<ConditionState>,
}

handle_impls!(Condition);

/// Holds a [`Condition`]'s lock; waits and notifies through it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    core: CondGuard<'a, RobustLock>,
}

impl Condition {
    /// A condition with its own (robust) lock.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify(1); // nobody waits: a no-op
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Condition> {
        Ok(Condition {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    fn state(&self) -> &ConditionState {
        self.obj.state()
    }

    fn guard(core: CondGuard<'_, RobustLock>) -> ConditionGuard<'_> {
        ConditionGuard { core }
    }

    /// Takes the lock.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// drop(c.acquire());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_> {
        let s = self.state();
        Self::guard(CondGuard::acquire(&s.lock, &s.cond))
    }

    /// Takes the lock if it is free (or its owner is dead).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// let _g = c.acquire();
    /// assert!(c.try_acquire().is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_>> {
        let s = self.state();
        CondGuard::try_acquire(&s.lock, &s.cond).map(Self::guard)
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(c.acquire_timeout(Duration::from_millis(1)).is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_>> {
        let s = self.state();
        CondGuard::acquire_until(&s.lock, &s.cond, deadline(timeout)).map(Self::guard)
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.state().lock.is_locked())
            .finish_non_exhaustive()
    }
}

impl ConditionGuard<'_> {
    /// Releases the lock, sleeps until notified, takes the lock again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let c = multiproc_ipc::Condition::new()?;
    /// let done = Arc::new(AtomicBool::new(false));
    /// let (c2, done2) = (c.clone(), done.clone());
    /// let t = std::thread::spawn(move || {
    ///     let g = c2.acquire();
    ///     done2.store(true, Ordering::Relaxed); // changed under the lock
    ///     g.notify_all();
    /// });
    /// let mut g = c.acquire();
    /// while !done.load(Ordering::Relaxed) {
    ///     g.wait();
    /// }
    /// # drop(g); t.join().unwrap();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait(&mut self) {
        self.core.wait_until(None);
    }

    /// Like [`wait`](Self::wait), at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(!c.acquire().wait_timeout(Duration::from_millis(1)));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.core.wait_until(deadline(timeout))
    }

    /// Waits until `pred()` is true or `timeout` passes (`None`: no limit); returns the
    /// predicate's last value (Python's `wait_for`). The predicate runs under the lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// let mut g = c.acquire();
    /// assert!(!g.wait_for(|| false, Some(Duration::from_millis(1))));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait_for(&mut self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
        self.core
            .wait_for_until(&mut pred, timeout.and_then(deadline))
    }

    /// Wakes up to `n` waiting threads (of any process).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify(2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn notify(&self, n: usize) {
        self.core.notify(n);
    }

    /// Wakes every waiting thread.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify_all();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.core.notify_all();
    }

    /// How many threads wait on this condition now (exact: read under the lock; a waiter
    /// killed inside `wait` still counts).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert_eq!(c.acquire().waiters(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn waiters(&self) -> usize {
        self.core.waiters()
    }

    /// Whether the lock's previous owner died holding it (at the acquire or at the end of a
    /// wait): the shared state it protects may be half-updated.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(!c.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.core.previous_owner_died()
    }

    /// Releases the lock (same as dropping the guard).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().release();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("previous_owner_died", &self.previous_owner_died())
            .finish()
    }
}
