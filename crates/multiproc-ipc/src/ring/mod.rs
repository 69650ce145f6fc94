//! The shared-memory ring behind every queue and pipe direction: variable-size records in a
//! byte ring that grows, many producers and many consumers in any processes.
//!
//! # Layout
//! The ring's state ([`Ring`]) sits at the segment's object offset; the data area starts at
//! [`DATA_OFFSET`] and is `cap` bytes (a power of two) of the segment's file, inside an
//! address-space reserve (at most [`RESERVE`] bytes, see [`reserve`]) that every process maps
//! once, at the size its creator chose. A record is an
//! 8-byte header word (`READY`, flags, payload length) and the payload padded to 8 bytes; its
//! payload may wrap around the end of the data area, its header never does.
//!
//! # Protocol
//! Producers serialize on the put lock and consumers on the get lock (both robust: a holder
//! that dies is replaced, see [`RobustLock`]). `tail` and `head` each pack a byte position
//! (low 40 bits) with an item count (high 24 bits); a 64-bit count beside each tells the lap
//! of the 24-bit one, so that a queue's length stays exact past 2^24 items (see [`Ring::len`]).
//!
//! A record is committed by one release store of its header word, and a consumer learns
//! that the next record is there by loading that word: the word it polls is the one the
//! producer writes, so a hand-off between two processes moves one cache line, as a bare
//! shared-memory ping-pong does (consumers never read `tail`, producers read `head` only
//! when their cached copy says the ring is full). What makes the header word trustworthy is
//! the terminator: a producer zeroes the header word just past its record *before* it
//! commits, so the word at `head` is always either zero or a header committed in this lap,
//! never stale payload bytes or an old lap's header. Every ring keeps room for that
//! terminator, and a ring that moves its records (grow, shrink) zeroes the word at `tail`.
//!
//! A process killed at any instruction leaves either the old or the new state: a
//! half-written record is invisible (its header is still zero) and is overwritten by the next
//! producer; a half-read one is still there for the next consumer, since `head` moves only
//! after the read. A producer killed between its commit and its `tail` store left a record
//! that consumers may already take: the next producer, told by the lock that its previous
//! owner died, finds the committed header at `tail` and moves `tail` past it.
//!
//! A consumer that finds `head` somewhere no producer will ever commit (memory scribbled by
//! someone else) drops the records up to `tail`, deciding so only with both locks held (see
//! [`Ring::reset_if_lost`]).
//!
//! Every atomic, lock, wake-up and data-area access goes through [`atomics`], so that
//! `cargo xtask loom` checks this code itself (`loom_tests.rs`).
//!
//! A record that does not fit makes the producer grow the ring: with the get lock also held
//! (lock order: put, then get), it lengthens the file, copies the live bytes whose position
//! maps elsewhere under the doubled capacity into the new upper half (the old copies are left
//! intact), and only then publishes the new capacity: dying before that store changes nothing.
//! When a consumer empties a large ring it shrinks it back (if it can take the put lock at
//! once) and gives the memory of the upper part back to the system; the file itself never
//! gets shorter, because a consumer polling with a stale capacity may still read there.

pub(crate) mod atomics;
pub(crate) mod codec;
pub(crate) mod copy;
pub(crate) mod ops;

use std::time::Instant;

use self::atomics::{Area, AtomicU64, Ordering, RobustLock, Signal};
use crate::shm::{Kind, OBJECT_OFFSET, SharedState};
use crate::sys;
use crate::wait::Wait;

pub(crate) use crate::error::{Attach, GetError, PutError};

/// Where the data area starts in the segment.
pub(crate) const DATA_OFFSET: usize = OBJECT_OFFSET + 4096;
/// The most address space a ring reserves: room for 64 GiB of queued data.
pub(crate) const RESERVE: usize = DATA_OFFSET + (64 << 30);
/// The least data area a new ring reserves (four times [`BASE_CAP`]).
const MIN_DATA: usize = 1 << 20;
/// A new ring reserves at most this fraction (1/n) of the address space still free, so that
/// rings leave room for the heap, thread stacks and the rings made after them: under
/// `ulimit -v 4 GiB` the first ring reserves 128 MiB, and past ~2,000 rings (which fill the
/// 128 TiB of a 64-bit process with [`RESERVE`] each) rings get smaller reserves, not `ENOMEM`.
const RESERVE_SHARE: usize = 16;
/// Address space that creating a ring always leaves free, for everything else the process
/// maps (heap, stacks, libraries): below this, creating a ring fails with an error naming
/// the limit, rather than succeeding and leaving the next allocation to abort the process.
const HEADROOM: usize = 64 << 20;
/// A new ring's capacity, and what an emptied ring shrinks back to.
#[cfg(not(multiproc_loom))]
pub(crate) const BASE_CAP: u64 = 256 << 10;
/// Under loom: a ring of a few records, so that the models go round it.
#[cfg(multiproc_loom)]
pub(crate) const BASE_CAP: u64 = 64;
/// An emptied ring larger than this gives its memory back...
const SHRINK_ABOVE: u64 = 4 << 20;
/// ... unless it grew, or took a [`LARGE_RECORD`], less than this many milliseconds ago: a
/// stream whose producer runs ahead in bursts would otherwise give the memory back each time
/// its consumer catches up and fault it in again on the next burst (a 1 KiB stream spent most
/// of its time there), and a stream of 64 MiB items, whose consumer empties the ring after
/// each one, faulted in 64 MiB of ring for every item (1.87x a memcpy; 20 ms was shorter than
/// one item's trip).
const SHRINK_AFTER_MS: u64 = 1000;
/// A record from this size on, put into a grown ring, counts as a use of the large capacity
/// (it restarts [`SHRINK_AFTER_MS`]); smaller ones do not read the clock.
const LARGE_RECORD: u64 = BASE_CAP / 8;
/// How far ahead of its record a consumer of a grown ring asks for the data (see
/// [`Ring::prefetch_ahead`]).
const PREFETCH_AHEAD: u64 = 4096;
/// The largest queue `maxsize` (item counts are 24-bit).
pub(crate) const MAX_ITEMS: u64 = (1 << 23) - 1;

const POS_MASK: u64 = (1 << 40) - 1;
const CNT_SHIFT: u32 = 40;
const CNT_MASK: u64 = (1 << 24) - 1;
const HEADER: u64 = 8;

/// Header word: the record is committed (a zero word means "nothing here yet").
const READY: u64 = 1 << 63;
/// Header word: the record was put with an [`Attach`] hook.
const ATTACHED: u64 = 1 << 32;
/// Header word: the payload length.
const LEN_MASK: u64 = u32::MAX as u64;

/// Flags fixed at creation.
pub(crate) const JOINABLE: u64 = 1;

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Producers {
    lock: RobustLock,
    _pad: u32,
    /// Where the next record goes, and the count of records put (packed, see the module docs).
    tail: AtomicU64,
    /// `head` as a producer last loaded it, so that producers read the consumers' cache line
    /// only when this stale copy says the ring is full: once per lap instead of once per item.
    /// Written under the put lock; it only ever understates how far consumers are.
    seen_head: AtomicU64,
    /// Records put, all 64 bits of the count (see [`Ring::len`]). Stored after `tail`, under
    /// the put lock.
    count: AtomicU64,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Consumers {
    lock: RobustLock,
    _pad: u32,
    /// The next record to take, and the count of records taken.
    head: AtomicU64,
    /// Records taken, all 64 bits of the count (see [`Ring::len`]). Stored after `head`, under
    /// the get lock.
    count: AtomicU64,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Config {
    cap: AtomicU64,
    maxsize: AtomicU64,
    flags: AtomicU64,
    /// When the ring last grew or took a [`LARGE_RECORD`] while grown
    /// ([`sys::monotonic_ms`]).
    grown_at: AtomicU64,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Tasks {
    unfinished: AtomicU64,
    done: Signal,
}

/// An item limit from which a producer waiting at the full queue looks at its room only
/// every 16 pause instructions (~0.6 µs on the 2-vCPU VM) instead of after each. Each look
/// reads the consumers' line, which every get writes, so a producer that looks all the time
/// takes that line away from the consumers after each get, and then finds room for one item
/// at a time: 256 items of 1 KiB streamed at ~320 ns an item, and at ~200 ns with the slower
/// look (the producer then finds several free slots at once); since consumers also prefetch
/// (see [`Ring::prefetch_ahead`]), ~110 against ~85 ns. A queue this long holds far more work
/// than the later look costs; a shorter one (a hand-off queue) keeps the quickest.
const LONG_QUEUE: u64 = 128;

/// The state of one ring (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Ring {
    put: Producers,
    get: Consumers,
    config: Config,
    data: Padded<Signal>,
    space: Padded<Signal>,
    tasks: Tasks,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

#[cfg(not(multiproc_loom))]
const _: () = assert!(OBJECT_OFFSET + std::mem::size_of::<Ring>() <= DATA_OFFSET);

// SAFETY: `Ring` is `#[repr(C)]` and made only of atomics (locks and signals are atomics too),
// so all-zero is a valid value and any process may change it at any time.
unsafe impl SharedState for Ring {
    const KIND: Kind = Kind::Queue;
}

/// Why [`Ring::grow`] did not grow the ring.
#[derive(Debug, PartialEq, Eq)]
enum Grow {
    /// The reserve (or the memory behind the file) cannot hold the larger ring: wait for
    /// consumers as a bounded queue does.
    NoRoom,
    /// The get lock stayed held past the deadline.
    TimedOut,
    /// The file could not be lengthened for a record larger than the ring: waiting for
    /// consumers cannot help, so the put fails with the cause.
    Refused(std::io::ErrorKind, String),
}

/// The address-space reserve for a new ring: [`RESERVE`] at most, less where the address
/// space left to this process (`RLIMIT_AS`, the 128 TiB of user space) is short, so that
/// creating queues under `ulimit -v` works as Python's does. Every process that receives the
/// ring maps the same reserve. An error names the limit when [`MIN_DATA`] and [`HEADROOM`] do not fit.
pub(crate) fn reserve() -> std::io::Result<usize> {
    let left = sys::address_space_left()?;
    let least = DATA_OFFSET + MIN_DATA;
    if left < HEADROOM + least {
        return Err(sys::address_space_error(least));
    }
    let data = (left / RESERVE_SHARE)
        .saturating_sub(DATA_OFFSET)
        .max(MIN_DATA);
    let data = (1usize << data.ilog2()).min(RESERVE - DATA_OFFSET);
    Ok(DATA_OFFSET + data)
}

#[inline]
fn pos(w: u64) -> u64 {
    w & POS_MASK
}

#[inline]
fn count(w: u64) -> u64 {
    w >> CNT_SHIFT
}

#[inline]
fn advance(w: u64, bytes: u64) -> u64 {
    (pos(w).wrapping_add(bytes) & POS_MASK) | (((count(w) + 1) & CNT_MASK) << CNT_SHIFT)
}

#[inline]
fn used(tail: u64, head: u64) -> u64 {
    pos(tail).wrapping_sub(pos(head)) & POS_MASK
}

/// Records between `head` and `tail`. A consumer may take a committed record a moment before
/// its producer moves `tail` past it, so "one fewer than none" reads as none.
#[inline]
fn items(tail: u64, head: u64) -> u64 {
    match count(tail).wrapping_sub(count(head)) & CNT_MASK {
        CNT_MASK => 0,
        n => n,
    }
}

/// Bytes a record of `len` payload bytes takes.
#[inline]
pub(crate) fn record_len(len: usize) -> u64 {
    HEADER + (len as u64).next_multiple_of(8)
}

/// Whether a header word read at `head` describes a record that fits a ring of `cap` bytes
/// (with the terminator after it).
#[inline]
fn plausible(header: u64, cap: u64) -> bool {
    header & !(READY | ATTACHED | LEN_MASK) == 0
        && record_len((header & LEN_MASK) as usize) + HEADER <= cap
}

/// What [`Ring::get`] hands a record to: its payload, its position when it was put with an
/// [`Attach`] hook, and whether the payload is the caller's scratch buffer itself (a record
/// that wrapped around the end of the data area).
pub(crate) type Take<'a> = dyn FnMut(&[u8], Option<u64>, bool) + 'a;

/// Where [`Ring::get`] gathers a record that wraps around the end of the data area, asked
/// for only then: a queue's consumers use a thread-local buffer, and looking it up (and
/// borrowing it) for every get cost more than the rest of the call's bookkeeping.
pub(crate) trait Scratch {
    /// Runs `f` with the buffer.
    fn with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R;
}

impl Scratch for Vec<u8> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        f(self)
    }
}

/// Releases a robust lock when dropped (also when a decoder panics).
struct Held<'a>(&'a RobustLock);

impl Drop for Held<'_> {
    // Inlined: one swap and a test, which the compiler made a call (a dozen drop sites in the
    // ring); the call cost a put ~0.8 ns of its ~13.
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: a `Held` is only made right after its lock was taken by this thread.
        unsafe { self.0.unlock() }
    }
}

impl Ring {
    /// Sets up a fresh ring (the segment is zeroed and `DATA_OFFSET + BASE_CAP` long).
    pub(crate) fn init(&self, maxsize: u64, flags: u64) {
        self.config.cap.store(BASE_CAP, Ordering::Relaxed);
        self.config.maxsize.store(maxsize, Ordering::Relaxed);
        self.config.flags.store(flags, Ordering::Relaxed);
    }

    /// Items put but perhaps not yet taken, as the producers last saw it: never below the
    /// truth (a cheap backlog estimate for a sender).
    #[inline]
    pub(crate) fn backlog_hint(&self) -> u64 {
        items(
            self.put.tail.load(Ordering::Relaxed),
            self.put.seen_head.load(Ordering::Relaxed),
        )
    }

    /// Items in the ring now.
    ///
    /// `tail` and `head` count records in 24 bits: exact, but only modulo 2^24, and an
    /// unbounded queue may hold more (16,777,219 queued items read as 3, and `empty` said yes
    /// with 16,777,215 left). The 64-bit counts beside them are not exact in turn: a holder
    /// killed between its store of `tail` or `head` and its store of the count leaves that
    /// count one behind, for good. Together they are: the answer is the number that agrees
    /// with the 24-bit difference and lies nearest the 64-bit one.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        let head = self.get.head.load(Ordering::Acquire);
        let taken = self.get.count.load(Ordering::Acquire);
        let tail = self.put.tail.load(Ordering::Acquire);
        let put = self.put.count.load(Ordering::Acquire);
        let near = put.saturating_sub(taken);
        // The residue itself, not `items`, which reads "one fewer than none" (all ones) as
        // none: here that is also what 2^24 - 1 items look like, and `near` tells them apart.
        let residue = count(tail).wrapping_sub(count(head));
        let off = residue.wrapping_sub(near) & CNT_MASK;
        // The true count is `near` plus or minus the few records whose count a dead holder
        // did not store: take the residue's representative nearest `near`.
        if off <= CNT_MASK / 2 {
            near + off
        } else {
            near.saturating_sub((1 << 24) - off)
        }
    }

    /// The item limit (0: none).
    #[inline]
    pub(crate) fn maxsize(&self) -> u64 {
        self.config.maxsize.load(Ordering::Relaxed)
    }

    #[inline]
    fn has_room(&self) -> bool {
        let max = self.maxsize();
        max == 0 || self.backlog_hint() < max || self.len() < max
    }

    /// The header word of the record at position `at` in a ring of capacity `cap`.
    ///
    /// `cap` may be stale (a consumer polling without the get lock): see [`Area::word`].
    #[inline(always)]
    fn header(seg: &impl Area, cap: u64, at: u64) -> &AtomicU64 {
        seg.word((at & (cap - 1)) as usize)
    }

    /// Appends one record with `payload`. Waits (spin, then sleep) while the queue is at its
    /// item limit or the reserve is exhausted, until `deadline`; `alive()` says whether any
    /// other live holder could still make room. `attach`: see [`Attach`].
    pub(crate) fn put(
        &self,
        seg: &impl Area,
        payload: &[u8],
        mut attach: Attach<'_>,
        deadline: Option<Instant>,
        mut alive: impl FnMut() -> bool,
    ) -> Result<(), PutError> {
        // The record and the terminator after it.
        let rec = record_len(payload.len());
        let need = rec + HEADER;
        let limit = seg.limit();
        if payload.len() > u32::MAX as usize || need > limit {
            return Err(PutError::TooLarge(limit.min(u32::MAX as u64)));
        }
        loop {
            if !self.has_room() {
                // Each look at the room reads the consumers' line, which every get writes:
                // looking less often while a long queue drains lets the consumers run at full
                // speed (see [`LONG_QUEUE`]).
                let room = || self.has_room();
                let waited = if self.maxsize() >= LONG_QUEUE {
                    self.space.0.wait_paced::<16>(deadline, room, &mut alive)
                } else {
                    self.space.0.wait(deadline, room, &mut alive)
                };
                match waited {
                    Wait::Ready => {}
                    Wait::TimedOut => return Err(PutError::Full),
                    Wait::Closed => return Err(PutError::Closed),
                }
            }
            let Some(owner_died) = self.put.lock.lock_until_in_streaks(deadline) else {
                return Err(PutError::Full);
            };
            let held = Held(&self.put.lock);
            if owner_died {
                self.repair_tail(seg);
            }
            let tail = self.put.tail.load(Ordering::Relaxed);
            let max = self.maxsize();
            let mut cap = self.config.cap.load(Ordering::Acquire);
            let mut head = self.put.seen_head.load(Ordering::Relaxed);
            if (max != 0 && items(tail, head) >= max) || used(tail, head) + need > cap {
                head = self.get.head.load(Ordering::Acquire);
                self.put.seen_head.store(head, Ordering::Relaxed);
            }
            if max != 0 && items(tail, head) >= max {
                drop(held);
                continue;
            }
            if used(tail, head) + need > cap
                && let Some(h) = self.room_after_the_reader(tail, need, cap, deadline)
            {
                head = h;
                self.put.seen_head.store(head, Ordering::Relaxed);
            }
            if used(tail, head) + need > cap {
                match self.grow(seg, need, deadline) {
                    Ok(c) => cap = c,
                    Err(Grow::TimedOut) => return Err(PutError::Full),
                    Err(Grow::Refused(kind, why)) => {
                        return Err(PutError::Io(Box::new((kind, why))));
                    }
                    Err(Grow::NoRoom) => {
                        // The reserve is full: wait for consumers like a bounded queue.
                        drop(held);
                        let fits = || {
                            let t = self.put.tail.load(Ordering::Acquire);
                            let h = self.get.head.load(Ordering::Acquire);
                            used(t, h) + need <= self.config.cap.load(Ordering::Acquire)
                        };
                        match self.space.0.wait(deadline, fits, &mut alive) {
                            Wait::Ready => continue,
                            Wait::TimedOut => return Err(PutError::Full),
                            Wait::Closed => return Err(PutError::Closed),
                        }
                    }
                }
            }
            if rec >= LARGE_RECORD && cap > BASE_CAP {
                self.config
                    .grown_at
                    .store(sys::monotonic_ms(), Ordering::Relaxed);
            }
            let mut header = READY | payload.len() as u64;
            if let Some(hook) = attach.as_mut() {
                hook(pos(tail))?;
                header |= ATTACHED;
            }
            // SAFETY: we hold the put lock, so no other producer writes; the bytes from `tail`
            // to `tail + need` are free (checked against `head` above, and consumers never
            // read past the header word at `tail`, which is still zero) and lie inside the
            // file (below DATA_OFFSET + cap).
            unsafe { self.write_at(seg, cap, pos(tail) + HEADER, payload) };
            // The terminator first, then the commit: a consumer that sees this header also
            // sees a zero where the next one will be.
            Self::header(seg, cap, pos(tail) + rec).store(0, Ordering::Relaxed);
            if self.config.flags.load(Ordering::Relaxed) & JOINABLE != 0 {
                self.tasks.unfinished.fetch_add(1, Ordering::AcqRel);
            }
            Self::header(seg, cap, pos(tail)).store(header, Ordering::Release);
            self.put.tail.store(advance(tail, rec), Ordering::Release);
            let put = self.put.count.load(Ordering::Relaxed);
            self.put.count.store(put.wrapping_add(1), Ordering::Release);
            drop(held);
            self.data.0.notify_after_rmw();
            return Ok(());
        }
    }

    /// When a consumer holds the get lock (it is copying a record out, which makes room), waits
    /// for that room by spinning ([`SPIN_FOR`](multiproc_sync::spin::SPIN_FOR) at most) rather
    /// than growing the ring: `grow` would wait for the same get lock, sleeping on it after a
    /// few µs, and the futex wake-up (~80 µs on the 2-vCPU VM) came once per item in a stream
    /// of 1 MiB items whose producer was one record ahead (62-76 -> ~32 µs an item). The new
    /// `head` once `need` bytes fit behind `tail`; `None` if they do not by then (a consumer
    /// stopped while reading, a record larger than the ring), and for records under
    /// [`LARGE_RECORD`]: the ring grows.
    #[cfg(not(multiproc_loom))]
    #[cold]
    fn room_after_the_reader(
        &self,
        tail: u64,
        need: u64,
        cap: u64,
        deadline: Option<Instant>,
    ) -> Option<u64> {
        // Small records: growing once lets the producer run ahead in bursts, where waiting
        // for each get would lock the two sides into one record per cache-line round trip.
        if need < LARGE_RECORD || need > cap || !self.get.lock.is_locked() {
            return None;
        }
        let mut head = 0;
        let mut fits = || {
            head = self.get.head.load(Ordering::Acquire);
            used(tail, head) + need <= cap
        };
        crate::wait::spin::<16>(&mut fits, deadline).then_some(head)
    }

    /// Under loom the ring simply grows (the wait above is timing, not logic).
    #[cfg(multiproc_loom)]
    fn room_after_the_reader(&self, _: u64, _: u64, _: u64, _: Option<Instant>) -> Option<u64> {
        None
    }

    /// After taking over the put lock from a dead producer: moves `tail` past the record it
    /// committed but did not count, if it died between the two stores.
    #[cold]
    fn repair_tail(&self, seg: &impl Area) {
        let tail = self.put.tail.load(Ordering::Relaxed);
        let cap = self.config.cap.load(Ordering::Acquire);
        let header = Self::header(seg, cap, pos(tail)).load(Ordering::Acquire);
        if header & READY != 0 && plausible(header, cap) {
            let rec = record_len((header & LEN_MASK) as usize);
            self.put.tail.store(advance(tail, rec), Ordering::Release);
        }
    }

    /// Grows the ring so that `need` more bytes fit; the new capacity, or why not. Called
    /// with the put lock held (which the caller releases on any outcome).
    ///
    /// The get lock is taken by `deadline` at most: a consumer stopped (SIGSTOP, a debugger)
    /// in the middle of a large read holds it indefinitely, and a timed put must still return
    /// on time and let go of the put lock.
    #[cold]
    fn grow(&self, seg: &impl Area, need: u64, deadline: Option<Instant>) -> Result<u64, Grow> {
        // A consumer that died holding the get lock left `head` at a record boundary (it
        // moves only after a whole read): nothing to repair, whatever `owner_died` says.
        if self.get.lock.lock_until(deadline).is_none() {
            return Err(Grow::TimedOut);
        }
        let _held = Held(&self.get.lock);
        let tail = self.put.tail.load(Ordering::Relaxed);
        let head = self.get.head.load(Ordering::Relaxed);
        let cap = self.config.cap.load(Ordering::Relaxed);
        let live = used(tail, head);
        if live + need <= cap {
            return Ok(cap);
        }
        // Room for one more record of this size behind it where the reserve allows: a
        // stream of large items then has the next one written while the last is read, and
        // does not grow (copying the live record) again on the second item.
        let least = (live + need).next_power_of_two().max(cap * 2);
        let roomy = (live + 2 * need).next_power_of_two().max(least);
        let new_cap = if roomy <= seg.limit() { roomy } else { least };
        if new_cap > seg.limit() {
            return Err(Grow::NoRoom);
        }
        if let Err(e) = seg.grow_to(new_cap) {
            // Once the live records are read, a record no larger than the ring fits without
            // growing: wait for consumers then. A larger one never fits: say why.
            return Err(if need <= cap {
                Grow::NoRoom
            } else {
                Grow::Refused(e.kind(), e.to_string())
            });
        }
        // Move each live byte whose offset differs under the new capacity; the destinations
        // lie in the upper half that no live byte occupies, so the old copies stay valid
        // until `cap` is published.
        let mut p = pos(head);
        let end = pos(head) + live;
        while p < end {
            let from = p & (cap - 1);
            let to = p & (new_cap - 1);
            let run = (end - p).min(cap - from).min(new_cap - to);
            if from != to {
                // SAFETY: both ranges lie inside the (just lengthened) file; `to..to + run` is
                // in the upper half that no live byte occupies, so they do not overlap, and
                // with both locks held no other process writes either (a stale poller may
                // read; see `header`).
                unsafe { seg.copy_within(from as usize, to as usize, run as usize) };
            }
            p += run;
        }
        Self::header(seg, new_cap, pos(tail)).store(0, Ordering::Relaxed);
        self.config
            .grown_at
            .store(sys::monotonic_ms(), Ordering::Relaxed);
        self.config.cap.store(new_cap, Ordering::Release);
        Ok(new_cap)
    }

    /// # Safety
    /// The caller owns `at..at + bytes.len()` (mod `cap`) under the ring protocol, and `cap`
    /// is the capacity the file covers now.
    unsafe fn write_at(&self, seg: &impl Area, cap: u64, at: u64, bytes: &[u8]) {
        let off = (at & (cap - 1)) as usize;
        let first = bytes.len().min(cap as usize - off);
        // SAFETY: per the contract, both pieces are inside the data area and ours to write.
        unsafe {
            seg.write(off, &bytes[..first]);
            if first < bytes.len() {
                seg.write(0, &bytes[first..]);
            }
        }
    }

    /// Copies the `len` bytes at `at` (a record that wraps around the end of the data area)
    /// into `out`, replacing what it held. Appended piece by piece, not copied into a zeroed
    /// buffer: the zeroing cost as much as the copy, on one in four 1 MiB items of a stream
    /// through a 4 MiB ring.
    ///
    /// # Safety
    /// As for `write_at`, for reading (a committed record, under the get lock).
    unsafe fn gather_at(&self, seg: &impl Area, cap: u64, at: u64, len: usize, out: &mut Vec<u8>) {
        let off = (at & (cap - 1)) as usize;
        let first = len.min(cap as usize - off);
        out.clear();
        out.reserve(len);
        // SAFETY: per the contract, both pieces are inside the data area.
        unsafe {
            seg.view(off, first, |a| out.extend_from_slice(a));
            if first < len {
                seg.view(0, len - first, |b| out.extend_from_slice(b));
            }
        }
    }

    /// Asks the CPU to start loading data that the consumers will read next, while the
    /// record at `at` (with `len` payload bytes) is copied out; on the 2-vCPU VM each line read
    /// on demand waited, for another core's cache or for memory, and the prefetchers did not
    /// keep up. It never asks for bytes not written yet: fetching those would only take their
    /// lines away from the producer about to write them.
    /// - A ring that grew: its producers ran ahead by more than the base capacity, so the
    ///   bytes `PREFETCH_AHEAD` past this record are written (as many as this record has, at
    ///   most `PREFETCH_AHEAD`). 1 KiB items behind a producer that ran ahead: ~120-190 ->
    ///   ~65-80 ns an item.
    /// - Otherwise, a record of 256 bytes or more: the next record's payload, if that record
    ///   is committed already (smaller records share their lines with their neighbours). 1 KiB
    ///   items through a pipe: ~88 -> ~75 ns an item.
    #[inline]
    fn prefetch_ahead(&self, seg: &impl Area, cap: u64, at: u64, len: u64) {
        let (from, bytes) = if cap > BASE_CAP {
            (at + HEADER + PREFETCH_AHEAD, len.min(PREFETCH_AHEAD))
        } else if len >= 256 {
            let next = at + record_len(len as usize);
            let header = Self::header(seg, cap, next).load(Ordering::Acquire);
            if header & READY == 0 || !plausible(header, cap) {
                return;
            }
            (next + HEADER, (header & LEN_MASK).min(PREFETCH_AHEAD))
        } else {
            return;
        };
        for p in (from..from + bytes).step_by(64) {
            seg.prefetch((p & (cap - 1)) as usize);
        }
    }

    /// Whether an item is there to take (a hint: another consumer may take it first).
    #[inline]
    pub(crate) fn is_ready(&self, seg: &impl Area) -> bool {
        let cap = self.config.cap.load(Ordering::Acquire);
        let head = self.get.head.load(Ordering::Relaxed);
        // Not just READY: producers only ever leave a zero or a committed header at `head`,
        // so any other word there was written by someone else, and `get` must look at it
        // (and answer `Corrupt`) rather than wait behind it for ever.
        Self::header(seg, cap, pos(head)).load(Ordering::Acquire) != 0
    }

    /// Whether `head` is somewhere no producer will ever commit a record: only memory
    /// written by someone else (a scribbled header made a consumer jump) gets it there, and
    /// consumers would then wait for ever. Two ways:
    /// - `head` is behind `tail` but the word at `head` is zero: a committed header is never
    ///   zeroed before it is taken, so `head` is not at a record;
    /// - `head` is past `tail` by more than the one record a producer may have committed
    ///   without counting it yet (it is about to, or it died there and the next producer
    ///   repairs `tail`).
    ///
    /// A hint without the get lock (`head` may move between the loads);
    /// [`reset_if_lost`](Self::reset_if_lost) decides under it. Called only on the way to a
    /// sleep or at a timeout, never per item: it reads the producers' line.
    #[cold]
    fn head_lost(&self, seg: &impl Area) -> bool {
        let head = self.get.head.load(Ordering::Acquire);
        let tail = self.put.tail.load(Ordering::Acquire);
        let cap = self.config.cap.load(Ordering::Acquire);
        let used = used(tail, head);
        if used == 0 {
            return false;
        }
        if used <= cap {
            return Self::header(seg, cap, pos(head)).load(Ordering::Acquire) == 0;
        }
        let lead = pos(head).wrapping_sub(pos(tail)) & POS_MASK;
        let header = Self::header(seg, cap, pos(tail)).load(Ordering::Acquire);
        !(header & READY != 0
            && plausible(header, cap)
            && record_len((header & LEN_MASK) as usize) == lead)
    }

    /// Under both locks, if `head` is lost (see [`head_lost`](Self::head_lost)): drops
    /// whatever lies between it and `tail` and moves it to `tail`; true if it did.
    ///
    /// The get lock alone is not enough: a consumer one record ahead of `tail` may load a
    /// `tail` older than the header word it loads next, when producers went on meanwhile
    /// and the terminator of a later record zeroed that word (a lap later, the same word), and
    /// would drop live records for a "lost" head (found by the loom model
    /// `loom_ring_slot_reuse_after_a_lap`). With the put lock also held (tried, never waited
    /// for: the lock order is put, then get), `tail` is current and no one writes at it.
    #[cold]
    fn reset_if_lost(&self, seg: &impl Area, deadline: Option<Instant>) -> bool {
        if self.get.lock.lock_until(deadline).is_none() {
            return false;
        }
        let held = Held(&self.get.lock);
        let Some(owner_died) = self.put.lock.try_lock() else {
            return false;
        };
        // Held until `discard_to_tail` has read `tail`: a record put after that stays.
        let _put_held = Held(&self.put.lock);
        if owner_died {
            self.repair_tail(seg);
        }
        if !self.head_lost(seg) {
            return false;
        }
        self.discard_to_tail(held);
        true
    }

    /// Drops every record from `head` to `tail` (the ring held something no producer wrote)
    /// and releases the get lock.
    #[cold]
    fn discard_to_tail(&self, held: Held<'_>) {
        let tail = self.put.tail.load(Ordering::Acquire);
        self.get.head.store(tail, Ordering::Release);
        // Near enough for `len`, which takes the exact residue from `head` and `tail`.
        let put = self.put.count.load(Ordering::Acquire);
        self.get.count.store(put, Ordering::Release);
        drop(held);
        self.space.0.notify_after_rmw();
    }

    /// Waits until an item is there (without taking it); see [`Ring::get`] for the rest.
    pub(crate) fn wait_ready(
        &self,
        seg: &impl Area,
        deadline: Option<Instant>,
        alive: impl FnMut() -> bool,
    ) -> Wait {
        self.data.0.wait(deadline, || self.is_ready(seg), alive)
    }

    /// Takes the oldest record and hands its payload to `take` (a view that is valid only
    /// during the call: it may point into the ring), with the record's position when it was
    /// put with an [`Attach`] hook; `take` runs under the get lock. Waits (spin, then sleep)
    /// until `deadline` while the ring is empty; `alive()` says whether any other live holder
    /// could put.
    ///
    /// `take` is called once, through a reference: a closure moved in by value was copied at
    /// each layer, and reading back a closure or result just written piecewise stalls the
    /// store buffer; a `u64` get spent a third of its time there (33 -> 21 ns). Its third
    /// argument says that the bytes are `scratch` itself (a record that wrapped around the end
    /// of the data area, gathered there), which a caller that wants the bytes as a `Vec` may
    /// then keep instead of copying them again.
    pub(crate) fn get(
        &self,
        seg: &impl Area,
        scratch: &mut impl Scratch,
        deadline: Option<Instant>,
        mut alive: impl FnMut() -> bool,
        take: &mut Take<'_>,
    ) -> Result<(), GetError> {
        loop {
            if !self.is_ready(seg) {
                // Before each sleep (and at a timeout), also make sure that the ring is not
                // broken in a way that no producer would ever mend (see `head_lost`).
                let mut broken = false;
                let waited = self.wait_ready(seg, deadline, || {
                    broken = self.head_lost(seg);
                    !broken && alive()
                });
                match waited {
                    Wait::Ready => {}
                    Wait::TimedOut if !self.head_lost(seg) => return Err(GetError::Empty),
                    Wait::Closed if !broken => return Err(GetError::Closed),
                    Wait::TimedOut | Wait::Closed => {
                        if self.reset_if_lost(seg, deadline) {
                            return Err(GetError::Corrupt);
                        }
                        if deadline.is_some_and(|d| d <= Instant::now()) {
                            return Err(GetError::Empty);
                        }
                        continue;
                    }
                }
            }
            // A consumer that died holding the lock left `head` at a record boundary (it
            // moves only after a whole read): nothing to repair.
            if self.get.lock.lock_until_in_streaks(deadline).is_none() {
                return Err(GetError::Empty);
            }
            let held = Held(&self.get.lock);
            let head = self.get.head.load(Ordering::Relaxed);
            let cap = self.config.cap.load(Ordering::Acquire);
            let header = Self::header(seg, cap, pos(head)).load(Ordering::Acquire);
            if header == 0 {
                // Another consumer was faster.
                drop(held);
                continue;
            }
            if header & READY == 0 || !plausible(header, cap) {
                self.discard_to_tail(held);
                return Err(GetError::Corrupt);
            }
            let len = (header & LEN_MASK) as usize;
            let attached = (header & ATTACHED != 0).then_some(pos(head));
            let start = pos(head) + HEADER;
            let off = (start & (cap - 1)) as usize;
            self.prefetch_ahead(seg, cap, pos(head), len as u64);
            if off + len <= cap as usize {
                // SAFETY: the payload is contiguous in the data area, fully written before
                // its header was committed (seen above with Acquire), and no producer writes
                // it before `head` moves past it, which happens only below, after `take` has
                // returned.
                unsafe { seg.view(off, len, |b| take(b, attached, false)) };
            } else {
                scratch.with(|buf| {
                    // SAFETY: as above, in two pieces around the end of the data area.
                    unsafe { self.gather_at(seg, cap, start, len, buf) };
                    take(buf, attached, true);
                });
            }
            let new_head = advance(head, record_len(len));
            self.get.head.store(new_head, Ordering::Release);
            let taken = self.get.count.load(Ordering::Relaxed);
            self.get
                .count
                .store(taken.wrapping_add(1), Ordering::Release);
            if cap > SHRINK_ABOVE
                && Self::header(seg, cap, pos(new_head)).load(Ordering::Relaxed) == 0
                && sys::monotonic_ms().saturating_sub(self.config.grown_at.load(Ordering::Relaxed))
                    >= SHRINK_AFTER_MS
            {
                self.shrink(seg);
            }
            drop(held);
            self.space.0.notify_after_rmw();
            return Ok(());
        }
    }

    /// Gives an emptied large ring's memory back, if no producer is busy. Called with the get
    /// lock held.
    #[cold]
    fn shrink(&self, seg: &impl Area) {
        let Some(owner_died) = self.put.lock.try_lock() else {
            return;
        };
        let _held = Held(&self.put.lock);
        if owner_died {
            self.repair_tail(seg);
        }
        let tail = self.put.tail.load(Ordering::Relaxed);
        if pos(tail) != pos(self.get.head.load(Ordering::Relaxed)) {
            return;
        }
        // Empty: any position maps anywhere, so no bytes move; only the word at `tail`, where
        // the next header goes, must read zero under the smaller capacity.
        let cap = self.config.cap.load(Ordering::Relaxed);
        Self::header(seg, BASE_CAP, pos(tail)).store(0, Ordering::Relaxed);
        self.config.cap.store(BASE_CAP, Ordering::Release);
        seg.discard(BASE_CAP, cap);
    }

    /// Joinable queues: one fewer unfinished task; false when none is unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let mut n = self.tasks.unfinished.load(Ordering::Acquire);
        loop {
            if n == 0 {
                return false;
            }
            match self.tasks.unfinished.compare_exchange_weak(
                n,
                n - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if n == 1 {
                        self.tasks.done.notify_after_rmw();
                    }
                    return true;
                }
                Err(cur) => n = cur,
            }
        }
    }

    /// Joinable queues: waits until every item put has been marked done.
    pub(crate) fn join(&self, alive: impl FnMut() -> bool) -> Wait {
        self.tasks.done.wait(
            None,
            || self.tasks.unfinished.load(Ordering::Acquire) == 0,
            alive,
        )
    }

    /// The signal that a put sends (for an async getter to watch).
    pub(crate) fn data_signal(&self) -> &Signal {
        &self.data.0
    }

    /// The signal that a get sends when it makes room (for an async putter to watch).
    pub(crate) fn space_signal(&self) -> &Signal {
        &self.space.0
    }

    /// Wakes every waiter so that it re-checks whether its peers are alive (after a handle
    /// was dropped).
    pub(crate) fn wake_everyone(&self) {
        self.data.0.notify_after_rmw();
        self.space.0.notify_after_rmw();
        self.tasks.done.notify_after_rmw();
    }
}

#[cfg(all(test, multiproc_loom))]
mod loom_tests;

#[cfg(all(test, not(multiproc_loom)))]
mod tests {
    use super::*;
    use crate::shm::holders::Handle;
    use std::ptr::NonNull;

    fn noop(_: NonNull<u8>) {}

    fn ring(maxsize: u64) -> Handle {
        Handle::create::<Ring>(
            DATA_OFFSET + BASE_CAP as usize,
            RESERVE,
            0,
            |r: &Ring, _| r.init(maxsize, JOINABLE),
            noop,
        )
        .unwrap()
    }

    fn get_vec(h: &Handle) -> Result<Vec<u8>, GetError> {
        let mut scratch = Vec::new();
        let r: &Ring = h.state();
        let mut got = Vec::new();
        r.get(
            h.segment(),
            &mut scratch,
            Some(Instant::now()),
            || true,
            &mut |s, _, _| got = s.to_vec(),
        )?;
        Ok(got)
    }

    #[test]
    fn len_is_exact_past_the_24_bit_counts_and_after_a_holder_died_mid_count() {
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        for _ in 0..5 {
            r.put(seg, b"x", None, None, || true).unwrap();
        }
        assert_eq!(r.len(), 5);
        // A producer killed between its `tail` store and its count store: one count short.
        r.put.count.store(4, Ordering::Relaxed);
        assert_eq!(r.len(), 5);
        // A consumer killed the same way, after taking one.
        get_vec(&h).unwrap();
        r.get.count.store(0, Ordering::Relaxed);
        assert_eq!(r.len(), 4);
        // 2^24 more records put than the 24-bit counts can tell apart from none (as a queue
        // holding 16,777,220 items has): the 64-bit counts say which lap.
        r.put.count.store((1 << 24) + 5, Ordering::Relaxed);
        r.get.count.store(1, Ordering::Relaxed);
        assert_eq!(r.len(), (1 << 24) + 4);
        // And both at once: a lap ahead, and one count short.
        r.put.count.store((1 << 24) + 4, Ordering::Relaxed);
        assert_eq!(r.len(), (1 << 24) + 4);
        // Counts that say fewer than none (a consumer's stored before a producer's): the
        // residue still decides.
        r.put.count.store(1, Ordering::Relaxed);
        r.get.count.store(2, Ordering::Relaxed);
        assert_eq!(r.len(), 4);
        // A 24-bit residue of all ones: 2^24 - 1 items, or a consumer whose `head` store came
        // a moment before the producer's `tail` store (none); the 64-bit counts tell which.
        let tail = r.put.tail.load(Ordering::Relaxed);
        r.get.head.store(advance(tail, 0), Ordering::Relaxed);
        r.put.count.store((1 << 24) - 1, Ordering::Relaxed);
        r.get.count.store(0, Ordering::Relaxed);
        assert_eq!(r.len(), (1 << 24) - 1);
        r.put.count.store(7, Ordering::Relaxed);
        r.get.count.store(8, Ordering::Relaxed);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn fifo_of_mixed_sizes_across_growth_and_shrink() {
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        // Fill past the base capacity with records that wrap and force growth twice.
        let items: Vec<Vec<u8>> = (0..200usize)
            .map(|i| vec![i as u8; (i * 997) % 20_000])
            .collect();
        for it in &items[..10] {
            r.put(seg, it, None, None, || true).unwrap();
        }
        for it in &items[..5] {
            assert_eq!(&get_vec(&h).unwrap(), it);
        }
        for it in &items[10..] {
            r.put(seg, it, None, None, || true).unwrap();
        }
        assert!(r.config.cap.load(Ordering::Relaxed) > BASE_CAP);
        assert_eq!(r.len(), 195);
        for it in &items[5..] {
            assert_eq!(&get_vec(&h).unwrap(), it);
        }
        assert_eq!(get_vec(&h), Err(GetError::Empty));
        // 8 MiB item: grows, and the emptied ring shrinks back.
        let big = vec![7u8; 8 << 20];
        r.put(seg, &big, None, None, || true).unwrap();
        assert!(r.config.cap.load(Ordering::Relaxed) >= 16 << 20);
        // Just grown: emptying it keeps the memory (the next burst would need it again). The
        // growth time is pinned to the future here, so that a loaded machine taking longer
        // than the hysteresis between the put and the get cannot make the growth look old.
        r.config.grown_at.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(get_vec(&h).unwrap(), big);
        assert!(r.config.cap.load(Ordering::Relaxed) >= 16 << 20);
        // Grown a while ago (moved back in time here, not waited for): emptying it shrinks.
        r.put(seg, &big, None, None, || true).unwrap();
        r.config.grown_at.store(0, Ordering::Relaxed);
        assert_eq!(get_vec(&h).unwrap(), big);
        assert_eq!(r.config.cap.load(Ordering::Relaxed), BASE_CAP);
        // The file keeps its length (a stale poller may still read there), but its memory
        // past the base capacity went back to the system.
        let len = crate::sys::file_len(seg.fd()).unwrap() as u64;
        assert!(len >= DATA_OFFSET as u64 + (16 << 20));
        assert!(crate::sys::file_memory(seg.fd()).unwrap() <= DATA_OFFSET as u64 + BASE_CAP);
        r.put(seg, b"after", None, None, || true).unwrap();
        assert_eq!(get_vec(&h).unwrap(), b"after");
        assert_eq!(r.tasks.unfinished.load(Ordering::Relaxed), 203);
    }

    #[test]
    fn a_stream_of_large_records_arrives_whole_and_in_order() {
        // Records of 200 KiB (past `LARGE_RECORD`) through a ring with a consumer reading
        // them: the producer waits for the reader's room (`room_after_the_reader`, when it
        // finds the ring full while the reader compares) or grows, and records wrap around the
        // end of the data area (`gather_at`, about one in five). Each must arrive whole and in
        // order.
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        const N: usize = 100;
        let items: Vec<Vec<u8>> = (0..N)
            .map(|i| (0..200 << 10).map(|j| (i * 31 + j / 4096) as u8).collect())
            .collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut scratch = Vec::new();
                for (i, want) in items.iter().enumerate() {
                    // Compared under the get lock: the producer finds the reader at work.
                    let mut same = false;
                    r.get(seg, &mut scratch, None, || true, &mut |b, _, _| {
                        same = b == want
                    })
                    .unwrap();
                    assert!(same, "item {i} torn or out of order");
                }
            });
            for it in &items {
                r.put(seg, it, None, None, || true).unwrap();
            }
        });
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn attached_records_carry_their_position() {
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        let mut seen = Vec::new();
        let mut hook = |p: u64| {
            seen.push(p);
            Ok(())
        };
        r.put(seg, b"plain", None, None, || true).unwrap();
        r.put(seg, b"with", Some(&mut hook), None, || true).unwrap();
        let mut fail = |_: u64| Err(PutError::attach("no"));
        let e = r.put(seg, b"never", Some(&mut fail), None, || true);
        assert_eq!(e, Err(PutError::attach("no")));
        assert_eq!(seen, [record_len(5)]);
        let mut scratch = Vec::new();
        let mut take = || {
            let mut got = (Vec::new(), None);
            r.get(seg, &mut scratch, None, || true, &mut |b, at, _| {
                got = (b.to_vec(), at)
            })
            .map(|()| got)
        };
        assert_eq!(take().unwrap(), (b"plain".to_vec(), None));
        assert_eq!(take().unwrap(), (b"with".to_vec(), Some(record_len(5))));
        assert_eq!(r.len(), 0);
    }

    /// What a producer killed between its commit and its `tail` store leaves: a committed
    /// record past `tail`, and the put lock held by a dead thread.
    fn die_after_commit(r: &Ring, seg: &crate::shm::segment::Segment, payload: &[u8]) {
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(r.put.lock.try_lock(), Some(false));
                let tail = r.put.tail.load(Ordering::Relaxed);
                let cap = r.config.cap.load(Ordering::Relaxed);
                let rec = record_len(payload.len());
                // SAFETY: as in `put`: we hold the put lock and the ring has room.
                unsafe { r.write_at(seg, cap, pos(tail) + HEADER, payload) };
                Ring::header(seg, cap, pos(tail) + rec).store(0, Ordering::Relaxed);
                Ring::header(seg, cap, pos(tail))
                    .store(READY | payload.len() as u64, Ordering::Release);
                // ... and the thread ends holding the lock, `tail` not moved.
            });
        });
    }

    #[test]
    fn a_record_committed_by_a_dead_producer_is_counted_once() {
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        r.put(seg, b"a", None, None, || true).unwrap();
        die_after_commit(r, seg, b"b");
        assert_eq!(r.len(), 1, "b is not counted yet");
        // The next producer takes the lock over and moves `tail` past b before writing c.
        r.put(seg, b"c", None, None, || true).unwrap();
        assert_eq!(r.len(), 3);
        for want in [&b"a"[..], b"b", b"c"] {
            assert_eq!(get_vec(&h).unwrap(), want);
        }
        assert_eq!(get_vec(&h), Err(GetError::Empty));

        // Consumers may take such a record before any producer repairs `tail`.
        die_after_commit(r, seg, b"d");
        assert_eq!(get_vec(&h).unwrap(), b"d");
        assert_eq!(r.len(), 0, "head one past tail reads as empty");
        // Legitimate, not a lost head (see `head_lost`): nothing is dropped or taken again.
        assert_eq!(get_vec(&h), Err(GetError::Empty));
        r.put(seg, b"e", None, None, || true).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(get_vec(&h).unwrap(), b"e");
        assert_eq!(get_vec(&h), Err(GetError::Empty));
    }

    #[test]
    fn bounded_by_items() {
        let h = ring(2);
        let r: &Ring = h.state();
        let seg = h.segment();
        r.put(seg, b"a", None, None, || true).unwrap();
        r.put(seg, b"", None, None, || true).unwrap();
        assert_eq!(
            r.put(seg, b"c", None, Some(Instant::now()), || true),
            Err(PutError::Full)
        );
        assert_eq!(
            r.put(seg, b"c", None, None, || false),
            Err(PutError::Closed)
        );
        assert_eq!(get_vec(&h).unwrap(), b"a");
        assert_eq!(get_vec(&h).unwrap(), b"");
        assert!(r.task_done() && r.task_done());
    }

    #[test]
    fn scribbled_records_are_errors_and_the_ring_recovers() {
        // Another process may write anything into the shared memory. Garbage over live
        // records must make `get` answer records or `Corrupt`, never panic or loop, and the
        // ring must work again afterwards.
        let h = ring(0);
        let r: &Ring = h.state();
        let seg = h.segment();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut taken, mut corrupt) = (0, 0);
        for round in 0..2_000u64 {
            for i in 0..1 + next() % 8 {
                let item = vec![i as u8; (next() % 300) as usize];
                r.put(seg, &item, None, None, || true).unwrap();
            }
            let cap = r.config.cap.load(Ordering::Relaxed);
            let (head, tail) = (
                pos(r.get.head.load(Ordering::Relaxed)),
                pos(r.put.tail.load(Ordering::Relaxed)),
            );
            for _ in 0..1 + next() % 3 {
                let at = head + (next() % (tail - head)) / 8 * 8;
                let junk = match next() % 4 {
                    0 => next(),
                    1 => READY | (next() & LEN_MASK),
                    2 => READY | ATTACHED | (next() % 512),
                    _ => READY | (next() % 4096),
                };
                Ring::header(seg, cap, at).store(junk, Ordering::Relaxed);
            }
            let mut gets = 0;
            loop {
                match get_vec(&h) {
                    Ok(_) => taken += 1,
                    Err(GetError::Corrupt) => corrupt += 1,
                    Err(GetError::Empty) => break,
                    Err(e) => panic!("round {round}: {e:?}"),
                }
                gets += 1;
                assert!(gets < 10_000, "round {round}: get never runs dry");
            }
            let probe = format!("round {round}").into_bytes();
            r.put(seg, &probe, None, None, || true).unwrap();
            assert_eq!(get_vec(&h).unwrap(), probe, "round {round}");
        }
        assert!(taken > 0 && corrupt > 0, "taken {taken}, corrupt {corrupt}");
    }
}
