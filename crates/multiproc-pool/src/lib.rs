//! Python's process pools and executors for Rust: `multiprocessing.Pool` and
//! `concurrent.futures` (`ProcessPoolExecutor`, `ThreadPoolExecutor`, `Future`, `wait`,
//! `as_completed`).
//!
//! ```
//! use multiproc_pool::{ReturnWhen, ThreadPoolExecutor, wait};
//! let pool = ThreadPoolExecutor::new(2);
//! let fs: Vec<_> = (1..=3).map(|i| pool.submit(move || i * 10)).collect::<Result<_, _>>()?;
//! let (done, _) = wait(&fs, None, ReturnWhen::AllCompleted);
//! assert_eq!(done, [0, 1, 2]);
//! let total: i32 = fs.into_iter().map(|f| f.result().unwrap()).sum();
//! assert_eq!(total, 60);
//! # Ok::<(), multiproc_sync::Error>(())
//! ```
//!
//! Users normally reach all of it through the facade, as `multiproc::pool::…` and
//! `multiproc::futures::…`.
//!
//! # Design
//!
//! - **Process pools.** [`Pool`] and [`ProcessPoolExecutor`] share one engine: worker processes
//!   (daemons, started with any of the start methods of [`multiproc_spawn`]) and one supervisor
//!   thread in the parent. Each worker takes its tasks from its own shared-memory queue and puts
//!   every result on one result queue as soon as its task ends (both are
//!   [`multiproc_ipc::Queue`]s carrying raw bytes: a batch of tasks is one record). Tasks are
//!   `fn(A) -> R` with serde arguments and results, found in the worker by their offset in the
//!   same executable, as `spawn` does.
//! - **Dispatch.** The supervisor keeps the tasks not sent yet and sends a worker more only
//!   while it holds fewer than a limit: one while tasks are slow or of unknown length (so a free
//!   worker never waits behind a busy one), up to about a millisecond of work when they are
//!   short. A worker runs its tasks in order, so the oldest task it was sent and has not
//!   answered is the one it is running.
//! - **Results.** Every [`Future`] and [`AsyncResult`] is one completion cell: a state word that
//!   a waiter spins on briefly and then sleeps on (a private futex, in this crate's `sys`
//!   module), the result slot, and callbacks, a waker and [`wait`]/[`as_completed`] listeners
//!   only when someone asks for them. [`Future`] also implements [`std::future::Future`].
//! - **Threads.** [`ThreadPoolExecutor`] runs boxed closures from a lock-free channel on threads
//!   started as they are needed (at most `max_workers`); an idle thread spins briefly before it
//!   parks, so a steady stream of submits wakes nobody through the kernel.
//!
//! # Fault tolerance
//!
//! A task that panics fails alone (`Err(TaskFailed)` with the panic text). A worker process
//! that dies (`kill -9`, abort, out of memory) fails only the task it was running
//! (`Err(WorkerDied)`), and a new worker takes its place; nothing waits for ever. The parent
//! learns of the death from the worker's *lifeline*, a socket pair whose parent end reads
//! end-of-file the moment the worker is gone; the tasks the worker had been sent but not
//! started go to the next worker. Python's `Pool` waits for such a task for ever, and its
//! `ProcessPoolExecutor` breaks as a whole.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, unsafe_op_in_unsafe_fn)]

mod async_result;
mod call;
mod completion;
mod core;
mod engine;
mod future;
mod pool;
mod process_pool;
mod records;
mod sys;
mod thread_pool;
mod worker;

pub use async_result::AsyncResult;
pub use engine::PoolStats;
pub use future::{AsCompleted, Future, ReturnWhen, as_completed, wait};
pub use pool::{ExactLen, Imap, ImapUnordered, MAX_PROCESSES, Pool, PoolBuilder};
pub use process_pool::{ProcessPoolExecutor, ProcessPoolExecutorBuilder};
pub use thread_pool::{Results, ThreadPoolExecutor};

// Every handle is Send, and the shared ones Sync (API.md).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Pool>();
    send_sync::<ProcessPoolExecutor>();
    send_sync::<ThreadPoolExecutor>();
    send_sync::<Future<String>>();
    send::<AsyncResult<String>>();
    send::<AsCompleted<String>>();
};
