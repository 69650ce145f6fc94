//! `concurrent.futures.ProcessPoolExecutor` on the process-pool engine.

use crate::engine::{Engine, PoolStats};
use crate::future::Future;
use crate::pool::{Imap, PoolBuilder, submit_timed};
use multiproc_spawn::StartMethod;
use multiproc_sync::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// Python's `ProcessPoolExecutor`: `fn(A) -> R` tasks on worker processes, each with a
/// [`Future`].
///
/// Unlike Python's, a worker that dies fails only the task it was running
/// (`Err(WorkerDied)`) and is replaced; the executor does not break. Dropping it is Python's
/// `with` block ending: `shutdown(wait = true)`.
///
/// ```
/// use multiproc::futures::ProcessPoolExecutor;
/// fn cube(x: i64) -> i64 { x * x * x }
/// let pool = ProcessPoolExecutor::new(2)?;
/// let f = pool.submit(cube, 3)?;
/// assert_eq!(f.result()?, 27);
/// let cubes: Vec<i64> = pool.map(cube, 1..=3)?.collect::<Result<_, _>>()?;
/// assert_eq!(cubes, [1, 8, 27]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ProcessPoolExecutor {
    engine: Engine,
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.engine.processes())
            .finish()
    }
}

/// Settings for a [`ProcessPoolExecutor`].
///
/// ```
/// use multiproc::futures::ProcessPoolExecutor;
/// fn setup(_: ()) {}
/// let pool = ProcessPoolExecutor::builder()
///     .max_workers(2)
///     .max_tasks_per_child(10)
///     .initializer(setup, ())
///     .start_method(multiproc::StartMethod::ForkServer)
///     .build()?;
/// assert_eq!(pool.max_workers(), 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ProcessPoolExecutorBuilder {
    inner: PoolBuilder,
}

impl ProcessPoolExecutorBuilder {
    /// The number of worker processes (0, the default: one per CPU).
    pub fn max_workers(self, n: usize) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.processes(n),
        }
    }

    /// A worker exits after this many tasks and a fresh one replaces it (0: never).
    pub fn max_tasks_per_child(self, k: usize) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.maxtasksperchild(k),
        }
    }

    /// `f(args)` runs in each worker when it starts.
    pub fn initializer<A>(self, f: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        ProcessPoolExecutorBuilder {
            inner: self.inner.initializer(f, args),
        }
    }

    /// Whether workers ignore `SIGINT` (default: yes, like Python's); see
    /// [`PoolBuilder::workers_ignore_sigint`](crate::PoolBuilder::workers_ignore_sigint).
    pub fn workers_ignore_sigint(self, ignore: bool) -> Self {
        Self {
            inner: self.inner.workers_ignore_sigint(ignore),
        }
    }

    /// Every task's time limit (default: none), counted from the moment a worker starts it;
    /// see [`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout). A task still
    /// running then resolves `Err(Timeout)` and its worker is replaced.
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// use std::time::Duration;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .task_timeout(Duration::from_millis(300))
    ///     .build()?;
    /// assert!(matches!(pool.submit(nap, 60_000)?.result(), Err(multiproc::Error::Timeout)));
    /// assert_eq!(pool.submit(nap, 1)?.result()?, 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn task_timeout(self, limit: Duration) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.task_timeout(limit),
        }
    }

    /// Whether [`Future::cancel`] also stops a *running* task (default: no, Python's rule):
    /// its worker is stopped (`SIGTERM`, then `SIGKILL` 100 ms later) and replaced, the
    /// future reports cancelled, and the tasks queued behind it go to other workers.
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// use std::time::Duration;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).cancel_running(true).build()?;
    /// let f = pool.submit(nap, 60_000)?;
    /// while !f.running() { std::thread::sleep(Duration::from_millis(1)); }
    /// assert!(f.cancel());
    /// assert!(f.cancelled());
    /// assert_eq!(pool.submit(nap, 1)?.result()?, 1); // its slot is free again
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn cancel_running(self, yes: bool) -> Self {
        let mut inner = self.inner;
        inner.cancel_running = yes;
        ProcessPoolExecutorBuilder { inner }
    }

    /// A worker whose resident memory exceeds `bytes` after a task exits and is replaced (0,
    /// the default: never); see
    /// [`PoolBuilder::max_memory_per_worker`](crate::PoolBuilder::max_memory_per_worker).
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .max_memory_per_worker(1 << 30)
    ///     .build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn max_memory_per_worker(self, bytes: u64) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.max_memory_per_worker(bytes),
        }
    }

    /// A hard ceiling on each worker's memory beyond its size at start: a task past it fails
    /// alone with `Err(MemoryLimit)` and its worker is replaced; see
    /// [`PoolBuilder::memory_limit_per_worker`](crate::PoolBuilder::memory_limit_per_worker).
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// let pool = ProcessPoolExecutor::builder()
    ///     .max_workers(1)
    ///     .memory_limit_per_worker(1 << 30)
    ///     .build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn memory_limit_per_worker(self, bytes: u64) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.memory_limit_per_worker(bytes),
        }
    }

    /// How workers are started (default: the process-wide start method).
    pub fn start_method(self, method: StartMethod) -> Self {
        ProcessPoolExecutorBuilder {
            inner: self.inner.start_method(method),
        }
    }

    /// Starts the workers; the soft descriptor limit may be raised for them, as for a pool
    /// (see [`PoolBuilder::build`](crate::PoolBuilder::build)).
    pub fn build(self) -> Result<ProcessPoolExecutor> {
        Ok(ProcessPoolExecutor {
            engine: self.inner.engine()?,
        })
    }
}

impl ProcessPoolExecutor {
    /// An executor with `max_workers` worker processes (0: one per CPU).
    ///
    /// ```
    /// let pool = multiproc::futures::ProcessPoolExecutor::new(1)?;
    /// assert_eq!(pool.max_workers(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new(max_workers: usize) -> Result<Self> {
        Self::builder().max_workers(max_workers).build()
    }

    /// A builder for an executor with a task limit per worker, an initializer or a start method.
    pub fn builder() -> ProcessPoolExecutorBuilder {
        ProcessPoolExecutorBuilder::default()
    }

    /// The number of worker processes.
    pub fn max_workers(&self) -> usize {
        self.engine.processes()
    }

    /// The process ids of the live workers (a dead worker's replacement appears once started).
    ///
    /// ```
    /// let pool = multiproc::futures::ProcessPoolExecutor::new(2)?;
    /// assert_eq!(pool.pids().len(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.engine.pids()
    }

    /// Schedules `f(args)` in a worker; `Err(PoolClosed)` after
    /// [`shutdown`](ProcessPoolExecutor::shutdown).
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let pool = ProcessPoolExecutor::new(1)?;
    /// assert_ne!(pool.submit(pid, ())?.result()?, std::process::id());
    /// pool.shutdown(true, false);
    /// assert!(matches!(pool.submit(pid, ()), Err(multiproc::Error::PoolClosed)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn submit<A, R>(&self, f: fn(A) -> R, args: A) -> Result<Future<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (core, id) = submit_timed(&self.engine, f, &args, None)?;
        Ok(Future::with_canceller(core, self.engine.canceller(id)))
    }

    /// [`submit`](ProcessPoolExecutor::submit) with a time limit of its own, counted from the
    /// moment a worker starts the task: still running then, it resolves `Err(Timeout)`, its
    /// worker is stopped and replaced, and no other task is lost (pebble's
    /// `ProcessPool.schedule(f, timeout=…)`).
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// use std::time::Duration;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = ProcessPoolExecutor::new(2)?;
    /// let slow = pool.submit_with_timeout(nap, 60_000, Duration::from_millis(200))?;
    /// assert!(matches!(slow.result(), Err(multiproc::Error::Timeout)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn submit_with_timeout<A, R>(
        &self,
        f: fn(A) -> R,
        args: A,
        timeout: Duration,
    ) -> Result<Future<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (core, id) = submit_timed(&self.engine, f, &args, Some(timeout))?;
        Ok(Future::with_canceller(core, self.engine.canceller(id)))
    }

    /// Counters of this executor's tasks and workers (atomics: cheap to read at any time).
    ///
    /// ```
    /// use multiproc::futures::ProcessPoolExecutor;
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = ProcessPoolExecutor::new(1)?;
    /// pool.submit(inc, 1)?.result()?;
    /// let s = pool.stats();
    /// assert_eq!((s.submitted, s.completed, s.workers_started), (1, 1, 1));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.engine.stats()
    }

    /// Python's `map` (chunksize 1): results in input order; the input is read lazily, a
    /// bounded number of tasks ahead, and the iterator is exact-size when the input is.
    ///
    /// ```
    /// # use multiproc::futures::ProcessPoolExecutor;
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = ProcessPoolExecutor::new(2)?;
    /// assert_eq!(pool.map(inc, [1, 2])?.len(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_chunked(f, items, 1)
    }

    /// Python's `map(…, chunksize=n)`: `chunksize` items per task.
    ///
    /// ```
    /// # use multiproc::futures::ProcessPoolExecutor;
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = ProcessPoolExecutor::new(2)?;
    /// let out: Vec<u8> = pool.map_chunked(inc, 0..10, 4)?.map(Result::unwrap).collect();
    /// assert_eq!(out, (1..=10).collect::<Vec<_>>());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        Imap::new(&self.engine, f, items.into_iter(), chunksize)
    }

    /// Python's `shutdown`: no more submits; with `cancel_futures` the tasks not started are
    /// cancelled; with `wait` it returns once the workers have finished and exited.
    ///
    /// ```
    /// # use multiproc::futures::ProcessPoolExecutor;
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = ProcessPoolExecutor::new(1)?;
    /// let f = pool.submit(inc, 1)?;
    /// pool.shutdown(true, false);
    /// assert_eq!(f.result()?, 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        if cancel_futures {
            self.engine.cancel_pending();
        }
        self.engine.close();
        if wait {
            let _ = self.engine.join();
        }
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}
