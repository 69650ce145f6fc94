//! `RawBarrier`: CPython's `threading.Barrier` state machine over a [`RawLock`] and a
//! [`RawCondition`].

use std::time::Instant;

use super::{Futex, RawCondition, RawLock};
use crate::loom::{AtomicU32, Ordering};

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

/// A cyclic barrier for `parties` threads, with CPython's states (filling, draining,
/// resetting, broken) and rules: a timed-out or aborted wait breaks it for everyone until
/// `reset`. Every word is an `AtomicU32`, so it can live in shared memory.
///
/// ```
/// use multiproc_sync::raw::{RawBarrier, ThreadFutex};
/// let b = RawBarrier::<ThreadFutex>::new(1);
/// assert_eq!(b.wait_until(None), Some(0));
/// b.abort();
/// assert_eq!(b.wait_until(None), None);
/// ```
#[repr(C)]
pub struct RawBarrier<F> {
    lock: RawLock<F>,
    cond: RawCondition<F>,
    /// FILLING, DRAINING, RESETTING or BROKEN (under `lock`).
    state: AtomicU32,
    /// Threads inside `wait` (under `lock`).
    count: AtomicU32,
    parties: u32,
}

impl<F> std::fmt::Debug for RawBarrier<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBarrier")
            .field("parties", &self.parties)
            .field("state", &self.state.load(Ordering::Relaxed))
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

struct Held<'a, F: Futex>(&'a RawLock<F>);

impl<F: Futex> Drop for Held<'_, F> {
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while its thread holds the lock.
        unsafe { self.0.unlock() }
    }
}

impl<F: Futex> RawBarrier<F> {
    /// A barrier for `parties` threads (at least 1).
    pub fn new(parties: u32) -> Self {
        RawBarrier {
            lock: RawLock::new(),
            cond: RawCondition::new(),
            state: AtomicU32::new(FILLING),
            count: AtomicU32::new(0),
            parties: parties.max(1),
        }
    }

    fn hold(&self) -> Held<'_, F> {
        self.lock.lock();
        Held(&self.lock)
    }

    fn get(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    fn put(&self, s: u32) {
        self.state.store(s, Ordering::Relaxed)
    }

    fn wait_cond(&self, deadline: Option<Instant>) -> bool {
        // SAFETY: called only while holding `self.lock`, the condition's only lock.
        unsafe { self.cond.wait_until(&self.lock, deadline) }
    }

    fn notify_all(&self) {
        // SAFETY: called only while holding `self.lock`.
        unsafe { self.cond.notify_all() };
    }

    /// Waits for all parties; returns this party's index (`0..parties`, the last to arrive gets
    /// `parties - 1`), or `None` if the barrier is or becomes broken (also when `deadline`
    /// passes, which breaks it for the others too).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Option<u32> {
        let _held = self.hold();
        // Enter: wait while the previous cycle drains or resets.
        while matches!(self.get(), DRAINING | RESETTING) {
            self.wait_cond(None);
        }
        if self.get() == BROKEN {
            return None;
        }
        let index = self.count.load(Ordering::Relaxed);
        self.count.store(index + 1, Ordering::Relaxed);
        let result = if index + 1 == self.parties {
            self.put(DRAINING);
            self.notify_all();
            Some(index)
        } else {
            // wait_for(state != FILLING, timeout)
            let mut ok = true;
            while self.get() == FILLING {
                if !self.wait_cond(deadline) && self.get() == FILLING {
                    ok = false;
                    break;
                }
            }
            if !ok {
                self.put(BROKEN);
                self.notify_all();
                None
            } else if self.get() == DRAINING {
                Some(index)
            } else {
                None
            }
        };
        // Exit: the last one out of a draining or resetting barrier refills it.
        let c = self.count.load(Ordering::Relaxed) - 1;
        self.count.store(c, Ordering::Relaxed);
        if c == 0 && matches!(self.get(), DRAINING | RESETTING) {
            self.put(FILLING);
            self.notify_all();
        }
        result
    }

    /// Returns the barrier to its empty state; threads waiting on it now get `None`.
    pub fn reset(&self) {
        let _held = self.hold();
        if self.count.load(Ordering::Relaxed) > 0 {
            if matches!(self.get(), FILLING | BROKEN) {
                self.put(RESETTING);
            }
        } else {
            self.put(FILLING);
        }
        self.notify_all();
    }

    /// Breaks the barrier: current and future waits get `None` until `reset`.
    pub fn abort(&self) {
        let _held = self.hold();
        self.put(BROKEN);
        self.notify_all();
    }

    /// How many threads are needed to pass.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// How many threads wait in the current cycle.
    pub fn n_waiting(&self) -> u32 {
        let _held = self.hold();
        if self.get() == FILLING {
            self.count.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether it is broken.
    pub fn broken(&self) -> bool {
        let _held = self.hold();
        self.get() == BROKEN
    }
}
