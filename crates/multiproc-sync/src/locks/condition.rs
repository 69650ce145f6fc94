//! Python's `threading.Condition`: a lock plus wait and notify, optionally guarding a value.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::raw::{CondGuard, RawCondition, RawLock, ThreadFutex, deadline_after};

/// Python's `threading.Condition`: a lock plus wait/notify; optionally guards a value `T`.
///
/// ```
/// use multiproc_sync::Condition;
/// use std::sync::Arc;
/// let c = Arc::new(Condition::with_value(false));
/// let c2 = c.clone();
/// let t = std::thread::spawn(move || {
///     let mut g = c2.acquire();
///     *g = true;
///     g.notify_all();
/// });
/// let mut g = c.acquire();
/// while !*g {
///     g.wait();
/// }
/// drop(g);
/// t.join().unwrap();
/// ```
pub struct Condition<T = ()> {
    lock: RawLock<ThreadFutex>,
    cond: RawCondition<ThreadFutex>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through a guard, which exists only while `lock` is held,
// so at most one thread touches it at a time; it may be dropped on any thread (T: Send).
unsafe impl<T: Send> Sync for Condition<T> {}
// SAFETY: moving the condition moves the value (T: Send); the raw words are plain atomics.
unsafe impl<T: Send> Send for Condition<T> {}

impl<T> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.lock.is_locked())
            .finish()
    }
}

impl Default for Condition<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl Condition<()> {
    /// A condition with its own lock, guarding nothing (Python's `Condition()`).
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// let g = c.acquire();
    /// g.notify(1); // nobody waits: a no-op
    /// ```
    pub fn new() -> Self {
        Self::with_value(())
    }
}

/// Holds a [`Condition`]'s lock; waits and notifies through it; derefs to the guarded value.
///
/// ```
/// use std::time::Duration;
/// let c = multiproc_sync::Condition::new();
/// let mut g = c.acquire();
/// assert!(!g.wait_timeout(Duration::from_millis(1)));
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, T = ()> {
    core: CondGuard<'a, RawLock<ThreadFutex>>,
    cond: &'a Condition<T>,
}

impl<T> Condition<T> {
    /// A condition guarding `value`.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::with_value(1);
    /// assert_eq!(*c.acquire(), 1);
    /// ```
    pub fn with_value(value: T) -> Self {
        Condition {
            lock: RawLock::new(),
            cond: RawCondition::new(),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    fn guard<'a>(&'a self, core: CondGuard<'a, RawLock<ThreadFutex>>) -> ConditionGuard<'a, T> {
        ConditionGuard { core, cond: self }
    }

    /// Takes the lock.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// drop(c.acquire());
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_, T> {
        self.guard(CondGuard::acquire(&self.lock, &self.cond))
    }

    /// Takes the lock if free.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// let _g = c.acquire();
    /// assert!(c.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_, T>> {
        CondGuard::try_acquire(&self.lock, &self.cond).map(|g| self.guard(g))
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_sync::Condition::new();
    /// assert!(c.acquire_timeout(Duration::from_millis(1)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_, T>> {
        CondGuard::acquire_until(&self.lock, &self.cond, deadline_after(timeout))
            .map(|g| self.guard(g))
    }

    /// Consumes the condition and returns the value.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Condition::with_value(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T> ConditionGuard<'_, T> {
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        self.core.wait_until(deadline)
    }

    /// Releases the lock, sleeps until notified, takes the lock again.
    ///
    /// ```
    /// # use multiproc_sync::Condition; use std::sync::Arc;
    /// let c = Arc::new(Condition::with_value(0));
    /// let c2 = c.clone();
    /// let t = std::thread::spawn(move || { let mut g = c2.acquire(); *g = 1; g.notify(1); });
    /// let mut g = c.acquire();
    /// while *g == 0 { g.wait(); }
    /// # drop(g); t.join().unwrap();
    /// ```
    pub fn wait(&mut self) {
        self.wait_until(None);
    }

    /// Like [`wait`](Self::wait), at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_sync::Condition::new();
    /// assert!(!c.acquire().wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until `pred()` is true or `timeout` passes (`None`: no limit); returns the
    /// predicate's last value (Python's `wait_for`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_sync::Condition::new();
    /// let mut g = c.acquire();
    /// assert!(!g.wait_for(|| false, Some(Duration::from_millis(1))));
    /// assert!(g.wait_for(|| true, None));
    /// ```
    pub fn wait_for(&mut self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
        self.core
            .wait_for_until(&mut pred, timeout.and_then(deadline_after))
    }

    /// Wakes up to `n` waiting threads.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// c.acquire().notify(2);
    /// ```
    pub fn notify(&self, n: usize) {
        self.core.notify(n);
    }

    /// How many threads wait on this condition now (exact: read under the lock).
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// assert_eq!(c.acquire().waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.core.waiters()
    }

    /// Wakes every waiting thread.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// c.acquire().notify_all();
    /// ```
    pub fn notify_all(&self) {
        self.core.notify_all();
    }
}

impl<T> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other reference to the value is live.
        unsafe { &*self.cond.value.get() }
    }
}

impl<T> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.cond.value.get() }
    }
}

impl<T> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}
