//! Python's `threading.Event`: a flag that threads wait for.

use std::fmt;
use std::time::Duration;

use crate::raw::{RawEvent, ThreadFutex, deadline_after};

/// Python's `threading.Event`: a flag that threads can wait for.
///
/// ```
/// use std::time::Duration;
/// let e = multiproc_sync::Event::new();
/// assert!(!e.wait_timeout(Duration::from_millis(1)));
/// e.set();
/// e.wait();
/// e.clear();
/// assert!(!e.is_set());
/// ```
#[derive(Default)]
pub struct Event {
    raw: RawEvent<ThreadFutex>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// A clear event.
    ///
    /// ```
    /// assert!(!multiproc_sync::Event::new().is_set());
    /// ```
    pub fn new() -> Self {
        Event {
            raw: RawEvent::new(),
        }
    }

    /// Sets the flag, waking every waiter.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn set(&self) {
        self.raw.set()
    }

    /// Clears the flag.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.raw.clear()
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!multiproc_sync::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.raw.is_set()
    }

    /// Waits until the flag is set.
    ///
    /// ```
    /// let e = multiproc_sync::Event::new();
    /// e.set();
    /// e.wait();
    /// ```
    pub fn wait(&self) {
        self.raw.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the flag was set (Python's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(!multiproc_sync::Event::new().wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.raw.wait_until(deadline_after(timeout))
    }
}
