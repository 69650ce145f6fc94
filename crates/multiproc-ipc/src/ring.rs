//! The shared-memory ring behind every queue and pipe direction: variable-size records in a
//! byte ring that grows, many producers and many consumers in any processes.
//!
//! # Layout
//! The ring's state ([`Ring`]) sits at the segment's object offset; the data area starts at
//! [`DATA_OFFSET`] and is `cap` bytes (a power of two) of the segment's file, inside an
//! address-space reserve of [`RESERVE`] bytes mapped once by every process. A record is an
//! 8-byte header (payload length, a tag) and the payload padded to 8 bytes; it may wrap
//! around the end of the data area.
//!
//! # Protocol
//! Producers serialize on the put lock and consumers on the get lock (both robust: a holder
//! that dies is replaced, see [`RobustLock`]). `tail` and `head` each pack a byte position
//! (low 40 bits) with an item count (high 24 bits), so one store publishes both, and that store
//! is the commit point: a producer copies its record in *before* it moves `tail`, a consumer
//! moves `head` only *after* it has read its record. A process killed at any instruction
//! therefore leaves either the old or the new state: a half-written record is invisible and
//! is overwritten by the next producer, a half-read one is still there for the next consumer.
//!
//! A record that does not fit makes the producer grow the ring: with the get lock also held
//! (lock order: put, then get), it lengthens the file, copies the live bytes whose position
//! maps elsewhere under the doubled capacity into the new upper half (the old copies are left
//! intact), and only then publishes the new capacity: dying before that store changes nothing.
//! When a consumer empties a large ring it shrinks it back (if it can take the put lock at
//! once), which gives the memory back to the system.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::holders::{Kind, OBJECT_OFFSET, SharedState};
use crate::robust::RobustLock;
use crate::segment::Segment;
use crate::wait::{Signal, Wait};

/// Where the data area starts in the segment.
pub(crate) const DATA_OFFSET: usize = OBJECT_OFFSET + 4096;
/// The address space every ring reserves: room for 64 GiB of queued data.
pub(crate) const RESERVE: usize = DATA_OFFSET + (64 << 30);
/// A new ring's capacity, and what an emptied ring shrinks back to.
pub(crate) const BASE_CAP: u64 = 256 << 10;
/// An emptied ring larger than this gives its memory back.
const SHRINK_ABOVE: u64 = 4 << 20;
/// The largest queue `maxsize` (item counts are 24-bit).
pub(crate) const MAX_ITEMS: u64 = (1 << 23) - 1;

const POS_MASK: u64 = (1 << 40) - 1;
const CNT_SHIFT: u32 = 40;
const CNT_MASK: u64 = (1 << 24) - 1;
const HEADER: u64 = 8;

/// Flags fixed at creation.
pub(crate) const JOINABLE: u64 = 1;

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Side {
    lock: RobustLock,
    _pad: u32,
    /// Position and count, packed (see the module docs).
    at: AtomicU64,
    /// The other side's `at` as this side last loaded it (producers: `head`, consumers:
    /// `tail`), so a busy side re-reads the other side's cache line only when the stale value
    /// is not enough: once per batch instead of once per item. Written under this side's lock;
    /// a stale value only ever understates what the other side did.
    seen: AtomicU64,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Config {
    cap: AtomicU64,
    maxsize: AtomicU64,
    flags: AtomicU64,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Tasks {
    unfinished: AtomicU64,
    done: Signal,
}

/// The state of one ring (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Ring {
    put: Side,
    get: Side,
    config: Config,
    data: Padded<Signal>,
    space: Padded<Signal>,
    tasks: Tasks,
}

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

const _: () = assert!(OBJECT_OFFSET + std::mem::size_of::<Ring>() <= DATA_OFFSET);

// SAFETY: `Ring` is `#[repr(C)]` and made only of atomics (locks and signals are atomics too),
// so all-zero is a valid value and any process may change it at any time.
unsafe impl SharedState for Ring {
    const KIND: Kind = Kind::Queue;
}

/// Why a put failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutError {
    /// No room before the deadline.
    Full,
    /// No room, and no live holder could ever make some.
    Closed,
    /// The record can never fit (larger than the reserve or than a u32 length).
    TooLarge,
    /// The `attach` hook failed (its reason); nothing was written.
    Attach(String),
}

/// Work done beside a record, under the put lock, just before the record is written: called
/// with the record's position (a 40-bit stream offset, unique among the records in the
/// ring), it may send something that must travel in the same order as the records (the
/// descriptors of handles inside an item). A record put with a hook is flagged, and
/// [`Ring::get`] hands its position to the consumer.
pub(crate) type Attach<'a> = Option<&'a mut dyn FnMut(u64) -> Result<(), PutError>>;

/// Header flag: the record was put with an [`Attach`] hook.
const ATTACHED: u64 = 1 << 32;

/// Why a get failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetError {
    /// No item before the deadline.
    Empty,
    /// No item, and no live holder could ever put one.
    Closed,
    /// The ring held a record that makes no sense (memory corrupted by someone else); the
    /// ring was emptied to stay usable.
    Corrupt,
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

#[inline]
fn items(tail: u64, head: u64) -> u64 {
    count(tail).wrapping_sub(count(head)) & CNT_MASK
}

/// Bytes a record of `len` payload bytes takes.
#[inline]
pub(crate) fn record_len(len: usize) -> u64 {
    HEADER + (len as u64).next_multiple_of(8)
}

/// Releases a robust lock when dropped (also when a decoder panics).
struct Held<'a>(&'a RobustLock);

impl Drop for Held<'_> {
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
            self.put.at.load(Ordering::Relaxed),
            self.put.seen.load(Ordering::Relaxed),
        )
    }

    /// Items in the ring now.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        let head = self.get.at.load(Ordering::Acquire);
        let tail = self.put.at.load(Ordering::Acquire);
        items(tail, head)
    }

    /// The item limit (0: none).
    #[inline]
    pub(crate) fn maxsize(&self) -> u64 {
        self.config.maxsize.load(Ordering::Relaxed)
    }

    #[inline]
    fn has_room(&self) -> bool {
        let max = self.maxsize();
        max == 0
            || items(
                self.put.at.load(Ordering::Relaxed),
                self.put.seen.load(Ordering::Relaxed),
            ) < max
            || self.len() < max
    }

    /// Appends one record with `payload`. Waits (spin, then sleep) while the queue is at its
    /// item limit or the reserve is exhausted, until `deadline`; `alive()` says whether any
    /// other live holder could still make room.
    pub(crate) fn put(
        &self,
        seg: &Segment,
        payload: &[u8],
        mut attach: Attach<'_>,
        deadline: Option<Instant>,
        mut alive: impl FnMut() -> bool,
    ) -> Result<(), PutError> {
        let need = record_len(payload.len());
        if payload.len() > u32::MAX as usize || DATA_OFFSET as u64 + need > seg.reserve() as u64 {
            return Err(PutError::TooLarge);
        }
        loop {
            if !self.has_room() {
                match self.space.0.wait(deadline, || self.has_room(), &mut alive) {
                    Wait::Ready => {}
                    Wait::TimedOut => return Err(PutError::Full),
                    Wait::Closed => return Err(PutError::Closed),
                }
            }
            if self.put.lock.lock_until(deadline).is_none() {
                return Err(PutError::Full);
            }
            let held = Held(&self.put.lock);
            let tail = self.put.at.load(Ordering::Relaxed);
            let max = self.maxsize();
            let mut cap = self.config.cap.load(Ordering::Acquire);
            let mut head = self.put.seen.load(Ordering::Relaxed);
            if (max != 0 && items(tail, head) >= max) || used(tail, head) + need > cap {
                head = self.get.at.load(Ordering::Acquire);
                self.put.seen.store(head, Ordering::Relaxed);
            }
            if max != 0 && items(tail, head) >= max {
                drop(held);
                continue;
            }
            if used(tail, head) + need > cap {
                match self.grow(seg, need) {
                    Some(c) => cap = c,
                    None => {
                        // The reserve is full: wait for consumers like a bounded queue.
                        drop(held);
                        let fits = || {
                            let t = self.put.at.load(Ordering::Acquire);
                            let h = self.get.at.load(Ordering::Acquire);
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
            let mut header = payload.len() as u64;
            if let Some(hook) = attach.as_mut() {
                hook(pos(tail))?;
                header |= ATTACHED;
            }
            // SAFETY: we hold the put lock, so no other producer writes; the bytes from `tail`
            // to `tail + need` are free (checked against `head` above, and consumers never
            // read past `tail`), and lie inside the file (below DATA_OFFSET + cap). The header
            // is 8-aligned and never wraps (records are 8-aligned, cap a power of two).
            unsafe {
                let at = Self::data(seg).add((pos(tail) & (cap - 1)) as usize);
                at.cast::<u64>().write(header);
                self.write_at(seg, cap, pos(tail) + HEADER, payload);
            }
            if self.config.flags.load(Ordering::Relaxed) & JOINABLE != 0 {
                self.tasks.unfinished.fetch_add(1, Ordering::AcqRel);
            }
            self.put.at.store(advance(tail, need), Ordering::Release);
            drop(held);
            self.data.0.notify_after_rmw();
            return Ok(());
        }
    }

    /// Grows the ring so that `need` more bytes fit; the new capacity, or `None` when the
    /// reserve cannot hold it. Called with the put lock held.
    #[cold]
    fn grow(&self, seg: &Segment, need: u64) -> Option<u64> {
        self.get.lock.lock_until(None)?;
        let _held = Held(&self.get.lock);
        let tail = self.put.at.load(Ordering::Relaxed);
        let head = self.get.at.load(Ordering::Relaxed);
        let cap = self.config.cap.load(Ordering::Relaxed);
        let live = used(tail, head);
        if live + need <= cap {
            return Some(cap);
        }
        let new_cap = (live + need).next_power_of_two().max(cap * 2);
        let limit = seg.reserve() as u64 - DATA_OFFSET as u64;
        if new_cap > limit {
            return None;
        }
        seg.set_len(DATA_OFFSET + new_cap as usize).ok()?;
        // Move each live byte whose offset differs under the new capacity; the destinations
        // lie in the fresh upper half, so the old copies stay valid until `cap` is published.
        let mut p = pos(head);
        let end = pos(head) + live;
        let data = Self::data(seg);
        while p < end {
            let from = p & (cap - 1);
            let to = p & (new_cap - 1);
            let run = (end - p).min(cap - from).min(new_cap - to);
            if from != to {
                // SAFETY: both ranges lie inside the (just lengthened) file; `to..to + run` is
                // in the upper half that no live byte occupies, so they do not overlap, and
                // with both locks held no other process touches either.
                unsafe {
                    ptr::copy_nonoverlapping(
                        data.add(from as usize),
                        data.add(to as usize),
                        run as usize,
                    )
                };
            }
            p += run;
        }
        self.config.cap.store(new_cap, Ordering::Release);
        Some(new_cap)
    }

    fn data(seg: &Segment) -> *mut u8 {
        // SAFETY: DATA_OFFSET is inside the reserve of every ring segment.
        unsafe { seg.base().as_ptr().add(DATA_OFFSET) }
    }

    /// # Safety
    /// The caller owns `at..at + bytes.len()` (mod `cap`) under the ring protocol, and `cap`
    /// is the capacity the file covers now.
    unsafe fn write_at(&self, seg: &Segment, cap: u64, at: u64, bytes: &[u8]) {
        let data = Self::data(seg);
        let off = (at & (cap - 1)) as usize;
        let first = bytes.len().min(cap as usize - off);
        // SAFETY: per the contract, both pieces are inside the data area and ours to write;
        // `bytes` is local memory, so the ranges cannot overlap.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(off), first);
            ptr::copy_nonoverlapping(bytes.as_ptr().add(first), data, bytes.len() - first);
        }
    }

    /// # Safety
    /// As for `write_at`, for reading (a record before `tail`, under the get lock).
    unsafe fn read_at(&self, seg: &Segment, cap: u64, at: u64, out: &mut [u8]) {
        let data = Self::data(seg);
        let off = (at & (cap - 1)) as usize;
        let first = out.len().min(cap as usize - off);
        // SAFETY: per the contract; `out` is local memory.
        unsafe {
            ptr::copy_nonoverlapping(data.add(off), out.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// Whether an item is there to take.
    #[inline]
    pub(crate) fn is_ready(&self) -> bool {
        let head = self.get.at.load(Ordering::Relaxed);
        self.get.seen.load(Ordering::Relaxed) != head || self.put.at.load(Ordering::Acquire) != head
    }

    /// Waits until an item is there (without taking it); see [`Ring::get`] for the rest.
    pub(crate) fn wait_ready(
        &self,
        deadline: Option<Instant>,
        alive: impl FnMut() -> bool,
    ) -> Wait {
        self.data.0.wait(deadline, || self.is_ready(), alive)
    }

    /// Takes the oldest record and hands its payload to `take` (a view that is valid only
    /// during the call: it may point into the ring), with the record's position when it was
    /// put with an [`Attach`] hook; `take` runs under the get lock. Waits (spin, then sleep) until `deadline`
    /// while the ring is empty; `alive()` says whether any other live holder could put.
    pub(crate) fn get<R>(
        &self,
        seg: &Segment,
        scratch: &mut Vec<u8>,
        deadline: Option<Instant>,
        mut alive: impl FnMut() -> bool,
        take: impl FnOnce(&[u8], Option<u64>) -> R,
    ) -> Result<R, GetError> {
        loop {
            if !self.is_ready() {
                match self.wait_ready(deadline, &mut alive) {
                    Wait::Ready => {}
                    Wait::TimedOut => return Err(GetError::Empty),
                    Wait::Closed => return Err(GetError::Closed),
                }
            }
            if self.get.lock.lock_until(deadline).is_none() {
                return Err(GetError::Empty);
            }
            let held = Held(&self.get.lock);
            let head = self.get.at.load(Ordering::Relaxed);
            let mut tail = self.get.seen.load(Ordering::Relaxed);
            if head == tail {
                tail = self.put.at.load(Ordering::Acquire);
                self.get.seen.store(tail, Ordering::Relaxed);
                if head == tail {
                    // Another consumer was faster.
                    drop(held);
                    continue;
                }
            }
            let cap = self.config.cap.load(Ordering::Acquire);
            // SAFETY: `head < tail`, so a whole record starts at `head` and we hold the get
            // lock; the header is 8-aligned and never wraps (records are 8-aligned and cap a
            // power of two).
            let header = unsafe {
                Self::data(seg)
                    .add((pos(head) & (cap - 1)) as usize)
                    .cast::<u64>()
                    .read()
            };
            let len = (header & u64::from(u32::MAX)) as usize;
            let rec = record_len(len);
            if rec > used(tail, head) {
                self.get.at.store(tail, Ordering::Release);
                drop(held);
                self.space.0.notify_after_rmw();
                return Err(GetError::Corrupt);
            }
            let attached = (header & ATTACHED != 0).then_some(pos(head));
            let start = pos(head) + HEADER;
            let off = (start & (cap - 1)) as usize;
            let result = if off + len <= cap as usize {
                // SAFETY: the payload is contiguous in the data area, fully written before
                // `tail` was published, and no producer writes it before `head` moves past
                // it, which happens only below, after `take` has returned.
                take(
                    unsafe { std::slice::from_raw_parts(Self::data(seg).add(off), len) },
                    attached,
                )
            } else {
                scratch.clear();
                scratch.resize(len, 0);
                // SAFETY: as above, in two pieces around the end of the data area.
                unsafe { self.read_at(seg, cap, start, scratch) };
                take(scratch, attached)
            };
            let new_head = advance(head, rec);
            self.get.at.store(new_head, Ordering::Release);
            if cap > SHRINK_ABOVE && new_head == self.put.at.load(Ordering::Acquire) {
                self.shrink(seg);
            }
            drop(held);
            self.space.0.notify_after_rmw();
            return Ok(result);
        }
    }

    /// Gives an emptied large ring's memory back, if no producer is busy. Called with the get
    /// lock held.
    #[cold]
    fn shrink(&self, seg: &Segment) {
        if self.put.lock.try_lock().is_none() {
            return;
        }
        let _held = Held(&self.put.lock);
        if self.put.at.load(Ordering::Relaxed) != self.get.at.load(Ordering::Relaxed) {
            return;
        }
        // Empty: any position maps anywhere, so no bytes move. Publish the smaller capacity
        // before cutting the file, so nobody addresses the part that goes away.
        self.config.cap.store(BASE_CAP, Ordering::Release);
        let _ = seg.set_len(DATA_OFFSET + BASE_CAP as usize);
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

    /// Wakes every waiter so that it re-checks whether its peers are alive (after a handle
    /// was dropped).
    pub(crate) fn wake_everyone(&self) {
        self.data.0.notify_after_rmw();
        self.space.0.notify_after_rmw();
        self.tasks.done.notify_after_rmw();
    }
}

#[cfg(all(test, multiproc_loom))]
#[path = "ring_tests/loom_ring.rs"]
mod loom_ring;

#[cfg(all(test, not(multiproc_loom)))]
mod tests {
    use super::*;
    use crate::holders::Handle;
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
        r.get(
            h.segment(),
            &mut scratch,
            Some(Instant::now()),
            || true,
            |s, _| s.to_vec(),
        )
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
        assert_eq!(get_vec(&h).unwrap(), big);
        assert_eq!(r.config.cap.load(Ordering::Relaxed), BASE_CAP);
        assert_eq!(r.tasks.unfinished.load(Ordering::Relaxed), 201);
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
        let mut fail = |_: u64| Err(PutError::Attach("no".into()));
        let e = r.put(seg, b"never", Some(&mut fail), None, || true);
        assert_eq!(e, Err(PutError::Attach("no".into())));
        assert_eq!(seen, [record_len(5)]);
        let mut scratch = Vec::new();
        let mut take = || r.get(seg, &mut scratch, None, || true, |b, at| (b.to_vec(), at));
        assert_eq!(take().unwrap(), (b"plain".to_vec(), None));
        assert_eq!(take().unwrap(), (b"with".to_vec(), Some(record_len(5))));
        assert_eq!(r.len(), 0);
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
}
