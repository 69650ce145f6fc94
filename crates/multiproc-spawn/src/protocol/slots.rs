//! Outcome slots: a memory page this process shares with its Fork children, where a child
//! leaves a small outcome instead of sending it through its socket.
//!
//! A forked child shares all its parent's memory copy-on-write and pays a page fault (about a
//! microsecond and a half on a small virtual machine) for each page of code or data it first
//! touches; a fork+join of a no-op target is only a few dozen of those. Sending a frame costs
//! two system calls (closing the parent's end, `sendmsg`), the C library's code for them, and
//! the parent a `recvmsg`; a store into shared memory costs one fault and nothing else. Results
//! that carry descriptors or do not fit still go through the socket.
//!
//! Layout: one page, cut into [`Slot`]s of 64 bytes.
//!
//! | bytes | field | written by |
//! |---|---|---|
//! | 0..4 | `state`: `EMPTY` (0) or `FULL` (1) | parent (`EMPTY`, before the fork), child (`FULL`, last, `Release`) |
//! | 4 | frame kind | child |
//! | 5 | unused | |
//! | 6..8 | payload length, u16 little-endian | child |
//! | 8..64 | payload | child |
//!
//! A slot belongs to one child from just before its fork until the parent has dropped the
//! child's record, which happens only once the child is known to have ended. In between only the
//! child writes it, and the parent reads it only after it has seen the child exit and the state
//! `FULL` (`Acquire`). A child that dies half-way through leaves the state `EMPTY`, and the
//! parent reads the socket instead. The page is never unmapped: a forked child goes on using
//! its parent's page to report, while its own children get a page of its own.

use super::frame::Kind;
use crate::sys;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};

const EMPTY: u32 = 0;
const FULL: u32 = 1;

/// Payload bytes a slot holds.
const PAYLOAD: usize = 56;

/// One child's slot (see the module table).
#[repr(C, align(64))]
pub(crate) struct Slot {
    state: AtomicU32,
    head: UnsafeCell<[u8; 4]>,
    payload: UnsafeCell<[u8; PAYLOAD]>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);
const _: () = assert!(std::mem::align_of::<Slot>() == 64);

// SAFETY: the non-atomic fields are written by one process (the child) before a `Release`
// store of `state`, and read by another (the parent) only after an `Acquire` load sees it.
unsafe impl Sync for Slot {}

/// How many slots one page holds (at most 64: their use is tracked in a `u64`).
pub(crate) fn slots_per_page() -> usize {
    (sys::page_size() / std::mem::size_of::<Slot>()).min(64)
}

/// Maps a fresh page of empty slots.
pub(crate) fn map_page() -> Option<&'static [Slot]> {
    let len = slots_per_page();
    let base = sys::map_shared(len * std::mem::size_of::<Slot>()).ok()?;
    // SAFETY: the mapping is page-aligned (so 64-aligned), zeroed (every slot `EMPTY`, which
    // is a valid `Slot`), `len` slots long, and never unmapped, so it lives for `'static`.
    Some(unsafe { std::slice::from_raw_parts(base.as_ptr().cast::<Slot>(), len) })
}

impl Slot {
    /// Makes the slot empty for a new child (parent, before the fork).
    pub(crate) fn reset(&self) {
        self.state.store(EMPTY, Ordering::Relaxed);
    }

    /// Leaves an outcome (child): `false` if it does not fit, and then nothing was written.
    pub(crate) fn put(&self, kind: Kind, payload: &[u8]) -> bool {
        if payload.len() > PAYLOAD || self.state.load(Ordering::Relaxed) != EMPTY {
            return false;
        }
        let len = (payload.len() as u16).to_le_bytes();
        let dst = self.payload.get().cast::<u8>();
        // SAFETY: until the `Release` store below nobody else touches these bytes (see the
        // module docs); the payload fits, as checked above. (Byte by byte and volatile, so that
        // the compiler does not turn a copy of a few bytes into a call to the C library's
        // `memcpy`, whose first use costs a forked child a page fault.)
        unsafe {
            *self.head.get() = [kind as u8, 0, len[0], len[1]];
            for (i, &b) in payload.iter().enumerate() {
                dst.add(i).write_volatile(b);
            }
        }
        self.state.store(FULL, Ordering::Release);
        true
    }

    /// Whether the child has left its outcome (it is about to exit), without taking it.
    pub(crate) fn is_full(&self) -> bool {
        self.state.load(Ordering::Relaxed) == FULL
    }

    /// The outcome a child left, if any (parent, once the child has exited).
    pub(crate) fn take(&self) -> Option<(Kind, Vec<u8>)> {
        if self.state.load(Ordering::Acquire) != FULL {
            return None;
        }
        // SAFETY: the `Acquire` load saw `FULL`, so the child's writes are complete and the
        // child has stopped writing (it has exited, or at least reported for good).
        let (head, payload) = unsafe { (*self.head.get(), &*self.payload.get()) };
        let len = usize::from(u16::from_le_bytes([head[2], head[3]])).min(PAYLOAD);
        let kind = Kind::from_u8(head[0])?;
        self.state.store(EMPTY, Ordering::Relaxed);
        Some((kind, payload[..len].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_round_trips_a_small_outcome_and_refuses_a_big_one() {
        let page = map_page().expect("mmap");
        assert!(!page.is_empty());
        let slot = &page[0];
        slot.reset();
        assert!(slot.take().is_none());
        assert!(!slot.put(Kind::ResultOk, &[7; PAYLOAD + 1]));
        assert!(slot.take().is_none());
        assert!(slot.put(Kind::ResultPanic, b"boom"));
        assert!(
            !slot.put(Kind::ResultOk, b"again"),
            "a full slot is not overwritten"
        );
        assert_eq!(slot.take(), Some((Kind::ResultPanic, b"boom".to_vec())));
        assert!(slot.take().is_none());
    }

    #[test]
    fn a_forked_child_fills_its_parents_slot() {
        let page = map_page().expect("mmap");
        let slot = &page[1];
        slot.reset();
        // SAFETY: the child only stores into the shared page and exits at once.
        match unsafe { sys::fork() }.unwrap() {
            sys::Forked::Child => {
                slot.put(Kind::ResultOk, &[1, 2, 3]);
                sys::exit_now(0)
            }
            sys::Forked::Parent(pid) => {
                assert_eq!(sys::waitid_pid(pid, false).unwrap(), Some(0));
                assert_eq!(slot.take(), Some((Kind::ResultOk, vec![1, 2, 3])));
            }
        }
    }
}
