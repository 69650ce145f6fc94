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
//! Every lock, event, semaphore, condition and barrier is a thin typed wrapper over a state-word
//! algorithm in [`raw`], generic over a [`raw::Futex`], so the process-shared versions reuse
//! the same algorithms in shared memory.
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, unsafe_op_in_unsafe_fn)]

mod sys;

mod error;
mod local;
mod loom;
pub mod queue;
pub mod raw;
mod sync;
mod thread;
mod timer;

pub use error::{Error, Result};
pub use local::Local;
pub use sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, Mutex,
    MutexGuard, RLock, RLockGuard, Semaphore,
};
pub use thread::{
    Builder, Thread, ThreadInfo, active_count, current_thread, enumerate, main_thread,
};
pub use timer::Timer;
