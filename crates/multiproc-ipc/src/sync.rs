//! Process-shared `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event` and `Condition`
//! (Python's `multiprocessing.synchronize`): the thread toolbox's raw algorithms
//! ([`multiproc_sync::raw`]) placed in a shared segment and driven by the process-shared futex.
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
//! The lock words are robust ([`RobustLock`]): a waiter that has slept a while asks the kernel
//! whether the owner's thread still runs, and takes a dead owner's word over with one
//! compare-and-swap; its guard then says [`previous_owner_died`](LockGuard::previous_owner_died).
//! A `Condition` takes its lock back the same way after a wait.
//!
//! Semaphore permits are not owned (as in Python, any process may release a permit another
//! took), so a process that dies holding a permit takes it with it: the value stays one lower
//! for good. Where that matters, use a `Lock`, or have a supervisor `release()` once it has
//! seen the holder die (`Process::join`). A process killed while waiting in
//! `Condition::wait` leaves its place in the waiter count: a later `notify` may hand it a
//! wake-up that a newer waiter takes instead, a spurious wake-up, which `wait_for` absorbs.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use multiproc_sync::raw::{RawCondition, RawEvent, RawRLock, RawSemaphore, SharedFutex};
use multiproc_sync::{Error, Result};

use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};
use crate::wait::robust::RobustLock;

/// Keeps a guard on the thread that took the lock (the lock word names that thread).
type NotSend = PhantomData<*const ()>;

/// `now + timeout`; `None` (no limit) when that overflows.
#[inline]
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Takes a robust lock with no deadline; `owner_died` from the take-over, if any.
#[inline]
pub(crate) fn lock_forever(lock: &RobustLock) -> bool {
    loop {
        if let Some(died) = lock.lock_until(None) {
            return died;
        }
    }
}

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

#[repr(C)]
struct LockState {
    lock: RobustLock,
}

// SAFETY: one atomic word; all-zero is an unlocked lock.
unsafe impl SharedState for LockState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Lock`: a mutual-exclusion lock shared by processes, that
/// survives its owner's death.
///
/// A handle is cheap to clone and travels to children in their spawn arguments (under every
/// start method). Uncontended acquire + release is one compare-and-swap and one swap, no
/// system call; a contended acquire spins, then sleeps on the futex. When the owner dies
/// holding it (`kill -9` included), the next acquirer takes it over and its guard's
/// [`previous_owner_died`](LockGuard::previous_owner_died) says so: the data it protects may
/// be half-updated. Not re-entrant (use [`RLock`]).
///
/// ```
/// use multiproc_ipc::Lock;
/// use std::time::Duration;
/// let lock = Lock::new()?;
/// let other = lock.clone(); // what a child would hold
/// {
///     let g = lock.acquire();
///     assert!(!g.previous_owner_died());
///     assert!(other.try_acquire().is_none());
///     assert!(other.acquire_timeout(Duration::from_millis(1)).is_none());
/// }
/// assert!(other.try_acquire().is_some());
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Lock {
    obj: Object<LockState>,
}

handle_impls!(Lock);

/// Holds a process-shared [`Lock`]; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    died: bool,
    _not_send: NotSend,
}

impl Lock {
    /// A new, unlocked lock in its own shared segment.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// assert!(!lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Lock> {
        Ok(Lock {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    #[inline(always)]
    fn word(&self) -> &RobustLock {
        &self.obj.state().lock
    }

    #[inline]
    fn guard(&self, died: bool) -> LockGuard<'_> {
        LockGuard {
            lock: self,
            died,
            _not_send: PhantomData,
        }
    }

    /// Waits for the lock (taking it over from a dead owner) and takes it.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self) -> LockGuard<'_> {
        let died = match self.word().lock_until(None) {
            Some(died) => died,
            None => lock_forever(self.word()),
        };
        self.guard(died)
    }

    /// Takes the lock if it is free, or if its owner is dead (Python's
    /// `acquire(block=False)`).
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let g = lock.try_acquire();
    /// assert!(g.is_some() && lock.try_acquire().is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        self.word().try_lock().map(|died| self.guard(died))
    }

    /// Waits at most `timeout` for the lock (Python's `acquire(timeout=…)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// assert!(lock.acquire_timeout(Duration::from_millis(5)).is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.word()
            .lock_until(deadline(timeout))
            .map(|died| self.guard(died))
    }

    /// [`acquire`](Self::acquire) for async code: waits without blocking the executor (the
    /// task is parked on the lock word by a shared waiter thread, see
    /// [`multiproc_sync::async_wait`]), takes over from a dead owner as `acquire` does.
    ///
    /// The guard is not `Send`, as the lock word names the thread that holds it: hold it on
    /// one thread (a current-thread runtime or a `LocalSet` may keep it across `.await`; on a
    /// multi-threaded runtime, release it before the next `.await`). Dropping the future
    /// before it resolves takes nothing.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::yield_now();
    /// #     }
    /// # }
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let g = block_on(lock.acquire_async());
    /// assert!(lock.locked() && !g.previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub async fn acquire_async(&self) -> LockGuard<'_> {
        let died = self.word().lock_async().await;
        self.guard(died)
    }

    /// Whether some thread of some process (live or dead) holds it now.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// let _g = lock.acquire();
    /// assert!(lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.word().is_locked()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

impl LockGuard<'_> {
    /// Whether the previous owner died holding the lock, which was then recovered (not
    /// lost): the data it protects may be half-updated.
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// assert!(!lock.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// Releases the lock (same as dropping the guard; reads like Python's `release()`).
    ///
    /// ```
    /// let lock = multiproc_ipc::Lock::new()?;
    /// lock.acquire().release();
    /// assert!(!lock.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its thread holds the lock.
        unsafe { self.lock.word().unlock() }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("previous_owner_died", &self.died)
            .finish()
    }
}

#[repr(C)]
struct RLockState {
    raw: RawRLock<SharedFutex>,
}

// SAFETY: two atomic words; all-zero is an unlocked lock of depth 0.
unsafe impl SharedState for RLockState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.RLock`: re-entrant for its owner, a thread of one process (the
/// kernel thread id names it, unique across processes); survives its owner's death as
/// [`Lock`] does. Each guard releases one level; a non-owner cannot release it (guards stay
/// on their thread).
///
/// ```
/// let r = multiproc_ipc::RLock::new()?;
/// let a = r.acquire();
/// let b = r.acquire(); // same thread: no deadlock
/// assert_eq!(r.depth(), 2);
/// drop(b);
/// drop(a);
/// assert!(!r.locked());
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct RLock {
    obj: Object<RLockState>,
}

handle_impls!(RLock);

/// One level of an [`RLock`]; dropping it releases that level.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    died: bool,
    _not_send: NotSend,
}

impl RLock {
    /// A new, unlocked re-entrant lock.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::RLock::new()?.depth(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<RLock> {
        Ok(RLock {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    fn raw(&self) -> &RawRLock<SharedFutex> {
        &self.obj.state().raw
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<RLockGuard<'_>> {
        self.take(|l| l.lock_until(deadline))
    }

    /// Re-enters if the calling thread owns it; otherwise takes it with `how`.
    fn take(&self, how: impl FnOnce(&RobustLock) -> Option<bool>) -> Option<RLockGuard<'_>> {
        let mut died = false;
        let took = self
            .raw()
            .lock_with(|l| match how(RobustLock::from_raw(l)) {
                Some(d) => {
                    died = d;
                    true
                }
                None => false,
            });
        took.then(|| RLockGuard {
            lock: self,
            died,
            _not_send: PhantomData,
        })
    }

    /// Takes one level, waiting while another thread (of any process) holds it.
    ///
    /// # Panics
    ///
    /// If one thread nests it more than `u32::MAX` times.
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _g = r.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) -> RLockGuard<'_> {
        loop {
            if let Some(g) = self.acquire_until(None) {
                return g;
            }
            assert!(
                !self.raw().is_owned_by_current_thread(),
                "RLock acquired more than u32::MAX times by one thread"
            );
        }
    }

    /// Takes one level if it is free, already ours, or its owner is dead.
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _a = r.acquire();
    /// assert!(r.try_acquire().is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        self.take(RobustLock::try_lock)
    }

    /// Takes one level, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = multiproc_ipc::RLock::new()?;
    /// assert!(r.acquire_timeout(Duration::from_millis(1)).is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_until(deadline(timeout))
    }

    /// Whether some thread of some process holds it.
    ///
    /// ```
    /// assert!(!multiproc_ipc::RLock::new()?.locked());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.raw().is_locked()
    }

    /// How many levels the calling thread holds (0 if it does not own it).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// let _g = r.acquire();
    /// assert_eq!(r.depth(), 1);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn depth(&self) -> u32 {
        if self.raw().is_owned_by_current_thread() {
            self.raw().depth()
        } else {
            0
        }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.locked())
            .finish_non_exhaustive()
    }
}

impl RLockGuard<'_> {
    /// Whether the previous owner died holding the lock (see
    /// [`LockGuard::previous_owner_died`]).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// assert!(!r.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// Releases this level (same as dropping the guard).
    ///
    /// ```
    /// let r = multiproc_ipc::RLock::new()?;
    /// r.acquire().release();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard holds one level, on the owning thread.
        unsafe { self.lock.raw().unlock() }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("previous_owner_died", &self.died)
            .finish()
    }
}

#[repr(C)]
struct SemaphoreState {
    raw: RawSemaphore<SharedFutex>,
    /// The initial value (`BoundedSemaphore` only), set before the segment is shared.
    max: AtomicU32,
}

// SAFETY: atomic words; all-zero is a semaphore of value 0 that nobody waits on.
unsafe impl SharedState for SemaphoreState {
    const KIND: Kind = Kind::Sync;
}

fn new_semaphore(value: usize) -> Result<Object<SemaphoreState>> {
    let value = to_u32(value);
    Object::create(0, |s: &SemaphoreState, _| {
        s.max.store(value, Ordering::Relaxed);
        s.raw.release(value);
    })
}

/// Python's `multiprocessing.Semaphore`: a counter of permits shared by processes.
///
/// Permits are not owned: a process that dies holding one takes it with it (see the module
/// notes), exactly as in Python; a supervisor may `release()` on its behalf.
///
/// ```
/// use std::time::Duration;
/// let s = multiproc_ipc::Semaphore::new(1)?;
/// s.acquire();
/// assert!(!s.try_acquire());
/// assert!(!s.acquire_timeout(Duration::from_millis(1)));
/// s.release();
/// assert_eq!(s.get_value(), 1);
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Semaphore {
    obj: Object<SemaphoreState>,
}

handle_impls!(Semaphore);

impl Semaphore {
    /// A semaphore with `value` permits (values above `u32::MAX` are clamped).
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Semaphore::new(3)?.get_value(), 3);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(value: usize) -> Result<Semaphore> {
        Ok(Semaphore {
            obj: new_semaphore(value)?,
        })
    }

    fn raw(&self) -> &RawSemaphore<SharedFutex> {
        &self.obj.state().raw
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_ipc::Semaphore::new(1)?.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) {
        while !self.raw().acquire_until(None) {}
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(!multiproc_ipc::Semaphore::new(0)?.try_acquire());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(multiproc_ipc::Semaphore::new(1)?.acquire_timeout(Duration::from_millis(1)));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire_until(deadline(timeout))
    }

    /// Gives a permit back (wakes one waiter, in any process).
    ///
    /// ```
    /// let s = multiproc_ipc::Semaphore::new(0)?;
    /// s.release();
    /// assert!(s.try_acquire());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(&self) {
        self.raw().release(1);
    }

    /// Gives `n` permits back (Python's `release(n)`).
    ///
    /// ```
    /// let s = multiproc_ipc::Semaphore::new(0)?;
    /// s.release_n(2);
    /// assert_eq!(s.get_value(), 2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) {
        self.raw().release(to_u32(n));
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Semaphore::new(2)?.get_value(), 2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw().value() as usize
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.get_value())
            .finish_non_exhaustive()
    }
}

/// Python's `multiprocessing.BoundedSemaphore`: releasing above the initial value is an
/// error. Permits are not owned (see [`Semaphore`]).
///
/// ```
/// use multiproc_ipc::{BoundedSemaphore, Error};
/// let s = BoundedSemaphore::new(1)?;
/// s.acquire();
/// s.release()?;
/// assert!(matches!(s.release(), Err(Error::TooManyReleases)));
/// # Ok::<(), Error>(())
/// ```
pub struct BoundedSemaphore {
    obj: Object<SemaphoreState>,
}

handle_impls!(BoundedSemaphore);

impl BoundedSemaphore {
    /// A semaphore with `value` permits, never more.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::BoundedSemaphore::new(2)?.get_value(), 2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(value: usize) -> Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            obj: new_semaphore(value)?,
        })
    }

    fn raw(&self) -> &RawSemaphore<SharedFutex> {
        &self.obj.state().raw
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_ipc::BoundedSemaphore::new(1)?.acquire();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) {
        while !self.raw().acquire_until(None) {}
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(multiproc_ipc::BoundedSemaphore::new(1)?.try_acquire());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw().try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = multiproc_ipc::BoundedSemaphore::new(0)?;
    /// assert!(!s.acquire_timeout(Duration::from_millis(1)));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw().acquire_until(deadline(timeout))
    }

    /// Gives a permit back; `Err(TooManyReleases)` (nothing changes) if that would exceed the
    /// initial value.
    ///
    /// ```
    /// assert!(multiproc_ipc::BoundedSemaphore::new(1)?.release().is_err());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(&self) -> Result<()> {
        let max = self.obj.state().max.load(Ordering::Relaxed);
        if self.raw().release_bounded(max) {
            Ok(())
        } else {
            Err(Error::TooManyReleases)
        }
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::BoundedSemaphore::new(0)?.get_value(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw().value() as usize
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.get_value())
            .field("max", &self.obj.state().max.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[repr(C)]
struct EventState {
    raw: RawEvent<SharedFutex>,
}

// SAFETY: one atomic word; all-zero is a clear event.
unsafe impl SharedState for EventState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Event`: a flag that processes can wait for.
///
/// `set` wakes every waiter in every process; it costs a system call only when someone
/// sleeps. A waiter spins briefly before it sleeps, so a quick hand-off between busy
/// processes stays in user space.
///
/// ```
/// use std::time::Duration;
/// let e = multiproc_ipc::Event::new()?;
/// assert!(!e.wait_timeout(Duration::from_millis(1)));
/// e.clone().set(); // as a child holding a clone would
/// e.wait();
/// e.clear();
/// assert!(!e.is_set());
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Event {
    obj: Object<EventState>,
}

handle_impls!(Event);

impl Event {
    /// A clear event.
    ///
    /// ```
    /// assert!(!multiproc_ipc::Event::new()?.is_set());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Event> {
        Ok(Event {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    fn raw(&self) -> &RawEvent<SharedFutex> {
        &self.obj.state().raw
    }

    /// Sets the flag, waking every waiter.
    ///
    /// ```
    /// let e = multiproc_ipc::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn set(&self) {
        self.raw().set()
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = multiproc_ipc::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn clear(&self) {
        self.raw().clear()
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!multiproc_ipc::Event::new()?.is_set());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Waits until the flag is set.
    ///
    /// ```
    /// let e = multiproc_ipc::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn wait(&self) {
        while !self.wait_until(None) {}
    }

    /// [`wait`](Self::wait) for async code: resolves once the flag is set (counting every
    /// `set` since the call, as `wait` does), without blocking the executor: after a short
    /// spin the task is parked on the event word by a shared waiter thread (see
    /// [`multiproc_sync::async_wait`]).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::yield_now();
    /// #     }
    /// # }
    /// let e = multiproc_ipc::Event::new()?;
    /// let setter = e.clone();
    /// std::thread::spawn(move || setter.set());
    /// block_on(e.wait_async());
    /// assert!(e.is_set());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub async fn wait_async(&self) {
        let raw = self.raw();
        let start = raw.snapshot();
        let spin_until = Instant::now() + crate::wait::ASYNC_SPIN;
        if raw.woken_since(start)
            || crate::wait::spin_backoff(|| raw.woken_since(start), Some(spin_until))
        {
            return;
        }
        let mut watch = None;
        std::future::poll_fn(|cx| raw.poll_wait_from(start, cx, &mut watch)).await
    }

    /// Spins for about what a cross-process futex wake-up costs (the thread toolbox's
    /// shorter spin would let two processes handing an event back and forth fall into
    /// sleeping on every hand-off once one of them missed), then sleeps; counts every `set`
    /// since the call began, as Python's `wait` does.
    #[inline]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let raw = self.raw();
        let start = raw.snapshot();
        raw.woken_since(start)
            || crate::wait::spin_backoff(|| raw.woken_since(start), deadline)
            || raw.wait_from(start, deadline)
    }

    /// Waits at most `timeout`; returns whether the flag was set (Python's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!multiproc_ipc::Event::new()?.wait_timeout(Duration::from_millis(1)));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline(timeout))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish_non_exhaustive()
    }
}

#[repr(C)]
struct ConditionState {
    lock: RobustLock,
    cond: RawCondition<SharedFutex>,
}

// SAFETY: atomic words; all-zero is an unlocked lock and a condition nobody waits on.
unsafe impl SharedState for ConditionState {
    const KIND: Kind = Kind::Sync;
}

/// Python's `multiprocessing.Condition`: a robust lock plus wait/notify across processes.
///
/// `notify(n)` wakes at most `n` waiters, exactly: each woken waiter takes one notification.
/// A wait takes the lock back even if its holder died meanwhile; the guard's
/// [`previous_owner_died`](ConditionGuard::previous_owner_died) then says so.
///
/// ```
/// use std::time::Duration;
/// let c = multiproc_ipc::Condition::new()?;
/// let mut g = c.acquire();
/// assert!(!g.wait_timeout(Duration::from_millis(1))); // nobody notifies
/// assert!(g.wait_for(|| true, None));
/// g.notify_all();
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Condition {
    obj: Object<ConditionState>,
}

handle_impls!(Condition);

/// Holds a [`Condition`]'s lock; waits and notifies through it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
    died: bool,
    _not_send: NotSend,
}

impl Condition {
    /// A condition with its own (robust) lock.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify(1); // nobody waits: a no-op
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new() -> Result<Condition> {
        Ok(Condition {
            obj: Object::create(0, |_, _| {})?,
        })
    }

    fn state(&self) -> &ConditionState {
        self.obj.state()
    }

    fn guard(&self, died: bool) -> ConditionGuard<'_> {
        ConditionGuard {
            cond: self,
            died,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// drop(c.acquire());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire(&self) -> ConditionGuard<'_> {
        self.guard(lock_forever(&self.state().lock))
    }

    /// Takes the lock if it is free (or its owner is dead).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// let _g = c.acquire();
    /// assert!(c.try_acquire().is_none());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Option<ConditionGuard<'_>> {
        self.state().lock.try_lock().map(|d| self.guard(d))
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(c.acquire_timeout(Duration::from_millis(1)).is_some());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<ConditionGuard<'_>> {
        self.state()
            .lock
            .lock_until(deadline(timeout))
            .map(|d| self.guard(d))
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.state().lock.is_locked())
            .finish_non_exhaustive()
    }
}

impl ConditionGuard<'_> {
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        let state = self.cond.state();
        let mut died = false;
        // SAFETY: this guard holds the condition's lock, the only lock used with it, and
        // the relock closure returns only holding it again.
        let notified = unsafe {
            state.cond.wait_until_with(state.lock.raw(), deadline, || {
                died |= lock_forever(&state.lock);
            })
        };
        self.died |= died;
        notified
    }

    /// Releases the lock, sleeps until notified, takes the lock again.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// let c = multiproc_ipc::Condition::new()?;
    /// let done = Arc::new(AtomicBool::new(false));
    /// let (c2, done2) = (c.clone(), done.clone());
    /// let t = std::thread::spawn(move || {
    ///     let g = c2.acquire();
    ///     done2.store(true, Ordering::Relaxed); // changed under the lock
    ///     g.notify_all();
    /// });
    /// let mut g = c.acquire();
    /// while !done.load(Ordering::Relaxed) {
    ///     g.wait();
    /// }
    /// # drop(g); t.join().unwrap();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait(&mut self) {
        self.wait_until(None);
    }

    /// Like [`wait`](Self::wait), at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(!c.acquire().wait_timeout(Duration::from_millis(1)));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.wait_until(deadline(timeout))
    }

    /// Waits until `pred()` is true or `timeout` passes (`None`: no limit); returns the
    /// predicate's last value (Python's `wait_for`). The predicate runs under the lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = multiproc_ipc::Condition::new()?;
    /// let mut g = c.acquire();
    /// assert!(!g.wait_for(|| false, Some(Duration::from_millis(1))));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn wait_for(&mut self, mut pred: impl FnMut() -> bool, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(deadline);
        loop {
            if pred() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.wait_until(deadline);
        }
    }

    /// Wakes up to `n` waiting threads (of any process).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify(2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn notify(&self, n: usize) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.state().cond.notify(to_u32(n)) };
    }

    /// Wakes every waiting thread.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().notify_all();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn notify_all(&self) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.state().cond.notify_all() };
    }

    /// How many threads wait on this condition now (exact: read under the lock; a waiter
    /// killed inside `wait` still counts).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert_eq!(c.acquire().waiters(), 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn waiters(&self) -> usize {
        self.cond.state().cond.waiters() as usize
    }

    /// Whether the lock's previous owner died holding it (at the acquire or at the end of a
    /// wait): the shared state it protects may be half-updated.
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// assert!(!c.acquire().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }

    /// Releases the lock (same as dropping the guard).
    ///
    /// ```
    /// let c = multiproc_ipc::Condition::new()?;
    /// c.acquire().release();
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn release(self) {}
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock on this thread.
        unsafe { self.cond.state().lock.unlock() }
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("previous_owner_died", &self.died)
            .finish()
    }
}
