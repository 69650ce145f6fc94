//! `RawLock` (Drepper's three-state futex mutex with the owner's id in the word) and
//! `RawRLock` (re-entrant on top of it).

use std::marker::PhantomData;
use std::time::Instant;

use super::{Futex, spin_until};
use crate::loom::{AtomicU32, Ordering};

/// Bit 31 of a lock word: a thread may be sleeping on it; unlock must wake one.
pub const WAITERS: u32 = 1 << 31;
/// Bit 30 of a lock word: reserved for robust recovery (the previous owner died holding it).
pub const OWNER_DIED: u32 = 1 << 30;
/// Bits 0..30 of a lock word: the owner's id; 0 when unlocked.
pub const TID_MASK: u32 = OWNER_DIED - 1;

/// A mutual-exclusion lock in one `AtomicU32`: 0 unlocked, else `owner_id | [WAITERS]`.
///
/// Acquire: one compare-and-swap `0 → owner_id` (inlined); on contention spin a few µs, then
/// mark `WAITERS` and sleep on the word. Release: swap to 0, and wake one sleeper only if
/// `WAITERS` was set. Not re-entrant: a second `lock` by the owner deadlocks, as Python's `Lock`.
///
/// ```
/// use multiproc_sync::raw::{RawLock, ThreadFutex};
/// use std::time::{Duration, Instant};
/// let lock = RawLock::<ThreadFutex>::new();
/// assert!(lock.try_lock());
/// assert!(!lock.lock_until(Some(Instant::now() + Duration::from_millis(5))));
/// // SAFETY: this thread holds the lock.
/// unsafe { lock.unlock() };
/// ```
#[repr(C)]
pub struct RawLock<F> {
    state: AtomicU32,
    _futex: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for RawLock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawLock")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl<F: Futex> Default for RawLock<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Futex> RawLock<F> {
    /// An unlocked lock.
    #[cfg(not(multiproc_loom))]
    pub const fn new() -> Self {
        RawLock {
            state: AtomicU32::new(0),
            _futex: PhantomData,
        }
    }

    /// An unlocked lock.
    #[cfg(multiproc_loom)]
    pub fn new() -> Self {
        RawLock {
            state: AtomicU32::new(0),
            _futex: PhantomData,
        }
    }

    /// The lock word itself (for a process-shared wrapper that inspects or repairs it).
    pub fn word(&self) -> &AtomicU32 {
        &self.state
    }

    /// Takes the lock if it is free; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, F::owner_id(), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock, waiting as long as it takes.
    #[inline]
    pub fn lock(&self) {
        if !self.try_lock() {
            self.lock_slow(None);
        }
    }

    /// Takes the lock, waiting until `deadline` at most (`None`: no limit); `false` on timeout.
    #[inline]
    pub fn lock_until(&self, deadline: Option<Instant>) -> bool {
        self.try_lock() || self.lock_slow(deadline)
    }

    /// One step of an async acquire: takes the lock if it is free, else watches the word
    /// (`watch`, see [`crate::async_wait`]) after marking `WAITERS`, so that the release wakes
    /// the watch. A lock taken here is taken with `WAITERS` set, as a woken sleeper takes it:
    /// others may still sleep, and our release must wake one of them.
    ///
    /// ```
    /// use multiproc_sync::raw::{RawLock, ThreadFutex};
    /// use std::task::{Context, Poll, Waker};
    /// let lock = RawLock::<ThreadFutex>::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut watch = None;
    /// assert!(lock.poll_lock(&mut cx, &mut watch).is_ready());
    /// // SAFETY: held (by this thread).
    /// unsafe { lock.unlock() };
    /// ```
    #[cfg(not(multiproc_loom))]
    pub fn poll_lock<'a>(
        &'a self,
        cx: &mut std::task::Context<'_>,
        watch: &mut Option<crate::async_wait::WordWatch<'a>>,
    ) -> std::task::Poll<()> {
        *watch = None;
        let id = F::owner_id();
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & TID_MASK == 0 {
                if self
                    .state
                    .compare_exchange(s, id | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return std::task::Poll::Ready(());
                }
                continue;
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            *watch = Some(crate::async_wait::WordWatch::new(
                &self.state,
                s | WAITERS,
                F::SHARED,
                cx.waker(),
            ));
            return std::task::Poll::Pending;
        }
    }

    /// Passes a wake-up on: for an async acquire abandoned after its watch may have consumed
    /// the one wake-up a release sends (a release wakes one sleeper, and the waiter thread
    /// counts as one): wakes another sleeper if any is marked.
    #[cfg(not(multiproc_loom))]
    pub fn pass_wakeup(&self) {
        if self.state.load(Ordering::Relaxed) & WAITERS != 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let id = F::owner_id();
        if spin_until(|| {
            self.state.load(Ordering::Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, id, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        }) {
            return true;
        }
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & TID_MASK == 0 {
                // Free, but others may sleep: take it with WAITERS set so our unlock wakes one.
                if self
                    .state
                    .compare_exchange(s, id | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            if !F::wait(&self.state, s | WAITERS, deadline) {
                return self.try_lock();
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The lock must be held, and the caller must be entitled to release it (it owns the
    /// guard, or took it through `lock`/`try_lock`/`lock_until` and has not released it since).
    #[inline]
    pub unsafe fn unlock(&self) {
        let s = self.state.swap(0, Ordering::Release);
        if s & WAITERS != 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        F::wake(&self.state, 1);
    }

    /// Whether some thread holds the lock now (Python's `locked()`).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & TID_MASK != 0
    }

    /// The id of the owner, if locked.
    #[inline]
    pub fn owner(&self) -> Option<u32> {
        match self.state.load(Ordering::Relaxed) & TID_MASK {
            0 => None,
            id => Some(id),
        }
    }

    /// Whether the calling thread holds the lock.
    #[inline]
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.owner() == Some(F::owner_id())
    }
}

#[cfg(not(multiproc_loom))]
// SAFETY: `lock`/`try_lock` give exclusive ownership until `unlock`, which the trait's caller
// only calls while holding the lock; the guard may not move to another thread (GuardNoSend),
// because the owner id in the word names the locking thread.
unsafe impl<F: Futex> lock_api::RawMutex for RawLock<F> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self::new();
    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        RawLock::lock(self)
    }

    #[inline]
    fn try_lock(&self) -> bool {
        RawLock::try_lock(self)
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: lock_api calls this only while the lock is held by this context.
        unsafe { RawLock::unlock(self) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawLock::is_locked(self)
    }
}

#[cfg(not(multiproc_loom))]
// SAFETY: as for `RawMutex`; the timed forms only add a deadline to `lock`.
unsafe impl<F: Futex> lock_api::RawMutexTimed for RawLock<F> {
    type Duration = std::time::Duration;
    type Instant = Instant;

    #[inline]
    fn try_lock_for(&self, timeout: Self::Duration) -> bool {
        self.try_lock() || self.lock_slow(super::deadline_after(timeout))
    }

    #[inline]
    fn try_lock_until(&self, timeout: Self::Instant) -> bool {
        self.lock_until(Some(timeout))
    }
}

/// A re-entrant lock: a [`RawLock`] plus a depth word that only the owner touches.
///
/// The owner is recognised by the id in the lock word, so no second owner field is needed.
///
/// ```
/// use multiproc_sync::raw::{RawRLock, ThreadFutex};
/// let lock = RawRLock::<ThreadFutex>::new();
/// lock.lock();
/// lock.lock();
/// assert_eq!(lock.depth(), 2);
/// // SAFETY: this thread holds it twice.
/// unsafe { lock.unlock(); lock.unlock(); }
/// assert!(!lock.is_locked());
/// ```
#[repr(C)]
pub struct RawRLock<F> {
    lock: RawLock<F>,
    depth: AtomicU32,
}

impl<F> std::fmt::Debug for RawRLock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRLock")
            .field("lock", &self.lock)
            .field("depth", &self.depth.load(Ordering::Relaxed))
            .finish()
    }
}

impl<F: Futex> Default for RawRLock<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Futex> RawRLock<F> {
    /// An unlocked re-entrant lock.
    pub fn new() -> Self {
        RawRLock {
            lock: RawLock::new(),
            depth: AtomicU32::new(0),
        }
    }

    #[inline]
    fn reenter(&self) -> Option<bool> {
        if self.lock.is_owned_by_current_thread() {
            let d = self.depth.load(Ordering::Relaxed);
            if d == u32::MAX {
                return Some(false);
            }
            self.depth.store(d + 1, Ordering::Relaxed);
            return Some(true);
        }
        None
    }

    /// Takes the lock (again, if this thread holds it). Returns `false` only if the depth would
    /// overflow `u32::MAX`.
    #[inline]
    pub fn lock(&self) -> bool {
        self.lock_until(None)
    }

    /// Takes the lock if free or already ours; never waits.
    #[inline]
    pub fn try_lock(&self) -> bool {
        if let Some(ok) = self.reenter() {
            return ok;
        }
        if self.lock.try_lock() {
            self.depth.store(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Takes the lock, waiting until `deadline` at most; `false` on timeout.
    #[inline]
    pub fn lock_until(&self, deadline: Option<Instant>) -> bool {
        if let Some(ok) = self.reenter() {
            return ok;
        }
        if self.lock.lock_until(deadline) {
            self.depth.store(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Takes one level like [`lock_until`](Self::lock_until), but when the calling thread
    /// does not hold it yet, takes the underlying lock with `take` (which returns whether it
    /// did): for a process-shared wrapper that may take a dead owner's lock over.
    ///
    /// ```
    /// use multiproc_sync::raw::{RawRLock, ThreadFutex};
    /// let lock = RawRLock::<ThreadFutex>::new();
    /// assert!(lock.lock_with(|l| l.try_lock()));
    /// assert!(lock.lock_with(|_| unreachable!("already ours: re-entered")));
    /// assert_eq!(lock.depth(), 2);
    /// // SAFETY: this thread holds both levels.
    /// unsafe { lock.unlock(); lock.unlock(); }
    /// ```
    #[inline]
    pub fn lock_with(&self, take: impl FnOnce(&RawLock<F>) -> bool) -> bool {
        if let Some(ok) = self.reenter() {
            return ok;
        }
        if take(&self.lock) {
            self.depth.store(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Releases one level; the last one frees the lock.
    ///
    /// # Safety
    ///
    /// The calling thread must hold the lock (as many levels as it will release).
    #[inline]
    pub unsafe fn unlock(&self) {
        let d = self.depth.load(Ordering::Relaxed);
        self.depth.store(d - 1, Ordering::Relaxed);
        if d == 1 {
            // SAFETY: the caller holds the last level.
            unsafe { self.lock.unlock() }
        }
    }

    /// How many times the owner holds it (meaningful only to the owner; 0 when unlocked).
    pub fn depth(&self) -> u32 {
        if self.lock.is_locked() {
            self.depth.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether some thread holds the lock.
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Whether the calling thread holds it.
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.lock.is_owned_by_current_thread()
    }

    /// The underlying lock (its word holds the owner id).
    pub fn raw_lock(&self) -> &RawLock<F> {
        &self.lock
    }
}
