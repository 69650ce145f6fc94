//! multiproc: Python's process and thread toolbox (`multiprocessing`, `threading`, `queue`,
//! `concurrent.futures`, `subprocess`) for Rust, fast and robust.
//!
//! ```
//! assert_eq!(multiproc::Error::Timeout.to_string(), "timed out");
//! ```
#![warn(missing_docs)]

#[doc(inline)]
pub use multiproc_sync::{Error, Result};

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
