//! `Timer`: Python's `threading.Timer`, a thread that runs a function after a delay unless
//! cancelled first.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Error, Event, Result, Thread};

type Action = Box<dyn FnOnce() + Send + 'static>;

/// Runs a function once, `interval` after `start`, on its own (non-daemon) thread, unless
/// [`cancel`](Timer::cancel) comes first.
///
/// ```
/// use multiproc_sync::Timer;
/// use std::time::Duration;
/// let t = Timer::new(Duration::from_secs(60), || println!("never")).start();
/// t.cancel();
/// t.join()?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub struct Timer {
    interval: Duration,
    action: Mutex<Option<Action>>,
    cancelled: Arc<Event>,
    thread: Option<Thread<()>>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("interval", &self.interval)
            .field("cancelled", &self.cancelled.is_set())
            .field("started", &self.thread.is_some())
            .finish()
    }
}

impl Timer {
    /// A timer that will run `f` `interval` after [`start`](Timer::start).
    ///
    /// ```
    /// let t = multiproc_sync::Timer::new(std::time::Duration::ZERO, || ());
    /// t.start().join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn new(interval: Duration, f: impl FnOnce() + Send + 'static) -> Self {
        Timer {
            interval,
            action: Mutex::new(Some(Box::new(f))),
            cancelled: Arc::new(Event::new()),
            thread: None,
        }
    }

    /// Starts the countdown on a new thread (a second call does nothing).
    ///
    /// ```
    /// let t = multiproc_sync::Timer::new(std::time::Duration::from_millis(1), || ()).start();
    /// t.join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn start(mut self) -> Timer {
        let action = self.action.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(action) = action {
            let cancelled = self.cancelled.clone();
            let interval = self.interval;
            self.thread = Thread::builder()
                .spawn(move || {
                    if !cancelled.wait_timeout(interval) {
                        action();
                    }
                    cancelled.set();
                })
                .ok();
        }
        self
    }

    /// Stops the timer if it is still waiting (Python's `cancel`).
    ///
    /// ```
    /// let t = multiproc_sync::Timer::new(std::time::Duration::from_secs(9), || ()).start();
    /// t.cancel();
    /// ```
    pub fn cancel(&self) {
        self.cancelled.set();
    }

    /// Whether its thread is still running.
    ///
    /// ```
    /// let t = multiproc_sync::Timer::new(std::time::Duration::from_secs(9), || ());
    /// assert!(!t.is_alive()); // not started
    /// ```
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| t.is_alive())
    }

    /// Waits for its thread to finish (after running or being cancelled).
    /// `Err(TaskFailed)` if the function panicked, `Err(Invalid)` if never started.
    ///
    /// ```
    /// let t = multiproc_sync::Timer::new(std::time::Duration::ZERO, || ()).start();
    /// t.join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn join(self) -> Result<()> {
        match self.thread {
            Some(t) => t.join(),
            None => Err(Error::Invalid("timer was not started".into())),
        }
    }
}
