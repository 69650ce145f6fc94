//! `multiprocessing.pool.AsyncResult`: the handle that `apply_async` and `map_async` return.

use crate::core::{self, Core};
use crate::future::deadline_after;
use multiproc_sync::{Error, Result};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The pending result of [`Pool::apply_async`](crate::Pool::apply_async) or
/// [`Pool::map_async`](crate::Pool::map_async) (Python's `AsyncResult`).
///
/// ```
/// use multiproc::pool::Pool;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// let r = pool.apply_async(square, 12)?;
/// assert_eq!(r.get()?, 144);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "an AsyncResult does nothing unless its result is asked for"]
pub struct AsyncResult<R> {
    pub(crate) core: Arc<Core<R>>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn from_core(core: Arc<Core<R>>) -> Self {
        AsyncResult { core }
    }

    /// Waits for the result: the value, `Err(TaskFailed)` if the task panicked,
    /// `Err(WorkerDied)` if its worker died, or an error if the pool was terminated first.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn square(x: u64) -> u64 { x * x }
    /// # let pool = Pool::new(1)?;
    /// assert_eq!(pool.apply_async(square, 3)?.get()?, 9);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(self) -> Result<R> {
        self.core.wait(None);
        self.core.take()
    }

    /// Like [`get`](AsyncResult::get), but `Err(Timeout)` if the result is not ready within
    /// `timeout`; the handle stays usable then.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    /// let pool = Pool::new(1)?;
    /// let mut r = pool.apply_async(nap, 300)?;
    /// assert!(matches!(r.get_timeout(std::time::Duration::from_millis(1)), Err(multiproc::Error::Timeout)));
    /// assert_eq!(r.get_timeout(std::time::Duration::from_secs(60))?, 300);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R> {
        if self.core.wait(deadline_after(timeout)) {
            self.core.take()
        } else {
            Err(Error::Timeout)
        }
    }

    /// Waits up to `timeout` for the result; `true` once it is ready.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn square(x: u64) -> u64 { x * x }
    /// # let pool = Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// assert!(r.wait_timeout(std::time::Duration::from_secs(60)));
    /// assert!(r.ready());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.core.wait(deadline_after(timeout))
    }

    /// Waits for the result without taking it.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn square(x: u64) -> u64 { x * x }
    /// # let pool = Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// r.wait();
    /// assert_eq!(r.successful(), Some(true));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn wait(&self) {
        self.core.wait(None);
    }

    /// Whether the result is ready (a value or an error).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// # fn square(x: u64) -> u64 { x * x }
    /// # let pool = Pool::new(1)?;
    /// let r = pool.apply_async(square, 3)?;
    /// let _maybe = r.ready();
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.core.is_done()
    }

    /// `Some(true)` if the task gave a value, `Some(false)` if it failed, `None` while it is
    /// not ready (Python raises `ValueError` then).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn boom(_: ()) -> u8 { panic!("boom") }
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(boom, ())?;
    /// r.wait();
    /// assert_eq!(r.successful(), Some(false));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn successful(&self) -> Option<bool> {
        match self.core.state() {
            core::DONE_OK => Some(true),
            core::DONE_ERR | core::CANCELLED => Some(false),
            _ => None,
        }
    }
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}
