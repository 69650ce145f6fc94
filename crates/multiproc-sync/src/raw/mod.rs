//! The state-word algorithms behind every lock, event, semaphore, condition and barrier, written
//! once and generic over how a thread sleeps ([`Futex`]).
//!
//! The thread-level types of this crate ([`Lock`](crate::Lock), [`Event`](crate::Event) …) are
//! thin wrappers over `RawX<ThreadFutex>`. A process-shared implementation places the same
//! `RawX<F>` (a few `AtomicU32` words, no pointers, no heap) in shared memory and supplies an `F`
//! whose `wait`/`wake` use the process-shared futex (no `FUTEX_PRIVATE_FLAG`) and whose
//! `owner_id` is the kernel thread id, unique across processes.
//!
//! # Lock word layout
//!
//! | bits | meaning |
//! | --- | --- |
//! | 0..30 (`TID_MASK`) | owner id ([`Futex::owner_id`], the kernel tid); 0 = unlocked |
//! | 30 (`OWNER_DIED`) | reserved for robust recovery: the previous owner died holding it |
//! | 31 (`WAITERS`) | some thread may sleep on the word: unlock must wake one |
//!
//! This is the layout of Linux's robust / PI futexes, so a later robust-list based recovery can
//! use the kernel's own `FUTEX_OWNER_DIED` marking.
//!
//! ```
//! use multiproc_sync::raw::{RawLock, ThreadFutex};
//! let lock = RawLock::<ThreadFutex>::new();
//! lock.lock();
//! assert!(lock.is_locked() && !lock.try_lock());
//! // SAFETY: this thread holds the lock.
//! unsafe { lock.unlock() };
//! ```

use std::time::Instant;

use crate::loom::AtomicU32;
pub(crate) use crate::spin::spin_until;

mod barrier;
mod condition;
mod event;
mod guard;
mod lock;
mod semaphore;
#[cfg(test)]
mod tests;

pub use barrier::RawBarrier;
pub use condition::RawCondition;
pub use event::RawEvent;
pub use guard::{CondGuard, LevelGuard, LockWord, WordGuard};
pub use lock::{OWNER_DIED, RawLock, RawRLock, TID_MASK, WAITERS};
pub use semaphore::RawSemaphore;

/// How a raw algorithm sleeps and wakes on one of its atomic words, and who owns a lock.
///
/// Implementations are zero-sized policy types: the state lives in the words, never in `Self`.
///
/// ```
/// use multiproc_sync::raw::{Futex, ThreadFutex};
/// use std::sync::atomic::AtomicU32;
/// use std::time::{Duration, Instant};
/// let word = AtomicU32::new(7);
/// // The word is not 8: returns at once.
/// assert!(ThreadFutex::wait(&word, 8, None));
/// // Nobody wakes us: times out.
/// assert!(!ThreadFutex::wait(&word, 7, Some(Instant::now() + Duration::from_millis(1))));
/// assert!(ThreadFutex::owner_id() != 0);
/// ```
///
/// # Safety
///
/// `owner_id` must return a non-zero value that fits in [`TID_MASK`] and that no other live
/// thread (of any process that can touch the same words) returns at the same time: re-entrant
/// locks trust it to tell the owner apart.
pub unsafe trait Futex: 'static {
    /// Whether the words live in memory shared between processes (woken with the
    /// process-shared futex): async waiters ([`crate::async_wait`]) must sleep the same way.
    const SHARED: bool;

    /// Sleeps while `*word == expected`, until woken or until `deadline` (`None`: no limit).
    /// May return early (spuriously): callers re-check their condition. Returns `false` only
    /// when the deadline has passed.
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool;

    /// Wakes up to `n` threads sleeping on `word`; returns how many were woken (0 when the
    /// implementation cannot tell).
    fn wake(word: &AtomicU32, n: u32) -> usize;

    /// Wakes every thread sleeping on `word`.
    #[inline]
    fn wake_all(word: &AtomicU32) -> usize {
        Self::wake(word, i32::MAX as u32)
    }

    /// The id stored in a lock word while the calling thread owns it.
    fn owner_id() -> u32;

    /// Whether the thread (or process) that stored `owner` in a lock word is still alive.
    /// Thread-level locks cannot outlive their owners' process, so the default says yes; a
    /// process-shared implementation answers from the kernel (robust futex lists, `pidfd`).
    #[inline]
    fn owner_alive(owner: u32) -> bool {
        let _ = owner;
        true
    }
}

/// The process-private futex: for words that only threads of this process touch.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadFutex;

// SAFETY: `owner_id` is the kernel thread id (cached per thread and refreshed after `fork`),
// which is non-zero, below 2^22 (PID_MAX_LIMIT) and unique among live threads.
unsafe impl Futex for ThreadFutex {
    const SHARED: bool = false;

    #[inline]
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
        wait_impl(word, expected, deadline, false)
    }

    #[inline]
    fn wake(word: &AtomicU32, n: u32) -> usize {
        wake_impl(word, n, false)
    }

    #[inline]
    fn owner_id() -> u32 {
        current_tid()
    }
}

/// The process-shared futex (no `FUTEX_PRIVATE_FLAG`): for words in memory mapped by several
/// processes. Owner ids are kernel tids, unique across the processes of one PID namespace.
/// `owner_alive` keeps the default (`true`): robust owner-death recovery is added by the
/// process-shared crate, which wraps or replaces this type.
///
/// ```
/// use multiproc_sync::raw::{RawLock, SharedFutex};
/// let lock = RawLock::<SharedFutex>::new();
/// assert!(lock.try_lock());
/// // SAFETY: held.
/// unsafe { lock.unlock() };
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedFutex;

// SAFETY: as for `ThreadFutex`: the kernel tid is non-zero, below 2^22 and unique among live
// threads of every process in the PID namespace.
unsafe impl Futex for SharedFutex {
    const SHARED: bool = true;

    #[inline]
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
        wait_impl(word, expected, deadline, true)
    }

    #[inline]
    fn wake(word: &AtomicU32, n: u32) -> usize {
        wake_impl(word, n, true)
    }

    #[inline]
    fn owner_id() -> u32 {
        current_tid()
    }
}

#[cfg(not(multiproc_loom))]
fn wait_impl(word: &AtomicU32, expected: u32, deadline: Option<Instant>, shared: bool) -> bool {
    std_wait(word, expected, deadline, shared)
}

/// A futex wait on a plain `std` atomic (also under loom: for internals loom does not model,
/// such as the queues). Returns `false` only when `deadline` has passed.
pub(crate) fn std_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    shared: bool,
) -> bool {
    let timeout = match deadline {
        None => None,
        Some(d) => {
            // Recomputed on every call: repeated spurious wake-ups do not stretch the wait.
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            Some(left)
        }
    };
    match crate::sys::futex_wait(word, expected, timeout, shared) {
        Ok(()) => true,
        Err(_) => deadline.is_none_or(|d| Instant::now() < d),
    }
}

#[cfg(not(multiproc_loom))]
fn wake_impl(word: &AtomicU32, n: u32, shared: bool) -> usize {
    crate::sys::futex_wake(word, n, shared)
}

/// The workspace's one futex wrapper, for words outside the raw algorithms (multiproc-ipc's
/// wait signals in shared memory): sleeps while `*word == expected`, at most `timeout`
/// (`None`: no limit); `Ok` on a wake-up (possibly spurious) or a changed value,
/// `Err(TimedOut)` when the timeout passed. `shared`: the process-shared futex (a word in
/// memory mapped by several processes) rather than the cheaper process-private one.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Duration;
/// let word = AtomicU32::new(1);
/// assert!(multiproc_sync::raw::futex_wait(&word, 2, None, true).is_ok()); // not 2: at once
/// let slept = multiproc_sync::raw::futex_wait(&word, 1, Some(Duration::from_millis(1)), true);
/// assert_eq!(slept.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(multiproc_sync::raw::futex_wake(&word, u32::MAX, true), 0);
/// ```
#[inline]
pub fn futex_wait(
    word: &std::sync::atomic::AtomicU32,
    expected: u32,
    timeout: Option<std::time::Duration>,
    shared: bool,
) -> std::io::Result<()> {
    crate::sys::futex_wait(word, expected, timeout, shared)
}

/// Wakes up to `n` sleepers on `word` (see [`futex_wait`]); returns how many woke.
#[inline]
pub fn futex_wake(word: &std::sync::atomic::AtomicU32, n: u32, shared: bool) -> usize {
    crate::sys::futex_wake(word, n, shared)
}

/// Runs `f` in the child process after every `fork` of this process (`pthread_atfork`): the
/// workspace's one fork hook, for the caches a child must forget (thread ids here, the pid in
/// multiproc-ipc). Not part of the public API.
///
/// # Safety
///
/// `f` runs in a fork child of a possibly multithreaded process, where only
/// async-signal-safe work is allowed: it may only store to atomics or thread-locals.
#[doc(hidden)]
pub unsafe fn on_fork_child(f: unsafe extern "C" fn()) -> std::io::Result<()> {
    crate::sys::on_fork_child(f)
}

/// A futex wake on a plain `std` atomic (see [`std_wait`]).
pub(crate) fn std_wake(word: &std::sync::atomic::AtomicU32, n: u32) -> usize {
    crate::sys::futex_wake(word, n, false)
}

// Under loom a futex wait is a yield (a spurious wake-up, which every caller tolerates).
#[cfg(multiproc_loom)]
fn wait_impl(word: &AtomicU32, expected: u32, deadline: Option<Instant>, _shared: bool) -> bool {
    if word.load(crate::loom::Ordering::SeqCst) == expected {
        loom::thread::yield_now();
    }
    deadline.is_none_or(|d| Instant::now() < d)
}

#[cfg(multiproc_loom)]
fn wake_impl(_word: &AtomicU32, _n: u32, _shared: bool) -> usize {
    0
}

#[cfg(not(multiproc_loom))]
std::thread_local! {
    static TID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The calling thread's kernel id, cached in a thread-local (refreshed in a forked child).
#[cfg(not(multiproc_loom))]
#[inline]
pub(crate) fn current_tid() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 { v } else { fill_tid(t) }
    })
}

#[cfg(not(multiproc_loom))]
#[cold]
fn fill_tid(t: &std::cell::Cell<u32>) -> u32 {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let _ = crate::sys::on_fork_child(forget_tid);
    });
    let v = crate::sys::gettid() & TID_MASK;
    t.set(v);
    v
}

#[cfg(not(multiproc_loom))]
unsafe extern "C" fn forget_tid() {
    let _ = TID.try_with(|t| t.set(0));
}

/// Under loom, model threads get small distinct ids.
#[cfg(multiproc_loom)]
pub(crate) fn current_tid() -> u32 {
    loom::thread_local! { static ID: u32 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed); }
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    ID.with(|v| *v)
}

/// `now + timeout`, or `None` (no limit: wait as long as it takes) when that overflows, as a
/// `Duration::MAX` timeout does. The workspace's one deadline helper (thread and process
/// primitives, queues, pools).
#[inline]
pub fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
