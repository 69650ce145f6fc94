//! A process-shared lock that survives its owner's death.
//!
//! The word is the thread toolbox's [`RawLock`] (owner tid in bits 0–29, `WAITERS` in bit 31)
//! on the process-shared futex. Linux's robust futex list would mark a dead owner's word, but
//! glibc owns each thread's list; instead a waiter that has slept for a while asks the kernel
//! whether the owner tid still runs (`/proc/<tid>/stat`: gone or zombie means dead) and, if
//! not, takes the word over with one compare-and-swap from the exact value it saw, so two
//! rescuers cannot both win. The rescuer learns `owner_died = true`: the data the lock
//! protects may be half-updated, and the caller decides (a queue's producer moves `tail` past
//! a record its dead predecessor committed but did not count; see `ring/mod.rs`).
//!
//! Known limit: a dead owner's tid reused by a new thread before anyone looks makes the
//! lock wait for that thread instead (Linux hands out pids in order, so reuse takes a full
//! cycle of `pid_max`).

use std::time::{Duration, Instant};

use multiproc_sync::raw::{Futex, LockWord, RawLock, SharedFutex, TID_MASK, WAITERS};
use std::sync::atomic::Ordering;

use crate::sys;

/// A robust, process-shared mutual-exclusion word (4 bytes, all-zero = unlocked).
#[repr(transparent)]
#[derive(Debug, Default)]
pub(crate) struct RobustLock {
    raw: RawLock<SharedFutex>,
}

#[cfg(not(multiproc_loom))]
const _: () = assert!(std::mem::size_of::<RobustLock>() == 4);

/// How long a waiter sleeps before it first checks on the owner, and the most it ever sleeps
/// between checks.
/// Looks of [`RobustLock::wait_out_a_streak`] before the usual spin-then-sleep take.
const STREAK_LOOKS: u32 = 8;
/// Pause instructions before its first look (a pause is ~25 ns on the 2-vCPU VM's Zen 4).
const STREAK_FIRST_GAP: u32 = 64;
/// ... doubling up to this many between two looks.
const STREAK_GAP: u32 = 256;
/// The look from which it yields the CPU first.
const STREAK_YIELD_FROM: u32 = 3;
const FIRST_CHECK: Duration = Duration::from_millis(1);
const LAST_CHECK: Duration = Duration::from_millis(50);

impl RobustLock {
    /// The robust view of a plain lock word (for one embedded in a raw re-entrant lock or
    /// condition of the thread toolbox).
    #[inline]
    pub(crate) fn from_raw(raw: &RawLock<SharedFutex>) -> &RobustLock {
        // SAFETY: `RobustLock` is `repr(transparent)` over `RawLock<SharedFutex>`, so the
        // two references have the same layout and validity; the lifetime is carried over.
        unsafe { &*(raw as *const RawLock<SharedFutex>).cast::<RobustLock>() }
    }

    /// Takes the lock if it is free, or if its owner is dead. `Some(owner_died)` on success.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<bool> {
        if self.raw.try_lock() {
            Some(false)
        } else {
            self.rescue().then_some(true)
        }
    }

    /// Takes the lock, waiting until `deadline` at most (`None`: as long as it takes).
    /// `Some(owner_died)` on success, `None` when the deadline passed.
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> Option<bool> {
        if self.raw.try_lock() {
            return Some(false);
        }
        self.lock_slow(deadline)
    }

    /// [`lock_until`](Self::lock_until) for a lock taken for one short operation after
    /// another by several processes at once (a ring's producers, or its consumers), where
    /// throughput matters more than who goes next: a contended take first leaves the holder
    /// alone for a run of operations (see [`wait_out_a_streak`](Self::wait_out_a_streak)).
    #[inline]
    pub(crate) fn lock_until_in_streaks(&self, deadline: Option<Instant>) -> Option<bool> {
        if self.raw.try_lock() {
            return Some(false);
        }
        if self.wait_out_a_streak(deadline) {
            return Some(false);
        }
        self.lock_slow(deadline)
    }

    /// A contended take's first phase: looks at the word only after [`STREAK_FIRST_GAP`]
    /// pause instructions, then after gaps that double to [`STREAK_GAP`], yielding the CPU
    /// before each look from the [`STREAK_YIELD_FROM`]th on, [`STREAK_LOOKS`] looks in all
    /// (~45 µs), or until `deadline`; true once it took the lock.
    ///
    /// The word shares its cache line with what the holder writes next (`head` or `tail`), so
    /// each look takes that line from the holder, and a look that finds the lock free between
    /// two of the holder's operations moves the lock, the line and the ring's data to the
    /// other core. A waiter that looked every few pauses did both hundreds of times a
    /// millisecond: two consumer threads draining one ring took 36 ns an item, against 19 ns
    /// for one alone; with these gaps they take 20 ns (2 producers: 47 -> 32 ns). The holder
    /// runs a streak of operations in its own cache, as crossbeam's backoff lets it. Yielding
    /// lets a holder that was preempted on this CPU finish, or another process of the ring
    /// run, but not at once: a yield can hand the CPU away for a whole time slice, which a
    /// short run pays in full (`Pool.map` of 200,000 tiny tasks in 8 chunks, a 4 ms run: ~20
    /// ns a task yielding from the fourth look, ~28 ns from the second), and yielding before
    /// the first look made 2 producer and 2 consumer processes on 2 CPUs take 71-85 ns an item
    /// (25-30 ns otherwise).
    #[cold]
    fn wait_out_a_streak(&self, deadline: Option<Instant>) -> bool {
        let word = self.raw.word();
        let mut gap = STREAK_FIRST_GAP;
        for look in 0..STREAK_LOOKS {
            if look >= STREAK_YIELD_FROM {
                std::thread::yield_now();
            }
            for _ in 0..gap {
                std::hint::spin_loop();
            }
            gap = (gap * 2).min(STREAK_GAP);
            if word.load(Ordering::Relaxed) & TID_MASK == 0 && self.raw.try_lock() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
        false
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> Option<bool> {
        let mut nap = FIRST_CHECK;
        loop {
            let now = Instant::now();
            let until = match deadline {
                Some(d) if d <= now + nap => Some(d),
                _ => Some(now + nap),
            };
            if self.raw.lock_until(until) {
                return Some(false);
            }
            if self.rescue() {
                return Some(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            nap = (nap * 2).min(LAST_CHECK);
        }
    }

    /// Takes the lock from async code: spins briefly, then parks the task on the word (see
    /// [`RawLock::poll_lock`]), and from the second look on also checks whether the owner
    /// died (a re-poll comes at least every [`multiproc_sync::async_wait::RECHECK`]).
    /// `owner_died` as for [`lock_until`](Self::lock_until).
    #[cfg(not(multiproc_loom))]
    pub(crate) async fn lock_async(&self) -> bool {
        if self.raw.try_lock() {
            return false;
        }
        let spin_until = Instant::now() + super::ASYNC_SPIN;
        if super::spin_backoff(|| self.raw.try_lock(), Some(spin_until)) {
            return false;
        }
        // Passes the wake-up on if the future is dropped after its watch may have taken the
        // only one a release sends.
        struct PassOn<'a>(&'a RawLock<SharedFutex>, bool);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.pass_wakeup();
                }
            }
        }
        let mut pass_on = PassOn(&self.raw, true);
        let mut watch = None;
        let mut looks = 0u32;
        let died = std::future::poll_fn(|cx| {
            if self.raw.poll_lock(cx, &mut watch).is_ready() {
                return std::task::Poll::Ready(false);
            }
            looks += 1;
            if looks > 1 && self.rescue() {
                watch = None;
                return std::task::Poll::Ready(true);
            }
            std::task::Poll::Pending
        })
        .await;
        pass_on.1 = false;
        died
    }

    /// Takes the word over if its owner is dead.
    #[cold]
    pub(crate) fn rescue(&self) -> bool {
        let word = self.raw.word();
        let seen = word.load(Ordering::Relaxed);
        let owner = seen & TID_MASK;
        if owner == 0 || !sys::is_dead(owner) {
            return false;
        }
        let mine = SharedFutex::owner_id() | (seen & WAITERS);
        let rescued = word
            .compare_exchange(seen, mine, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if rescued {
            tracing::debug!(
                target: "multiproc::lock",
                dead_owner_tid = owner,
                "took over a process-shared lock whose owner died holding it"
            );
        }
        rescued
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The calling thread holds the lock (took it with `try_lock`/`lock_until`).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.raw.unlock() }
    }

    /// Whether some live or dead thread holds the word.
    pub(crate) fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether the calling thread holds the lock.
    #[cfg(test)]
    pub(crate) fn is_owned_by_current_thread(&self) -> bool {
        self.raw.is_owned_by_current_thread()
    }
}

// The one difference between the thread and the process Python-style locks, kept here in the
// process layer: a process can die holding the word (`kill -9`), a thread cannot outlive its
// process, so only this word looks for a dead owner and reports `owner_died`. Everything
// else (guards, re-entry, a condition's wait and re-take) is `multiproc_sync::raw`'s.
// SAFETY: `raw` is the word every take locks (a rescue stores our owner id in it too);
// `from_raw` is the `repr(transparent)` view of the same word.
unsafe impl LockWord for RobustLock {
    type Futex = SharedFutex;

    #[inline(always)]
    fn raw(&self) -> &RawLock<SharedFutex> {
        &self.raw
    }

    #[inline(always)]
    fn from_raw(raw: &RawLock<SharedFutex>) -> &Self {
        RobustLock::from_raw(raw)
    }

    #[inline]
    fn try_take(&self) -> Option<bool> {
        self.try_lock()
    }

    #[inline]
    fn take_until(&self, deadline: Option<Instant>) -> Option<bool> {
        self.lock_until(deadline)
    }
}

/// Takes a robust lock with no deadline; `owner_died` from the take-over, if any.
#[inline]
pub(crate) fn lock_forever(lock: &RobustLock) -> bool {
    lock.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_owner_is_rescued() {
        let lock = RobustLock::default();
        // A thread takes the lock and exits without releasing it.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(lock.try_lock(), Some(false)));
        });
        assert!(lock.is_locked() && !lock.is_owned_by_current_thread());
        assert_eq!(lock.lock_until(None), Some(true));
        assert!(lock.is_owned_by_current_thread());
        // SAFETY: held by this thread.
        unsafe { lock.unlock() };
        assert_eq!(lock.try_lock(), Some(false));
        // SAFETY: held by this thread.
        unsafe { lock.unlock() };
    }

    #[test]
    fn a_live_owner_times_out() {
        let lock = RobustLock::default();
        assert_eq!(lock.try_lock(), Some(false));
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Instant::now();
                assert_eq!(lock.lock_until(Some(t + Duration::from_millis(20))), None);
                assert!(t.elapsed() >= Duration::from_millis(20));
            });
        });
        // SAFETY: held by this thread.
        unsafe { lock.unlock() };
    }
}
