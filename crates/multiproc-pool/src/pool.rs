//! `multiprocessing.Pool`: apply, map, imap and friends over a set of worker processes.

use crate::async_result::AsyncResult;
use crate::call::{self, CallSpec, Initializer};
use crate::completion::{MapPart, MapState, Single, Unordered, dup};
use crate::core::Core;
use crate::engine::{Config, Engine, Job, PoolStats};
use crossbeam_channel::Receiver;
use multiproc_spawn::StartMethod;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Python's `multiprocessing.Pool`: a fixed number of worker processes that run `fn(A) -> R`
/// tasks, arguments and results travelling with serde.
///
/// Dropping the pool terminates it (Python's `with Pool(…) as p:` block), leaving no process and
/// no zombie; call [`close`](Pool::close) then [`join`](Pool::join) to let queued work finish.
///
/// ```
/// use multiproc::pool::Pool;
/// fn square(x: u64) -> u64 { x * x }
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=5)?, [1, 4, 9, 16, 25]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Pool {
    engine: Engine,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.engine.processes())
            .field("closed", &self.engine.is_closed())
            .finish()
    }
}

/// Settings for a [`Pool`]: processes, initializer, maxtasksperchild, start method.
///
/// ```
/// use multiproc::pool::Pool;
/// use multiproc::StartMethod;
/// fn hello(tag: String) { let _ = tag; }
/// let pool = Pool::builder()
///     .processes(2)
///     .initializer(hello, "ready".to_string())
///     .maxtasksperchild(100)
///     .start_method(StartMethod::Fork)
///     .build()?;
/// assert_eq!(pool.processes(), 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    processes: usize,
    init: Option<Initializer>,
    max_tasks: usize,
    method: Option<StartMethod>,
    /// Workers keep the parent's `SIGINT` disposition instead of ignoring it.
    keep_sigint: bool,
    task_timeout: Option<Duration>,
    pub(crate) cancel_running: bool,
    max_memory: u64,
    memory_limit: u64,
}

impl PoolBuilder {
    /// The number of worker processes (0, the default: [`cpu_count`](multiproc_spawn::cpu_count)).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = n;
        self
    }

    /// `f(args)` runs in each worker when it starts (Python's `initializer`, `initargs`).
    /// `args` may hold multiproc handles (queues…): they reach every worker, as handles in
    /// `spawn` arguments do.
    pub fn initializer<A>(mut self, f: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.init = Some(Initializer::new(f, args));
        self
    }

    /// A worker exits after this many tasks and a fresh one replaces it (0, the default: never).
    pub fn maxtasksperchild(mut self, k: usize) -> Self {
        self.max_tasks = k;
        self
    }

    /// How workers are started (default: [`get_start_method`](multiproc_spawn::get_start_method)).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Whether workers ignore `SIGINT` (default: yes, as Python's pool workers do, so a Ctrl-C
    /// at the terminal, which reaches the whole process group, interrupts the parent only; the
    /// workers then end with it). `false`: they keep the disposition they were started with.
    ///
    /// ```
    /// let pool = multiproc::pool::Pool::builder()
    ///     .processes(1)
    ///     .workers_ignore_sigint(false)
    ///     .build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn workers_ignore_sigint(mut self, ignore: bool) -> Self {
        self.keep_sigint = !ignore;
        self
    }

    /// Every task's time limit (default: none), counted from the moment a worker starts it
    /// (time spent queued does not count). A task still running when it passes gets
    /// `Err(Timeout)`: its worker is stopped (`SIGTERM`, then `SIGKILL` 100 ms later, so a
    /// task that ignores `SIGTERM` is stopped too) and a fresh one takes its place; the tasks
    /// queued behind it go to other workers, none is lost or run twice. A task submitted
    /// with [`Pool::apply_async_timeout`] has its own limit instead. Python's pool has no
    /// such limit (pebble's `ProcessPool.schedule(f, timeout=…)` does). A limit of zero makes
    /// [`build`](PoolBuilder::build) answer `Err(Invalid)`; `Duration::MAX` is no limit.
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// use std::time::Duration;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = Pool::builder().processes(1).task_timeout(Duration::from_millis(300)).build()?;
    /// assert!(matches!(pool.apply_async(nap, 60_000)?.get(), Err(multiproc::Error::Timeout)));
    /// assert_eq!(pool.apply(nap, 1)?, 1); // a fresh worker took over
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn task_timeout(mut self, limit: Duration) -> Self {
        self.task_timeout = Some(limit);
        self
    }

    /// A worker whose resident memory (RSS) exceeds `bytes` after a task exits, and a fresh
    /// one takes its place (0, the default: never); Celery's `worker_max_memory_per_child`.
    /// The task that grew it keeps its result; the check runs between tasks, so a task that
    /// grows without bound is for [`task_timeout`](PoolBuilder::task_timeout) or the system's
    /// limits to stop. The tasks queued at that worker go to the next one.
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// fn hoard(mib: usize) -> usize { Box::leak(vec![1u8; mib << 20].into_boxed_slice()).len() }
    /// let pool = Pool::builder().processes(1).max_memory_per_worker(64 << 20).build()?;
    /// let first = pool.pids();
    /// pool.apply(hoard, 100)?; // above the limit: the worker retires after this task
    /// pool.apply(hoard, 0)?;
    /// assert_ne!(pool.pids(), first);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn max_memory_per_worker(mut self, bytes: u64) -> Self {
        self.max_memory = bytes;
        self
    }

    /// A hard ceiling on the memory each worker may take beyond what it had when it started
    /// serving (0, the default: none): a task that goes past it fails alone with
    /// `Err(MemoryLimit)`, its worker is replaced, and the pool goes on, where without it the
    /// task would grow until the kernel's OOM killer picks a victim (perhaps the parent).
    ///
    /// It is enforced with `RLIMIT_AS`, set in each worker after its initializer ran, to the
    /// worker's address space at that moment plus `bytes`: it needs no privilege and holds
    /// under every start method, in containers too. An allocation past it fails, and Rust
    /// aborts the worker (`SIGABRT`); a worker that aborts while a limit is set is reported as
    /// past its limit. Address space is not resident memory: mappings count whether touched
    /// or not, so leave room (a few hundred MiB) for the allocator's arenas and the pool's
    /// queues. A cgroup's `memory.max` limits resident memory instead, but a pool cannot
    /// give each worker a cgroup of its own unless the service manager delegated one (cgroup
    /// v2's rule that a cgroup with processes has no child cgroups with controllers); for a
    /// limit on the whole pool, run it under one (`systemd-run -p MemoryMax=…`).
    /// Pair it with [`max_memory_per_worker`](PoolBuilder::max_memory_per_worker), the soft rule
    /// checked between tasks. A limit too small for a worker to start (it cannot even start a
    /// thread) is not replaced for ever: a worker that dies before serving anything counts as
    /// failing to start, and after three such workers in a slot the slot stays empty (with
    /// none left, tasks fail with `Err(ProcessFailed)` naming the limit).
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// fn hoard(mib: usize) -> usize { std::hint::black_box(vec![1u8; mib << 20]).iter().map(|&b| b as usize).sum() }
    /// let pool = Pool::builder().processes(1).memory_limit_per_worker(256 << 20).build()?;
    /// assert!(matches!(pool.apply(hoard, 1024), Err(multiproc::Error::MemoryLimit { .. })));
    /// assert_eq!(pool.apply(hoard, 1)?, 1 << 20); // a fresh worker took over
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn memory_limit_per_worker(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Starts the workers.
    ///
    /// # Descriptors
    ///
    /// Each worker holds 6 descriptors open in this process (its task queue's shared-memory
    /// file and descriptor channel, its lifeline, its process's socket and pidfd). When the
    /// soft `RLIMIT_NOFILE` leaves too little room for them, it is raised to the hard limit
    /// first (no privilege needed; the Go runtime does the same at start-up), so `Pool(256)`
    /// starts under the usual soft limit of 1024. A soft limit with room enough is left alone.
    /// Where even the hard limit is too low, the error is `Err(Io)` with `EMFILE`.
    pub fn build(self) -> Result<Pool> {
        Ok(Pool {
            engine: self.engine()?,
        })
    }

    pub(crate) fn engine(self) -> Result<Engine> {
        let processes = if self.processes == 0 {
            multiproc_spawn::cpu_count().min(MAX_PROCESSES)
        } else {
            self.processes
        };
        if processes > MAX_PROCESSES {
            return Err(Error::Invalid(format!(
                "a process pool has at most {MAX_PROCESSES} workers (asked for {processes}): \
                 its result queue is one shared object, held by every worker and the parent"
            )));
        }
        check_task_limit(self.task_timeout)?;
        Engine::start(Config {
            processes,
            init: self.init,
            max_tasks: self.max_tasks,
            method: self.method,
            ignore_sigint: !self.keep_sigint,
            task_timeout: self.task_timeout,
            cancel_running: self.cancel_running,
            max_memory: self.max_memory,
            memory_limit: self.memory_limit,
        })
    }
}

/// The most workers a process pool (or [`ProcessPoolExecutor`](crate::ProcessPoolExecutor))
/// can have: its result queue is one shared object, held by every worker and the parent
/// (see [`multiproc_ipc::MAX_HOLDERS`]). A larger count is `Err(Invalid)` at `build`; the
/// default (one worker per CPU) is capped at it.
///
/// ```
/// use multiproc::pool::{MAX_PROCESSES, Pool};
/// assert!(Pool::new(MAX_PROCESSES + 1).is_err());
/// ```
pub const MAX_PROCESSES: usize = multiproc_ipc::MAX_HOLDERS - 1;

/// Python's default `map` chunk size: `ceil(len / (4 × workers))`.
pub(crate) fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(4 * workers.max(1)).max(1)
}

impl Pool {
    /// A pool of `processes` workers (0: one per CPU), Python's `Pool(processes)`. The soft
    /// descriptor limit may be raised for it: see [`PoolBuilder::build`].
    ///
    /// ```
    /// let pool = multiproc::pool::Pool::new(0)?;
    /// assert_eq!(pool.processes(), multiproc::cpu_count());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for a pool with an initializer, `maxtasksperchild` or a start method.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.engine.processes()
    }

    /// The process ids of the live workers (a dead worker's replacement appears once started).
    ///
    /// ```
    /// let pool = multiproc::pool::Pool::new(2)?;
    /// assert_eq!(pool.pids().len(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.engine.pids()
    }

    /// Runs `f(args)` in a worker and waits for the result (Python's `apply`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let pool = Pool::new(1)?;
    /// assert_ne!(pool.apply(pid, ())?, std::process::id());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn apply<A, R>(&self, f: fn(A) -> R, args: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)?.get()
    }

    /// Queues `f(args)` and returns at once (Python's `apply_async`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn add(p: (i32, i32)) -> i32 { p.0 + p.1 }
    /// let pool = Pool::new(2)?;
    /// let results: Vec<_> = (0..4).map(|i| pool.apply_async(add, (i, 10))).collect::<Result<_, _>>()?;
    /// let sums: Vec<i32> = results.into_iter().map(|r| r.get().unwrap()).collect();
    /// assert_eq!(sums, [10, 11, 12, 13]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, args: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(AsyncResult::from_core(submit_one(&self.engine, f, &args)?))
    }

    /// [`apply_async`](Pool::apply_async) with a time limit of its own, counted from the
    /// moment a worker starts the task: if it is still running then, its result is
    /// `Err(Timeout)`, its worker is stopped and replaced, and no other task is lost (see
    /// [`PoolBuilder::task_timeout`]). A limit of zero is `Err(Invalid)`.
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// use std::time::Duration;
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    /// let pool = Pool::new(2)?;
    /// let slow = pool.apply_async_timeout(nap, 60_000, Duration::from_millis(200))?;
    /// let quick = pool.apply_async_timeout(nap, 1, Duration::from_secs(60))?;
    /// assert!(matches!(slow.get(), Err(multiproc::Error::Timeout)));
    /// assert_eq!(quick.get()?, 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn apply_async_timeout<A, R>(
        &self,
        f: fn(A) -> R,
        args: A,
        timeout: Duration,
    ) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (core, _) = submit_timed(&self.engine, f, &args, Some(timeout))?;
        Ok(AsyncResult::from_core(core))
    }

    /// Counters of this pool's tasks and workers (atomics: cheap to read at any time).
    ///
    /// ```
    /// use multiproc::pool::Pool;
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = Pool::new(1)?;
    /// pool.apply(inc, 1)?;
    /// let s = pool.stats();
    /// assert_eq!((s.submitted, s.completed, s.waiting), (1, 1, 0));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        self.engine.stats()
    }

    /// `f` over every item, results in order, with Python's default chunk size (Python's `map`).
    /// The first failing chunk's error is returned.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map(inc, vec![1, 2, 3])?, [2, 3, 4]);
    /// assert!(pool.map(inc, Vec::new())?.is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Pool::map) with chunks of `chunksize` items per task.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_chunked(inc, 0..10, 3)?, (1..=10).collect::<Vec<_>>());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async_chunked(f, items, chunksize)?.get()
    }

    /// [`map`](Pool::map) without waiting (Python's `map_async`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// let r = pool.map_async(inc, [1, 2])?;
    /// assert_eq!(r.get()?, [2, 3]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = default_chunksize(items.len(), self.processes());
        self.map_async_chunked(f, items, chunksize)
    }

    /// [`map_async`](Pool::map_async) with chunks of `chunksize` items per task.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map_async_chunked(inc, [1, 2, 3], 2)?.get()?, [2, 3, 4]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map_async_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        if self.engine.is_closed() {
            return Err(Error::PoolClosed);
        }
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = chunksize.max(1);
        let chunks = items.len().div_ceil(chunksize);
        let state = MapState::<R>::new(chunks);
        let call = CallSpec::chunk::<A, R>(f);
        let jobs = items
            .chunks(chunksize)
            .enumerate()
            .map(|(index, chunk)| {
                Ok(Job {
                    call,
                    args: call::encode(chunk)?,
                    timeout: None,
                    done: Box::new(MapPart {
                        state: Arc::clone(&state),
                        index,
                        finished: false,
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.engine.submit(jobs)?;
        Ok(AsyncResult::from_core(Arc::clone(&state.core)))
    }

    /// Python's `starmap`: `f` takes its arguments as one tuple, so this is [`map`](Pool::map)
    /// over tuples, kept for the Python name.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn pow((base, exp): (u64, u32)) -> u64 { base.pow(exp) }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.starmap(pow, [(2, 3), (3, 2)])?, [8, 9]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn starmap<A, R>(&self, f: fn(A) -> R, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map(f, items)
    }

    /// Results in order as they become available, one task per item (Python's `imap`). The
    /// input is read lazily, a bounded number of tasks ahead; the iterator knows its length
    /// when the input does ([`ExactSizeIterator`]).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u32) -> u32 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// let it = pool.imap(inc, 0..4u32)?;
    /// assert_eq!(it.len(), 4);
    /// assert_eq!(it.collect::<Result<Vec<_>, _>>()?, [1, 2, 3, 4]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn imap<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Imap<'_, A, R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_chunked(f, items, 1)
    }

    /// [`imap`](Pool::imap) with `chunksize` items per task.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// let out: Vec<u64> = pool.imap_chunked(inc, 0..100u64, 7)?.map(Result::unwrap).collect();
    /// assert_eq!(out, (1..=100).collect::<Vec<_>>());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn imap_chunked<A, R, I>(
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

    /// Results as they finish, in any order, one task per item (Python's `imap_unordered`);
    /// lazy and exact-size like [`imap`](Pool::imap). For a progress bar over an input that
    /// std does not mark [`ExactSizeIterator`] (`0..n` of `u64`), see
    /// [`ImapUnordered::exact_len`].
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// let mut out: Vec<u64> = pool.imap_unordered(inc, 0..4u64)?.map(Result::unwrap).collect();
    /// out.sort();
    /// assert_eq!(out, [1, 2, 3, 4]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn imap_unordered<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<ImapUnordered<'_, A, R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_unordered_chunked(f, items, 1)
    }

    /// [`imap_unordered`](Pool::imap_unordered) with `chunksize` items per task.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.imap_unordered_chunked(inc, 0..10u64, 3)?.count(), 10);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn imap_unordered_chunked<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<ImapUnordered<'_, A, R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if self.engine.is_closed() {
            return Err(Error::PoolClosed);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(ImapUnordered {
            engine: &self.engine,
            call: CallSpec::chunk::<A, R>(f),
            input: items.into_iter(),
            chunksize: chunksize.max(1),
            window: window(self.processes()),
            in_flight: 0,
            items_in_flight: 0,
            tx,
            rx,
            current: VecDeque::new(),
            _f: std::marker::PhantomData,
        })
    }

    /// No more tasks are accepted; those queued still run (Python's `close`).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn inc(x: u64) -> u64 { x + 1 }
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(inc, 1)?;
    /// pool.close();
    /// assert!(matches!(pool.apply_async(inc, 2), Err(multiproc::Error::PoolClosed)));
    /// pool.join()?;
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn close(&self) {
        self.engine.close();
    }

    /// Waits for the workers to exit; after [`close`](Pool::close) (or
    /// [`terminate`](Pool::terminate)) only, else `Err(Invalid)` (Python's `ValueError`).
    pub fn join(&self) -> Result<()> {
        self.engine.join()
    }

    /// Kills the workers now; every result not ready yet answers `Err(Cancelled)`.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn nap(ms: u64) { std::thread::sleep(std::time::Duration::from_millis(ms)) }
    /// let pool = Pool::new(1)?;
    /// let r = pool.apply_async(nap, 60_000)?;
    /// pool.terminate();
    /// assert!(matches!(r.get(), Err(multiproc::Error::Cancelled)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.engine.terminate();
        let _ = self.engine.join();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Submits `f(args)` as one task whose result lands in a fresh cell.
pub(crate) fn submit_one<A, R>(engine: &Engine, f: fn(A) -> R, args: &A) -> Result<Arc<Core<R>>>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    submit_timed(engine, f, args, None).map(|(core, _)| core)
}

/// Submits `f(args)` as one task with its own time limit (`None`: the pool's); returns its
/// cell and its id.
pub(crate) fn submit_timed<A, R>(
    engine: &Engine,
    f: fn(A) -> R,
    args: &A,
    timeout: Option<Duration>,
) -> Result<(Arc<Core<R>>, u64)>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    check_task_limit(timeout)?;
    let core = Core::new();
    let id = engine.submit_ids(vec![Job {
        call: CallSpec::one::<A, R>(f),
        args: call::encode(args)?,
        done: Box::new(Single::new(Arc::clone(&core))),
        timeout,
    }])?;
    Ok((core, id))
}

/// A task time limit of zero is refused: no task can finish within it, yet one that finished
/// before the supervisor's next look would still have counted as in time, so the outcome
/// would depend on scheduling. (`Duration::MAX` is no limit at all; see `Engine`'s `arm`.)
fn check_task_limit(limit: Option<Duration>) -> Result<()> {
    if limit == Some(Duration::ZERO) {
        return Err(Error::Invalid(
            "a task time limit must be above zero (leave it unset for no limit)".to_owned(),
        ));
    }
    Ok(())
}

/// How many chunks an `imap` keeps submitted ahead of the consumer.
fn window(processes: usize) -> usize {
    (8 * processes).max(64)
}

/// Takes up to `n` items from `input` and encodes them as one chunk.
fn next_chunk<A: Serialize>(
    input: &mut impl Iterator<Item = A>,
    n: usize,
) -> Result<Option<(Vec<u8>, usize)>> {
    let chunk: Vec<A> = input.by_ref().take(n).collect();
    if chunk.is_empty() {
        return Ok(None);
    }
    Ok(Some((call::encode(&chunk)?, chunk.len())))
}

/// The iterator of [`Pool::imap`]: results in input order.
pub struct Imap<'p, A, R, I> {
    engine: &'p Engine,
    call: CallSpec,
    input: I,
    chunksize: usize,
    window: usize,
    in_flight: VecDeque<(Arc<Core<Vec<R>>>, usize)>,
    items_in_flight: usize,
    current: VecDeque<Result<R>>,
    _f: std::marker::PhantomData<fn(A)>,
}

impl<'p, A, R, I> Imap<'p, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    pub(crate) fn new(
        engine: &'p Engine,
        f: fn(A) -> R,
        input: I,
        chunksize: usize,
    ) -> Result<Self> {
        if engine.is_closed() {
            return Err(Error::PoolClosed);
        }
        Ok(Imap {
            engine,
            call: CallSpec::chunk::<A, R>(f),
            input,
            chunksize: chunksize.max(1),
            window: window(engine.processes()),
            in_flight: VecDeque::new(),
            items_in_flight: 0,
            current: VecDeque::new(),
            _f: std::marker::PhantomData,
        })
    }

    fn refill(&mut self) -> Result<()> {
        if self.in_flight.len() > self.window / 2 {
            return Ok(());
        }
        let mut jobs = Vec::new();
        while self.in_flight.len() < self.window {
            let Some((args, len)) = next_chunk(&mut self.input, self.chunksize)? else {
                break;
            };
            let core = Core::new();
            jobs.push(Job {
                call: self.call,
                args,
                timeout: None,
                done: Box::new(Single::new(Arc::clone(&core))),
            });
            self.in_flight.push_back((core, len));
            self.items_in_flight += len;
        }
        self.engine.submit(jobs)
    }
}

impl<A, R, I> Iterator for Imap<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        if let Some(r) = self.current.pop_front() {
            return Some(r);
        }
        if let Err(e) = self.refill() {
            return Some(Err(e));
        }
        let (core, len) = self.in_flight.pop_front()?;
        self.items_in_flight -= len;
        core.wait(None);
        match core.take() {
            Ok(v) => self.current.extend(v.into_iter().map(Ok)),
            Err(e) => self.current.extend((0..len).map(|_| Err(dup(&e)))),
        }
        self.current.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.current.len() + self.items_in_flight;
        let (lo, hi) = self.input.size_hint();
        (known + lo, hi.map(|h| h + known))
    }
}

impl<A, R, I> ExactSizeIterator for Imap<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: ExactSizeIterator<Item = A>,
{
}

impl<A, R, I> Imap<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    /// This iterator as an [`ExactSizeIterator`], for an input whose length is known but that
    /// std does not mark exact-size: ranges of `u64`/`i64`, `chain`s, `step_by`… (its
    /// [`size_hint`](Iterator::size_hint) is exact). `Err(Invalid)` when the input's length is
    /// not known (a `filter`, an open range). What `indicatif`'s `.progress()` needs: as
    /// `tqdm(pool.imap(f, range(200)))`, `pool.imap(f, 0..200u64)?.exact_len()?.progress()`.
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn square(x: u64) -> u64 { x * x }
    /// fn bar_over<I: ExactSizeIterator>(it: I) -> usize { it.len() } // as indicatif's `progress`
    /// let pool = Pool::new(2)?;
    /// let it = pool.imap(square, 0..200u64)?.exact_len()?;
    /// assert_eq!(bar_over(it), 200);
    /// let mut it = pool.imap(square, 0..200u64)?.exact_len()?;
    /// assert_eq!(it.next().transpose()?, Some(0));
    /// assert_eq!(it.len(), 199);
    /// assert!(pool.imap(square, (0..).filter(|x| x % 2 == 0))?.exact_len().is_err());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn exact_len(self) -> Result<ExactLen<Self>> {
        ExactLen::new(self)
    }
}

impl<A, R, I> Drop for Imap<'_, A, R, I> {
    fn drop(&mut self) {
        for (core, _) in &self.in_flight {
            core.cancel();
        }
    }
}

impl<A, R, I> fmt::Debug for Imap<'_, A, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("chunks_in_flight", &self.in_flight.len())
            .finish()
    }
}

/// The iterator of [`Pool::imap_unordered`]: results as they finish.
pub struct ImapUnordered<'p, A, R, I> {
    engine: &'p Engine,
    call: CallSpec,
    input: I,
    chunksize: usize,
    window: usize,
    in_flight: usize,
    items_in_flight: usize,
    tx: crossbeam_channel::Sender<(usize, Result<Vec<R>>)>,
    rx: Receiver<(usize, Result<Vec<R>>)>,
    current: VecDeque<Result<R>>,
    _f: std::marker::PhantomData<fn(A)>,
}

impl<A, R, I> Iterator for ImapUnordered<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        self.next_until(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.current.len() + self.items_in_flight;
        let (lo, hi) = self.input.size_hint();
        (known + lo, hi.map(|h| h + known))
    }
}

impl<A, R, I> ImapUnordered<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    /// The next result to finish, waiting at most `timeout`: `Some(Err(Timeout))` when none
    /// finished in time (the iterator goes on: Python's `IMapIterator.next(timeout)`), `None`
    /// once every result was returned.
    ///
    /// ```
    /// # use multiproc_pool::Pool;
    /// # use std::time::Duration;
    /// fn double(x: u32) -> u32 { x * 2 }
    /// let pool = Pool::new(2)?;
    /// let mut it = pool.imap_unordered(double, [1, 2, 3])?;
    /// let mut got = Vec::new();
    /// while let Some(r) = it.next_timeout(Duration::from_secs(10)) {
    ///     got.push(r?);
    /// }
    /// got.sort();
    /// assert_eq!(got, [2, 4, 6]);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_until(crate::future::deadline_after(timeout))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R>> {
        if let Some(r) = self.current.pop_front() {
            return Some(r);
        }
        if self.in_flight <= self.window / 2 {
            let mut jobs = Vec::new();
            while self.in_flight < self.window {
                let (args, len) = match next_chunk(&mut self.input, self.chunksize) {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => return Some(Err(e)),
                };
                jobs.push(Job {
                    call: self.call,
                    args,
                    timeout: None,
                    done: Box::new(Unordered {
                        tx: self.tx.clone(),
                        len,
                        finished: false,
                    }),
                });
                self.in_flight += 1;
                self.items_in_flight += len;
            }
            if let Err(e) = self.engine.submit(jobs) {
                return Some(Err(e));
            }
        }
        if self.in_flight == 0 {
            return None;
        }
        let (len, got) = match deadline {
            None => self.rx.recv().ok()?,
            Some(d) => match self.rx.recv_deadline(d) {
                Ok(x) => x,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    return Some(Err(Error::Timeout));
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
            },
        };
        self.in_flight -= 1;
        self.items_in_flight -= len;
        match got {
            Ok(v) => self.current.extend(v.into_iter().map(Ok)),
            Err(e) => self.current.extend((0..len).map(|_| Err(dup(&e)))),
        }
        self.current.pop_front()
    }
}

impl<A, R, I> ImapUnordered<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    /// This iterator as an [`ExactSizeIterator`], for an input whose length is known but that
    /// std does not mark exact-size: ranges of `u64`/`i64`, `chain`s, `step_by`… (its
    /// [`size_hint`](Iterator::size_hint) is exact). `Err(Invalid)` when the input's length is
    /// not known (a `filter`, an open range). What `indicatif`'s `.progress()` needs: Python's
    /// `tqdm(pool.imap_unordered(f, range(200)), total=200)` is
    /// `pool.imap_unordered(f, 0..200u64)?.exact_len()?.progress()` (or, naming the length,
    /// indicatif's `.progress_count(200)`, which needs no exact size).
    ///
    /// ```
    /// # use multiproc::pool::Pool;
    /// fn is_even(x: u64) -> bool { x % 2 == 0 }
    /// fn bar_over<I: ExactSizeIterator>(it: I) -> usize { it.len() } // as indicatif's `progress`
    /// let pool = Pool::new(2)?;
    /// let it = pool.imap_unordered(is_even, 0..200u64)?.exact_len()?;
    /// assert_eq!(bar_over(it), 200);
    /// let evens = pool
    ///     .imap_unordered(is_even, 0..200u64)?
    ///     .exact_len()?
    ///     .filter(|r| matches!(r, Ok(true)))
    ///     .count();
    /// assert_eq!(evens, 100);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn exact_len(self) -> Result<ExactLen<Self>> {
        ExactLen::new(self)
    }
}

/// An iterator of results with a known length: what [`Imap::exact_len`] and
/// [`ImapUnordered::exact_len`] return. It yields the same items and counts down
/// ([`ExactSizeIterator::len`]).
///
/// ```
/// # use multiproc::pool::Pool;
/// fn inc(x: i64) -> i64 { x + 1 }
/// let pool = Pool::new(2)?;
/// let it = pool.imap(inc, -5..5i64)?.exact_len()?;
/// assert_eq!(it.len(), 10);
/// assert_eq!(it.collect::<Result<Vec<_>, _>>()?, (-4..=5).collect::<Vec<_>>());
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ExactLen<T> {
    inner: T,
    left: usize,
}

impl<T: Iterator> ExactLen<T> {
    fn new(inner: T) -> Result<Self> {
        match inner.size_hint() {
            (lo, Some(hi)) if lo == hi => Ok(ExactLen { inner, left: lo }),
            _ => Err(Error::Invalid(
                "exact_len: the input's length is not known (its size_hint is not exact)".into(),
            )),
        }
    }
}

impl<T: Iterator> Iterator for ExactLen<T> {
    type Item = T::Item;

    fn next(&mut self) -> Option<T::Item> {
        let item = self.inner.next();
        if item.is_some() {
            self.left = self.left.saturating_sub(1);
        } else {
            self.left = 0;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T: Iterator> ExactSizeIterator for ExactLen<T> {}

impl<T: fmt::Debug> fmt::Debug for ExactLen<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactLen")
            .field("left", &self.left)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<A, R, I> ExactSizeIterator for ImapUnordered<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: ExactSizeIterator<Item = A>,
{
}

impl<A, R, I> fmt::Debug for ImapUnordered<'_, A, R, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("chunks_in_flight", &self.in_flight)
            .finish()
    }
}
