//! Thread-level `Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event` and
//! `Barrier`: thin typed wrappers over the [`raw`](crate::raw) algorithms with
//! [`ThreadFutex`].

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::raw::{
    RawBarrier, RawCondition, RawEvent, RawLock, RawRLock, RawSemaphore, ThreadFutex,
    deadline_after,
};
use crate::{Error, Result};

/// Keeps a guard on the thread that took the lock (the lock word names that thread).
type NotSend = PhantomData<*const ()>;

/// Python's `threading.Lock`: a plain mutual-exclusion lock; the guard releases it.
///
/// Uncontended acquire + release is one compare-and-swap and one swap, as fast as
/// `parking_lot::Mutex`. Not re-entrant: acquiring it twice on one thread deadlocks (use
/// [`RLock`]); `acquire_timeout` is the way out of that.
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
    lock: &'a Lock,
    _not_send: NotSend,
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

    fn guard(&self) -> LockGuard<'_> {
        LockGuard {
            lock: self,
            _not_send: PhantomData,
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
        self.raw.lock();
        self.guard()
    }

    /// Takes the lock if it is free (Python's `acquire(blocking=False)`).
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// assert!(lock.try_acquire().is_some());
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.raw.try_lock().then(|| self.guard())
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
        self.raw.lock_until(deadline).then(|| self.guard())
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
        false
    }

    /// Releases the lock (same as dropping the guard; reads like Python's `release()`).
    ///
    /// ```
    /// let lock = multiproc_sync::Lock::new();
    /// lock.acquire().release();
    /// ```
    pub fn release(self) {}
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its thread holds the lock.
        unsafe { self.lock.raw.unlock() }
    }
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
    lock: &'a RLock,
    _not_send: NotSend,
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

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes one level, waiting while another thread holds it.
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// let _g = r.acquire();
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_> {
        if !self.raw.lock() {
            // 4 billion nested levels on one thread: treat as a fatal bug in the caller.
            panic!("RLock acquired more than u32::MAX times by one thread");
        }
        self.guard()
    }

    /// Takes one level if free or already ours.
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// let _a = r.acquire();
    /// assert!(r.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        self.raw.try_lock().then(|| self.guard())
    }

    /// Takes one level, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = multiproc_sync::RLock::new();
    /// assert!(r.acquire_timeout(Duration::from_millis(10)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.raw
            .lock_until(deadline_after(timeout))
            .then(|| self.guard())
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
        if self.raw.is_owned_by_current_thread() {
            self.raw.depth()
        } else {
            0
        }
    }
}

impl RLockGuard<'_> {
    /// Always `false` for a thread lock (see [`LockGuard::previous_owner_died`]).
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// assert!(!r.acquire().previous_owner_died());
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        false
    }

    /// Releases this level (same as dropping the guard).
    ///
    /// ```
    /// let r = multiproc_sync::RLock::new();
    /// r.acquire().release();
    /// ```
    pub fn release(self) {}
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard holds one level, on the owning thread.
        unsafe { self.lock.raw.unlock() }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

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
    cond: &'a Condition<T>,
    _not_send: NotSend,
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

    fn guard(&self) -> ConditionGuard<'_, T> {
        ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// drop(c.acquire());
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_, T> {
        self.lock.lock();
        self.guard()
    }

    /// Takes the lock if free.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// let _g = c.acquire();
    /// assert!(c.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_, T>> {
        self.lock.try_lock().then(|| self.guard())
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_sync::Condition::new();
    /// assert!(c.acquire_timeout(Duration::from_millis(1)).is_some());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_, T>> {
        self.lock
            .lock_until(deadline_after(timeout))
            .then(|| self.guard())
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
        // SAFETY: this guard holds the condition's lock, the only lock used with it.
        unsafe { self.cond.cond.wait_until(&self.cond.lock, deadline) }
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
        let deadline = timeout.and_then(deadline_after);
        loop {
            if pred() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.wait_until(deadline);
        }
    }

    /// Wakes up to `n` waiting threads.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// c.acquire().notify(2);
    /// ```
    pub fn notify(&self, n: usize) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.cond.notify(n.min(u32::MAX as usize) as u32) };
    }

    /// How many threads wait on this condition now (exact: read under the lock).
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// assert_eq!(c.acquire().waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.cond.cond.waiters() as usize
    }

    /// Wakes every waiting thread.
    ///
    /// ```
    /// let c = multiproc_sync::Condition::new();
    /// c.acquire().notify_all();
    /// ```
    pub fn notify_all(&self) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.cond.notify_all() };
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

impl<T> Drop for ConditionGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock on this thread.
        unsafe { self.cond.lock.unlock() }
    }
}

impl<T> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}

fn to_u32(v: usize) -> u32 {
    v.min(u32::MAX as usize) as u32
}

/// Python's `threading.Semaphore`: a counter of permits.
///
/// ```
/// use std::time::Duration;
/// let s = multiproc_sync::Semaphore::new(1);
/// s.acquire();
/// assert!(!s.try_acquire());
/// assert!(!s.acquire_timeout(Duration::from_millis(1)));
/// s.release();
/// assert_eq!(s.get_value(), 1);
/// ```
pub struct Semaphore {
    raw: RawSemaphore<ThreadFutex>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.get_value())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `value` permits (values above `u32::MAX` are clamped).
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Semaphore::new(3).get_value(), 3);
    /// ```
    pub fn new(value: usize) -> Self {
        Semaphore {
            raw: RawSemaphore::new(to_u32(value)),
        }
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_sync::Semaphore::new(1).acquire();
    /// ```
    pub fn acquire(&self) {
        self.raw.acquire_until(None);
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(!multiproc_sync::Semaphore::new(0).try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(multiproc_sync::Semaphore::new(1).acquire_timeout(Duration::from_millis(1)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw.acquire_until(deadline_after(timeout))
    }

    /// Gives a permit back (wakes one waiter).
    ///
    /// ```
    /// let s = multiproc_sync::Semaphore::new(0);
    /// s.release();
    /// assert!(s.try_acquire());
    /// ```
    pub fn release(&self) {
        self.raw.release(1);
    }

    /// Gives `n` permits back (Python's `release(n)`).
    ///
    /// ```
    /// let s = multiproc_sync::Semaphore::new(0);
    /// s.release_n(2);
    /// assert_eq!(s.get_value(), 2);
    /// ```
    pub fn release_n(&self, n: usize) {
        self.raw.release(to_u32(n));
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Semaphore::new(2).get_value(), 2);
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw.value() as usize
    }
}

/// Python's `threading.BoundedSemaphore`: releasing above the initial value is an error.
///
/// ```
/// use multiproc_sync::{BoundedSemaphore, Error};
/// let s = BoundedSemaphore::new(1);
/// s.acquire();
/// s.release()?;
/// assert!(matches!(s.release(), Err(Error::TooManyReleases)));
/// # Ok::<(), Error>(())
/// ```
pub struct BoundedSemaphore {
    raw: RawSemaphore<ThreadFutex>,
    max: u32,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.get_value())
            .field("max", &self.max)
            .finish()
    }
}

impl BoundedSemaphore {
    /// A semaphore with `value` permits, never more.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::BoundedSemaphore::new(2).get_value(), 2);
    /// ```
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            raw: RawSemaphore::new(to_u32(value)),
            max: to_u32(value),
        }
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_sync::BoundedSemaphore::new(1).acquire();
    /// ```
    pub fn acquire(&self) {
        self.raw.acquire_until(None);
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(multiproc_sync::BoundedSemaphore::new(1).try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!multiproc_sync::BoundedSemaphore::new(0).acquire_timeout(Duration::from_millis(1)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw.acquire_until(deadline_after(timeout))
    }

    /// Gives a permit back; `Err(TooManyReleases)` (nothing changes) if that would exceed the
    /// initial value.
    ///
    /// ```
    /// assert!(multiproc_sync::BoundedSemaphore::new(1).release().is_err());
    /// ```
    pub fn release(&self) -> Result<()> {
        if self.raw.release_bounded(self.max) {
            Ok(())
        } else {
            Err(Error::TooManyReleases)
        }
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::BoundedSemaphore::new(0).get_value(), 0);
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw.value() as usize
    }
}

/// Python's `threading.Event`: a flag that threads can wait for.
///
/// ```
/// use std::time::Duration;
/// let e = multiproc_sync::Event::new();
/// assert!(!e.wait_timeout(Duration::from_millis(1)));
/// e.set();
/// e.wait();
/// e.clear();
/// assert!(!e.is_set());
/// ```
#[derive(Default)]
pub struct Event {
    raw: RawEvent<ThreadFutex>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// A clear event.
    ///
    /// ```
    /// assert!(!multiproc_sync::Event::new().is_set());
    /// ```
    pub fn new() -> Self {
        Event {
            raw: RawEvent::new(),
        }
    }

    /// Sets the flag, waking every waiter.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn set(&self) {
        self.raw.set()
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.raw.clear()
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!multiproc_sync::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.raw.is_set()
    }

    /// Waits until the flag is set.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// e.wait();
    /// ```
    pub fn wait(&self) {
        self.raw.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the flag was set (Python's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!multiproc_sync::Event::new().wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.raw.wait_until(deadline_after(timeout))
    }
}

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
