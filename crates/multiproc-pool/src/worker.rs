//! The worker process: runs the initializer, then tasks as they arrive on its shared-memory
//! queue, one at a time, and puts each result on the pool's result queue as soon as it has it.
//! Idle, it spins on the queue for about the cost of a wake-up before it sleeps (the queue's
//! own policy), so a stream of small tasks costs no system calls.

use crate::call::InitField;
use crate::records::{self, Cursor, Link};
use crate::thread_pool::panic_text;
use multiproc_ipc::Queue;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// What a worker is started with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub(crate) tasks: Queue<()>,
    pub(crate) results: Queue<()>,
    /// Held, never used: its closing tells the parent this worker is gone.
    pub(crate) lifeline: Link,
    pub(crate) slot: u32,
    pub(crate) init: Option<InitField>,
    /// Exit after this many tasks (0: never), Python's `maxtasksperchild`.
    pub(crate) max_tasks: usize,
    /// Exit after a task that leaves the resident set above this many bytes (0: never).
    pub(crate) max_memory: u64,
    /// Limit the address space to its size after the initializer plus this many bytes
    /// (0: no limit).
    pub(crate) memory_limit: u64,
    /// Ignore `SIGINT` (the default, as in Python).
    pub(crate) ignore_sigint: bool,
}

/// The worker's entry point (a plain `fn`, so every start method can run it).
pub(crate) fn worker_main(args: WorkerArgs) {
    let WorkerArgs {
        tasks,
        results,
        lifeline,
        slot,
        init,
        max_tasks,
        max_memory,
        memory_limit,
        ignore_sigint,
    } = args;
    if ignore_sigint {
        use multiproc_spawn::signal::{self, Handler, Signal};
        // A failure leaves the inherited disposition: the worker then behaves as its parent.
        let _ = signal::signal(Signal::SIGINT, Handler::Ignore);
    }
    if let Some(InitField::Pending(init)) = init {
        init.run_here();
    }
    if memory_limit != 0 && !crate::sys::limit_address_space(memory_limit) {
        // No limit could be set (none to read, or setrlimit refused): serving without the
        // ceiling would break the promise; the parent reports the start failure.
        panic!("could not set the worker's memory limit of {memory_limit} bytes (RLIMIT_AS)");
    }
    // From here on the parent may count time limits: the initializer's time is not a task's.
    let mut out = Vec::new();
    records::ready_record(&mut out, slot);
    if results.put_bytes(&out).is_err() {
        return;
    }
    let mut value = Vec::new();
    let mut done = 0usize;
    // `Err(Closed)`: the parent is gone.
    while let Ok(record) = tasks.get_bytes() {
        let mut cur = Cursor(&record);
        if !matches!(cur.u8(), Ok(records::TASKS)) {
            break;
        }
        while !cur.is_empty() {
            let Ok((id, call, args)) = cur.task() else {
                break;
            };
            value.clear();
            let start = Instant::now();
            let ran = catch_unwind(AssertUnwindSafe(|| call.run(args, &mut value)));
            let ns = start.elapsed().as_nanos() as u64;
            match ran {
                Ok(Ok(())) => records::result_record(&mut out, slot, id, records::OK, ns, &value),
                Ok(Err(msg)) => {
                    records::result_record(&mut out, slot, id, records::FAILED, ns, msg.as_bytes())
                }
                Err(p) => {
                    let msg = panic_text(&*p);
                    records::result_record(&mut out, slot, id, records::PANIC, ns, msg.as_bytes())
                }
            }
            if results.put_bytes(&out).is_err() {
                return;
            }
            done += 1;
            if (max_tasks != 0 && done >= max_tasks)
                || (max_memory != 0
                    && crate::sys::resident_bytes().is_some_and(|rss| rss > max_memory))
            {
                // Retire: the records still queued here were never taken, and the parent
                // hands them to the next worker.
                drop(lifeline);
                return;
            }
        }
        if value.capacity() > 1 << 20 {
            value = Vec::new();
        }
    }
    drop(lifeline);
}
