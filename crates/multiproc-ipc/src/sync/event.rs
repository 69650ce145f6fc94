//! The process-shared [`Event`] (Python's `multiprocessing.Event`): a set bit, a waiters bit
//! and a generation in one shared word.

use std::fmt;
use std::time::{Duration, Instant};

use multiproc_sync::Result;
use multiproc_sync::raw::{RawEvent, SharedFutex};

use super::{deadline, handle_impls};
use crate::shm::object::Object;
use crate::shm::{Kind, SharedState};

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
    #[cfg(not(multiproc_loom))]
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
