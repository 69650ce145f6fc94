//! `concurrent.futures`' `Future`, `wait`, `as_completed` and `FIRST_COMPLETED`…: the handle to
//! one task of a [`ThreadPoolExecutor`](crate::ThreadPoolExecutor) or
//! [`ProcessPoolExecutor`](crate::ProcessPoolExecutor).

use crate::core::{self, AsCore, Core, Listener};
use multiproc_sync::{Error, Result};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The pending result of a task submitted to an executor (Python's `concurrent.futures.Future`).
///
/// Block on it with [`result`](Future::result), poll it with [`done`](Future::done), or
/// `.await` it from async code: it implements [`std::future::Future`].
///
/// ```
/// use multiproc::futures::ThreadPoolExecutor;
/// let pool = ThreadPoolExecutor::new(2);
/// let f = pool.submit(|| 6 * 7)?;
/// assert_eq!(f.result()?, 42);
/// # Ok::<(), multiproc::Error>(())
/// ```
///
/// A `Future` is `Clone`, `Eq` and `Hash` by identity: clones of one future are equal (they
/// share its result, which only the first [`result`](Future::result) takes), two futures are
/// not. So Python's `{executor.submit(fetch, url): url for url in urls}` ports as a `HashMap`.
/// (Clippy's `mutable_key_type` lint flags such a map because a future's state changes inside;
/// its hash and equality are its identity, which never does: `#[allow]` the lint there.)
///
/// ```
/// use multiproc::futures::{ThreadPoolExecutor, as_completed};
/// use std::collections::HashMap;
/// let pool = ThreadPoolExecutor::new(2);
/// let urls = ["a.example", "bb.example"];
/// let mut by_future = HashMap::new();
/// for url in urls {
///     by_future.insert(pool.submit(move || url.len())?, url);
/// }
/// for f in as_completed(by_future.keys().cloned(), None) {
///     let f = f?;
///     let url = by_future[&f];
///     assert_eq!(f.result()?, url.len());
/// }
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "a Future does nothing unless its result is asked for"]
pub struct Future<R> {
    /// The task's completion cell: a bare `Core` (process tasks) or the thread-pool task that
    /// holds it beside its closure (one allocation per submit).
    cell: Arc<dyn AsCore<R>>,
    /// Stops the task while it runs (a process executor built with `cancel_running`).
    canceller: Option<Arc<dyn StopRunning>>,
}

/// Stops a task while it runs (the process engine built with `cancel_running` provides it).
pub(crate) trait StopRunning: Send + Sync {
    /// `true` if the task is stopped now and resolved as cancelled; `false` if it had ended.
    fn stop(&self) -> bool;
}

impl<R> Future<R> {
    /// The handle to a task whose cell is `cell` (a bare `Arc<Core<R>>` coerces).
    pub(crate) fn from_core(cell: Arc<dyn AsCore<R>>) -> Self {
        Future {
            cell,
            canceller: None,
        }
    }

    pub(crate) fn with_canceller(
        cell: Arc<dyn AsCore<R>>,
        canceller: Option<Arc<dyn StopRunning>>,
    ) -> Self {
        Future { cell, canceller }
    }

    /// The completion cell.
    #[inline]
    pub(crate) fn core(&self) -> &Core<R> {
        self.cell.core()
    }

    /// The identity of the task: the address of its allocation.
    #[inline]
    fn id(&self) -> *const () {
        Arc::as_ptr(&self.cell).cast()
    }

    /// Waits for the task and returns its value: `Err(TaskFailed)` if it panicked,
    /// `Err(WorkerDied)` if its worker process died, `Err(Cancelled)` if it was cancelled.
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| -> u8 { panic!("no luck") })?;
    /// assert!(matches!(f.result(), Err(multiproc::Error::TaskFailed { message }) if message == "no luck"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn result(self) -> Result<R> {
        self.core().wait(None);
        self.core().take()
    }

    /// Like [`result`](Future::result), but gives up after `timeout` with `Err(Timeout)`; the
    /// future stays usable then. Once it has returned the value, later calls answer
    /// `Err(Invalid)`.
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// use multiproc::threading::Event;
    /// use std::{sync::Arc, time::Duration};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let go = Arc::new(Event::new());
    /// let g = go.clone();
    /// let mut f = pool.submit(move || g.wait())?;
    /// assert!(matches!(f.result_timeout(Duration::from_millis(10)), Err(multiproc::Error::Timeout)));
    /// go.set();
    /// f.result_timeout(Duration::from_secs(60))?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn result_timeout(&mut self, timeout: Duration) -> Result<R> {
        if self.core().wait(deadline_after(timeout)) {
            self.core().take()
        } else {
            Err(Error::Timeout)
        }
    }

    /// Whether the task finished (with a value or an error) or was cancelled.
    ///
    /// ```
    /// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// let _ = f.done(); // true once it has run
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn done(&self) -> bool {
        self.core().is_done()
    }

    /// Whether a worker is running the task right now.
    ///
    /// ```
    /// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// assert!(!(f.running() && f.done()));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn running(&self) -> bool {
        self.core().state() == core::RUNNING
    }

    /// Whether the task was cancelled before it started.
    ///
    /// ```
    /// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// if f.cancel() { assert!(f.cancelled()); }
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn cancelled(&self) -> bool {
        self.core().state() == core::CANCELLED
    }

    /// Cancels the task if it has not started: `true` if it is cancelled now, `false` if it is
    /// running or done (Python's rule, kept by every [`ThreadPoolExecutor`](crate::ThreadPoolExecutor):
    /// a thread cannot be stopped from outside).
    ///
    /// Beyond Python: a [`ProcessPoolExecutor`](crate::ProcessPoolExecutor) built with
    /// [`cancel_running(true)`](crate::ProcessPoolExecutorBuilder::cancel_running) also stops
    /// a running task: its worker is stopped (`SIGTERM`, then `SIGKILL` 100 ms later) and
    /// replaced, and `cancel` returns `true` with the future [`cancelled`](Future::cancelled).
    /// It still returns `false` for a task that is done.
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// f.result()?;
    /// # let f = pool.submit(|| 1)?;
    /// # while !f.done() { std::thread::yield_now(); }
    /// assert!(!f.cancel()); // already done
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        if self.core().cancel() {
            return true;
        }
        match &self.canceller {
            Some(c) if !self.core().is_done() => c.stop(),
            _ => false,
        }
    }

    /// Calls `f` with this future once it is done (at once, in this thread, if it already is;
    /// otherwise in the thread that completes it). A panic in `f` is caught and ignored.
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// use std::sync::mpsc;
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 5)?;
    /// let (tx, rx) = mpsc::channel();
    /// f.add_done_callback(move |f| tx.send(f.done()).unwrap());
    /// assert!(rx.recv().unwrap());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<R>) + Send + 'static)
    where
        R: 'static,
    {
        // A weak handle: a strong one would keep the task alive from inside itself until it
        // completes. Whoever completes the cell holds it, so the upgrade succeeds then.
        let cell = Arc::downgrade(&self.cell);
        self.core().add_callback(Box::new(move || {
            if let Some(cell) = cell.upgrade() {
                f(&Future::from_core(cell));
            }
        }));
    }
}

impl<R> Clone for Future<R> {
    /// Another handle to the same task (no copy of its result: see [`Future`]).
    ///
    /// ```
    /// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// assert_eq!(f.clone(), f);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    fn clone(&self) -> Self {
        Future {
            cell: Arc::clone(&self.cell),
            canceller: self.canceller.clone(),
        }
    }
}

/// Identity: two handles are equal when they are clones of one submitted task.
///
/// ```
/// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
/// let (a, b) = (pool.submit(|| 1)?, pool.submit(|| 1)?);
/// assert_ne!(a, b);
/// assert_eq!(a, a.clone());
/// # Ok::<(), multiproc::Error>(())
/// ```
impl<R> PartialEq for Future<R> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<R> Eq for Future<R> {}

/// Hashes the identity of the task, consistent with `Eq`: a future's hash never changes as it
/// completes.
///
/// ```
/// # let pool = multiproc::futures::ThreadPoolExecutor::new(1);
/// let f = pool.submit(|| 1)?;
/// let set: std::collections::HashSet<_> = [f.clone(), f].into_iter().collect();
/// assert_eq!(set.len(), 1);
/// # Ok::<(), multiproc::Error>(())
/// ```
impl<R> Hash for Future<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.id(), state);
    }
}

impl<R> fmt::Debug for Future<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.core().state() {
            core::PENDING => "pending",
            core::RUNNING => "running",
            core::DONE_OK => "finished",
            core::DONE_ERR => "finished with an error",
            _ => "cancelled",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}

impl<R> std::future::Future for Future<R> {
    type Output = Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        if self.core().is_done() || !self.core().set_waker(cx.waker()) {
            Poll::Ready(self.core().take())
        } else {
            Poll::Pending
        }
    }
}

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
///
/// ```
/// use multiproc::futures::ReturnWhen;
/// assert_ne!(ReturnWhen::FirstCompleted, ReturnWhen::AllCompleted);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any future is done or cancelled.
    FirstCompleted,
    /// As soon as any future finishes with an error; if none does, when all are done.
    FirstException,
    /// When every future is done or cancelled.
    AllCompleted,
}

/// Waits for the futures in `fs` as `when` says, at most `timeout` (`None`: no limit), and
/// returns the indices of those done and of those not done (Python's `wait`).
///
/// ```
/// use multiproc::futures::{ReturnWhen, ThreadPoolExecutor, wait};
/// let pool = ThreadPoolExecutor::new(2);
/// let fs = vec![pool.submit(|| 1)?, pool.submit(|| 2)?];
/// let (done, not_done) = wait(&fs, None, ReturnWhen::AllCompleted);
/// assert_eq!((done.len(), not_done.len()), (2, 0));
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn wait<R>(
    fs: &[Future<R>],
    timeout: Option<Duration>,
    when: ReturnWhen,
) -> (Vec<usize>, Vec<usize>) {
    let deadline = timeout.and_then(deadline_after);
    let satisfied = |fs: &[Future<R>]| {
        let mut all = true;
        for f in fs {
            match f.core().state() {
                core::DONE_OK | core::CANCELLED => {
                    if when == ReturnWhen::FirstCompleted {
                        return true;
                    }
                }
                core::DONE_ERR => {
                    if when != ReturnWhen::AllCompleted {
                        return true;
                    }
                }
                _ => all = false,
            }
        }
        all
    };
    if !satisfied(fs) {
        let listener = Arc::new(Listener::default());
        for (i, f) in fs.iter().enumerate() {
            f.core().add_listener(&listener, i);
        }
        while !satisfied(fs) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            listener.take(deadline);
        }
    }
    (0..fs.len()).partition(|&i| fs[i].core().is_done())
}

/// Yields the futures of `fs` (a `Vec`, an array, `map.keys().cloned()`…) as they complete,
/// each once even if given twice, as `Ok(future)` (Python's `as_completed`). When `timeout` passes with futures
/// still pending, it yields `Err(Timeout)` once and ends (Python raises `TimeoutError`), and
/// [`AsCompleted::into_pending`] gives back the futures that are not done.
///
/// ```
/// use multiproc::futures::{ThreadPoolExecutor, as_completed};
/// let pool = ThreadPoolExecutor::new(2);
/// let fs: Vec<_> = (0..4).map(|i| pool.submit(move || i * i)).collect::<Result<_, _>>()?;
/// let mut squares = Vec::new();
/// for f in as_completed(fs, None) {
///     squares.push(f?.result()?);
/// }
/// squares.sort();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// # Ok::<(), multiproc::Error>(())
/// ```
///
/// The timeout, as Python's `for f in as_completed(fs, timeout=…)` raising `TimeoutError`:
///
/// ```
/// use multiproc::futures::{ThreadPoolExecutor, as_completed};
/// use multiproc::threading::Event;
/// use std::{sync::Arc, time::Duration};
/// let pool = ThreadPoolExecutor::new(1);
/// let go = Arc::new(Event::new());
/// let g = go.clone();
/// let stuck = pool.submit(move || g.wait())?;
/// let mut it = as_completed([stuck], Some(Duration::from_millis(20)));
/// assert!(matches!(it.next(), Some(Err(multiproc::Error::Timeout))));
/// assert!(it.next().is_none());
/// go.set();
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn as_completed<R>(
    fs: impl IntoIterator<Item = Future<R>>,
    timeout: Option<Duration>,
) -> AsCompleted<R> {
    // Each future once, as Python's `set(fs)`.
    let mut seen = std::collections::HashSet::new();
    let fs: Vec<Future<R>> = fs.into_iter().filter(|f| seen.insert(f.id())).collect();
    let listener = Arc::new(Listener::default());
    for (i, f) in fs.iter().enumerate() {
        f.core().add_listener(&listener, i);
    }
    AsCompleted {
        left: fs.len(),
        slots: fs.into_iter().map(Some).collect(),
        ready: Vec::new(),
        listener,
        deadline: timeout.and_then(deadline_after),
        timed_out: false,
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<R> {
    slots: Vec<Option<Future<R>>>,
    left: usize,
    ready: Vec<usize>,
    listener: Arc<Listener>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<R> AsCompleted<R> {
    /// The futures not yielded yet (those not done when the timeout passed).
    ///
    /// ```
    /// use multiproc::futures::{ThreadPoolExecutor, as_completed};
    /// let pool = ThreadPoolExecutor::new(1);
    /// let mut it = as_completed(vec![pool.submit(|| 1)?], None);
    /// assert!(it.next().is_some_and(|f| f.is_ok()));
    /// assert!(it.into_pending().is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn into_pending(self) -> Vec<Future<R>> {
        self.slots.into_iter().flatten().collect()
    }
}

impl<R> Iterator for AsCompleted<R> {
    /// `Ok(future)` as each completes; `Err(Timeout)` once, last, if the timeout passed first.
    type Item = Result<Future<R>>;

    fn next(&mut self) -> Option<Result<Future<R>>> {
        loop {
            if let Some(i) = self.ready.pop() {
                if let Some(f) = self.slots[i].take() {
                    self.left -= 1;
                    return Some(Ok(f));
                }
                continue;
            }
            if self.left == 0 || self.timed_out {
                return None;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                // One last look, so that a future done at the deadline is not reported late.
                let mut got = self.listener.take(Some(Instant::now()));
                if got.is_empty() {
                    self.timed_out = true;
                    return Some(Err(Error::Timeout));
                }
                got.reverse();
                self.ready = got;
                continue;
            }
            let mut got = self.listener.take(self.deadline);
            got.reverse();
            self.ready = got;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.timed_out {
            (0, Some(0))
        } else {
            (0, Some(self.left + 1))
        }
    }
}

impl<R> fmt::Debug for AsCompleted<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .finish()
    }
}

/// `now + timeout`, or `None` (no limit) when that overflows (the workspace's one helper).
pub(crate) use multiproc_sync::raw::deadline_after;
