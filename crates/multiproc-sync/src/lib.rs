//! Python's `threading` and `queue` modules for Rust threads, and the one [`Error`] type that
//! the whole multiproc workspace returns.
//!
//! ```
//! use multiproc_sync::{Event, Thread};
//! use std::sync::Arc;
//! let e = Arc::new(Event::new());
//! let e2 = e.clone();
//! let t = Thread::builder().name("waiter").spawn(move || e2.wait())?;
//! e.set();
//! t.join()?;
//! # Ok::<(), multiproc_sync::Error>(())
//! ```
//!
//! # What is here
//!
//! | Python | here |
//! |---|---|
//! | `threading.Thread`, `current_thread`, `main_thread`, `enumerate`, `active_count` | [`Thread`], [`Builder`], [`current_thread`], [`main_thread`], [`enumerate`], [`active_count`] |
//! | `threading.Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event`, `Barrier` | [`Lock`], [`RLock`], [`Condition`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Barrier`] |
//! | `threading.Timer`, `threading.local` | [`Timer`], [`Local`] |
//! | `queue.Queue`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` | [`queue`] |
//! | every exception of those modules, and of the process crates above this one | [`Error`] |
//!
//! Users normally reach all of it through the facade, as `multiproc::threading::…`,
//! `multiproc::queue::…` and `multiproc::Error`. This crate is the bottom of the workspace:
//! `multiproc-spawn`, `multiproc-ipc` and `multiproc-pool` build on it, and the process-shared
//! locks of `multiproc-ipc` reuse its algorithms.
//!
//! # Design
//!
//! ## One algorithm per primitive, on futex words
//!
//! Every lock, event, semaphore, condition and barrier keeps its whole state in one or a few
//! `AtomicU32` words (no pointers, no heap, no OS handle), and is written once, in [`raw`], as a
//! `RawX<F>` generic over a [`raw::Futex`]: the policy that says how a thread sleeps on a word,
//! wakes sleepers, and names a lock's owner. The thread-level types of this crate are thin typed
//! wrappers over `RawX<`[`raw::ThreadFutex`]`>` (the process-private futex, the cheapest); the
//! process-shared types place the same `RawX<F>` in shared memory with a futex policy that uses
//! the process-shared futex and the kernel thread id as owner id (unique across processes), so
//! both families behave the same because they *are* the same code. This is the shape of
//! `lock_api`: a raw primitive behind an `unsafe trait`, typed wrappers on top. A lock word
//! holds its owner's kernel tid plus a `WAITERS` bit (the layout of Linux's robust futexes; see
//! [`raw`]), so an `RLock` knows its owner and a later robust-list recovery can mark a dead
//! owner.
//!
//! ## Blocking: spin, then sleep on the futex
//!
//! Each blocking operation has one internal path that takes `deadline: Option<Instant>`; the
//! `*_timeout(Duration)` forms compute the deadline once and call it, so spurious wake-ups
//! never stretch a wait. The uncontended fast path is one compare-and-swap, `#[inline]`. The
//! slow path (`#[cold]`) first spins a bounded time, about a thousand `pause` instructions
//! (a few µs) with exponential back-off, re-reading the word: a futex sleep and wake-up costs
//! tens of µs across cores on a small VM, and the peer usually answers sooner. Only then does it
//! announce itself (the `WAITERS` bit, or a sleeper count) and sleep in `futex_wait` on the word
//! with the value it last saw, so a change in between makes the kernel return at once: no
//! wake-up is lost. The waking side makes the `futex_wake` system call only when someone may
//! sleep, so an uncontended release is one atomic swap.
//!
//! The [`queue`] types follow the same rule: [`queue::Queue`] keeps its items in a lock-free
//! crossbeam channel and wakes sleepers through futex "signals" (an event count that notifiers
//! bump only when a sleeper registered, and wake only when one actually parked); the other
//! queues guard a `Vec` or `BinaryHeap` with a [`raw::RawLock`].
//!
//! ## Checked with loom
//!
//! The raw algorithms take their atomics from a private `loom` module that is `std` normally
//! and the [loom](https://docs.rs/loom) model checker under `--cfg multiproc_loom`, where a futex
//! wait becomes a yield (a spurious wake-up, which every caller tolerates) and spinning is
//! turned off. `cargo xtask loom` then explores every interleaving of small models, threads
//! standing in for processes: mutual exclusion and no lost wake-up for `RawLock` and `RawRLock`;
//! no lost set, release or notify for `RawEvent`, `RawSemaphore` and `RawCondition`. CPython's
//! own `threading` and `queue` tests are ported in `tests/`.
//!
//! ## OS code
//!
//! All of it (futex wait and wake, thread ids, the exit and fork hooks) is in the private `sys`
//! module, one backend per OS; Linux is the first.
//!
//! # Threads and program exit
//!
//! As in Python, a program joins its non-daemon [`Thread`]s before it exits normally (an
//! `atexit` hook waits on a futex counter), and does not wait for daemon ones. [`Thread::join`]
//! returns the closure's value, and a panic becomes [`Error::TaskFailed`] with its text.
//!
//! # Debugging a stuck program
//!
//! With a [`tracing`](https://docs.rs/tracing) subscriber installed (for example
//! `tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).init()`), this crate emits
//! `DEBUG` events when a [`Thread`] starts and finishes (name, ident, daemon, whether it
//! panicked), when program exit waits for non-daemon threads (their names: the usual reason a
//! program "does not exit"), when a queue is shut down and when a [`Barrier`] is aborted.
//! Without a subscriber each costs a cached "disabled" check.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, unsafe_op_in_unsafe_fn)]
// `cargo xtask loom` builds the crate with its atomics, locks and wake-ups swapped for loom's
// models (as tokio does under `cfg(loom)`): what only the real build calls is unused there.
#![cfg_attr(multiproc_loom, allow(dead_code, unused_imports))]

// The lowest crate of the workspace says it once, for all of them: every crate's OS layer
// (`sys/`) has only a Linux module so far.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc runs on Linux 5.9 or newer only (pidfd_open, clone3, close_range, memfd, OFD \
     locks; 5.16 for futex_waitv in the async waits); other systems are not supported yet"
);

mod sys;

// Not API: public for the workspace's own crates (multiproc-ipc, multiproc-spawn), hidden
// from the docs, and free to change in any release.
#[cfg(not(multiproc_loom))]
#[doc(hidden)]
pub mod async_wait;

mod error;
mod local;
mod loom;
pub mod queue;
// Not API: the raw algorithms, generic over how they sleep, that multiproc-ipc builds its
// process-shared primitives on; hidden from the docs and free to change in any release.
mod locks;
#[doc(hidden)]
pub mod raw;
// Not API: the workspace's one spin policy (threads, process-shared waits, waits for a child).
#[doc(hidden)]
pub mod spin;
mod thread;
mod timer;

pub use error::{Error, Result};
pub use local::Local;
pub use locks::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, Mutex,
    MutexGuard, RLock, RLockGuard, Semaphore,
};
pub use thread::{
    Builder, Thread, ThreadInfo, active_count, current_thread, enumerate, main_thread,
};
pub use timer::Timer;
