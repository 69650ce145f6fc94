//! The process-shared `Barrier`: CPython's `threading.Barrier` state machine (filling,
//! draining, resetting, broken), extended so that a party that dies inside `wait` breaks the
//! barrier for the others instead of holding them for ever.
//!
//! The thread toolbox's `RawBarrier` cannot be reused as is: its waits cannot poll liveness,
//! and its count cannot drop a party that will never leave. Here every party inside `wait`
//! (after it counted itself in) owns one slot holding its kernel thread id, unique across
//! processes; a sleeper that has waited [`POLL`] looks at the slots, and a dead id is
//! removed, its count taken back, and a filling barrier broken; the last party to arrive
//! checks the others first (each thread remembers for [`POLL`] whom it found alive), so the
//! parties never pass with a dead one among them. The lock is a
//! [`RobustLock`]: if a process dies inside the barrier's short critical sections, the next
//! locker recounts the parties from the slots and, if the barrier was filling, breaks it.
//!
//! # Shared state
//!
//! | word | meaning |
//! | --- | --- |
//! | `lock` | robust lock word, guards the rest |
//! | `phase` | 0 filling, 1 draining, 2 resetting, 3 broken (read without the lock by sleepers) |
//! | `count` | parties inside `wait`; equal to the occupied slots whenever `lock` is free |
//! | `parties` | parties needed (written before sharing) |
//! | `signal` | sequence number sleepers sleep on (its low bit: someone may sleep on it) |
//! | `slots[parties]` | (after the state) tid of each party inside `wait`; 0 free |

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use multiproc_sync::raw::{Futex, SharedFutex};
use multiproc_sync::{Error, Result};

use super::{deadline, handle_impls};
use crate::shm::object::{Object, invalid};
use crate::shm::{Kind, OBJECT_OFFSET, SharedState};
use crate::sys;
use crate::wait::robust::{RobustLock, lock_forever};
use crate::wait::{POLL, Signal, Wait};

const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

/// The most parties a barrier may have (one 4-byte slot each).
const MAX_PARTIES: usize = 1 << 20;

#[repr(C)]
struct BarrierState {
    lock: RobustLock,
    phase: AtomicU32,
    count: AtomicU32,
    parties: AtomicU32,
    signal: Signal,
}

const SLOTS_OFFSET: usize = std::mem::size_of::<BarrierState>();
const _: () = assert!(SLOTS_OFFSET.is_multiple_of(4));

// SAFETY: atomic words (the slots after it too); all-zero is a filling barrier of 0 parties,
// which `create` sets before sharing.
unsafe impl SharedState for BarrierState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Barrier`: `parties` processes (or threads) wait until all have
/// arrived; a dead waiter breaks it for the others.
///
/// Each party gets a distinct index in `0..parties` (the last to arrive gets
/// `parties - 1`). A wait that times out, an [`abort`](Self::abort), a
/// [`reset`](Self::reset) while others wait, or a party killed while it waits breaks the
/// barrier: the waiters get `Err(BrokenBarrier)` (within about 20 ms of a death), and so does
/// every later wait until `reset`.
///
/// ```
/// let b = multiproc_ipc::Barrier::new(2)?;
/// let b2 = b.clone(); // what a child process would hold
/// let t = std::thread::spawn(move || b2.wait());
/// let mine = b.wait()?;
/// let theirs = t.join().unwrap()?;
/// assert_eq!(mine + theirs, 1); // indices 0 and 1
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Barrier {
    obj: Object<BarrierState>,
}

handle_impls!(Barrier, Barrier::checked);

/// Holds the barrier's lock; repairs the state first if the previous holder died.
struct Held<'a> {
    barrier: &'a Barrier,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while its thread holds the lock.
        unsafe { self.barrier.state().lock.unlock() }
    }
}

impl Barrier {
    /// A barrier for `parties` processes or threads (0 counts as 1; at most 2^20).
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Barrier::new(3)?.parties(), 3);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(parties: usize) -> Result<Barrier> {
        let parties = parties.max(1);
        if parties > MAX_PARTIES {
            return Err(invalid(format!(
                "a barrier of {parties} parties is above the limit of {MAX_PARTIES}"
            )));
        }
        let obj = Object::create(
            OBJECT_OFFSET + SLOTS_OFFSET + 4 * parties,
            |s: &BarrierState, _| s.parties.store(parties as u32, Ordering::Relaxed),
        )?;
        Ok(Barrier { obj })
    }

    /// A handle from elsewhere: the segment must hold the slots its state promises.
    fn checked(&self) -> std::io::Result<()> {
        self.obj
            .check_len(OBJECT_OFFSET + SLOTS_OFFSET + 4 * self.parties())
    }

    fn state(&self) -> &BarrierState {
        self.obj.state()
    }

    fn slots(&self) -> &[AtomicU32] {
        let parties = self.state().parties.load(Ordering::Relaxed) as usize;
        // SAFETY: the segment holds `parties` slots after the state (made so in `new`,
        // checked in `checked` for a handle from elsewhere), 4-aligned, atomics valid for
        // any bits, mapped as long as `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.obj
                    .segment()
                    .base()
                    .add(OBJECT_OFFSET + SLOTS_OFFSET)
                    .cast::<AtomicU32>()
                    .as_ptr(),
                parties,
            )
        }
    }

    fn hold(&self) -> Held<'_> {
        let died = lock_forever(&self.state().lock);
        let held = Held { barrier: self };
        if died {
            self.repair(true);
        }
        held
    }

    fn phase(&self) -> u32 {
        self.state().phase.load(Ordering::Acquire)
    }

    fn set_phase(&self, p: u32) {
        self.state().phase.store(p, Ordering::Release);
        self.state().signal.notify();
    }

    /// Under the lock: removes dead parties from their slots, recounts, breaks a filling
    /// barrier that lost a party (or whose lock holder died, when `lock_died`), and refills
    /// a drained one that is now empty.
    fn repair(&self, lock_died: bool) {
        let st = self.state();
        let mut removed = false;
        for slot in self.slots() {
            let tid = slot.load(Ordering::Relaxed);
            if tid != 0 && sys::is_dead(tid) {
                slot.store(0, Ordering::Relaxed);
                removed = true;
            }
        }
        if !removed && !lock_died {
            return;
        }
        let live = self
            .slots()
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count() as u32;
        let counted = st.count.swap(live, Ordering::Relaxed);
        let mut phase = st.phase.load(Ordering::Relaxed);
        if phase == FILLING && (removed || counted != live) {
            phase = BROKEN;
        }
        if live == 0 && matches!(phase, DRAINING | RESETTING) {
            phase = FILLING;
        }
        self.set_phase(phase);
    }

    /// Under the lock, before the last party lets the others pass: whether one of them is
    /// dead. Each thread remembers the parties it found alive for [`POLL`], so a barrier
    /// cycling fast between live processes reads `/proc` about once per poll period.
    fn someone_died(&self) -> bool {
        thread_local! {
            static SEEN_ALIVE: std::cell::RefCell<Vec<(u32, Instant)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        SEEN_ALIVE.with(|seen| {
            let mut seen = seen.borrow_mut();
            let now = Instant::now();
            seen.retain(|&(_, at)| now.duration_since(at) < POLL);
            for slot in self.slots() {
                let tid = slot.load(Ordering::Relaxed);
                if tid == 0 || seen.iter().any(|&(t, _)| t == tid) {
                    continue;
                }
                if sys::is_dead(tid) {
                    return true;
                }
                if seen.len() < 64 {
                    seen.push((tid, now));
                }
            }
            false
        })
    }

    /// Sleeps (lock released) until `ready()`, polling dead parties every [`POLL`].
    fn sleep_until(
        &self,
        held: Held<'_>,
        deadline: Option<Instant>,
        ready: impl Fn(u32) -> bool,
    ) -> (Held<'_>, Wait) {
        drop(held);
        let w = loop {
            // Sleep one poll period at most, then look for dead parties.
            let period = Instant::now() + POLL;
            let until = deadline.map_or(period, |d| d.min(period));
            match self
                .state()
                .signal
                .wait(Some(until), || ready(self.phase()), || true)
            {
                Wait::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => {
                    break Wait::TimedOut;
                }
                Wait::TimedOut => {
                    let _held = self.hold();
                    self.repair(false);
                }
                w => break w,
            }
        };
        (self.hold(), w)
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize> {
        let st = self.state();
        let mut held = self.hold();
        // Enter: wait while the previous cycle drains or resets.
        while matches!(self.phase(), DRAINING | RESETTING) {
            held = self
                .sleep_until(held, None, |p| !matches!(p, DRAINING | RESETTING))
                .0;
        }
        if self.phase() == BROKEN {
            return Err(Error::BrokenBarrier);
        }
        let parties = st.parties.load(Ordering::Relaxed);
        let index = st.count.load(Ordering::Relaxed);
        if index + 1 >= parties && self.someone_died() {
            // A party died inside `wait`: the barrier cannot pass with it.
            self.repair(false);
            return Err(Error::BrokenBarrier);
        }
        let me = SharedFutex::owner_id();
        let Some(slot) = self.slots().iter().find(|s| s.load(Ordering::Relaxed) == 0) else {
            // Cannot happen while `count == occupied slots < parties`; stay safe anyway.
            self.set_phase(BROKEN);
            return Err(Error::BrokenBarrier);
        };
        slot.store(me, Ordering::Relaxed);
        st.count.store(index + 1, Ordering::Relaxed);
        let result = if index + 1 >= parties {
            self.set_phase(DRAINING);
            Ok(index as usize)
        } else {
            let (h, _) = self.sleep_until(held, deadline, |p| p != FILLING);
            held = h;
            match self.phase() {
                FILLING => {
                    // Timed out: break it for everyone, as Python does.
                    self.set_phase(BROKEN);
                    Err(Error::BrokenBarrier)
                }
                DRAINING => Ok(index as usize),
                _ => Err(Error::BrokenBarrier),
            }
        };
        // Exit: free the slot; the last one out of a draining or resetting barrier refills it.
        if slot.load(Ordering::Relaxed) == me {
            slot.store(0, Ordering::Relaxed);
        }
        let left = st.count.load(Ordering::Relaxed).saturating_sub(1);
        st.count.store(left, Ordering::Relaxed);
        if left == 0 && matches!(self.phase(), DRAINING | RESETTING) {
            self.set_phase(FILLING);
        }
        drop(held);
        result
    }

    /// Waits for all parties; returns this party's index in `0..parties`, or
    /// `Err(BrokenBarrier)` if the barrier is or becomes broken.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Barrier::new(1)?.wait()?, 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait(&self) -> Result<usize> {
        self.wait_until(None)
    }

    /// Like [`wait`](Self::wait), at most `timeout`; a timeout breaks the barrier (for
    /// everyone) and returns `Err(BrokenBarrier)`, as in Python.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = multiproc_ipc::Barrier::new(2)?;
    /// assert!(b.wait_timeout(Duration::from_millis(1)).is_err());
    /// assert!(b.broken());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize> {
        self.wait_until(deadline(timeout))
    }

    /// Breaks the barrier: waiting and future calls get `Err(BrokenBarrier)` until `reset`.
    ///
    /// ```
    /// let b = multiproc_ipc::Barrier::new(2)?;
    /// b.abort();
    /// assert!(b.wait().is_err());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn abort(&self) {
        let _held = self.hold();
        self.set_phase(BROKEN);
    }

    /// Returns it to the empty state; parties waiting now get `Err(BrokenBarrier)`.
    ///
    /// ```
    /// let b = multiproc_ipc::Barrier::new(1)?;
    /// b.abort();
    /// b.reset();
    /// assert!(!b.broken());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn reset(&self) {
        let _held = self.hold();
        let phase = if self.state().count.load(Ordering::Relaxed) > 0 {
            match self.phase() {
                FILLING | BROKEN => RESETTING,
                p => p,
            }
        } else {
            FILLING
        };
        self.set_phase(phase);
    }

    /// How many parties it takes to pass.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Barrier::new(2)?.parties(), 2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn parties(&self) -> usize {
        self.state().parties.load(Ordering::Relaxed) as usize
    }

    /// How many parties wait in the current cycle.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Barrier::new(2)?.n_waiting(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn n_waiting(&self) -> usize {
        let _held = self.hold();
        if self.phase() == FILLING {
            self.state().count.load(Ordering::Relaxed) as usize
        } else {
            0
        }
    }

    /// Whether it is broken.
    ///
    /// ```
    /// assert!(!multiproc_ipc::Barrier::new(2)?.broken());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        self.phase() == BROKEN
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("broken", &self.broken())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel id of a thread that has exited: a party that died.
    fn dead_tid() -> u32 {
        let tid = std::thread::spawn(SharedFutex::owner_id).join().unwrap();
        assert!(sys::is_dead(tid));
        tid
    }

    /// Makes it look as if a party with id `tid` were inside `wait`.
    fn plant(b: &Barrier, tid: u32) {
        let _held = b.hold();
        b.slots()[0].store(tid, Ordering::Relaxed);
        b.state().count.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_last_arrival_does_not_pass_with_a_dead_party() {
        let b = Barrier::new(2).unwrap();
        plant(&b, dead_tid());
        assert_eq!(b.n_waiting(), 1);
        assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
        assert!(b.broken());
        assert_eq!(
            b.state().count.load(Ordering::Relaxed),
            0,
            "the dead party left"
        );
        b.reset();
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.wait());
        let mine = b.wait().unwrap();
        assert_eq!(
            mine + t.join().unwrap().unwrap(),
            1,
            "usable again after reset"
        );
    }

    #[test]
    fn a_sleeper_notices_a_dead_party_on_its_poll() {
        let b = Barrier::new(3).unwrap();
        plant(&b, dead_tid());
        let t = Instant::now();
        // Index 1 of 3: sleeps, polls, finds the dead party, breaks the barrier.
        assert!(matches!(
            b.wait_timeout(Duration::from_secs(30)),
            Err(Error::BrokenBarrier)
        ));
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "broken, not timed out"
        );
        assert_eq!(b.state().count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_dead_party_in_a_draining_barrier_lets_the_next_cycle_start() {
        let b = Barrier::new(2).unwrap();
        plant(&b, dead_tid());
        {
            let _held = b.hold();
            b.set_phase(DRAINING);
        }
        // Waits at the entrance for the drain; the dead party is removed on the poll and the
        // barrier refills (a dead party that had already passed breaks nothing).
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.wait_timeout(Duration::from_secs(30)));
        let mine = b.wait_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(mine + t.join().unwrap().unwrap(), 1);
    }
}
