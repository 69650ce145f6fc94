//! Shared memory between processes, and everything that lives in it: [`Queue`],
//! [`JoinableQueue`], [`SimpleQueue`] and [`Pipe`]/[`Connection`] (Python's
//! `multiprocessing.queues` and `.connection`).
//!
//! # Design
//!
//! - **Segments** are anonymous `memfd` files mapped shared, so their memory is freed when the
//!   last holder exits, `kill -9` included, and nothing appears in `/dev/shm`. Each maps a
//!   large address-space reserve once; the file grows and shrinks inside it, so growing a queue
//!   needs no remapping anywhere. A handle travels to a child as its descriptor, inherited
//!   under `fork` and passed over the start-up socket under spawn and fork-server.
//! - **Holders.** Page 0 of a segment counts which processes hold handles, one packed atomic
//!   word per process; a waiter whose peers are all gone (dropped, or dead: `/proc` says so
//!   even for an unreaped zombie) gets `Err(Closed)` instead of waiting for ever.
//! - **The ring** (one per queue, one per pipe direction) stores variable-size records; a
//!   producer commits a record by moving `tail` after copying it in, a consumer by moving
//!   `head` after reading it, so a process killed mid-call loses at most the item it held.
//!   Producers share a robust put lock, consumers a robust get lock (a dead holder is
//!   replaced). A record larger than the ring makes it grow; an emptied large ring shrinks.
//! - **Blocking** spins for about the cost of a futex wake-up (~50 µs), then sleeps on a
//!   futex word in the segment; the waking side pays a system call only when someone sleeps.
//!   A sleeper wakes every 20 ms to check that its peers still live.
//!
//! ```
//! use multiproc_ipc::Queue;
//! let q: Queue<(u32, String)> = Queue::new()?;
//! q.put((1, "one".into()))?;
//! assert_eq!(q.get()?, (1, "one".to_string()));
//! # Ok::<(), multiproc_sync::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod codec;
mod holders;
mod pipe;
mod queue;
mod ring;
mod robust;
mod segment;
mod sys;
mod wait;

pub use multiproc_sync::{Error, Result};
pub use pipe::{Connection, Pipe};
pub use queue::{JoinableQueue, Queue, SimpleQueue};
