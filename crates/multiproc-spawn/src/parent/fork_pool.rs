//! What Fork children report through ([`ForkPool`]): a socket pair each, and this process's
//! page of outcome slots. The process-wide pool lives in the process-wide page (`state.rs`);
//! a child's [`Ticket`] names the lock it goes back to, so nothing here reaches a global.

use crate::protocol::slots::{self, Slot};
use crate::sys;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// What Fork children report through: a socket pair each, and this process's page of outcome
/// slots (see [`crate::protocol::slots`]), handed out one slot per live child.
///
/// (Socket pairs are not kept for reuse, though that would save a few microseconds a spawn:
/// idle descriptors would outlive the children, which programs and tests that count their
/// descriptors rightly take for a leak.)
#[derive(Debug)]
pub(crate) struct ForkPool {
    /// Bumped in each forked child, so that a slot of the parent's (a `Process` handle the
    /// child inherited and drops) is never given out again by the child.
    generation: u64,
    /// This process's page of outcome slots, mapped on first use.
    slots: Option<&'static [Slot]>,
    /// Which slots are free (bit i: slot i).
    free_slots: u64,
    /// A socket pair (ours, the child's) that served a finished Fork child which reported
    /// through its slot, so nothing was ever written into it, or a fresh one where that child's
    /// pair was used and closed (see [`ForkPool::give_back`]). Every Fork child inherits it,
    /// like every other descriptor of ours, and never uses it: only the child it is handed to
    /// writes into it, and only the parent reads. One cost, as with the pairs of siblings a
    /// Fork child inherits anyway: a child whose large result goes through a reused pair, and
    /// whose handle was dropped unjoined, gets no EPIPE (and so does not exit) until the older
    /// Fork children that still hold a copy of our end have ended.
    spare: Option<(OwnedFd, OwnedFd)>,
}

/// What one Fork child gets from the [`ForkPool`].
#[derive(Debug)]
pub(crate) struct ForkKit {
    /// Our end of a fresh socket pair (close-on-exec, like the other).
    pub(crate) mine: OwnedFd,
    /// The child's end.
    pub(crate) theirs: OwnedFd,
    pub(crate) slot: Option<&'static Slot>,
    /// Where the slot goes back to.
    pub(crate) ticket: Ticket,
}

/// How a finished Fork child's slot finds its way back to the [`ForkPool`].
#[derive(Debug)]
pub(crate) struct Ticket {
    /// The pool the slot came from (the process-wide one).
    home: &'static Mutex<ForkPool>,
    generation: u64,
    slot: Option<usize>,
}

impl ForkPool {
    /// No page yet.
    pub(crate) const EMPTY: ForkPool = ForkPool {
        generation: 0,
        slots: None,
        free_slots: 0,
        spare: None,
    };

    /// A socket pair and, if one is free, an empty slot for a new Fork child; `home` is the
    /// lock this pool sits in (the process-wide one), where the child's record gives it back.
    pub(crate) fn take(&mut self, home: &'static Mutex<ForkPool>) -> io::Result<ForkKit> {
        let (mine, theirs) = match self.spare.take() {
            Some(pair) => pair,
            None => sys::socketpair()?,
        };
        if self.slots.is_none() {
            self.slots = slots::map_page();
            self.free_slots = match self.slots {
                Some(page) if page.len() < 64 => (1u64 << page.len()) - 1,
                Some(_) => u64::MAX,
                None => 0,
            };
        }
        let (slot, index) = match self.slots {
            Some(page) if self.free_slots != 0 => {
                let i = self.free_slots.trailing_zeros() as usize;
                self.free_slots &= !(1 << i);
                page[i].reset();
                (Some(&page[i]), Some(i))
            }
            _ => (None, None),
        };
        Ok(ForkKit {
            mine,
            theirs,
            slot,
            ticket: Ticket {
                home,
                generation: self.generation,
                slot: index,
            },
        })
    }

    /// In a forked child: the parent's slots are not ours (the page stays mapped, since the
    /// child reports through it), and what the parent's children hold must never come back.
    pub(crate) fn forget_parents(&mut self) {
        self.slots = None;
        self.free_slots = 0;
        self.generation += 1;
        if let Some(pair) = self.spare.take() {
            // The parent's pair: never ours to hand out. Left open, since closing costs two
            // system calls on the way to the target; it goes with the process.
            std::mem::forget(pair);
        }
    }

    fn give_back(&mut self, ticket: &Ticket, pair: Option<(OwnedFd, OwnedFd)>) {
        if self.generation != ticket.generation {
            // A record this process inherited from its parent (see `forget_parents`).
            return;
        }
        if let Some(i) = ticket.slot {
            self.free_slots |= 1 << i;
        }
        if self.spare.is_none() {
            // A pair written into (or of a child killed half-way) is closed, and a fresh one
            // takes its place: once its Fork children have ended, a process holds exactly one
            // spare pair, whatever they did (the descriptor counts of the leak tests rely on
            // it). If even that fails (out of descriptors), the next start makes its own.
            self.spare = pair.or_else(|| sys::socketpair().ok());
        }
    }
}

impl Ticket {
    /// Gives the slot (and `pair`, a socket pair nothing was written into) back to the pool
    /// the ticket came from.
    pub(super) fn give_back(&self, pair: Option<(OwnedFd, OwnedFd)>) {
        self.home
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .give_back(self, pair);
    }
}
