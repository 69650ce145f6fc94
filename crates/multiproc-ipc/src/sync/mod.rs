//! Process-shared `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event` and `Condition`
//! (Python's `multiprocessing.synchronize`): the thread toolbox's raw algorithms
//! ([`multiproc_sync::raw`]) placed in a shared segment and driven by the process-shared futex.
//! One file per primitive (`lock.rs`, `rlock.rs`, `semaphore.rs`, `event.rs`, `condition.rs`,
//! and `barrier.rs` for [`Barrier`]); this module keeps the helpers they share.
//!
//! # One behaviour for threads and processes
//!
//! `Lock`, `RLock` and `Condition` are thin: they say where the words live (a shared segment,
//! which a handle maps, clones and sends to children: `handle_impls!`) and delegate every
//! operation to the thread toolbox's guards ([`multiproc_sync::raw::WordGuard`],
//! [`LevelGuard`](multiproc_sync::raw::LevelGuard), [`CondGuard`](multiproc_sync::raw::CondGuard)),
//! the same code as `multiproc_sync::Lock` and friends, over the robust word
//! ([`RobustLock`](crate::wait::robust::RobustLock)). What stays here is what only a process
//! has: an owner that can die holding the word (taken over, `previous_owner_died`), state that
//! lives in shared memory and travels (`Object`, serde), and the async takes, which park on the
//! shared waiter thread. `Semaphore` and `Event` are one-line calls to the raw algorithms;
//! `Barrier` is its own algorithm, because its waits must notice a party that died (see
//! `barrier.rs`).
//!
//! # State in shared memory
//!
//! Each object is one segment: the holder table in page 0, the state below at
//! `OBJECT_OFFSET`. Every word is an `AtomicU32` (all-zero = a fresh object):
//!
//! | object | words |
//! | --- | --- |
//! | `Lock` | lock word: owner tid (bits 0–29), `WAITERS` (bit 31); 0 = free |
//! | `RLock` | lock word as `Lock`; depth (touched only by the owner) |
//! | `Semaphore` | count (slept on); sleepers |
//! | `BoundedSemaphore` | count; sleepers; initial value (written before sharing) |
//! | `Event` | set bit, waiters bit, generation (bits 2..) |
//! | `Condition` | lock word as `Lock`; seq (slept on); waiters; tokens |
//!
//! # Owner death
//!
//! The lock words are robust ([`RobustLock`](crate::wait::robust::RobustLock)): a waiter
//! that has slept a while asks the kernel whether the owner's thread still runs, and takes a
//! dead owner's word over with one compare-and-swap; its guard then says [`previous_owner_died`](LockGuard::previous_owner_died).
//! A `Condition` takes its lock back the same way after a wait.
//!
//! Semaphore permits are not owned (as in Python, any process may release a permit another
//! took), so a process that dies holding a permit takes it with it: the value stays one lower
//! for good. Where that matters, use a `Lock`, or have a supervisor `release()` once it has
//! seen the holder die (`Process::join`). A process killed while waiting in
//! `Condition::wait` leaves its place in the waiter count: a later `notify` may hand it a
//! wake-up that a newer waiter takes instead, a spurious wake-up, which `wait_for` absorbs.

mod barrier;
mod condition;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};

/// `now + timeout`; `None` (no limit) when that overflows (the workspace's one helper).
pub(crate) use multiproc_sync::raw::deadline_after as deadline;

fn to_u32(v: usize) -> u32 {
    v.min(u32::MAX as usize) as u32
}

/// Implements `Clone`, `Serialize` and `Deserialize` for a wrapper whose only field is
/// `obj: Object<S>`; a handle that arrives is checked with `$check`.
macro_rules! handle_impls {
    ($t:ident) => {
        handle_impls!($t, |_| Ok(()));
    };
    ($t:ident, $check:expr) => {
        impl Clone for $t {
            /// Another handle to the same object (Python passes the same object to children).
            fn clone(&self) -> Self {
                $t {
                    obj: self.obj.clone(),
                }
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&self.obj, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let this = $t {
                    obj: <Object<_> as serde::Deserialize>::deserialize(d)?,
                };
                let check: fn(&$t) -> std::io::Result<()> = $check;
                check(&this).map_err(serde::de::Error::custom)?;
                Ok(this)
            }
        }
    };
}
pub(crate) use handle_impls;
