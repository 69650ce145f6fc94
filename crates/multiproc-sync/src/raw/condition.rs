//! `RawCondition`: a condition variable over a [`RawLock`] with exact `notify(n)` counts.

use std::marker::PhantomData;
use std::time::Instant;

use super::{Futex, RawLock, spin_until};
use crate::loom::{AtomicU32, Ordering};

/// A condition variable in three words, used together with a [`RawLock`] that the caller holds
/// around every call.
///
/// - `seq`: bumped by every notify; waiters sleep on it.
/// - `waiters`: threads inside `wait` (changed only under the lock).
/// - `tokens`: notifications not yet taken (changed only under the lock, `tokens ≤ waiters`).
///
/// `notify(n)` hands out `min(n, waiters - tokens)` tokens, so exactly that many waiters return
/// `true` (Python's `notify(n)` wakes at most `n`); a waiter returns only after taking a token
/// or after its deadline, never spuriously.
///
/// ```
/// use multiproc_sync::raw::{RawCondition, RawLock, ThreadFutex};
/// use std::time::{Duration, Instant};
/// let lock = RawLock::<ThreadFutex>::new();
/// let cond = RawCondition::<ThreadFutex>::new();
/// lock.lock();
/// // SAFETY: we hold `lock`, and use it with this condition only.
/// let notified = unsafe { cond.wait_until(&lock, Some(Instant::now() + Duration::from_millis(1))) };
/// assert!(!notified);
/// // SAFETY: we hold it.
/// unsafe { lock.unlock() };
/// ```
#[repr(C)]
pub struct RawCondition<F> {
    seq: AtomicU32,
    waiters: AtomicU32,
    tokens: AtomicU32,
    _futex: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for RawCondition<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCondition")
            .field("waiters", &self.waiters.load(Ordering::Relaxed))
            .finish()
    }
}

impl<F: Futex> Default for RawCondition<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Futex> RawCondition<F> {
    /// A condition nobody waits on.
    pub fn new() -> Self {
        RawCondition {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            tokens: AtomicU32::new(0),
            _futex: PhantomData,
        }
    }

    /// Releases `lock`, sleeps until notified or `deadline`, takes `lock` again; returns
    /// whether it was notified.
    ///
    /// # Safety
    ///
    /// The calling thread holds `lock`, and every call on this condition uses the same lock.
    pub unsafe fn wait_until(&self, lock: &RawLock<F>, deadline: Option<Instant>) -> bool {
        // SAFETY: forwarded from the caller; `RawLock::lock` takes the lock back.
        unsafe { self.wait_until_with(lock, deadline, || lock.lock()) }
    }

    /// Like [`wait_until`](Self::wait_until), but takes `lock` back with `relock` (which must
    /// return holding it): for a process-shared wrapper whose lock may have to be taken over
    /// from a dead owner.
    ///
    /// # Safety
    ///
    /// As for [`wait_until`](Self::wait_until), and `relock` returns only once the calling
    /// thread holds `lock`.
    pub unsafe fn wait_until_with(
        &self,
        lock: &RawLock<F>,
        deadline: Option<Instant>,
        mut relock: impl FnMut(),
    ) -> bool {
        let w = self.waiters.load(Ordering::Relaxed);
        self.waiters.store(w + 1, Ordering::Relaxed);
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            // SAFETY: the caller holds the lock.
            unsafe { lock.unlock() };
            let in_time = spin_until(|| self.seq.load(Ordering::Relaxed) != s)
                || F::wait(&self.seq, s, deadline);
            relock();
            let t = self.tokens.load(Ordering::Relaxed);
            if t > 0 {
                self.tokens.store(t - 1, Ordering::Relaxed);
                let w = self.waiters.load(Ordering::Relaxed);
                self.waiters.store(w - 1, Ordering::Relaxed);
                return true;
            }
            if !in_time || deadline.is_some_and(|d| Instant::now() >= d) {
                let w = self.waiters.load(Ordering::Relaxed);
                self.waiters.store(w - 1, Ordering::Relaxed);
                return false;
            }
        }
    }

    /// Wakes up to `n` waiters; returns how many will return `true`.
    ///
    /// # Safety
    ///
    /// The calling thread holds the lock used with this condition.
    pub unsafe fn notify(&self, n: u32) -> u32 {
        let w = self.waiters.load(Ordering::Relaxed);
        let t = self.tokens.load(Ordering::Relaxed);
        let k = n.min(w - t);
        if k == 0 {
            return 0;
        }
        self.tokens.store(t + k, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
        if k == w - t {
            F::wake_all(&self.seq);
        } else {
            F::wake(&self.seq, k);
        }
        k
    }

    /// Wakes every waiter; returns how many.
    ///
    /// # Safety
    ///
    /// The calling thread holds the lock used with this condition.
    pub unsafe fn notify_all(&self) -> u32 {
        // SAFETY: forwarded from the caller.
        unsafe { self.notify(u32::MAX) }
    }

    /// How many threads are inside `wait_until` (read under the lock for an exact figure).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }
}
