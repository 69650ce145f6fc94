//! `concurrent.futures.ThreadPoolExecutor`: closures run on a lazily grown set of threads.
//!
//! A submit is one allocation for the [`Core`] and one for the boxed task, pushed on a
//! lock-free channel. An idle worker looks for work for a while (spinning, then yielding its
//! CPU) before it goes to sleep, and a submit wakes a worker through the kernel only when one
//! is asleep (one atomic load otherwise), so a steady stream of submits makes no system call.
//!
//! (The channel's own blocking `recv` is not used: its senders wake a blocked receiver on every
//! send, a futex system call per submit whenever the workers drain the queue faster than it
//! fills, which they do; and it sleeps after a much shorter look.)

use crate::core::Core;
use crate::future::Future;
use crossbeam_channel::{Receiver, Sender};
use multiproc_sync::{Error, Result, Thread};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A task in the queue: run it, or cancel it unstarted.
trait Task: Send {
    fn run(self: Box<Self>);
    fn cancel(self: Box<Self>);
}

struct Call<F, R> {
    core: Arc<Core<R>>,
    f: F,
}

impl<F: FnOnce() -> R + Send, R: Send> Task for Call<F, R> {
    fn run(self: Box<Self>) {
        let Call { core, f } = *self;
        if core.claim() {
            let out = catch_unwind(AssertUnwindSafe(f)).map_err(|p| Error::TaskFailed {
                message: panic_text(&*p),
            });
            core.complete(out);
        }
    }

    fn cancel(self: Box<Self>) {
        self.core.cancel();
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
    tx: Mutex<Option<Sender<Box<dyn Task>>>>,
    rx: Receiver<Box<dyn Task>>,
    threads: Mutex<Vec<Thread<()>>>,
    started: AtomicUsize,
    shared: Arc<Shared>,
}

/// What the workers and the submitters share besides the channel.
#[derive(Debug, Default)]
struct Shared {
    /// Workers not running a task (looking for one, or asleep).
    idle: AtomicUsize,
    /// Workers asleep on `wake`, or about to be (counted under `lock`, before their last look).
    sleepers: AtomicUsize,
    /// Set (under `lock`) by `shutdown` once the sender is gone: no worker may go to sleep.
    closed: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Shared {
    /// After a send: wakes one sleeping worker, if any sleeps. The send's SeqCst update of the
    /// channel's tail and this SeqCst load pair with the sleeper's SeqCst increment and its
    /// SeqCst look at the channel: either it sees the task, or we see it counted.
    #[inline]
    fn notify(&self) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_one();
    }
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
            shared: Arc::new(Shared::default()),
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
        let core = Core::new();
        let task: Box<dyn Task> = Box::new(Call {
            core: Arc::clone(&core),
            f,
        });
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
        self.shared.notify();
        // Once every thread is started (soon, in a busy pool) the idle count is not looked at.
        if self.started.load(Ordering::Relaxed) < self.max_workers
            && self.shared.idle.load(Ordering::Acquire) == 0
        {
            self.start_thread();
        }
        Ok(Future::from_core(core))
    }

    #[cold]
    fn start_thread(&self) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.started.load(Ordering::Relaxed);
        if n >= self.max_workers || self.tx.lock().map(|t| t.is_none()).unwrap_or(true) {
            return;
        }
        let rx = self.rx.clone();
        let shared = Arc::clone(&self.shared);
        let spawned = Thread::builder()
            .name(format!("{}_{n}", self.prefix))
            .daemon(true)
            .spawn(move || worker(rx, shared));
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
        {
            // The sender is gone: a worker that finds the channel empty now finds it
            // disconnected too. Sleepers wake to find that out; nobody goes to sleep again.
            let _held = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.closed.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        if cancel_futures {
            while let Ok(task) = self.rx.try_recv() {
                task.cancel();
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

/// How many times an idle worker looks at the channel before it goes to sleep: the first
/// looks a pause instruction apart, the rest a `yield` apart (which lets a submitter that
/// shares the worker's CPU run). About 20-60 µs in all on an idle machine.
const SPINS: u32 = 16;
const YIELDS: u32 = 32;

fn worker(rx: Receiver<Box<dyn Task>>, shared: Arc<Shared>) {
    shared.idle.fetch_add(1, Ordering::AcqRel);
    loop {
        let task = match rx.try_recv() {
            Ok(task) => task,
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                look_then_sleep(&rx, &shared);
                continue;
            }
        };
        shared.idle.fetch_sub(1, Ordering::AcqRel);
        task.run();
        shared.idle.fetch_add(1, Ordering::AcqRel);
    }
    shared.idle.fetch_sub(1, Ordering::AcqRel);
}

/// Waits until the channel holds something (or may be disconnected): looks for a while, then
/// sleeps until a submit or `shutdown` wakes it.
fn look_then_sleep(rx: &Receiver<Box<dyn Task>>, shared: &Shared) {
    for i in 0..SPINS + YIELDS {
        if !rx.is_empty() {
            return;
        }
        if i < SPINS {
            for _ in 0..(1u32 << i.min(6)) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    let mut held = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    // The last look, after counting ourselves (see `Shared::notify`); after a shutdown the
    // channel is disconnected and the next `try_recv` says so.
    while rx.is_empty() && !shared.closed.load(Ordering::SeqCst) {
        held = shared.wake.wait(held).unwrap_or_else(|e| e.into_inner());
    }
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
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
