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
//! Spawning needs no set-up call: a start-up hook that runs before `main` recognises a child
//! that multiproc started. Linux is fully supported; OS code lives behind one `sys` module per
//! crate so other platforms can follow.
#![warn(missing_docs)]

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
pub use multiproc_ipc::{Connection, JoinableQueue, Pipe, Queue, SimpleQueue};

/// Process-shared locks, events, conditions, semaphores and barriers (Python's
/// `multiprocessing.Lock` … `Barrier`), and shared values and arrays (`Value`, `Array`):
/// they live in shared memory, travel to children in their spawn arguments, and recover
/// when a holder is killed (`LockGuard::previous_owner_died`, a broken `Barrier`).
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

/// Passing descriptors of multiproc handles to children inside serialized values.
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
