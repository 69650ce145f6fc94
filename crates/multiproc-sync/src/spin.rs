//! The workspace's one spin policy: how long a waiter keeps looking before it sleeps, and when
//! it does not spin at all (parking_lot_core's `spinwait.rs` role). Threads (the raw
//! algorithms, the queues), processes (multiproc-ipc's `wait/`) and the parent waiting for a
//! child (multiproc-spawn) all spin through here. Not API: public for the workspace's crates,
//! hidden from the docs.
//!
//! # The policy
//!
//! A futex wake-up across cores costs 60–80 µs on a small virtual machine, a cache-line hand-off
//! well under a microsecond. So a waiter looks again, in up to three phases, before it sleeps:
//!
//! 1. **Pause** ([`spin_until`]): about a thousand `pause` instructions with exponential back-off
//!    (1, 2, 4 … 16 between looks), no clock read; a few µs. The thread primitives' whole spin:
//!    their peer is a thread of this process, on another core or soon scheduled.
//! 2. **Busy** for a fifth of the budget ([`SPIN_FOR`], or [`ASYNC_SPIN`] for an async first
//!    poll), reading the clock only every so many looks ([`spin`], [`spin_backoff`]).
//! 3. **Yield** the CPU between looks for the rest of the budget: on a machine with more runnable
//!    threads than cores, the partner we wait for can run instead of being spun against.
//!    [`Spinner`] is this phase alone, with the stall rule below, for waits whose partner is a
//!    fresh process (a child, the fork server).
//!
//! A deadline earlier than the budget ends every phase early. The redis crate's socket
//! back-off is not a spin (it polls a network socket with growing timeouts) and stays there.
//!
//! # Stalls: when not to spin at all
//!
//! Bounded spinning before a sleep, and when not to spin at all.
//!
//! A short-lived child often ends within a hundred microseconds or so. Waking a thread that
//! sleeps in `poll` costs 60-80 µs on a small virtual machine, when its CPU has gone idle in the
//! meantime, so a waiter that keeps looking (without blocking, yielding the CPU between looks)
//! for a short while never pays that.
//!
//! Yielding is only cheap while nobody else wants the CPU. A yield that takes long (a time slice,
//! `SHARED_CPU`) means another task ran on our CPU: perhaps the very child or fork server we wait
//! for, perhaps a compiler hogging the CPU, which then keeps it for the rest of its time slice (up
//! to milliseconds) at every yield. So a long yield after which the caller reports no progress
//! ([`Spinner::progress`]) ends the spin, and spinning stays off in this process for a while: a CPU
//! that others want does not go idle, so sleeping there costs no idle wake-up. The pause doubles
//! with each stall that follows another within `FORGET` (from `MIN_BACKOFF` to
//! `MAX_BACKOFF`): a CPU hog soon turns spinning off for good, while a one-off stall on a quiet
//! machine costs a millisecond of sleeping waits.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::loom::{SPIN_ROUNDS, spin_hint};

/// How long a waiter for another process spins before it sleeps (phases 2 and 3).
pub const SPIN_FOR: Duration = Duration::from_micros(50);

/// How long the first poll of an async wait spins before it parks its task (shorter than a
/// blocked thread's [`SPIN_FOR`]: the executor thread has other tasks to run): a peer that
/// answers within it costs no wake-up at all.
pub const ASYNC_SPIN: Duration = Duration::from_micros(20);

/// Checks a spinning waiter makes before it first reads the clock (a pause is ~10–40 ns).
const FIRST_CHECKS: u32 = 64;

/// Spin steps of one [`spin_until`] round: 1, 2, 4, 8, 16, 16 … pause instructions between
/// checks, about 1000 pauses in all: a few µs.
const SPIN_STEPS: u32 = 64;

/// Phase 1: spins a bounded time (a few µs) until `done` returns true; returns whether it did.
/// Cheaper than a futex round trip (≈ 80 µs across cores on a small VM) when the peer answers
/// soon. No spin under loom (a spin there only multiplies the states to explore).
#[inline]
pub fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..SPIN_ROUNDS {
        for i in 0..SPIN_STEPS {
            if done() {
                return true;
            }
            for _ in 0..(1u32 << i.min(4)) {
                spin_hint();
            }
        }
    }
    done()
}

/// When phases 2 and 3 end: `(busy_stop, stop)`, a fifth of `budget` and all of it after
/// `start`, each cut short by `deadline`.
#[inline]
fn phases(start: Instant, budget: Duration, deadline: Option<Instant>) -> (Instant, Instant) {
    let bound = |t: Instant| match deadline {
        Some(d) if d < t => d,
        _ => t,
    };
    (bound(start + budget / 5), bound(start + budget))
}

/// Spins until `ready()` or [`SPIN_FOR`] (or the deadline) has passed; true when ready. The
/// first fifth spins on the CPU (a partner on another core answers in well under a
/// microsecond); the rest yields the CPU between checks, so that on a machine with more
/// runnable threads than cores the partner we wait for can run instead of being spun against.
/// `PACE`: pause instructions between two checks (1, or more for a waiter whose every look
/// reads a cache line that the side it waits for writes all the time).
#[inline]
pub fn spin<const PACE: u32>(ready: &mut impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
    let pause = || {
        for _ in 0..PACE {
            std::hint::spin_loop();
        }
    };
    // The first microseconds without reading the clock (a clock read costs more than a
    // cache-line hand-off on a VM, and a partner on another core usually answers by then).
    // A slower pace makes fewer checks between two clock reads, for the same time.
    let checks = |n: u32| (n / PACE).max(1);
    for _ in 0..checks(FIRST_CHECKS) {
        if ready() {
            return true;
        }
        pause();
    }
    if ready() {
        return true;
    }
    let (busy_stop, stop) = phases(Instant::now(), SPIN_FOR, deadline);
    loop {
        for _ in 0..checks(64) {
            pause();
            if ready() {
                return true;
            }
        }
        let now = Instant::now();
        if now >= stop {
            return false;
        }
        if now >= busy_stop {
            std::thread::yield_now();
        }
    }
}

/// Like [`spin`], for a hand-off between two processes that may share one CPU: spins (a check
/// after one, then every two pause instructions; `RawEvent::set` takes its word exclusive with
/// its first access, so a waiter's loads no longer steal the line between the setter's load
/// and compare-and-swap, and a longer back-off only delayed the wake-up: Event ping-pong
/// ~480 -> ~280 ns) for a fifth of [`SPIN_FOR`], then yields the CPU between checks for the
/// rest of it: a partner on another core is still seen within a system call's time, and a
/// partner waiting for this very CPU gets to run instead of being spun against.
#[inline]
pub fn spin_backoff(mut ready: impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
    let (spin_stop, stop) = phases(Instant::now(), SPIN_FOR, deadline);
    let mut step = 0u32;
    loop {
        for _ in 0..1u32 << step.min(1) {
            std::hint::spin_loop();
        }
        if ready() {
            return true;
        }
        step += 1;
        if step.is_multiple_of(8) && Instant::now() >= spin_stop {
            break;
        }
    }
    while Instant::now() < stop {
        std::thread::yield_now();
        if ready() {
            return true;
        }
    }
    false
}

// Phase 3 with the stall rule (see the module docs).

/// A yield longer than this means another task held our CPU for a time slice (0.75 ms and up
/// under EEVDF, longer under CFS). Shorter ones are common and harmless: the Fork child we wait
/// for, placed on our CPU, runs 40-200 µs and exits within the yield, and kernel work after a
/// fork takes tens of µs. (At 30 µs these turned spinning off for most of a spawn+join loop,
/// which then paid a wake-up per child: 1.13x a raw fork instead of ~1.0x.)
const SHARED_CPU: Duration = Duration::from_micros(250);

/// How long spinning stays off after a first stall…
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// …and at most, after many in a row.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Nanoseconds after [`base`] until which spinning is off.
static OFF_UNTIL: AtomicU64 = AtomicU64::new(0);

/// A stall this long after the previous one starts the count afresh.
const FORGET: Duration = Duration::from_secs(1);

/// Stalls in a row (see the module docs).
static STALLS: AtomicU32 = AtomicU32::new(0);

/// When the last stall was, in nanoseconds after [`base`].
static LAST_STALL: AtomicU64 = AtomicU64::new(0);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos(t: Instant) -> u64 {
    t.saturating_duration_since(base()).as_nanos() as u64
}

/// One bounded spin: call [`Spinner::spin`] each time the awaited thing is not there yet, and
/// [`Spinner::progress`] whenever something new did arrive.
#[derive(Debug)]
pub struct Spinner {
    until: Instant,
    over: bool,
    /// The last yield was long, and no progress has been reported since.
    stalled: bool,
}

impl Spinner {
    /// A spin that lasts until `until` at the latest (no spin at all while spinning is off).
    pub fn until(until: Instant) -> Spinner {
        let now = Instant::now();
        let off = nanos(now) < OFF_UNTIL.load(Ordering::Relaxed);
        Spinner {
            until,
            over: off || now >= until,
            stalled: false,
        }
    }

    /// Extends the spin to `until` (if it is still going on).
    pub fn extend(&mut self, until: Instant) {
        self.until = self.until.max(until);
    }

    /// Something the caller waits for arrived: whoever used our CPU meanwhile was working for us.
    pub fn progress(&mut self) {
        self.stalled = false;
    }

    /// Whether the caller should look again (after a yield, done here) rather than sleep.
    pub fn spin(&mut self) -> bool {
        if self.over {
            return false;
        }
        let before = Instant::now();
        if self.stalled {
            // Another task took our CPU, and not to our benefit.
            self.over = true;
            let now = nanos(before);
            let last = LAST_STALL.swap(now, Ordering::Relaxed);
            if now.saturating_sub(last) > FORGET.as_nanos() as u64 {
                STALLS.store(0, Ordering::Relaxed);
            }
            let stalls = STALLS.fetch_add(1, Ordering::Relaxed).min(10);
            let pause = (MIN_BACKOFF * (1 << stalls)).min(MAX_BACKOFF);
            OFF_UNTIL.fetch_max(nanos(before + pause), Ordering::Relaxed);
            return false;
        }
        if before >= self.until {
            self.over = true;
            return false;
        }
        std::thread::yield_now();
        self.stalled = before.elapsed() > SHARED_CPU;
        true
    }
}
