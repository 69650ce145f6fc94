//! Thread-level `Lock`, `RLock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Event` and
//! `Barrier`, one file each: thin typed wrappers over the [`raw`](crate::raw) algorithms (which
//! `raw/` keeps one file each too) with [`ThreadFutex`](crate::raw::ThreadFutex). `Lock`,
//! `RLock` and `Condition` delegate every operation to the guards of `raw/guard.rs`, which
//! multiproc-ipc's process-shared types share (over its robust word).

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard, Mutex, MutexGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};

/// A count for the raw algorithms' `u32` words, saturating.
fn to_u32(v: usize) -> u32 {
    v.min(u32::MAX as usize) as u32
}
