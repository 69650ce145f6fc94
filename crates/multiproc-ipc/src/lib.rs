//! Shared memory between processes, and everything that lives in it: [`Queue`],
//! [`JoinableQueue`], [`SimpleQueue`] and [`Pipe`]/[`Connection`] (Python's
//! `multiprocessing.queues` and `.connection`); process-shared [`Lock`], [`RLock`],
//! [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`] and [`Barrier`]
//! (`.synchronize`), [`Value`] and [`Array`] (`.sharedctypes`), and named
//! [`shared_memory::SharedMemory`] (`.shared_memory`).
//!
//! # Design
//!
//! - **Segments** are anonymous `memfd` files mapped shared, so their memory is freed when the
//!   last holder exits, `kill -9` included, and nothing appears in `/dev/shm`. Each maps a
//!   large address-space reserve once; the file grows and shrinks inside it, so growing a queue
//!   needs no remapping anywhere. A handle travels to a child as its descriptor, inherited
//!   under `fork` and passed over the start-up socket under spawn and fork-server.
//! - **Holders.** Page 0 of a segment counts which processes hold handles, one packed atomic
//!   word per process (its pid, its handles in each role, and how many of them wait in a
//!   queue's `get`); a waiter with no deadline whose peers are all gone (dropped, or dead:
//!   `/proc` says so even for an unreaped zombie), or, for a queue, all waiting in `get`
//!   themselves, gets `Err(Closed)` instead of waiting for ever. Timed waits keep Python's
//!   answers (`Empty`, `Full`).
//! - **The ring** (one per queue, one per pipe direction) stores variable-size records; a
//!   producer commits a record with one release store of its header word, which is the word
//!   a waiting consumer polls (so a hand-off moves one cache line), after zeroing the header
//!   word past it; a consumer commits by moving `head` after reading the record. A process
//!   killed mid-call loses at most the item it held. Producers share a robust put lock,
//!   consumers a robust get lock (a dead holder is replaced). A record larger than the ring
//!   makes it grow inside an address-space reserve (1/16 of what the process may still map,
//!   1 MiB to 64 GiB, so `ulimit -v` is respected); an emptied large ring gives its
//!   memory back.
//! - **Blocking** spins for about the cost of a futex wake-up (~50 µs), then sleeps on a
//!   futex word in the segment; the waking side pays a system call only when someone sleeps.
//!   A sleeper wakes every 20 ms to check that its peers still live.
//! - **Locks, events, values** are the thread toolbox's state-word algorithms
//!   ([`multiproc_sync::raw`]) in a segment of their own, on the process-shared futex; the
//!   uncontended paths make no system call. Lock words are robust: a waiter takes over the
//!   lock of an owner that died (`kill -9` included) and its guard reports
//!   `previous_owner_died()`; a party that dies inside a [`Barrier`] breaks it for the others.
//! - **Named segments** ([`shared_memory`]) live in `/dev/shm` with the same holder table;
//!   the last holder to go unlinks the name, and `create`/`open` sweep away segments whose
//!   holders were all killed.
//! - **Handles travel** to children inside their spawn arguments, under every start method
//!   (their descriptors ride along, see `multiproc_spawn::handoff`), and inside queue items
//!   and pipe messages to processes that are already running. Every ring has a *descriptor
//!   channel* beside it, a pair of Unix datagram sockets that travels with it; a `put` of an
//!   item with handles sends their descriptors there, under the put lock and tagged with the
//!   record's position, so they lie in record order, and the `get` that takes the record
//!   takes them. Items without handles never touch it. A handle in flight counts as held by
//!   its sender until the receiver has registered, or until the sender exits: a child killed
//!   before it decoded its arguments, or an item that is never taken, leaves the object
//!   counted as held by the sender for as long as the sender lives (a documented limit).
//!
//! The process pools of [`multiproc_pool`](../multiproc_pool/index.html) are built on these
//! queues: one task queue per worker and one result queue per pool, carrying raw bytes.
//!
//! ```
//! use multiproc_ipc::Queue;
//! let q: Queue<(u32, String)> = Queue::new()?;
//! q.put((1, "one".into()))?;
//! assert_eq!(q.get()?, (1, "one".to_string()));
//!
//! // Handles travel inside items too: here a reply queue, sent through a queue.
//! let requests: Queue<(u32, Queue<u32>)> = Queue::new()?;
//! let replies = Queue::new()?;
//! requests.put((20, replies.clone()))?;
//! let (n, reply_to) = requests.get()?; // in a server process, typically
//! reply_to.put(n + 1)?;
//! assert_eq!(replies.get()?, 21);
//! # Ok::<(), multiproc_sync::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
// `cargo xtask loom` builds the crate with its atomics, locks and wake-ups swapped for loom's
// models (as tokio does under `cfg(loom)`): what only the real build calls is unused there.
#![cfg_attr(multiproc_loom, allow(dead_code, unused_imports))]

mod sys;

mod buffer;
mod error;
mod pipe;
mod queue;
mod ring;
pub mod shared_memory;
mod shm;
mod sync;
mod value;
mod wait;

pub use buffer::SharedBuffer;
pub use multiproc_sync::{Error, Result};
pub use pipe::{Connection, Pipe};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock,
    RLockGuard, Semaphore,
};
pub use value::{Array, ArrayGuard, Plain, Value, ValueGuard};

/// Not API: the workspace's one reader of `/proc/<pid>/stat` (liveness and start time) and its
/// one fork-proof cached process id, public for `multiproc-manager`, hidden from the docs and
/// free to change in any release.
#[doc(hidden)]
pub mod proc_stat {
    pub use crate::sys::{Task, task};

    /// This process's id, cached (one relaxed load), right in a fork child too.
    #[inline]
    pub fn pid() -> u32 {
        crate::shm::holders::current_pid()
    }
}

/// The most processes that can hold one shared object (a queue, pipe, lock, value…) at the
/// same time; the next gets `Err(Io)` ("more than … live processes hold this object"). The
/// slots of processes that have died are reused. A pool's result queue is held by every
/// worker and by the parent, so a process pool has at most `MAX_HOLDERS - 1` workers.
///
/// ```
/// assert!(multiproc_ipc::MAX_HOLDERS > 256);
/// ```
pub const MAX_HOLDERS: usize = shm::holders::SLOTS;
