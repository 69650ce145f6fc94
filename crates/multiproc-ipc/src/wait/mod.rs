//! Spin, then sleep: how every blocking call of this crate waits for a word in shared memory.
//! The process-shared lock that a dead owner cannot wedge sits beside it ([`robust`]).
//!
//! A cross-core futex wake-up costs 60–80 µs on a small virtual machine, a cache-line round trip
//! well under a microsecond; so a waiter first spins for about as long as a wake-up would cost
//! (most hand-offs between busy processes finish inside that; the workspace's one spin policy,
//! `multiproc_sync::spin`), and only then sleeps. Sleepers
//! announce themselves in a [`Signal`], so that the side that makes progress pays a system
//! call only when someone sleeps. A first sleep lasts at most [`POLL`]: a waiter wakes to
//! check that its peers are still alive, since a process killed with `kill -9` wakes nobody.

pub(crate) mod robust;

#[cfg(multiproc_loom)]
use loom::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(not(multiproc_loom))]
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use crate::sys;

// The spin before a sleep is the workspace's one policy (multiproc-sync's `spin` module); the
// names stay importable from here for the ring and the queues.
#[cfg(not(multiproc_loom))]
pub(crate) use multiproc_sync::spin::ASYNC_SPIN;
pub(crate) use multiproc_sync::spin::{spin, spin_backoff};
/// The first sleep between two liveness checks.
pub(crate) const POLL: Duration = Duration::from_millis(20);
/// The longest: each sleep that ends without news doubles the next, up to this. An idle
/// waiter (a pool worker with nothing to do) then costs about two wake-ups a second, not
/// fifty: 256 idle workers polling every [`POLL`] kept both cores of a 2-vCPU machine busy.
/// A peer killed while we sleep is still noticed within half a second.
pub(crate) const POLL_MAX: Duration = Duration::from_millis(500);

/// A wake-up channel in shared memory: a sequence number to sleep on, whose low bit
/// ([`ARMED`]) says that someone may sleep on its present value.
///
/// A sleeper sets the bit before its last look at its condition; the first notifier that
/// finds it set moves the number on to an even value (clearing the bit) and wakes everyone
/// sleeping on it; the notifiers after it find the bit clear and pay no system call, until a
/// sleeper sets it again. (With a count of sleepers instead, every notify paid a
/// `futex_wake` for as long as any sleeper was still asleep: on two CPUs shared by four
/// processes, a woken consumer may wait milliseconds for a CPU, and each put of its
/// producers made a system call meanwhile.)
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Signal {
    seq: AtomicU32,
}

/// The bit of [`Signal`]'s sequence number that says a sleeper may wait on its value.
const ARMED: u32 = 1;

/// Why [`Signal::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The condition holds.
    Ready,
    /// The deadline passed first.
    TimedOut,
    /// Nobody alive can ever make the condition true.
    Closed,
}

impl Signal {
    /// Wakes every sleeper, if there is one. Call after publishing the change a waiter waits
    /// for (the fence orders that store before the armed bit is read).
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        self.wake_if_sleepers();
    }

    /// [`notify`](Self::notify) for callers that made a locked read-modify-write (released a
    /// lock, completed a compare-and-swap) after their publishing store: on x86-64 that RMW
    /// is already a full barrier, and the explicit fence (an `mfence` per item on a queue's
    /// hot path) is left out.
    ///
    /// The hardware orders a locked instruction before the load of the sequence word that
    /// follows it, but the language does not order a relaxed load after a release
    /// read-modify-write: the compiler fence keeps the compiler from moving the load up (it
    /// costs no instruction). Under loom, which models the language's rules (and whose model
    /// lock releases with a plain store), the full fence is kept: without it, `cargo xtask
    /// loom` finds the lost wake-up.
    #[inline]
    pub(crate) fn notify_after_rmw(&self) {
        #[cfg(all(target_arch = "x86_64", not(multiproc_loom)))]
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        #[cfg(any(not(target_arch = "x86_64"), multiproc_loom))]
        fence(Ordering::SeqCst);
        self.wake_if_sleepers();
    }

    #[inline]
    fn wake_if_sleepers(&self) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & ARMED != 0 {
            self.wake_armed(seq);
        }
    }

    /// Moves the number on from `seq` (armed) to the next even value and wakes its sleepers;
    /// nothing if another notifier moved it first (that one woke them).
    #[cold]
    fn wake_armed(&self, seq: u32) {
        if self
            .seq
            .compare_exchange(
                seq,
                seq.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            futex::wake_all(&self.seq);
        }
    }

    /// Arms the signal for a sleeper (or an async watch) and returns the value to sleep on.
    /// The fence orders the caller's next look at its condition after the arming, as a
    /// notifier's look at the bit is after its publishing store (see `notify`): either the
    /// notifier sees the bit or the caller sees what it published. (The hardware gives that
    /// after a locked instruction anyway; the language's rules, and loom, need the fence. It
    /// is on the way to a sleep only.)
    #[inline]
    fn arm(&self) -> u32 {
        let seq = self.seq.fetch_or(ARMED, Ordering::SeqCst) | ARMED;
        fence(Ordering::SeqCst);
        seq
    }

    /// Waits until `ready()` holds or `deadline` passes. Without a deadline, asks `alive()`
    /// before each sleep (and so after each [`POLL`] without news) whether any peer could
    /// still make `ready()` true; when none can, answers `Closed` (after a last look at
    /// `ready()`).
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        ready: impl FnMut() -> bool,
        alive: impl FnMut() -> bool,
    ) -> Wait {
        self.wait_paced::<1>(deadline, ready, alive)
    }

    /// [`wait`](Self::wait), spinning with `PACE` pause instructions between two looks at
    /// `ready()` (see [`spin`](multiproc_sync::spin::spin)): for a waiter whose every look reads a cache line that the
    /// side it waits for writes all the time, and so slows that side down.
    pub(crate) fn wait_paced<const PACE: u32>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
        mut alive: impl FnMut() -> bool,
    ) -> Wait {
        // No spin under loom: it only multiplies the states to explore.
        #[cfg(not(multiproc_loom))]
        if spin::<PACE>(&mut ready, deadline) {
            return Wait::Ready;
        }
        let mut nap = POLL;
        loop {
            let seq = self.arm();
            let now = Instant::now();
            // A wait with a deadline ends at the deadline, as in Python (`Empty`, `Full`,
            // `Timeout`); only a wait without one, which would otherwise last for ever, asks
            // whether any peer is left and answers `Closed` when none is.
            let outcome = if ready() {
                Some(Wait::Ready)
            } else if deadline.is_some_and(|d| d <= now) {
                Some(Wait::TimedOut)
            } else if deadline.is_none() && !alive() {
                Some(if ready() { Wait::Ready } else { Wait::Closed })
            } else {
                let until = match deadline {
                    Some(d) if d < now + nap => d,
                    _ => now + nap,
                };
                futex::wait(&self.seq, seq, until - now);
                // A wake-up (news, if not yet ours) starts the pacing again; a sleep that
                // ran out doubles the next.
                nap = if self.seq.load(Ordering::Relaxed) == seq {
                    (nap * 2).min(POLL_MAX)
                } else {
                    POLL
                };
                None
            };
            if let Some(w) = outcome {
                return w;
            }
            if ready() {
                return Wait::Ready;
            }
        }
    }
}

/// The futex calls of [`Signal`]: the kernel's, or under loom a model that blocks for real
/// (`cargo xtask loom` runs the ring's models over the real `Signal`, so a lost wake-up there
/// is a deadlock that loom reports).
#[cfg(not(multiproc_loom))]
mod futex {
    use super::{AtomicU32, Duration, sys};

    #[inline]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        sys::futex_wait(word, expected, Some(timeout));
    }

    #[inline]
    pub(super) fn wake_all(word: &AtomicU32) {
        sys::futex_wake_all(word);
    }
}

/// The loom model of a futex: a sleeper that finds its word unchanged (under the model's
/// lock, as the kernel checks under its bucket lock) sleeps until a `wake_all` of that word;
/// wake-ups of other words wake it too but it sleeps again, so one signal's wake-up cannot
/// hide another's lost one. Timeouts are not modelled: every sleep in the ring's models must
/// end by a wake-up, and a lost one is a deadlock that loom reports.
#[cfg(multiproc_loom)]
mod futex {
    use super::{AtomicU32, Duration, Ordering};
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        /// Wake-ups so far, per word address.
        static ref WAKES: (Mutex<Vec<(usize, u64)>>, Condvar) = (Mutex::new(Vec::new()), Condvar::new());
    }

    fn wakes(list: &[(usize, u64)], word: usize) -> u64 {
        list.iter().find(|(w, _)| *w == word).map_or(0, |(_, n)| *n)
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, _: Duration) {
        let addr = word as *const AtomicU32 as usize;
        let mut list = WAKES.0.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let seen = wakes(&list, addr);
        while wakes(&list, addr) == seen {
            list = WAKES.1.wait(list).unwrap();
        }
    }

    pub(super) fn wake_all(word: &AtomicU32) {
        let addr = word as *const AtomicU32 as usize;
        let mut list = WAKES.0.lock().unwrap();
        match list.iter_mut().find(|(w, _)| *w == addr) {
            Some((_, n)) => *n += 1,
            None => list.push((addr, 1)),
        }
        WAKES.1.notify_all();
    }
}

/// An async waiter announced on a [`Signal`]: the signal armed (so that the next `notify`
/// pays its `futex_wake`) and watched by the shared waiter thread, which wakes the task when
/// the signal's sequence moves (see [`multiproc_sync::async_wait`]). Dropping it withdraws
/// the watch.
#[cfg(not(multiproc_loom))]
pub(crate) struct SignalWatch<'a> {
    _watch: multiproc_sync::async_wait::WordWatch<'a>,
}

#[cfg(not(multiproc_loom))]
impl Signal {
    /// Announces an async waiter (see [`SignalWatch`]). Check the condition again after this
    /// returns: a change published before the announcement woke nobody.
    pub(crate) fn watch(&self, waker: &std::task::Waker) -> SignalWatch<'_> {
        let seq = self.arm();
        SignalWatch {
            _watch: multiproc_sync::async_wait::WordWatch::new(&self.seq, seq, true, waker),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn only_the_first_notify_after_a_sleeper_armed_pays_a_wake_up() {
        let signal = Signal::default();
        // Nobody armed: a notify leaves the number alone (no system call).
        signal.notify();
        assert_eq!(signal.seq.load(Ordering::Relaxed), 0);
        // A sleeper arms; the first notify moves the number to the next even value (and
        // wakes), the next finds the bit clear.
        assert_eq!(signal.arm(), 1);
        signal.notify();
        assert_eq!(signal.seq.load(Ordering::Relaxed), 2);
        signal.notify_after_rmw();
        assert_eq!(signal.seq.load(Ordering::Relaxed), 2);
        // Two sleepers arm the same value; one notify serves both.
        assert_eq!(signal.arm(), 3);
        assert_eq!(signal.arm(), 3);
        signal.notify();
        assert_eq!(signal.seq.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn wakes_a_sleeper_and_reports_closed_and_timeouts() {
        let signal = Signal::default();
        let flag = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let w = signal.wait(None, || flag.load(Ordering::Acquire), || true);
                assert_eq!(w, Wait::Ready);
            });
            // Not a synchronisation: makes the waiter likely asleep (the wake path).
            std::thread::sleep(Duration::from_millis(5));
            flag.store(true, Ordering::Release);
            signal.notify();
        });
        let never = || false;
        let t = Instant::now() + Duration::from_millis(30);
        assert_eq!(signal.wait(Some(t), never, || true), Wait::TimedOut);
        assert!(Instant::now() >= t);
        assert_eq!(signal.wait(None, never, || false), Wait::Closed);
        let soon = Some(Instant::now() + Duration::from_millis(5));
        assert_eq!(signal.wait(soon, never, || false), Wait::TimedOut);
    }
}
