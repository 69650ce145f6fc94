//! Python's `threading.Semaphore` and `threading.BoundedSemaphore`.

use std::fmt;
use std::time::Duration;

use super::to_u32;
use crate::raw::{RawSemaphore, ThreadFutex, deadline_after};
use crate::{Error, Result};

/// Python's `threading.Semaphore`: a counter of permits.
///
/// ```
/// use std::time::Duration;
/// let s = multiproc_sync::Semaphore::new(1);
/// s.acquire();
/// assert!(!s.try_acquire());
/// assert!(!s.acquire_timeout(Duration::from_millis(1)));
/// s.release();
/// assert_eq!(s.get_value(), 1);
/// ```
pub struct Semaphore {
    raw: RawSemaphore<ThreadFutex>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.get_value())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `value` permits (values above `u32::MAX` are clamped, and releases
    /// past `u32::MAX` permits are not counted).
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Semaphore::new(3).get_value(), 3);
    /// ```
    pub fn new(value: usize) -> Self {
        Semaphore {
            raw: RawSemaphore::new(to_u32(value)),
        }
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_sync::Semaphore::new(1).acquire();
    /// ```
    pub fn acquire(&self) {
        self.raw.acquire_until(None);
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(!multiproc_sync::Semaphore::new(0).try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`; `false` if it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(multiproc_sync::Semaphore::new(1).acquire_timeout(Duration::from_millis(1)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw.acquire_until(deadline_after(timeout))
    }

    /// Gives a permit back (wakes one waiter).
    ///
    /// ```
    /// let s = multiproc_sync::Semaphore::new(0);
    /// s.release();
    /// assert!(s.try_acquire());
    /// ```
    pub fn release(&self) {
        self.raw.release(1);
    }

    /// Gives `n` permits back (Python's `release(n)`).
    ///
    /// ```
    /// let s = multiproc_sync::Semaphore::new(0);
    /// s.release_n(2);
    /// assert_eq!(s.get_value(), 2);
    /// ```
    pub fn release_n(&self, n: usize) {
        self.raw.release(to_u32(n));
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Semaphore::new(2).get_value(), 2);
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw.value() as usize
    }
}

/// Python's `threading.BoundedSemaphore`: releasing above the initial value is an error.
///
/// ```
/// use multiproc_sync::{BoundedSemaphore, Error};
/// let s = BoundedSemaphore::new(1);
/// s.acquire();
/// s.release()?;
/// assert!(matches!(s.release(), Err(Error::TooManyReleases)));
/// # Ok::<(), Error>(())
/// ```
pub struct BoundedSemaphore {
    raw: RawSemaphore<ThreadFutex>,
    max: u32,
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.get_value())
            .field("max", &self.max)
            .finish()
    }
}

impl BoundedSemaphore {
    /// A semaphore with `value` permits, never more.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::BoundedSemaphore::new(2).get_value(), 2);
    /// ```
    pub fn new(value: usize) -> Self {
        BoundedSemaphore {
            raw: RawSemaphore::new(to_u32(value)),
            max: to_u32(value),
        }
    }

    /// Takes a permit, waiting for one.
    ///
    /// ```
    /// multiproc_sync::BoundedSemaphore::new(1).acquire();
    /// ```
    pub fn acquire(&self) {
        self.raw.acquire_until(None);
    }

    /// Takes a permit if one is free.
    ///
    /// ```
    /// assert!(multiproc_sync::BoundedSemaphore::new(1).try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.raw.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!multiproc_sync::BoundedSemaphore::new(0).acquire_timeout(Duration::from_millis(1)));
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.raw.acquire_until(deadline_after(timeout))
    }

    /// Gives a permit back; `Err(TooManyReleases)` (nothing changes) if that would exceed the
    /// initial value.
    ///
    /// ```
    /// assert!(multiproc_sync::BoundedSemaphore::new(1).release().is_err());
    /// ```
    pub fn release(&self) -> Result<()> {
        if self.raw.release_bounded(self.max) {
            Ok(())
        } else {
            Err(Error::TooManyReleases)
        }
    }

    /// The number of free permits now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::BoundedSemaphore::new(0).get_value(), 0);
    /// ```
    pub fn get_value(&self) -> usize {
        self.raw.value() as usize
    }
}
