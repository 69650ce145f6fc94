//! The process-shared [`Semaphore`] and [`BoundedSemaphore`] (Python's
//! `multiprocessing.Semaphore` and `BoundedSemaphore`): a count and its sleepers in a shared
//! segment (a bounded one also keeps its initial value).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use multiproc_sync::raw::{RawSemaphore, SharedFutex};
use multiproc_sync::{Error, Result};

use super::{deadline, handle_impls, to_u32};
use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};

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
    /// A semaphore with `value` permits (values above `u32::MAX` are clamped, and releases
    /// past `u32::MAX` permits are not counted).
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
