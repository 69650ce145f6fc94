//! The one place the ring takes its atomics, locks, wake-up signals and data-area accesses
//! from: `std` atomics, the robust process-shared lock, the futex [`Signal`] and the
//! shared-memory [`Segment`] normally; `loom`'s atomics, a loom lock, the same [`Signal`]
//! over loom's atomics and a futex model that blocks (see `wait::futex`), and a small heap
//! data area ([`ModelArea`]) under `--cfg multiproc_loom`, so that `cargo xtask loom` checks
//! the ring's own `put` and `get` and their wake-ups (`ring/loom_tests.rs`), not a copy of
//! their protocol.
//!
//! In the normal build everything here is a re-export or an `#[inline(always)]` forward of
//! one line: the ring's hot path compiles to what it was when it named these types itself.

use std::io;

#[cfg(not(multiproc_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use crate::wait::Signal;
#[cfg(not(multiproc_loom))]
pub(crate) use crate::wait::robust::RobustLock;

#[cfg(multiproc_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(multiproc_loom)]
pub(crate) use model::{ModelArea, RobustLock};

use crate::shm::segment::Segment;

/// The data area of a ring: where its records lie. The ring reaches its bytes only through
/// these calls; offsets are in bytes from the start of the data area.
pub(crate) trait Area {
    /// The largest capacity this area can ever hold (a power of two, or 0).
    fn limit(&self) -> u64;

    /// The header word at byte offset `off` (8-aligned, below a capacity ever published).
    fn word(&self, off: usize) -> &AtomicU64;

    /// Copies `bytes` in at `off`.
    ///
    /// # Safety
    /// `off..off + bytes.len()` lies inside the current capacity and is the caller's to write
    /// under the ring protocol (no one else reads or writes it meanwhile).
    unsafe fn write(&self, off: usize, bytes: &[u8]);

    /// Hands `len` bytes at `off` to `f` in place (no copy where the area allows it).
    ///
    /// # Safety
    /// `off..off + len` lies inside the current capacity and holds a committed record that
    /// no producer writes while the caller holds the get lock, for the whole call of `f`.
    unsafe fn view<R>(&self, off: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R;

    /// Copies `len` bytes from `from` to `to` within the area (the ranges do not overlap).
    ///
    /// # Safety
    /// Both ranges lie inside the (grown) area, with both ring locks held.
    unsafe fn copy_within(&self, from: usize, to: usize, len: usize);

    /// Makes room for a capacity of `cap` bytes.
    fn grow_to(&self, cap: u64) -> io::Result<()>;

    /// Gives the memory of `from..to` (byte offsets) back to the system, if the area can.
    fn discard(&self, from: u64, to: u64);

    /// A hint to start loading the cache line at `off`.
    fn prefetch(&self, off: usize);
}

use super::DATA_OFFSET;

#[cfg(not(multiproc_loom))]
impl Segment {
    #[inline(always)]
    fn ring_data(&self) -> *mut u8 {
        // SAFETY: DATA_OFFSET is inside the reserve of every ring segment.
        unsafe { self.base().as_ptr().add(DATA_OFFSET) }
    }
}

#[cfg(not(multiproc_loom))]
impl Area for Segment {
    /// The reserve past [`DATA_OFFSET`], rounded down to a power of two since the capacity is
    /// one. Every process maps the reserve its creator chose (it travels with the handle), so
    /// this is the same number everywhere.
    #[inline]
    fn limit(&self) -> u64 {
        let room = self.reserve().saturating_sub(DATA_OFFSET) as u64;
        if room == 0 { 0 } else { 1 << room.ilog2() }
    }

    /// Any capacity ever published lies inside the file, which never gets shorter, so the
    /// word is always addressable, also for a consumer polling with a stale capacity; a stale
    /// answer is only a hint that the caller checks under the lock.
    #[inline(always)]
    fn word(&self, off: usize) -> &AtomicU64 {
        // Other processes access header words only through atomics, except producers
        // copying payload over words that no consumer is entitled to read as a header (free
        // space past the terminator); a racing read of such a word by a stale poller is an
        // atomic load of plain memory that can return any value, hence only a hint.
        // SAFETY: `off` is 8-aligned (positions advance by multiples of 8) and below a
        // published capacity, and `DATA_OFFSET + cap` is within the file (see above), so the
        // word is mapped, aligned and lives as long as `self`.
        unsafe { AtomicU64::from_ptr(self.ring_data().add(off).cast()) }
    }

    #[inline(always)]
    unsafe fn write(&self, off: usize, bytes: &[u8]) {
        // SAFETY: per the contract the range is inside the mapped data area and ours to
        // write; `bytes` is local memory, so the ranges cannot overlap.
        unsafe { super::copy::copy_small_inline(bytes, self.ring_data().add(off)) }
    }

    #[inline(always)]
    unsafe fn view<R>(&self, off: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: per the contract the bytes are mapped, written before their record was
        // committed, and not written again before the caller moves `head` past them.
        f(unsafe { std::slice::from_raw_parts(self.ring_data().add(off), len) })
    }

    #[inline]
    unsafe fn copy_within(&self, from: usize, to: usize, len: usize) {
        let data = self.ring_data();
        // SAFETY: per the contract both ranges are mapped and do not overlap, and no other
        // process writes them (a stale poller may read; see `word`).
        unsafe { std::ptr::copy_nonoverlapping(data.add(from), data.add(to), len) }
    }

    fn grow_to(&self, cap: u64) -> io::Result<()> {
        Segment::grow_to(self, DATA_OFFSET + cap as usize)
    }

    fn discard(&self, from: u64, to: u64) {
        let _ = Segment::discard(self, DATA_OFFSET + from as usize, (to - from) as usize);
    }

    #[inline(always)]
    fn prefetch(&self, off: usize) {
        let p = self.ring_data().wrapping_add(off);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults and changes no memory, whatever
        // `p`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

/// Under loom the shared-memory segment is not modelled (only `loom_` tests run there, on a
/// [`ModelArea`]); this keeps the queue and pipe code compiling.
#[cfg(multiproc_loom)]
impl Area for Segment {
    fn limit(&self) -> u64 {
        unreachable!("a shared-memory ring does not run under loom")
    }
    fn word(&self, _: usize) -> &AtomicU64 {
        unreachable!("a shared-memory ring does not run under loom")
    }
    unsafe fn write(&self, _: usize, _: &[u8]) {}
    unsafe fn view<R>(&self, _: usize, _: usize, _: impl FnOnce(&[u8]) -> R) -> R {
        unreachable!("a shared-memory ring does not run under loom")
    }
    unsafe fn copy_within(&self, _: usize, _: usize, _: usize) {}
    fn grow_to(&self, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn discard(&self, _: u64, _: u64) {}
    fn prefetch(&self, _: usize) {}
}

#[cfg(multiproc_loom)]
mod model {
    use std::io;
    use std::time::Instant;

    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use super::Area;
    use crate::wait::Wait;

    /// The ring's lock under loom: a compare-and-swap word that yields while it is held (a
    /// holder never dies in the models).
    #[derive(Debug, Default)]
    pub(crate) struct RobustLock(AtomicU32);

    impl RobustLock {
        pub(crate) fn try_lock(&self) -> Option<bool> {
            self.0
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then_some(false)
        }

        pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> Option<bool> {
            loop {
                if let Some(died) = self.try_lock() {
                    return Some(died);
                }
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    return None;
                }
                loom::thread::yield_now();
            }
        }

        /// Under loom a contended take simply yields (the gaps are timing, not logic).
        pub(crate) fn lock_until_in_streaks(&self, deadline: Option<Instant>) -> Option<bool> {
            self.lock_until(deadline)
        }

        /// # Safety
        /// The caller holds the lock.
        pub(crate) unsafe fn unlock(&self) {
            self.0.store(0, Ordering::Release);
        }
    }

    /// A ring's data area under loom: each 8-byte word is a loom atomic (for the header
    /// loads and stores) and a loom cell that every payload copy touches, so that loom
    /// reports a payload read racing a payload write (a consumer trusting a header it should
    /// not). Payload bytes are stored into the words too (relaxed), so that a stale header
    /// load sees payload bytes, as it would in shared memory.
    pub(crate) struct ModelArea {
        words: Vec<AtomicU64>,
        cells: Vec<UnsafeCell<()>>,
    }

    impl ModelArea {
        /// Copies `out.len()` bytes out from `off` (the model's `view`).
        ///
        /// # Safety
        /// As for [`Area::view`].
        unsafe fn read(&self, off: usize, out: &mut [u8]) {
            assert_eq!(off % 8, 0, "payloads start on a word");
            let len = out.len();
            for (i, w) in Self::words(off, len).enumerate() {
                self.cells[w].with(|_| ());
                let b = self.words[w].load(Ordering::Relaxed).to_le_bytes();
                let n = len.min(i * 8 + 8) - i * 8;
                out[i * 8..i * 8 + n].copy_from_slice(&b[..n]);
            }
        }

        /// An area of `cap` bytes (a power of two).
        pub(crate) fn new(cap: usize) -> Self {
            ModelArea {
                words: (0..cap / 8).map(|_| AtomicU64::new(0)).collect(),
                cells: (0..cap / 8).map(|_| UnsafeCell::new(())).collect(),
            }
        }

        fn words(off: usize, len: usize) -> std::ops::Range<usize> {
            off / 8..(off + len).div_ceil(8)
        }
    }

    impl Area for ModelArea {
        fn limit(&self) -> u64 {
            (self.words.len() * 8) as u64
        }

        fn word(&self, off: usize) -> &AtomicU64 {
            &self.words[off / 8]
        }

        unsafe fn write(&self, off: usize, bytes: &[u8]) {
            assert_eq!(off % 8, 0, "payloads start on a word");
            for (i, w) in Self::words(off, bytes.len()).enumerate() {
                self.cells[w].with_mut(|_| ());
                let mut b = [0u8; 8];
                let chunk = &bytes[i * 8..bytes.len().min(i * 8 + 8)];
                b[..chunk.len()].copy_from_slice(chunk);
                self.words[w].store(u64::from_le_bytes(b), Ordering::Relaxed);
            }
        }

        unsafe fn view<R>(&self, off: usize, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
            let mut out = vec![0; len];
            // SAFETY: forwarded contract.
            unsafe { self.read(off, &mut out) };
            f(&out)
        }

        unsafe fn copy_within(&self, _: usize, _: usize, _: usize) {
            unreachable!("a model area never grows")
        }

        fn grow_to(&self, _: u64) -> io::Result<()> {
            Err(io::ErrorKind::OutOfMemory.into())
        }

        fn discard(&self, _: u64, _: u64) {}

        fn prefetch(&self, _: usize) {}
    }
}
