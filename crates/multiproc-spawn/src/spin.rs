//! Bounded spinning before a sleep, and when not to spin at all.
//!
//! A short-lived child often ends within a hundred microseconds or so. Waking a thread that
//! sleeps in `poll` costs 60-80 µs on a small virtual machine, when its CPU has gone idle in the
//! meantime, so a waiter that keeps looking (without blocking, yielding the CPU between looks)
//! for a short while never pays that.
//!
//! Yielding is only cheap while nobody else wants the CPU. A yield that takes long (a time slice,
//! [`SHARED_CPU`]) means another task ran on our CPU: perhaps the very child or fork server we wait
//! for, perhaps a compiler hogging the CPU, which then keeps it for the rest of its time slice (up
//! to milliseconds) at every yield. So a long yield after which the caller reports no progress
//! ([`Spinner::progress`]) ends the spin, and spinning stays off in this process for a while: a CPU
//! that others want does not go idle, so sleeping there costs no idle wake-up. The pause doubles
//! with each stall that follows another within [`FORGET`] (from [`MIN_BACKOFF`] to
//! [`MAX_BACKOFF`]): a CPU hog soon turns spinning off for good, while a one-off stall on a quiet
//! machine costs a millisecond of sleeping waits.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
pub(crate) struct Spinner {
    until: Instant,
    over: bool,
    /// The last yield was long, and no progress has been reported since.
    stalled: bool,
}

impl Spinner {
    /// A spin that lasts until `until` at the latest (no spin at all while spinning is off).
    pub(crate) fn until(until: Instant) -> Spinner {
        let now = Instant::now();
        let off = nanos(now) < OFF_UNTIL.load(Ordering::Relaxed);
        Spinner {
            until,
            over: off || now >= until,
            stalled: false,
        }
    }

    /// Extends the spin to `until` (if it is still going on).
    pub(crate) fn extend(&mut self, until: Instant) {
        self.until = self.until.max(until);
    }

    /// Something the caller waits for arrived: whoever used our CPU meanwhile was working for us.
    pub(crate) fn progress(&mut self) {
        self.stalled = false;
    }

    /// Whether the caller should look again (after a yield, done here) rather than sleep.
    pub(crate) fn spin(&mut self) -> bool {
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
