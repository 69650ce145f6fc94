//! multiproc: Python's process and thread toolbox (`multiprocessing`, `threading`, `queue`,
//! `concurrent.futures`, `subprocess`) for Rust, fast and robust.
//!
//! Every name a Python programmer knows is where they expect it:
//!
//! | Python | multiproc |
//! |---|---|
//! | `multiprocessing.Process(target=f, args=(x,)).start()` | [`spawn(f, x)`](spawn), [`Process::builder()`](Process::builder) |
//! | `multiprocessing.set_start_method("fork")` | [`set_start_method(StartMethod::Fork)`](set_start_method) |
//! | `multiprocessing.current_process()`, `parent_process()`, `active_children()`, `cpu_count()` | [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`] |
//! | `subprocess.run(...)`, `call`, `check_call`, `check_output` | [`subprocess::run`], [`subprocess::call`], … |
//! | `multiprocessing.Lock()`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` | [`Lock::new()`](Lock::new), [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`], [`Barrier`] (a dead holder never deadlocks them) |
//! | `multiprocessing.Value('q', 0)`, `Array('d', 10)`, `with v.get_lock(): v.value += 1` | [`Value::new(0i64)`](Value::new), [`Array::<f64>::new(10)`](Array::new), `*v.lock() += 1` |
//! | `shared_memory.SharedMemory(create=True, size=n)`, `SharedMemory(name)` | [`shared_memory::SharedMemory::create(None, n)`](shared_memory::SharedMemory::create), [`open(name)`](shared_memory::SharedMemory::open) |
//! | `multiprocessing.Queue`, `JoinableQueue`, `SimpleQueue`, `Pipe()` | [`Queue`], [`JoinableQueue`], [`SimpleQueue`], [`Pipe::duplex`] → [`Connection`] |
//! | `multiprocessing.Manager()`, `m.dict()`, `m.list()`, `m.Namespace()`, `BaseManager.register` | [`Manager::new()`](Manager::new) → [`managers::DictProxy`], [`managers::ListProxy`], [`managers::NamespaceProxy`]; [`Manager::builder().register::<T>(name)`](managers::ManagerBuilder::register) |
//! | `multiprocessing.Pool`, `apply_async`, `map`, `imap`, `imap_unordered`, `starmap` | [`pool::Pool`], [`pool::AsyncResult`], [`pool::Imap`], [`pool::ImapUnordered`] |
//! | `concurrent.futures.ProcessPoolExecutor`, `ThreadPoolExecutor`, `Future`, `wait`, `as_completed` | [`futures::ProcessPoolExecutor`], [`futures::ThreadPoolExecutor`], [`futures::Future`], [`futures::wait`], [`futures::as_completed`] |
//! | `threading.Thread`, `Lock`, `RLock`, `Condition`, `Semaphore`, `Event`, `Barrier`, `Timer`, `local` | [`threading`] |
//! | `queue.Queue`, `LifoQueue`, `PriorityQueue`, `SimpleQueue` | [`queue`] |
//! | `signal.signal(sig, handler)`, `SIG_IGN`, `getsignal`, `os.kill(pid, sig)`, `signal.pause()` | [`signal::signal`], [`signal::Handler`], [`signal::getsignal`], [`Process::send_signal`], [`signal::wait_for`] |
//! | `await loop.run_in_executor(None, q.get)`, `asyncio.Lock`, `asyncio.Event`, `await proc.wait()` | [`Queue::get_async`], [`Queue::put_async`], [`Connection::recv_async`], [`Lock::acquire_async`], [`Event::wait_async`], [`Process::join_async`]: futures for tokio or any executor, woken by one shared waiter thread, never a spinning core |
//! | every exception above | one [`Error`] enum, [`Result`] |
//!
//! The [`guide`] goes through every Python module name by name, with the behaviours that
//! differ from Python and why; the repository's `docs/design.md` explains how it works.
//!
//! # Add to your Cargo.toml
//!
//! ```toml
//! [dependencies]
//! multiproc = "0.1"
//! # Queues, locks and executors across machines, on a Redis server:
//! # multiproc = { version = "0.1", features = ["redis"] }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! Arguments, results and items cross process boundaries encoded with serde, so your own types
//! derive `Serialize` and `Deserialize` (hence `serde` with its `derive` feature); plain types
//! (numbers, strings, tuples, `Vec`s, options) need nothing.
//!
//! # A tour
//!
//! A process runs a plain function on one serde-encodable argument and hands back its value:
//!
//! ```
//! fn greet(name: String) -> String {
//!     format!("hello {name} from {}", std::process::id())
//! }
//!
//! let p = multiproc::spawn(greet, "Ada".to_string()).unwrap();
//! let pid = p.pid();
//! assert_eq!(p.join().unwrap(), format!("hello Ada from {pid}"));
//! ```
//!
//! Each of Python's three start methods is there; the default is `ForkServer`, as in Python
//! 3.14 on Linux. A child's failure is an error from `join`, never a hang:
//!
//! ```
//! use multiproc::{Error, Process, StartMethod};
//!
//! fn half(x: u32) -> u32 {
//!     assert!(x % 2 == 0, "{x} is odd");
//!     x / 2
//! }
//!
//! for method in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
//!     let p = Process::builder().name("halver").start_method(method).spawn(half, 8)?;
//!     assert_eq!(p.join()?, 4);
//! }
//! let odd = multiproc::spawn(half, 7)?;
//! assert!(matches!(odd.join(), Err(Error::ProcessFailed { exitcode: 1, message }) if message.contains("7 is odd")));
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! Threads, thread-level locks and queues are the `threading` and `queue` modules:
//!
//! ```
//! use multiproc::queue::Queue;
//! use multiproc::threading::Thread;
//! use std::sync::Arc;
//!
//! let jobs = Arc::new(Queue::new(0));
//! let worker = {
//!     let jobs = jobs.clone();
//!     Thread::builder().name("worker").spawn(move || {
//!         let mut sum = 0;
//!         while let Ok(n) = jobs.get() {
//!             sum += n;
//!         }
//!         sum // get() fails with ShutDown once the queue is shut down and drained
//!     })?
//! };
//! for n in 1..=4 {
//!     jobs.put(n)?;
//! }
//! jobs.shutdown(false);
//! assert_eq!(worker.join()?, 10);
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! And `subprocess` runs other programs:
//!
//! ```
//! use multiproc::subprocess::{self, RunOptions};
//! let out = subprocess::run(&["echo", "hi"], &RunOptions { capture_output: true, ..Default::default() })?;
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! Queues and pipes between processes live in shared memory; a `get` that nobody alive can ever
//! answer is `Err(Closed)`, never a hang:
//!
//! ```
//! use multiproc::{Error, Queue};
//!
//! fn produce(q: Queue<u32>) {
//!     for i in 1..=3 {
//!         q.put(i).unwrap();
//!     }
//! }
//!
//! let q = Queue::new()?;
//! let p = multiproc::spawn(produce, q.clone())?;
//! p.join()?;
//! let mut sum = 0;
//! loop {
//!     match q.get() {
//!         Ok(i) => sum += i,
//!         Err(Error::Closed) => break, // drained, and no other handle is left
//!         Err(e) => return Err(e),
//!     }
//! }
//! assert_eq!(sum, 6);
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! Pools run plain functions on worker processes; a worker that dies fails only its task:
//!
//! ```
//! use multiproc::pool::Pool;
//! fn square(x: u64) -> u64 { x * x }
//! let pool = Pool::new(2)?;
//! assert_eq!(pool.map(square, 1..=4)?, [1, 4, 9, 16]);
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! The process-shared locks, events, values and named segments ([`Lock`], [`Value`],
//! [`shared_memory`], …) and the [`pool`] and [`futures`] modules are listed with their Python
//! names in the table above and in `docs/coming-from-python.md`.
//!
//! # Set-up, platforms, features
//!
//! Spawning needs no set-up call: a start-up hook that runs before `main` recognises a child
//! that multiproc started, in programs, `#[test]` functions, examples and benches alike
//! ([`init`] exists for those who want to say it, and does nothing). Linux is fully supported
//! (pidfds, futexes, `SCM_RIGHTS`); OS code lives behind one `sys` module per crate so other
//! platforms can follow; it needs Linux 5.9 or newer (`pidfd_open`, `clone3`, `close_range`).
//! One cargo feature, `redis` (off by default), adds the `redis` module; everything else is
//! always on.
//!
//! Debugging a stuck program: the crates emit [tracing](https://docs.rs/tracing) events that
//! are silent unless a subscriber is installed: `DEBUG` from the thread toolbox (thread start
//! and exit, waiting for non-daemon threads at exit, queue shutdown, barrier abort), from
//! processes (a fork server lost and restarted, a child reaped) and pools (a worker ended and
//! replaced), and `WARN` when something is refused or retried (a pool's workers failing as
//! they start, a manager at its descriptor limit).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The guide for Python programmers: every name of `multiprocessing`, `threading`, `queue`,
/// `concurrent.futures`, `subprocess` and `signal` and where it is here, then the behaviours
/// that differ on purpose, with the reason for each. (Text only: it has no items.)
#[doc = include_str!("../guide/coming-from-python.md")]
pub mod guide {}

#[doc(inline)]
pub use multiproc_sync::{Error, Result};

#[doc(inline)]
pub use multiproc_spawn::{
    Process, ProcessBuilder, ProcessInfo, StartMethod, active_children, cpu_count, current_process,
    get_start_method, init, parent_process, set_start_method, spawn,
};

/// Queues and pipes between processes (Python's `multiprocessing.Queue`, `JoinableQueue`,
/// `SimpleQueue`, `Pipe`), on shared memory.
#[doc(inline)]
pub use multiproc_ipc::{Connection, JoinableQueue, Pipe, Queue, SharedBuffer, SimpleQueue};

/// Process-shared locks, events, conditions, semaphores and barriers (Python's
/// `multiprocessing.Lock` … `Barrier`), and shared values and arrays (`Value`, `Array`):
/// they live in shared memory, travel to children in their spawn arguments and to running
/// processes inside queue items and pipe messages, and recover when a holder is killed
/// (`LockGuard::previous_owner_died`, a broken `Barrier`).
///
/// ```
/// use multiproc::{Lock, Value};
/// let lock = Lock::new()?;
/// let counter = Value::new(0u64)?;
/// {
///     let _g = lock.acquire();
///     counter.set(counter.get() + 1);
/// }
/// *counter.lock() += 1;
/// assert_eq!(counter.get(), 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[doc(inline)]
pub use multiproc_ipc::{
    Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
    LockGuard, Plain, RLock, RLockGuard, Semaphore, Value, ValueGuard,
};

pub mod shared_memory {
    //! Python's `multiprocessing.shared_memory`: named segments that unrelated processes
    //! open by name, removed when unlinked or when their last holder is gone (even killed).
    //!
    //! ```
    //! use multiproc::shared_memory::SharedMemory;
    //! let shm = SharedMemory::create(None, 64)?;
    //! let other = SharedMemory::open(shm.name())?;
    //! shm.write_at(0, b"hi")?;
    //! let mut b = [0; 2];
    //! other.read_at(0, &mut b)?;
    //! assert_eq!(&b, b"hi");
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_ipc::shared_memory::*;
}

/// Python's `subprocess` module: `call`, `check_call`, `check_output`, `run`.
pub mod subprocess {
    #[doc(inline)]
    pub use multiproc_spawn::subprocess::*;
}

pub mod signal {
    //! Python's `signal` module: handlers that run on a normal thread (never in signal
    //! context), `SIG_IGN`/`SIG_DFL`, `getsignal`, `raise_signal`, `kill`, `alarm`,
    //! [`wait_for`] (`pause`/`sigwait`), `valid_signals`, `strsignal`; a child's
    //! `Process::send_signal` is `os.kill(p.pid, sig)`.
    //!
    //! ```
    //! use multiproc::signal::{self, Handler, Signal};
    //! let previous = signal::signal(Signal::SIGUSR2, Handler::Ignore)?;
    //! signal::raise_signal(Signal::SIGUSR2)?;
    //! signal::signal(Signal::SIGUSR2, previous)?;
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_spawn::signal::*;
}

/// Passing descriptors of multiproc handles to children inside serialized values. Not API:
/// public for the workspace's crates, hidden from the docs, and free to change in any release.
#[doc(hidden)]
pub mod handoff {
    #[doc(inline)]
    pub use multiproc_spawn::handoff::*;
}

pub mod threading {
    //! Python's `threading` module: threads, thread-level locks, conditions, semaphores,
    //! events, barriers, timers and thread-local values.
    //!
    //! ```
    //! use multiproc::threading::{Lock, Thread, current_thread};
    //! let lock = Lock::new();
    //! drop(lock.acquire());
    //! let t = Thread::builder().name("LoopThread").spawn(|| current_thread().name)?;
    //! assert_eq!(t.join()?, "LoopThread");
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_sync::{
        Barrier, BoundedSemaphore, Builder, Condition, ConditionGuard, Event, Local, Lock,
        LockGuard, Mutex, MutexGuard, RLock, RLockGuard, Semaphore, Thread, ThreadInfo, Timer,
        active_count, current_thread, enumerate, main_thread,
    };
}

pub mod queue {
    //! Python's `queue` module for threads of one process.
    //!
    //! ```
    //! use multiproc::queue::Queue;
    //! let q = Queue::new(0);
    //! q.put("job")?;
    //! assert_eq!(q.get()?, "job");
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_sync::queue::{LifoQueue, PriorityQueue, Queue, SimpleQueue};
}

pub mod futures {
    //! Python's `concurrent.futures`: [`ThreadPoolExecutor`], [`ProcessPoolExecutor`],
    //! [`Future`], [`wait`] with [`ReturnWhen`], and [`as_completed`].
    //!
    //! ```
    //! use multiproc::futures::{ThreadPoolExecutor, as_completed};
    //! let pool = ThreadPoolExecutor::new(4);
    //! let fs: Vec<_> = (0..8).map(|i| pool.submit(move || i * 2)).collect::<Result<_, _>>()?;
    //! let total: i32 = as_completed(fs, None).map(|f| f.unwrap().result().unwrap()).sum();
    //! assert_eq!(total, 56);
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_pool::{
        AsCompleted, Future, Imap, PoolStats, ProcessPoolExecutor, ProcessPoolExecutorBuilder,
        Results, ReturnWhen, ThreadPoolExecutor, as_completed, wait,
    };
}

pub mod pool {
    //! Python's `multiprocessing.pool`: [`Pool`] (apply, map, imap, starmap and their async
    //! forms) and [`AsyncResult`].
    //!
    //! ```
    //! use multiproc::pool::Pool;
    //! fn double(x: i32) -> i32 { x * 2 }
    //! let pool = Pool::new(2)?;
    //! assert_eq!(pool.map(double, [1, 2, 3])?, [2, 4, 6]);
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_pool::{
        AsyncResult, ExactLen, Imap, ImapUnordered, MAX_PROCESSES, Pool, PoolBuilder, PoolStats,
    };
}

/// Beyond one machine, on a Redis server (cargo feature `redis`): [`redis::Queue`],
/// [`redis::Lock`], [`redis::Executor`] and its [`redis::Worker`]s, started on any machine
/// that reaches the server. See the `multiproc-redis` crate.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use multiproc_redis as redis;

/// Python's `multiprocessing.Manager()`: a server process holding shared objects; see
/// [`managers`].
#[doc(inline)]
pub use multiproc_manager::Manager;

pub mod managers {
    //! Python's `multiprocessing.managers`: [`Manager`] (`SyncManager`), its
    //! proxies [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`ValueProxy`], and
    //! `BaseManager.register` as [`ManagerBuilder::register`] with [`Served`] and [`Proxy`].
    //!
    //! ```
    //! use multiproc::Manager;
    //! let manager = Manager::new()?;
    //! let d = manager.dict::<u32, String>()?;
    //! d.insert(1, "one".into())?;
    //! assert_eq!(d.get(&1)?.as_deref(), Some("one"));
    //! # Ok::<(), multiproc::Error>(())
    //! ```
    #[doc(inline)]
    pub use multiproc_manager::{
        DictProxy, ListProxy, Manager, ManagerBuilder, NamespaceProxy, Number, Op, Proxy, Served,
        ValueProxy, decode, encode,
    };
}
