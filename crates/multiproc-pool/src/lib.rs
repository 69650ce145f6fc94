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
//! # Fault tolerance
//!
//! A task that panics fails alone (`Err(TaskFailed)` with the panic text). A worker process
//! that dies (`kill -9`, abort, out of memory) fails only the task it was running
//! (`Err(WorkerDied)`), and a new worker takes its place; nothing waits for ever.
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
mod thread_pool;
mod wire;
mod worker;

pub use async_result::AsyncResult;
pub use future::{AsCompleted, Future, ReturnWhen, as_completed, wait};
pub use pool::{Imap, ImapUnordered, Pool, PoolBuilder};
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
