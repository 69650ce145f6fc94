//! `RawSemaphore`: a counter word plus a sleeper-count word.

use std::marker::PhantomData;
use std::time::Instant;

use super::{Futex, spin_until};
use crate::loom::{AtomicU32, Ordering};

/// A counting semaphore in two words: `count` (the value, slept on) and `sleepers` (how many
/// threads may sleep; `release` makes a wake call only when it is non-zero).
///
/// ```
/// use multiproc_sync::raw::{RawSemaphore, ThreadFutex};
/// let s = RawSemaphore::<ThreadFutex>::new(1);
/// assert!(s.try_acquire() && !s.try_acquire());
/// s.release(1);
/// assert_eq!(s.value(), 1);
/// ```
#[repr(C)]
pub struct RawSemaphore<F> {
    count: AtomicU32,
    sleepers: AtomicU32,
    _futex: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for RawSemaphore<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSemaphore")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl<F: Futex> RawSemaphore<F> {
    /// A semaphore with `value` permits.
    pub fn new(value: u32) -> Self {
        RawSemaphore {
            count: AtomicU32::new(value),
            sleepers: AtomicU32::new(0),
            _futex: PhantomData,
        }
    }

    /// The current value.
    #[inline]
    pub fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is free; never waits.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c > 0 {
            match self
                .count
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Takes a permit, waiting until `deadline` at most (`None`: no limit).
    #[inline]
    pub fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.try_acquire() || self.acquire_slow(deadline)
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        if spin_until(|| self.try_acquire()) {
            return true;
        }
        // SeqCst pairs with `release`: either it sees our sleeper mark, or we see its permit.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let got = loop {
            if self.try_acquire_seqcst() {
                break true;
            }
            if !F::wait(&self.count, 0, deadline) {
                break self.try_acquire();
            }
        };
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        got
    }

    fn try_acquire_seqcst(&self) -> bool {
        let mut c = self.count.load(Ordering::SeqCst);
        while c > 0 {
            match self
                .count
                .compare_exchange_weak(c, c - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Adds `n` permits and wakes up to `n` sleepers. The count stops at `u32::MAX` (a
    /// plain `fetch_add` would wrap a semaphore made with `usize::MAX` permits round to none,
    /// and every acquirer would wait for ever).
    #[inline]
    pub fn release(&self, n: u32) {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            match self.count.compare_exchange_weak(
                c,
                c.saturating_add(n),
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            F::wake(&self.count, n);
        }
    }

    /// Adds one permit unless the value is already `max`; `false` (nothing changed) if it was.
    #[inline]
    pub fn release_bounded(&self, max: u32) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c >= max {
                return false;
            }
            match self
                .count
                .compare_exchange_weak(c, c + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            F::wake(&self.count, 1);
        }
        true
    }
}
