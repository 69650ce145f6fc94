//! `concurrent.futures.ThreadPoolExecutor`: closures run on a lazily grown set of threads.
//!
//! A submit is one allocation (tokio's task model): a [`Task`] holding the completion [`Core`]
//! and the closure, shared by the queue (as `Arc<dyn Run>` in a `Job`) and the [`Future`] (as
//! `Arc<dyn AsCore<R>>`), pushed on a lock-free channel.

use crate::core::{AsCore, Core};
use crate::future::Future;
use crossbeam_channel::{Receiver, Sender};
use multiproc_sync::{Error, Result, Thread};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the queue holds of a task: run it, or cancel it unstarted. Each task has one
/// `Arc<dyn Run>`, inside one [`Job`], and exactly one of these is called on it.
trait Run: Send + Sync {
    fn run(self: Arc<Self>);
    fn cancel(self: Arc<Self>);
}

/// The queue's handle to a task. Run, or dropped unrun (cancelled at shutdown, or left in a
/// channel that is dropped), it takes the task's closure exactly once: a job dropped unrun
/// cancels its task, so its future resolves `Err(Cancelled)` rather than waiting forever.
struct Job(Option<Arc<dyn Run>>);

impl Job {
    fn run(mut self) {
        if let Some(task) = self.0.take() {
            task.run();
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.cancel();
        }
    }
}

/// One submitted closure and its completion cell, in one allocation (tokio's task model).
struct Task<F, R> {
    core: Core<R>,
    /// The closure, until its [`Job`] takes it (to run or to drop): no `Option` tag, which
    /// keeps the task in a 64-byte block for a small closure and result.
    f: UnsafeCell<ManuallyDrop<F>>,
}

// SAFETY: `f` is touched only by `Run::run`/`Run::cancel`, called once per task by its one
// `Job` (see there), so by one thread, once: `F: Send` suffices. Everything else is the `Core`,
// which is `Sync` for `R: Send`.
unsafe impl<F: Send, R: Send> Sync for Task<F, R> {}

impl<F, R> Task<F, R> {
    /// Takes the closure out. Only `Run::run`/`Run::cancel` call this, once per task.
    fn take_closure(&self) -> F {
        // SAFETY: the task's one `Job` calls `run` or `cancel` once (it gives up its `Arc` to
        // do so), and each calls this once: no other access to `f`, and it is not read again;
        // `ManuallyDrop` keeps `Task`'s own drop from dropping it a second time.
        unsafe { ManuallyDrop::take(&mut *self.f.get()) }
    }
}

impl<F: FnOnce() -> R + Send, R: Send> Run for Task<F, R> {
    fn run(self: Arc<Self>) {
        let f = self.take_closure();
        if self.core.claim() {
            let out = catch_unwind(AssertUnwindSafe(f)).map_err(|p| Error::TaskFailed {
                message: panic_text(&*p),
            });
            self.core.complete(out);
        }
        // Cancelled: its closure is dropped here, when a worker takes it, not with its future.
    }

    fn cancel(self: Arc<Self>) {
        self.core.cancel();
        drop(self.take_closure());
    }
}

impl<F: Send, R: Send> AsCore<R> for Task<F, R> {
    #[inline]
    fn core(&self) -> &Core<R> {
        &self.core
    }
}

/// Turns a panic payload into its text.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

static EXECUTOR_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Python's `ThreadPoolExecutor`: runs closures on up to `max_workers` threads, started as they
/// are needed, and hands back a [`Future`] for each.
///
/// Dropping the executor is Python's `with` block ending: `shutdown(wait = true)`.
///
/// ```
/// use multiproc::futures::ThreadPoolExecutor;
/// let pool = ThreadPoolExecutor::new(4);
/// let lengths: Vec<usize> = pool
///     .map(|s: &str| s.len(), ["a", "bb", "ccc"])?
///     .collect::<Result<_, _>>()?;
/// assert_eq!(lengths, [1, 2, 3]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ThreadPoolExecutor {
    max_workers: usize,
    prefix: String,
    tx: Mutex<Option<Sender<Job>>>,
    rx: Receiver<Job>,
    threads: Mutex<Vec<Thread<()>>>,
    started: AtomicUsize,
    idle: Arc<AtomicUsize>,
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.max_workers)
            .field("threads", &self.started.load(Ordering::Relaxed))
            .field("queued", &self.rx.len())
            .finish()
    }
}

impl ThreadPoolExecutor {
    /// An executor with at most `max_workers` threads; 0 means Python's default,
    /// `min(32, cpu_count + 4)`.
    ///
    /// ```
    /// let pool = multiproc::futures::ThreadPoolExecutor::new(0);
    /// assert!(pool.max_workers() >= 5);
    /// ```
    pub fn new(max_workers: usize) -> Self {
        let max_workers = if max_workers == 0 {
            (multiproc_spawn::cpu_count() + 4).min(32)
        } else {
            max_workers
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        ThreadPoolExecutor {
            max_workers,
            prefix: format!(
                "ThreadPoolExecutor-{}",
                EXECUTOR_COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            tx: Mutex::new(Some(tx)),
            rx,
            threads: Mutex::new(Vec::new()),
            started: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The most threads this executor starts.
    ///
    /// ```
    /// assert_eq!(multiproc::futures::ThreadPoolExecutor::new(3).max_workers(), 3);
    /// ```
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    /// Schedules `f()` and returns its [`Future`]; `Err(PoolClosed)` after
    /// [`shutdown`](ThreadPoolExecutor::shutdown).
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(2);
    /// let f = pool.submit(|| "done")?;
    /// assert_eq!(f.result()?, "done");
    /// pool.shutdown(true, false);
    /// assert!(matches!(pool.submit(|| ()), Err(multiproc::Error::PoolClosed)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn submit<R, F>(&self, f: F) -> Result<Future<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let task = Arc::new(Task {
            core: Core::pending(),
            f: UnsafeCell::new(ManuallyDrop::new(f)),
        });
        let cell: Arc<dyn AsCore<R>> = Arc::clone(&task) as _;
        let task = Job(Some(task));
        {
            let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            match &*tx {
                Some(tx) => {
                    // The receiver lives in `self`, so the channel cannot be disconnected.
                    let _ = tx.send(task);
                }
                None => return Err(Error::PoolClosed),
            }
        }
        // Once every thread is started (soon, in a busy pool) the idle count, a word the workers
        // write around every task, is not read at all.
        if self.started.load(Ordering::Relaxed) < self.max_workers
            && self.idle.load(Ordering::Acquire) == 0
        {
            self.start_thread();
        }
        Ok(Future::from_core(cell))
    }

    #[cold]
    fn start_thread(&self) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.started.load(Ordering::Relaxed);
        if n >= self.max_workers || self.tx.lock().map(|t| t.is_none()).unwrap_or(true) {
            return;
        }
        let rx = self.rx.clone();
        let idle = Arc::clone(&self.idle);
        let spawned = Thread::builder()
            .name(format!("{}_{n}", self.prefix))
            .daemon(true)
            .spawn(move || worker(rx, idle));
        if let Ok(t) = spawned {
            threads.push(t);
            self.started.store(n + 1, Ordering::Relaxed);
        }
    }

    /// Python's `map`: submits `f(item)` for every item at once and yields the results in
    /// order. Dropping the iterator cancels the tasks that have not started.
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(2);
    /// let out: Vec<u64> = pool.map(|x: u64| x + 1, 0..5)?.map(Result::unwrap).collect();
    /// assert_eq!(out, [1, 2, 3, 4, 5]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Result<Results<R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        let f = Arc::new(f);
        let futures = items
            .into_iter()
            .map(|a| {
                let f = Arc::clone(&f);
                self.submit(move || f(a))
            })
            .collect::<Result<VecDeque<_>>>()?;
        Ok(Results { futures })
    }

    /// Python's `shutdown`: no more submits are taken; with `cancel_futures` the queued tasks
    /// that have not started are cancelled; with `wait` the call returns once every worker has
    /// finished (every task submitted before it has run or been cancelled).
    ///
    /// ```
    /// use multiproc::futures::ThreadPoolExecutor;
    /// let pool = ThreadPoolExecutor::new(1);
    /// let f = pool.submit(|| 1)?;
    /// pool.shutdown(true, false);
    /// assert!(f.done());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        if cancel_futures {
            while let Ok(job) = self.rx.try_recv() {
                drop(job); // cancels its task
            }
        }
        if wait {
            let me = multiproc_sync::current_thread().ident;
            let threads =
                std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
            for t in threads {
                // A task that shuts its own executor down must not join itself.
                if t.ident() != me {
                    let _ = t.join();
                }
            }
        }
    }
}

fn worker(rx: Receiver<Job>, idle: Arc<AtomicUsize>) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        let got = rx.recv();
        idle.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(task) => task.run(),
            Err(_) => return,
        }
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

/// The results of a [`map`](ThreadPoolExecutor::map), in input order; an exact-size iterator.
/// Dropping it cancels the tasks not started yet.
pub struct Results<R> {
    futures: VecDeque<Future<R>>,
}

impl<R> Iterator for Results<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        self.futures.pop_front().map(Future::result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.futures.len(), Some(self.futures.len()))
    }
}

impl<R> ExactSizeIterator for Results<R> {}

impl<R> Drop for Results<R> {
    fn drop(&mut self) {
        for f in &self.futures {
            f.cancel();
        }
    }
}

impl<R> fmt::Debug for Results<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Results")
            .field("left", &self.futures.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Sends on drop: tells when a task's closure is dropped.
    struct DropFlag(mpsc::Sender<()>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    /// Occupies the pool's one worker until the returned sender is dropped.
    fn hold_worker(pool: &ThreadPoolExecutor) -> (mpsc::Sender<()>, Future<()>) {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let f = pool
            .submit(move || {
                started_tx.send(()).unwrap();
                let _ = go_rx.recv();
            })
            .unwrap();
        started_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        (go_tx, f)
    }

    #[test]
    fn a_callback_runs_after_every_handle_is_dropped() {
        let pool = ThreadPoolExecutor::new(1);
        let (go, _held) = hold_worker(&pool);
        let f = pool.submit(|| 7).unwrap();
        let (tx, rx) = mpsc::channel();
        f.add_done_callback(move |f| tx.send(f.done()).unwrap());
        drop(f);
        drop(go);
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(true));
    }

    #[test]
    fn a_cancelled_tasks_closure_is_dropped_when_a_worker_takes_it() {
        let pool = ThreadPoolExecutor::new(1);
        let (go, _held) = hold_worker(&pool);
        let (dropped_tx, dropped_rx) = mpsc::channel();
        let flag = DropFlag(dropped_tx);
        let f = pool.submit(move || drop(flag)).unwrap();
        assert!(f.cancel());
        assert!(dropped_rx.try_recv().is_err(), "still queued");
        drop(go);
        // The future is still alive: the worker dropped the closure when it took the task.
        dropped_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(f.cancelled());
        assert!(matches!(f.result(), Err(Error::Cancelled)));
    }

    #[test]
    fn shutdown_cancel_futures_drops_the_queued_closures() {
        let pool = ThreadPoolExecutor::new(1);
        let (go, _held) = hold_worker(&pool);
        let (dropped_tx, dropped_rx) = mpsc::channel();
        let flag = DropFlag(dropped_tx);
        let f = pool.submit(move || drop(flag)).unwrap();
        pool.shutdown(false, true);
        dropped_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(f.cancelled());
        drop(go);
    }

    #[test]
    fn a_job_dropped_unrun_cancels_its_task_and_drops_its_closure() {
        let (dropped_tx, dropped_rx) = mpsc::channel();
        let flag = DropFlag(dropped_tx);
        let task = Arc::new(Task {
            core: Core::pending(),
            f: UnsafeCell::new(ManuallyDrop::new(move || drop(flag))),
        });
        let f = Future::<()>::from_core(Arc::clone(&task) as _);
        drop(Job(Some(task)));
        assert!(dropped_rx.try_recv().is_ok());
        assert!(matches!(f.result(), Err(Error::Cancelled)));
    }

    #[test]
    fn a_small_task_fits_one_64_byte_block() {
        // The `Arc` counts (16) plus this must stay within 56 bytes: glibc serves it from
        // 64-byte chunks, the memory a submit touches.
        let i = 0u64;
        let task = Task {
            core: Core::<u64>::pending(),
            f: UnsafeCell::new(ManuallyDrop::new(move || std::hint::black_box(i))),
        };
        assert!(size_of_val(&task) <= 40, "{}", size_of_val(&task));
    }

    #[test]
    fn clones_share_one_identity_and_result() {
        let pool = ThreadPoolExecutor::new(2);
        let f = pool.submit(|| String::from("x")).unwrap();
        let g = f.clone();
        assert_eq!(f, g);
        assert_ne!(f, pool.submit(String::new).unwrap());
        assert_eq!(f.result().unwrap(), "x");
        assert!(matches!(g.result(), Err(Error::Invalid(_))));
    }
}
