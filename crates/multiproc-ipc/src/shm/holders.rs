//! Who holds a shared object, so that a waiter can tell "nobody can ever answer" from "not yet".
//!
//! Page 0 of every segment is a [`SegmentHeader`]: a magic number, the object's kind, and a
//! table of [`SLOTS`] holder slots. A process that holds handles to the object owns one slot
//! per attachment: one `AtomicU64` packing its pid and how many handles it holds in each of two
//! roles (a queue uses one role; a pipe direction uses "writer" and "reader"). Packing makes
//! every change one compare-and-swap, so a process killed at any instruction leaves a slot
//! that is either its old or its new state; and a slot whose pid is dead (gone or a zombie)
//! simply stops counting. A waiter that finds no live holder of the other role gets `Closed`.
//! A slot counts up to 16,383 handles a role; a process that clones more (a task per
//! connection, each with its clone of one queue) counts the rest in its own memory, and its
//! slot stays at the maximum until those are gone again. Only the slot can vouch for a handle
//! in flight, so such a process sends a handle only after dropping some (a clear error says so).
//!
//! Handles that travel to another process (in spawn arguments, or inside a queue item or pipe
//! message) count as held by the sender until the receiver has registered its own slot ("in
//! flight"), so the object is never seen without its holders. The count sits in the sender's
//! slot, beside its own handles: the receiver takes it away, and otherwise it goes only when
//! the sender process exits (its slot stops counting); dropping the sender's own handles
//! leaves it. So a handle that is never received keeps its object counted as held by the
//! sender for as long as the sender lives: a child that dies before it has decoded its
//! arguments (Python hangs in that case too; the spawn crate reports the child's death to
//! whoever joins it), an item that is never taken from its queue (or the queue is dropped
//! with it: the kernel then closes its descriptors), or an item whose descriptors were lost
//! with a consumer killed while taking it. A handle in an item whose `put` fails is taken back
//! at once, and so is one in the arguments of a child that could not be started: both through
//! the transfer's undo (`handoff::on_undo`, see [`Handle::send`]); one whose sender died
//! before it was received counts for nobody until it is.
//! A forked child inherits copies of every handle of its parent, most of which it never
//! uses (Python's classic "close the other pipe end in the child"): those copies count for
//! nothing. Handles passed in spawn arguments are transferred explicitly (under `Fork` too),
//! and an inherited copy that the child does use registers the child on first use.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use multiproc_spawn::handoff;
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::segment::Segment;
use super::{OBJECT_OFFSET, SharedState};
use crate::sys;

/// Holder slots per object: processes that hold it at once (dead ones are reclaimed). As
/// many as fit in the header page beside its other fields: a pool's result queue is held by
/// every worker and the parent, so this bounds a pool's size (503 workers).
pub(crate) const SLOTS: usize = 504;
const MAGIC: u64 = u64::from_le_bytes(*b"mprocsg2");
const NO_SLOT: usize = usize::MAX;
/// A slot word: pid (22 bits: Linux pids are below 2^22) | role-0 count | role-1 count |
/// blocked getters (14 bits each).
const PID_SHIFT: u32 = 42;
const SHIFT: [u32; 3] = [28, 14, 0];
const COUNT_MAX: u64 = 0x3FFF;
/// The slot field that counts role-0 handles blocked in a `get` (see [`Handle::set_blocked`]).
pub(crate) const BLOCKED: usize = 2;

#[repr(C)]
struct SegmentHeader {
    magic: u64,
    kind: u32,
    _reserved: u32,
    reserve: u64,
    object_len: u64,
    /// The sums of each slot field over all slots, dead or alive, so that "is any handle
    /// left?" is one load. Raised before a slot changes and lowered after, so a process killed
    /// between the two leaves a total too high (which only costs a `/proc` look), never too low.
    totals: [AtomicU64; 3],
    _pad: u64,
    slots: [AtomicU64; SLOTS],
}

const _: () = assert!(std::mem::size_of::<SegmentHeader>() <= OBJECT_OFFSET);
// The header fills its page: more slots need a larger OBJECT_OFFSET.
const _: () = assert!(std::mem::size_of::<SegmentHeader>() + 8 > OBJECT_OFFSET);

#[inline]
fn pack(pid: u32, counts: [u64; 2]) -> u64 {
    (u64::from(pid) << PID_SHIFT) | (counts[0] << SHIFT[0]) | (counts[1] << SHIFT[1])
}

#[inline]
fn slot_pid(v: u64) -> u32 {
    (v >> PID_SHIFT) as u32
}

/// Field `f` of a slot word: 0 and 1 are the handle counts of the two roles, [`BLOCKED`] the
/// handles of role 0 now waiting inside a `get` on an empty queue.
#[inline]
fn slot_count(v: u64, f: usize) -> u64 {
    (v >> SHIFT[f]) & COUNT_MAX
}

/// One process's attachment to a segment: the mapping and its holder slot.
struct Shared {
    segment: Segment,
    /// A ring's descriptor channel (one per process and object, like the mapping).
    channel: Option<Channel>,
    /// Our slot, valid while `owner` is our pid (a fork child inherits a stale one).
    slot: AtomicUsize,
    /// The process that registered `slot`.
    owner: AtomicU32,
    /// Handles of each role beyond the [`COUNT_MAX`] that the slot can count: a program may
    /// hold tens of thousands of clones of one queue (a task per connection, each with its
    /// clone). Always taken back before the slot's own count, so that the slot counts at
    /// least one handle while this process holds any (see [`Handle::clone`]).
    overflow: [AtomicU64; 2],
    on_release: fn(NonNull<u8>),
}

/// A counted reference to a shared object, in one role.
pub(crate) struct Handle {
    shared: Arc<Shared>,
    role: usize,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("fd", &self.shared.segment.fd())
            .field("role", &self.role)
            .field("slot", &self.shared.slot.load(Ordering::Relaxed))
            .finish()
    }
}

static HOOKS: std::sync::Once = std::sync::Once::new();

fn install_fork_hook() {
    HOOKS.call_once(|| {
        // Without the hook a fork child would keep its parent's cached pid; report the
        // (never seen) failure instead of failing every non-forking program.
        // SAFETY: `fork_child` makes one getpid call and one atomic store, both
        // async-signal-safe, as the hook's contract asks (multiproc-sync holds the workspace's
        // one `pthread_atfork` wrapper).
        if let Err(e) = unsafe { multiproc_sync::raw::on_fork_child(fork_child) } {
            eprintln!("multiproc: cannot install the fork hook: {e}");
        }
    });
}

unsafe extern "C" fn fork_child() {
    sys::refresh_pid();
}

/// This process's id, from the cache that the fork hook keeps right (installing the hook on
/// first use): what `proc_stat::pid` gives the workspace's other crates.
pub(crate) fn current_pid() -> u32 {
    install_fork_hook();
    sys::pid()
}

fn header(segment: &Segment) -> &SegmentHeader {
    // SAFETY: every mapped segment is at least OBJECT_OFFSET long (checked in `create` and
    // `attach`), page 0 is a `SegmentHeader` whose plain fields were written before the segment
    // was shared and whose slots are atomics.
    unsafe { segment.base().cast::<SegmentHeader>().as_ref() }
}

impl Shared {
    /// Our slot; registers one (holding `first` handles) if this process has none yet (a fork
    /// child using an inherited handle). `None` if the table is full.
    fn slot(&self, first: [u64; 2]) -> Option<usize> {
        let me = sys::pid();
        if self.owner.load(Ordering::Acquire) == me {
            return Some(self.slot.load(Ordering::Relaxed));
        }
        let _one_at_a_time = REGISTER.lock();
        if self.owner.load(Ordering::Acquire) == me {
            return Some(self.slot.load(Ordering::Relaxed));
        }
        let slot = header(&self.segment).register(first).ok()?;
        self.slot.store(slot, Ordering::Relaxed);
        // A fork child's copy of its parent's overflow counts the parent's handles.
        for o in &self.overflow {
            o.store(0, Ordering::Relaxed);
        }
        self.owner.store(me, Ordering::Release);
        Some(slot)
    }

    /// Whether this process holds more handles of `role` than its slot counts.
    fn overflowing(&self, role: usize) -> bool {
        self.owner.load(Ordering::Acquire) == sys::pid()
            && self.overflow[role].load(Ordering::Relaxed) > 0
    }

    /// One more handle of `role` than the slot counts, when our slot is registered (its count
    /// is then what refused it); `false` otherwise.
    fn count_beyond_the_slot(&self, role: usize) -> bool {
        let me = sys::pid();
        let slot = self.slot.load(Ordering::Relaxed);
        let ours = self.owner.load(Ordering::Acquire) == me
            && header(&self.segment)
                .slots
                .get(slot)
                .is_some_and(|c| slot_pid(c.load(Ordering::Relaxed)) == me);
        if ours {
            self.overflow[role].fetch_add(1, Ordering::Relaxed);
        }
        ours
    }

    /// Takes one handle of `role` back from the overflow, if it holds any (see `overflow`).
    fn uncount_beyond_the_slot(&self, role: usize) -> bool {
        self.overflowing(role)
            && self.overflow[role]
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

/// Serializes late registrations of one process (fork children), which are rare.
static REGISTER: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// The objects this process has mapped, by the identity of their file: a handle that arrives
/// for an object already mapped here shares that mapping (and channel) instead of mapping
/// another reserve (a ring's is 64 GiB of address space: a process that kept a few thousand
/// separate mappings of received queues would run out of it). A fork child inherits the
/// table with the mappings it describes.
static MAPPED: parking_lot::Mutex<Option<HashMap<sys::FileId, Weak<Shared>>>> =
    parking_lot::const_mutex(None);

/// The live mapping of the file `id` in this process, if there is one.
fn mapped(id: sys::FileId) -> Option<Arc<Shared>> {
    MAPPED.lock().as_ref()?.get(&id)?.upgrade()
}

/// Runs `f` on the descriptor of this process's mapping of the file with device `dev` and
/// inode `ino`, if it has one (a named segment's last-holder check, from `on_release`, which
/// gets only the base address).
pub(crate) fn with_mapped_fd<R>(
    dev: u64,
    ino: u64,
    f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> R,
) -> Option<R> {
    let shared = {
        let table = MAPPED.lock();
        table
            .as_ref()?
            .iter()
            .find(|((d, i, _), _)| (*d, *i) == (dev, ino))
            .and_then(|(_, w)| w.upgrade())?
    };
    // The table's lock is released: `f` may take its time, and dropping `shared` (the last
    // reference, if the handle went meanwhile) does not come back here.
    Some(f(shared.segment.fd()))
}

/// Records a new mapping (and forgets the dead ones now and then).
fn remember(id: sys::FileId, shared: &Arc<Shared>) {
    let mut table = MAPPED.lock();
    let table = table.get_or_insert_with(HashMap::new);
    if table.len() >= 64 && table.len().is_power_of_two() {
        table.retain(|_, w| w.strong_count() > 0);
    }
    table.insert(id, Arc::downgrade(shared));
}

impl SegmentHeader {
    /// Takes a free (or dead) slot for this process with `counts` handles.
    fn register(&self, counts: [u64; 2]) -> io::Result<usize> {
        let me = sys::pid();
        let new = pack(me, counts);
        self.raise(counts[0], counts[1], 0);
        for reclaim_dead in [false, true] {
            for (i, cell) in self.slots.iter().enumerate() {
                let v = cell.load(Ordering::Relaxed);
                let pid = slot_pid(v);
                let free = pid == 0 || (reclaim_dead && pid != me && sys::is_dead(pid));
                if free
                    && cell
                        .compare_exchange(v, new, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    // The dead holder's counts leave the totals with its slot.
                    self.lower(slot_count(v, 0), slot_count(v, 1), slot_count(v, BLOCKED));
                    return Ok(i);
                }
            }
        }
        self.lower(counts[0], counts[1], 0);
        Err(io::Error::other(format!(
            "more than {SLOTS} live processes hold this object"
        )))
    }

    fn raise(&self, a: u64, b: u64, c: u64) {
        for (t, d) in self.totals.iter().zip([a, b, c]) {
            if d != 0 {
                t.fetch_add(d, Ordering::AcqRel);
            }
        }
    }

    fn lower(&self, a: u64, b: u64, c: u64) {
        for (t, d) in self.totals.iter().zip([a, b, c]) {
            if d != 0 {
                t.fetch_sub(d, Ordering::AcqRel);
            }
        }
    }

    fn unit(field: usize, n: u64) -> (u64, u64, u64) {
        match field {
            0 => (n, 0, 0),
            1 => (0, n, 0),
            _ => (0, 0, n),
        }
    }

    /// Adds `delta` to field `role` of slot `i` while it belongs to `pid`; false when the
    /// slot no longer does (or the count would leave 0..=COUNT_MAX). Frees the slot when both
    /// handle counts reach zero and `free_when_empty`.
    fn adjust(&self, i: usize, pid: u32, role: usize, delta: i64, free_when_empty: bool) -> bool {
        let Some(cell) = self.slots.get(i) else {
            return false;
        };
        let (a, b, c) = Self::unit(role, delta.unsigned_abs());
        if delta > 0 {
            self.raise(a, b, c);
        }
        let mut v = cell.load(Ordering::Relaxed);
        let done = loop {
            if slot_pid(v) != pid {
                break false;
            }
            let n = slot_count(v, role) as i64 + delta;
            if !(0..=COUNT_MAX as i64).contains(&n) {
                break false;
            }
            let mut new = (v & !(COUNT_MAX << SHIFT[role])) | ((n as u64) << SHIFT[role]);
            if free_when_empty && new & ((1 << PID_SHIFT) - 1) == 0 {
                new = 0;
            }
            match cell.compare_exchange_weak(v, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break true,
                Err(cur) => v = cur,
            }
        };
        if delta > 0 && !done || delta < 0 && done {
            self.lower(a, b, c);
        }
        done
    }

    /// Handles of `role` held by live processes (reads `/proc` for every other holder).
    fn live_count(&self, role: usize) -> u64 {
        let me = sys::pid();
        self.slots
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .filter(|&v| {
                let pid = slot_pid(v);
                slot_count(v, role) > 0 && (pid == me || !sys::is_dead(pid))
            })
            .map(|v| slot_count(v, role))
            .sum()
    }

    /// Handles of `role` in any slot, dead or alive (one load; possibly too high after a
    /// holder was killed mid-update, never too low).
    fn count_any(&self, role: usize) -> u64 {
        self.totals[role].load(Ordering::Acquire)
    }
}

impl Handle {
    /// Creates a segment for `S` (zeroed, then `init`), `len` bytes long inside `reserve`,
    /// and returns the first handle, in `role`.
    pub(crate) fn create<S: SharedState>(
        len: usize,
        reserve: usize,
        role: usize,
        init: impl FnOnce(&S, &Segment),
        on_release: fn(NonNull<u8>),
    ) -> io::Result<Handle> {
        let len = len.max(OBJECT_OFFSET + std::mem::size_of::<S>());
        let segment = Segment::create("multiproc", len, reserve)?;
        Self::create_in(segment, role, init, on_release)
    }

    /// Like [`create`](Self::create) in a segment made by the caller (zero-filled, at least
    /// `OBJECT_OFFSET + size_of::<S>()` long): `init` runs first, then the header is written,
    /// then this process registers, so whoever recognises the header (a named segment's
    /// sweeper) can synchronise with `init` (which may take a lock in `S` that the caller
    /// releases once this returns).
    pub(crate) fn create_in<S: SharedState>(
        segment: Segment,
        role: usize,
        init: impl FnOnce(&S, &Segment),
        on_release: fn(NonNull<u8>),
    ) -> io::Result<Handle> {
        let len = sys::file_len(segment.fd())?;
        if len < OBJECT_OFFSET + std::mem::size_of::<S>() || len > segment.reserve() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: `S: SharedState` is valid all-zero, and the file covers it (checked above).
        init(unsafe { object_of::<S>(&segment) }, &segment);
        let reserve = segment.reserve();
        // SAFETY: page 0 lies inside the file. A named segment can be seen by others from
        // now on: they read the plain fields only after an acquire load of `magic` (`holds`)
        // sees the value that the release store below publishes, last.
        unsafe {
            let h = segment.base().cast::<SegmentHeader>().as_ptr();
            (&raw mut (*h).kind).write(S::KIND as u32);
            (&raw mut (*h).reserve).write(reserve as u64);
            (&raw mut (*h).object_len).write(std::mem::size_of::<S>() as u64);
            AtomicU64::from_ptr(&raw mut (*h).magic).store(MAGIC, Ordering::Release);
        }
        let channel = if S::KIND.has_channel() {
            Some(Channel::new()?)
        } else {
            None
        };
        let shared = Shared {
            segment,
            channel,
            slot: AtomicUsize::new(NO_SLOT),
            owner: AtomicU32::new(0),
            overflow: Default::default(),
            on_release,
        };
        Self::adopt(shared, role)
    }

    /// A handle to a segment that another process created for `S` and that this one opened
    /// by other means than a handle transfer (a named segment opened by name): checks the
    /// header, then registers this process.
    /// On failure the segment comes back, so that the caller can still undo what it did in
    /// it (release a lock it took there).
    pub(crate) fn open_in<S: SharedState>(
        segment: Segment,
        role: usize,
        on_release: fn(NonNull<u8>),
    ) -> Result<Handle, (io::Error, Segment)> {
        if !holds::<S>(&segment) {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a multiproc {:?} segment", S::KIND),
            );
            return Err((e, segment));
        }
        install_fork_hook();
        let shared = Shared {
            segment,
            channel: None,
            slot: AtomicUsize::new(NO_SLOT),
            owner: AtomicU32::new(0),
            overflow: Default::default(),
            on_release,
        };
        let mut counts = [0, 0];
        counts[role.min(1)] = 1;
        if shared.slot(counts).is_none() {
            let e = io::Error::other(format!("more than {SLOTS} live processes hold this object"));
            return Err((e, shared.segment));
        }
        let shared = Arc::new(shared);
        // Found again by `with_mapped_fd` when the handle goes.
        if let Ok(id) = sys::fd_id(shared.segment.fd()) {
            remember(id, &shared);
        }
        Ok(Handle {
            shared,
            role: role.min(1),
        })
    }

    fn adopt(shared: Shared, role: usize) -> io::Result<Handle> {
        install_fork_hook();
        let mut counts = [0, 0];
        counts[role] = 1;
        if shared.slot(counts).is_none() {
            return Err(io::Error::other(format!(
                "more than {SLOTS} live processes hold this object"
            )));
        }
        let shared = Arc::new(shared);
        if let Ok(id) = sys::fd_id(shared.segment.fd()) {
            remember(id, &shared);
        }
        Ok(Handle { shared, role })
    }

    /// Makes sure this process counts as a holder (a fork child's first use of an inherited
    /// handle registers it). One load and compare when it already does.
    #[inline]
    pub(crate) fn touch(&self) {
        if self.shared.owner.load(Ordering::Relaxed) != sys::pid() {
            self.register_late();
        }
    }

    #[cold]
    fn register_late(&self) {
        let mut counts = [0, 0];
        counts[self.role] = 1;
        let _ = self.shared.slot(counts);
    }

    /// The object's state.
    #[inline]
    pub(crate) fn state<S: SharedState>(&self) -> &S {
        // SAFETY: handles are only made for segments created for (or checked to hold) an `S`
        // of this kind; see `create` and `receive`.
        unsafe { object_of::<S>(&self.shared.segment) }
    }

    /// The segment (for objects whose data follows the state).
    #[inline]
    pub(crate) fn segment(&self) -> &Segment {
        &self.shared.segment
    }

    /// This handle's role.
    #[inline]
    pub(crate) fn role(&self) -> usize {
        self.role
    }

    /// Another handle to the same attachment, in `role`.
    pub(crate) fn with_role(&self, role: usize) -> io::Result<Handle> {
        self.touch();
        let hdr = header(&self.shared.segment);
        let mut slot = self.shared.slot.load(Ordering::Relaxed);
        if slot_pid(hdr.slots.get(slot).map_or(0, |c| c.load(Ordering::Relaxed))) != sys::pid() {
            // Our slot was freed when our last counted handle went (a fork child's inherited
            // copies are not counted): register again.
            self.shared.owner.store(0, Ordering::Release);
            self.touch();
            slot = self.shared.slot.load(Ordering::Relaxed);
        }
        if !hdr.adjust(slot, sys::pid(), role, 1, false) {
            return Err(io::Error::other(
                "too many handles to one shared object in this process",
            ));
        }
        Ok(Handle {
            shared: Arc::clone(&self.shared),
            role,
        })
    }

    /// A handle that arrived for an object this process has mapped already: one more counted
    /// handle in `role` on that mapping.
    fn on_mapping(shared: Arc<Shared>, role: usize) -> io::Result<Handle> {
        let me = sys::pid();
        let hdr = header(&shared.segment);
        let slot = shared.slot.load(Ordering::Relaxed);
        let ours = shared.owner.load(Ordering::Acquire) == me
            && slot_pid(hdr.slots.get(slot).map_or(0, |c| c.load(Ordering::Relaxed))) == me;
        if ours {
            if !hdr.adjust(slot, me, role, 1, false) && !shared.count_beyond_the_slot(role) {
                return Err(io::Error::other(
                    "too many handles to one shared object in this process",
                ));
            }
        } else {
            // No counted handle here yet (all dropped, or only a fork child's inherited
            // copies): register a slot holding this one.
            shared.owner.store(0, Ordering::Release);
            let mut counts = [0, 0];
            counts[role] = 1;
            if shared.slot(counts).is_none() {
                return Err(io::Error::other(format!(
                    "more than {SLOTS} live processes hold this object"
                )));
            }
        }
        Ok(Handle { shared, role })
    }

    /// Whether a live process (this one included) holds a handle of `role` other than this
    /// one. Cheap when the answer is "no" without looking at liveness; otherwise reads `/proc`
    /// for each other holder: call it on slow paths.
    pub(crate) fn others_alive(&self, role: usize) -> bool {
        self.touch();
        let hdr = header(&self.shared.segment);
        let mine = u64::from(role == self.role);
        if self.shared.overflowing(role) {
            // More handles of `role` here than a slot counts: others than this one.
            return true;
        }
        if hdr.count_any(role) <= mine {
            return false;
        }
        hdr.live_count(role) > mine
    }

    /// Handles of `role` in any slot, dead or alive (no system calls).
    pub(crate) fn count_any(&self, role: usize) -> u64 {
        header(&self.shared.segment).count_any(role)
    }

    /// Marks this (role-0) handle as waiting inside a `get` on an empty queue, or no longer.
    /// A handle blocked in `get` cannot put: when every live handle of a queue is, nobody ever
    /// will, and all of them answer `Closed` (the classic "consumers wait for each other"
    /// deadlock of a worker pool whose producers have finished).
    pub(crate) fn set_blocked(&self, on: bool) {
        self.touch();
        let slot = self.shared.slot.load(Ordering::Relaxed);
        let delta = if on { 1 } else { -1 };
        header(&self.shared.segment).adjust(slot, sys::pid(), BLOCKED, delta, false);
    }

    /// Whether some live role-0 handle is not blocked in a `get` (call while this handle is
    /// marked blocked): someone who could still put. Slow path (reads `/proc`).
    pub(crate) fn putters_alive(&self) -> bool {
        let hdr = header(&self.shared.segment);
        if self.shared.overflowing(0) {
            // Handles the slot does not count, blocked or not: assume one could put.
            return true;
        }
        if hdr.count_any(0) <= hdr.count_any(BLOCKED) {
            return false;
        }
        hdr.live_count(0) > hdr.live_count(BLOCKED)
    }

    /// Live handles of `role`, all processes (slow: see [`Handle::others_alive`]).
    #[cfg(test)]
    pub(crate) fn live_holders(&self, role: usize) -> u64 {
        let beyond = if self.shared.overflowing(role) {
            self.shared.overflow[role].load(Ordering::Relaxed)
        } else {
            0
        };
        header(&self.shared.segment).live_count(role) + beyond
    }

    /// Receives a handle from another process (inside `Deserialize`, with the descriptors of
    /// the message available through `handoff`).
    pub(crate) fn receive<S: SharedState>(
        wire: &WireHandle,
        on_release: fn(NonNull<u8>),
    ) -> Result<Handle, String> {
        let fd = handoff::recv_fd(wire.fd)?;
        if wire.role <= 1
            && let Some(shared) = sys::fd_id(fd.as_fd()).ok().and_then(mapped)
        {
            // Already mapped here: the new descriptors are not needed.
            if let Some([tx, rx]) = wire.chan {
                drop((handoff::recv_fd(tx)?, handoff::recv_fd(rx)?));
            }
            let kind = header(&shared.segment).kind;
            if kind != S::KIND as u32 {
                return Err(format!(
                    "the descriptor is not a multiproc {:?} (kind {kind})",
                    S::KIND
                ));
            }
            if wire.chan.is_some() != S::KIND.has_channel() {
                return Err("a handle arrived with the wrong descriptors".to_owned());
            }
            let handle =
                Self::on_mapping(shared, usize::from(wire.role)).map_err(|e| e.to_string())?;
            header(&handle.shared.segment).adjust(
                wire.from_slot as usize,
                wire.from_pid,
                usize::from(wire.role),
                -1,
                true,
            );
            return Ok(handle);
        }
        let reserve = usize::try_from(wire.reserve).map_err(|e| e.to_string())?;
        let min = OBJECT_OFFSET + std::mem::size_of::<S>();
        let segment = Segment::attach(fd, reserve, min).map_err(|e| e.to_string())?;
        let hdr = header(&segment);
        if hdr.magic != MAGIC
            || hdr.kind != S::KIND as u32
            || hdr.reserve != wire.reserve
            || hdr.object_len != std::mem::size_of::<S>() as u64
            || wire.role > 1
        {
            return Err(format!(
                "the descriptor is not a multiproc {:?} (kind {}, built by another version?)",
                S::KIND,
                hdr.kind
            ));
        }
        let channel = match (S::KIND.has_channel(), wire.chan) {
            (true, Some([tx, rx])) => Some(Channel::from_fds(
                handoff::recv_fd(tx)?,
                handoff::recv_fd(rx)?,
            )?),
            (false, None) => None,
            _ => return Err("a handle arrived with the wrong descriptors".to_owned()),
        };
        let shared = Shared {
            segment,
            channel,
            slot: AtomicUsize::new(NO_SLOT),
            owner: AtomicU32::new(0),
            overflow: Default::default(),
            on_release,
        };
        let handle = Self::adopt(shared, usize::from(wire.role)).map_err(|e| e.to_string())?;
        // Now that we count as a holder, the sender's in-flight count can go.
        let hdr = header(&handle.shared.segment);
        hdr.adjust(
            wire.from_slot as usize,
            wire.from_pid,
            usize::from(wire.role),
            -1,
            true,
        );
        Ok(handle)
    }

    /// Describes this handle for another process (inside `Serialize`): the descriptors (the
    /// segment's, and a ring's channel) go into the transfer under way, and the handle counts
    /// as held by us until the receiver has registered. Inside a queue item or pipe message,
    /// the count is taken back if the item is not delivered (`handoff::on_undo`, undone by the
    /// codec).
    pub(crate) fn send(&self) -> Result<WireHandle, String> {
        self.touch();
        let fd = handoff::send_fd(self.shared.segment.fd().as_fd())?;
        let chan = match &self.shared.channel {
            Some(c) => {
                let [tx, rx] = c.fds();
                Some([handoff::send_fd(tx)?, handoff::send_fd(rx)?])
            }
            None => None,
        };
        let slot = self.shared.slot.load(Ordering::Relaxed);
        let me = sys::pid();
        if !header(&self.shared.segment).adjust(slot, me, self.role, 1, false) {
            // A handle in flight is counted in our slot until the receiver takes the count
            // over, and the slot holds at most COUNT_MAX a role (the overflow past it is
            // local to this process: a receiver could not take a count from there).
            return Err(handoff::refuse(io::Error::other(format!(
                "this process holds more handles to one shared object than it can send one of \
                 ({COUNT_MAX} a role, those in flight included): drop some of its clones first"
            ))));
        }
        let sent = Sent {
            shared: Arc::clone(&self.shared),
            slot,
            role: self.role,
        };
        // Taken back if the transfer under way is undone: a queue item or pipe message whose
        // put fails (the codec's transfer), or spawn arguments of a child that never starts.
        handoff::on_undo(move || sent.take_back());
        Ok(WireHandle {
            fd,
            chan,
            reserve: self.shared.segment.reserve() as u64,
            role: self.role as u8,
            from_pid: me,
            from_slot: slot as u32,
        })
    }

    /// The ring's descriptor channel (rings only).
    #[inline]
    pub(crate) fn channel(&self) -> Option<&Channel> {
        self.shared.channel.as_ref()
    }
}

/// A handle serialized for another process: its in-flight count, to take back if the transfer
/// is not delivered.
struct Sent {
    shared: Arc<Shared>,
    slot: usize,
    role: usize,
}

impl Sent {
    /// Takes back the count that [`Handle::send`] added (the item did not go out).
    fn take_back(self) {
        header(&self.shared.segment).adjust(self.slot, sys::pid(), self.role, -1, true);
    }
}

/// Whether `segment` (mapped at least `OBJECT_OFFSET + size_of::<S>()` long, file included)
/// carries a finished header for an `S` of this build.
pub(crate) fn holds<S: SharedState>(segment: &Segment) -> bool {
    let min = OBJECT_OFFSET + std::mem::size_of::<S>();
    if segment.reserve() < min || sys::file_len(segment.fd()).is_ok_and(|l| l < min) {
        return false;
    }
    let hdr = header(segment);
    // SAFETY: `magic` is an aligned u64 in the mapped header page; it is written only by
    // the atomic store in `create_in` (a named segment may be set up while we look).
    let magic = unsafe { AtomicU64::from_ptr((&raw const hdr.magic).cast_mut()) };
    magic.load(Ordering::Acquire) == MAGIC
        && hdr.kind == S::KIND as u32
        && hdr.object_len == std::mem::size_of::<S>() as u64
}

/// Whether `segment`'s header page is neither blank (being set up) nor a multiproc header:
/// the file is someone else's.
pub(crate) fn foreign(segment: &Segment) -> bool {
    let hdr = header(segment);
    // SAFETY: as in `holds`.
    let magic = unsafe { AtomicU64::from_ptr((&raw const hdr.magic).cast_mut()) };
    !matches!(magic.load(Ordering::Acquire), 0 | MAGIC)
}

/// Whether a live process holds any handle to `segment` (reads `/proc` for each holder).
pub(crate) fn anyone_alive(segment: &Segment) -> bool {
    let hdr = header(segment);
    hdr.live_count(0) + hdr.live_count(1) > 0
}

/// [`anyone_alive`] for the segment mapped at `base` (from an `on_release` callback).
///
/// # Safety
/// `base` is the start of a live mapping of a multiproc segment (its header page mapped).
pub(crate) unsafe fn anyone_alive_at(base: NonNull<u8>) -> bool {
    // SAFETY: per the contract, page 0 is a `SegmentHeader` of atomics and written-once fields.
    let hdr = unsafe { base.cast::<SegmentHeader>().as_ref() };
    hdr.live_count(0) + hdr.live_count(1) > 0
}

/// The object of a segment checked with [`holds`], for callers that must use it before a
/// handle exists (to lock it around registration).
///
/// # Safety
/// The segment must hold an `S` at `OBJECT_OFFSET` inside its file; the reference must not
/// outlive the mapping.
pub(crate) unsafe fn object_in<'a, S: SharedState>(segment: &Segment) -> &'a S {
    // SAFETY: per the contract, and `S` is atomics valid for concurrent access.
    unsafe { segment.base().add(OBJECT_OFFSET).cast::<S>().as_ref() }
}

/// # Safety
/// The segment must hold an `S` at `OBJECT_OFFSET` inside its file.
unsafe fn object_of<S: SharedState>(segment: &Segment) -> &S {
    // SAFETY: per the contract; `S` is atomics (valid for concurrent access from other
    // processes) and OBJECT_OFFSET is page aligned, so aligned for any `S`.
    unsafe { segment.base().add(OBJECT_OFFSET).cast::<S>().as_ref() }
}

impl Clone for Handle {
    /// Counts one more handle in this process's slot; past the [`COUNT_MAX`] handles of a
    /// role that the slot holds, in the process-local overflow instead. The slot then stays
    /// at its maximum until the overflow is empty again (drops take from the overflow first),
    /// so other processes see this one as a holder for as long as it holds any handle.
    fn clone(&self) -> Handle {
        match self.with_role(self.role) {
            Ok(h) => h,
            Err(_) if self.shared.count_beyond_the_slot(self.role) => Handle {
                shared: Arc::clone(&self.shared),
                role: self.role,
            },
            // No slot left for this process to register in (a fork child's first use of an
            // inherited handle, with the object held by 504 live processes at once).
            Err(e) => panic!("cannot count another handle to a shared object: {e}"),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.shared.uncount_beyond_the_slot(self.role) {
            // The slot still counts this process: nobody is left alone by this drop.
            return;
        }
        // A fork child's inherited copy that it never used counts for nothing: the pid check
        // in `adjust` leaves our parent's slot alone.
        let slot = self.shared.slot.load(Ordering::Relaxed);
        header(&self.shared.segment).adjust(slot, sys::pid(), self.role, -1, true);
        // Waiters of the other side may now be alone: let them look.
        (self.shared.on_release)(self.shared.segment.base());
    }
}

/// A handle as it travels: the descriptors' indices in the message (the segment's, and a
/// ring's channel: sending end, receiving end), and who vouches for it until the receiver has
/// registered.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireHandle {
    fd: u32,
    chan: Option<[u32; 2]>,
    reserve: u64,
    role: u8,
    from_pid: u32,
    from_slot: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::Kind;

    #[repr(C)]
    struct Probe {
        word: AtomicU32,
    }
    // SAFETY: one atomic; all-zero is valid.
    unsafe impl SharedState for Probe {
        const KIND: Kind = Kind::Value;
    }

    fn noop(_: NonNull<u8>) {}

    #[test]
    fn counts_follow_clones_and_drops() {
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        assert!(!h.others_alive(0));
        let h2 = h.clone();
        assert!(h.others_alive(0) && h2.others_alive(0));
        let r = h.with_role(1).unwrap();
        assert!(h.others_alive(1) && !r.others_alive(1));
        drop(h2);
        assert!(!h.others_alive(0));
        assert_eq!(h.live_holders(1), 1);
        h.state::<Probe>().word.store(5, Ordering::Relaxed);
        assert_eq!(r.state::<Probe>().word.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn handles_past_what_a_slot_counts_are_counted_and_given_back() {
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        let many = COUNT_MAX as usize + 100;
        let mut clones: Vec<Handle> = (0..many).map(|_| h.clone()).collect();
        assert_eq!(h.live_holders(0), many as u64 + 1);
        assert!(h.shared.overflowing(0));
        assert!(h.others_alive(0));
        // Drops take from the overflow first: the slot keeps counting this process.
        clones.truncate(5);
        assert!(!h.shared.overflowing(0));
        assert_eq!(h.live_holders(0), 6);
        assert!(h.others_alive(0));
        drop(clones);
        assert_eq!(h.live_holders(0), 1);
        assert!(!h.others_alive(0));
    }

    #[test]
    fn threads_cloning_and_dropping_across_the_slot_maximum_leave_the_count_exact() {
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        // Just under the maximum: the threads below cross it in both directions all the time.
        let base: Vec<Handle> = (0..COUNT_MAX as usize - 50).map(|_| h.clone()).collect();
        std::thread::scope(|s| {
            for t in 0..4 {
                let h = &h;
                s.spawn(move || {
                    for round in 0..200 {
                        let n = 20 + (t * 7 + round) % 60;
                        let held: Vec<Handle> = (0..n).map(|_| h.clone()).collect();
                        assert!(h.others_alive(0));
                        drop(held);
                    }
                });
            }
        });
        assert_eq!(h.live_holders(0), COUNT_MAX - 49);
        drop(base);
        assert_eq!(h.live_holders(0), 1);
        assert!(!h.others_alive(0));
    }

    #[test]
    fn wire_round_trip_hands_the_count_over() {
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        let (wire, fds) = handoff::collect_fds(|| h.send());
        let wire = wire.unwrap();
        assert_eq!(h.live_holders(0), 2, "in flight counts as held");
        let got = handoff::with_received_fds(fds, || Handle::receive::<Probe>(&wire, noop));
        let got = got.unwrap();
        assert_eq!(
            h.live_holders(0),
            2,
            "sender's in-flight count moved to the receiver"
        );
        drop(got);
        assert!(!h.others_alive(0));
    }

    #[test]
    fn a_handle_received_for_a_mapped_object_shares_its_mapping() {
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        let mut received = Vec::new();
        for _ in 0..3 {
            let (wire, fds) = handoff::collect_fds(|| h.send());
            let got =
                handoff::with_received_fds(fds, || Handle::receive::<Probe>(&wire.unwrap(), noop));
            received.push(got.unwrap());
        }
        // One mapping, and the counts add up: four handles, none in flight.
        for r in &received {
            assert!(Arc::ptr_eq(&r.shared, &h.shared));
        }
        // Four counted handles in one slot, none left in flight.
        assert_eq!(h.live_holders(0), 4);
        let slot = h.shared.slot.load(Ordering::Relaxed);
        let cell = header(&h.shared.segment).slots[slot].load(Ordering::Relaxed);
        assert_eq!(slot_count(cell, 0), 4);
        drop(received);
        assert_eq!(h.live_holders(0), 1);
    }

    #[test]
    fn a_wrong_kind_is_refused() {
        #[repr(C)]
        struct Other {
            word: AtomicU32,
        }
        // SAFETY: one atomic; all-zero is valid.
        unsafe impl SharedState for Other {
            const KIND: Kind = Kind::Queue;
        }
        let h = Handle::create::<Probe>(0, 1 << 16, 0, |_, _| {}, noop).unwrap();
        let (wire, fds) = handoff::collect_fds(|| h.send());
        let err =
            handoff::with_received_fds(fds, || Handle::receive::<Other>(&wire.unwrap(), noop));
        assert!(err.unwrap_err().contains("not a multiproc"));
        let _ = Other {
            word: AtomicU32::new(0),
        }
        .word;
    }
}
