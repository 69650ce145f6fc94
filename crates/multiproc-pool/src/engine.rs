//! The process-pool engine behind [`Pool`](crate::Pool) and
//! [`ProcessPoolExecutor`](crate::ProcessPoolExecutor): worker processes, and one supervisor
//! thread in the parent that dispatches tasks, collects results and replaces dead workers.
//!
//! # Dispatch
//!
//! Each worker has its own task queue (multiproc-ipc's shared-memory ring); all workers put
//! their results on one result queue, on which the supervisor sleeps; the parent's other
//! threads wake it with a one-byte record after they hand it news. The supervisor keeps the
//! not-yet-sent tasks and sends each to the worker with the fewest in flight, while that worker
//! holds fewer than a limit: 1 while tasks are slow or their length is unknown, and up to about
//! a millisecond of work when tasks are short, so a worker always has the next task at hand
//! and a stream of small tasks costs no wake-ups. A worker runs its tasks in order and reports
//! each result at once, so the oldest task the supervisor sent it and has no result for is
//! exactly the one it is running.
//!
//! Queued tasks are no promise: a short-task history can be followed by a long task, and the
//! tasks queued behind it must not wait while another worker idles (Python's shared queue
//! never lets them). So every task is its own record, and whenever a worker is idle and
//! nothing is pending, the supervisor takes records back from the busiest worker's queue
//! (the queue gives each record to one consumer: the worker or the supervisor, never both)
//! and hands them to the idle one. A chunk of `map`/`imap` is one task, so chunking keeps its
//! batching.
//!
//! # Faults
//!
//! A worker's lifeline socket reaches end-of-file the moment the worker dies (`kill -9`
//! included); a small thread per worker blocks on it and tells the supervisor. The supervisor
//! then takes in every result already on the result queue, reaps the worker (through its pidfd-backed `Process`), fails the one task it was
//! running with `Err(WorkerDied { exitcode })`, puts the tasks it had not started back at the
//! head of the queue, and starts a replacement.
//!
//! # Time limits and cancelling a running task
//!
//! A worker runs the tasks it is sent in order, one at a time, so the supervisor knows when
//! each starts without being told: when the result of the one before it arrives, or, at an
//! idle worker, when it is sent (a fresh worker first says it is ready, once its initializer
//! ran). The supervisor arms the running task's deadline then, so the time spent queued (in
//! the parent or at the worker, or while a fresh worker starts) never counts, and a time limit
//! costs no record of its own (it used to cost a "started" record per task, 9 % of a
//! chunksize-1 `map`). If a deadline passes while the task is still on the worker's queue
//! (the worker never reached it), it goes back to the pending queue, not to `Err(Timeout)`. The supervisor's wait on the result queue is bounded by
//! the nearest deadline. When one passes, or a running task is cancelled with
//! `cancel_running`, the supervisor *dooms* the worker: it takes back the records still on
//! its queue (those tasks go back to the head of the pending queue), takes in the results
//! already put (a task that finished in time keeps its value), resolves the task
//! (`Err(Timeout)` or cancelled) and sends `SIGTERM`, then `SIGKILL` [`KILL_GRACE`] later if
//! the worker still lives. Its end-of-file then replaces it as for any death; the task it
//! held is already resolved.

use crate::call::{CallSpec, InitField, Initializer};
use crate::records::{self, Cursor, Link};
use crate::worker::{WorkerArgs, worker_main};
use crossbeam_channel::{Receiver, Sender};
use multiproc_ipc::Queue;
use multiproc_spawn::{Process, StartMethod, get_start_method};
use multiproc_sync::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker stopped for a time limit or a cancel has after `SIGTERM` before `SIGKILL`.
pub(crate) const KILL_GRACE: Duration = Duration::from_millis(100);

/// What to do with a task's outcome, typed by whoever submitted it.
pub(crate) trait Completion: Send {
    /// Called just before the task is sent: `false` if it was cancelled meanwhile (it is then
    /// dropped without [`Completion::finish`]).
    fn claim(&mut self) -> bool;
    /// The result bytes, or why there are none.
    fn finish(self: Box<Self>, outcome: Result<&[u8]>);
    /// The task will not run (shutdown with `cancel_futures`, terminate).
    fn cancel(self: Box<Self>) {
        self.finish(Err(Error::Cancelled));
    }
    /// The task was stopped while it ran (`cancel_running`): its handle reports cancelled.
    fn cancel_running(self: Box<Self>) {
        self.finish(Err(Error::Cancelled));
    }
}

/// One task: the call, its encoded arguments and what to do with its result.
pub(crate) struct Job {
    pub(crate) call: CallSpec,
    pub(crate) args: Vec<u8>,
    pub(crate) done: Box<dyn Completion>,
    /// Its own time limit (`None`: the pool's, if any).
    pub(crate) timeout: Option<Duration>,
}

enum Event {
    Submit(Vec<(u64, Job)>),
    CancelRunning { id: u64, reply: Sender<bool> },
    Eof { slot: usize, generation: u64 },
    Close,
    CancelPending,
    Terminate,
}

/// How the workers are started.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) init: Option<Initializer>,
    pub(crate) max_tasks: usize,
    pub(crate) method: Option<StartMethod>,
    /// Workers set `SIGINT` to ignored before anything else (Python's pool workers do).
    pub(crate) ignore_sigint: bool,
    /// Every task's time limit unless it has its own.
    pub(crate) task_timeout: Option<Duration>,
    /// `Future::cancel` stops a running task's worker.
    pub(crate) cancel_running: bool,
    /// A worker whose resident memory exceeds this many bytes after a task retires (0: never).
    pub(crate) max_memory: u64,
    /// Each worker's hard ceiling beyond its size at start, as `RLIMIT_AS` (0: none).
    pub(crate) memory_limit: u64,
}

/// The counters behind `stats()`: atomics the supervisor and submitters bump.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) submitted: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) workers_started: AtomicU64,
    pub(crate) workers_replaced: AtomicU64,
    pub(crate) waiting: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a process pool's or executor's counters (see
/// [`Pool::stats`](crate::Pool::stats), [`ProcessPoolExecutor::stats`](crate::ProcessPoolExecutor::stats)).
///
/// A task is one submitted call: an `apply_async`/`submit`, or one chunk of a `map`/`imap`.
/// Each task that ends is counted once, in exactly one of `completed`, `failed`, `timed_out`
/// and `cancelled`. `waiting` is the number of tasks submitted and not started (pending in
/// the parent or queued at a worker), as the supervisor last saw it.
///
/// ```
/// use multiproc::pool::Pool;
/// fn inc(x: u32) -> u32 { x + 1 }
/// let pool = Pool::new(2)?;
/// let r: Vec<_> = (0..10).map(|i| pool.apply_async(inc, i)).collect::<Result<_, _>>()?;
/// for x in r { x.get()?; }
/// let s = pool.stats();
/// assert_eq!((s.submitted, s.completed, s.failed), (10, 10, 0));
/// assert_eq!(s.workers_started, 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Tasks submitted.
    pub submitted: u64,
    /// Tasks that returned a value.
    pub completed: u64,
    /// Tasks that panicked, could not be decoded, or whose worker died.
    pub failed: u64,
    /// Tasks stopped by their time limit (`Err(Timeout)`).
    pub timed_out: u64,
    /// Tasks cancelled (before they started, or while running with `cancel_running`, or by
    /// `terminate`/`shutdown(cancel_futures)`), and the chunks of a failed `map` left unrun.
    pub cancelled: u64,
    /// Worker processes started, replacements included.
    pub workers_started: u64,
    /// Workers started to replace one that ended (died, stopped for a time limit or a cancel,
    /// retired after `maxtasksperchild` or past `max_memory_per_worker`).
    pub workers_replaced: u64,
    /// Tasks submitted and not started yet.
    pub waiting: u64,
}

/// Shared by the engine and the futures that may stop a running task.
pub(crate) struct Notify {
    tx: Sender<Event>,
    /// The result queue, to wake the supervisor.
    wake: Queue<()>,
}

impl Notify {
    /// Hands the supervisor an event and wakes it.
    fn send(&self, ev: Event) -> Result<()> {
        self.tx.send(ev).map_err(|_| Error::PoolClosed)?;
        let _ = self.wake.put_bytes(&[records::WAKE]);
        Ok(())
    }
}

thread_local! {
    /// Set on supervisor threads (done-callbacks run there).
    static IN_SUPERVISOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What a process future needs to stop its task while it runs (`cancel_running`).
pub(crate) struct Canceller {
    notify: Arc<Notify>,
    id: u64,
}

impl crate::future::StopRunning for Canceller {
    /// `true` if the task is stopped now (it was still running or queued) and resolved as
    /// cancelled; `false` if it had already ended.
    fn stop(&self) -> bool {
        if IN_SUPERVISOR.with(std::cell::Cell::get) {
            // A done-callback run by the supervisor: it cannot wait for its own answer.
            return false;
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self
            .notify
            .send(Event::CancelRunning { id: self.id, reply })
            .is_err()
        {
            return false;
        }
        // The supervisor answers every such event; gone, it drops the sender.
        answer.recv().unwrap_or(false)
    }
}

/// The parent's handle on the engine.
pub(crate) struct Engine {
    notify: Arc<Notify>,
    next_id: AtomicU64,
    counters: Arc<Counters>,
    cancel_running: bool,
    pids: Arc<Mutex<Vec<u32>>>,
    closed: AtomicBool,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    processes: usize,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("processes", &self.processes)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// Descriptors each worker holds open in the parent: its task queue's shared-memory file and
/// that queue's two-socket descriptor channel, its lifeline socket, and its process's pidfd
/// and result pipe (measured by `tests/pool_limits.rs`).
pub(crate) const FDS_PER_WORKER: u64 = 6;
/// Room beyond the workers' descriptors (the start method's own, a few the program opens).
const FD_MARGIN: u64 = 64;

impl Engine {
    /// Starts the workers (all of them before returning, so a failure to start is reported
    /// here) and the supervisor.
    pub(crate) fn start(cfg: Config) -> Result<Engine> {
        // A pool of a few hundred workers must not fail under the usual soft limit of 1024.
        crate::sys::ensure_fd_room((cfg.processes as u64 + 1) * FDS_PER_WORKER + FD_MARGIN);
        let (tx, rx) = crossbeam_channel::unbounded();
        let results = Queue::new()?;
        let wake = results.clone();
        let counters = Arc::new(Counters::default());
        let cancel_running = cfg.cancel_running;
        let pids = Arc::new(Mutex::new(vec![0; cfg.processes]));
        let mut sup = Supervisor {
            pids: Arc::clone(&pids),
            workers: (0..cfg.processes).map(|_| None).collect(),
            start_failures: vec![0; cfg.processes],
            cfg,
            tx: tx.clone(),
            results,
            rx,
            jobs: HashMap::new(),
            pending: VecDeque::new(),
            counters: Arc::clone(&counters),
            timers: false,
            now: Instant::now(),
            task_limits: false,
            next_gen: 0,
            avg_ns: 0.0,
            closing: false,
            buf: Vec::new(),
        };
        for slot in 0..sup.workers.len() {
            if let Err(e) = sup.spawn_worker(slot) {
                sup.kill_all();
                return Err(e);
            }
        }
        let processes = sup.workers.len();
        let handle = std::thread::Builder::new()
            .name("multiproc-pool-supervisor".into())
            .spawn(move || sup.run())
            .map_err(Error::Io)?;
        Ok(Engine {
            notify: Arc::new(Notify { tx, wake }),
            next_id: AtomicU64::new(0),
            counters,
            cancel_running,
            pids,
            closed: AtomicBool::new(false),
            supervisor: Mutex::new(Some(handle)),
            processes,
        })
    }

    pub(crate) fn processes(&self) -> usize {
        self.processes
    }

    /// The process ids of the live workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let pids = self.pids.lock().unwrap_or_else(|e| e.into_inner());
        pids.iter().copied().filter(|&p| p != 0).collect()
    }

    /// Queues jobs; `Err(PoolClosed)` after close, shutdown or terminate.
    pub(crate) fn submit(&self, jobs: Vec<Job>) -> Result<()> {
        self.submit_ids(jobs).map(drop)
    }

    /// Queues jobs and returns the id of the first (the others follow it).
    pub(crate) fn submit_ids(&self, jobs: Vec<Job>) -> Result<u64> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::PoolClosed);
        }
        let n = jobs.len() as u64;
        let first = self.next_id.fetch_add(n, Ordering::Relaxed);
        if jobs.is_empty() {
            return Ok(first);
        }
        self.counters.submitted.fetch_add(n, Ordering::Relaxed);
        let jobs = (first..).zip(jobs).collect();
        self.send(Event::Submit(jobs))?;
        Ok(first)
    }

    /// A handle that stops task `id` while it runs, when the engine was built with
    /// `cancel_running`.
    pub(crate) fn canceller(&self, id: u64) -> Option<Arc<dyn crate::future::StopRunning>> {
        self.cancel_running.then(|| {
            Arc::new(Canceller {
                notify: Arc::clone(&self.notify),
                id,
            }) as Arc<dyn crate::future::StopRunning>
        })
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> PoolStats {
        let c = &*self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PoolStats {
            submitted: get(&c.submitted),
            completed: get(&c.completed),
            failed: get(&c.failed),
            timed_out: get(&c.timed_out),
            cancelled: get(&c.cancelled),
            workers_started: get(&c.workers_started),
            workers_replaced: get(&c.workers_replaced),
            waiting: get(&c.waiting),
        }
    }

    /// Hands the supervisor an event and wakes it.
    fn send(&self, ev: Event) -> Result<()> {
        self.notify.send(ev)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// No more submits; the queued work still runs, then the workers exit.
    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.send(Event::Close);
        }
    }

    /// Cancels every task not sent to a worker yet.
    pub(crate) fn cancel_pending(&self) {
        let _ = self.send(Event::CancelPending);
    }

    /// Kills the workers at once; every outstanding task fails with `Err(Cancelled)`.
    pub(crate) fn terminate(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.send(Event::Terminate);
    }

    /// Waits for the supervisor (and so every worker) to finish; `Err(Invalid)` unless
    /// `close` or `terminate` came first.
    pub(crate) fn join(&self) -> Result<()> {
        if !self.is_closed() {
            return Err(Error::Invalid(
                "join needs close() or terminate() first (Python's ValueError)".into(),
            ));
        }
        let handle = self
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        Ok(())
    }
}

struct Worker {
    process: Process<()>,
    tasks: Queue<()>,
    inflight: VecDeque<u64>,
    sent: usize,
    /// Results it has put.
    completed: usize,
    generation: u64,
    stopping: bool,
    /// The running task's id and deadline (see [`Supervisor::arm`]).
    deadline: Option<(u64, Instant)>,
    /// It said it serves (its initializer ran): the head of `inflight` is running.
    ready: bool,
    /// Stopped (time limit, cancel): gets no more tasks; `SIGKILL` at this time if still alive.
    kill_at: Option<Instant>,
}

struct Supervisor {
    pids: Arc<Mutex<Vec<u32>>>,
    cfg: Config,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    results: Queue<()>,
    workers: Vec<Option<Worker>>,
    jobs: HashMap<u64, Job>,
    pending: VecDeque<u64>,
    counters: Arc<Counters>,
    /// Some worker had a deadline or a kill time once: from then on the supervisor's loop
    /// looks for them (pools that never use time limits skip the scan).
    timers: bool,
    /// The clock, read once per turn of the loop while `timers` is set (a read costs ~25 ns
    /// on a VM, and a turn may handle one ~600 ns task): what deadlines are armed and checked
    /// against. Behind by at most one turn's work, so a limit may run that much over.
    now: Instant,
    /// Some task was given a limit of its own (`apply_async_timeout`, `submit_with_timeout`):
    /// arming must look the task up; without, the pool's limit is every task's.
    task_limits: bool,
    next_gen: u64,
    /// Moving average of a task's run time in the workers, in ns (0: none seen yet).
    avg_ns: f64,
    closing: bool,
    buf: Vec<u8>,
    /// Per slot: workers in a row that failed as they started (see [`START_ATTEMPTS`]).
    start_failures: Vec<u32>,
}

/// Workers in a row that may fail as they start in one slot before it is left empty.
const START_ATTEMPTS: u32 = 3;

/// The reason a worker reported for ending before it served (its arguments could not be
/// decoded, its initializer panicked); `None` for the texts `join` makes up for a worker that
/// reported nothing (killed, or `exit` called by a task).
fn worker_report(message: &str) -> Option<String> {
    let made_up = message.starts_with("exited with code") || message.starts_with("killed by");
    (!made_up).then(|| message.to_owned())
}

/// About this much work is kept queued at each worker when tasks are short.
const QUEUED_WORK_NS: f64 = 1_000_000.0;
const MAX_IN_FLIGHT: usize = 512;

impl Supervisor {
    fn run(mut self) {
        IN_SUPERVISOR.with(|f| f.set(true));
        loop {
            // Sleeps (after a spin) until a worker puts a result or a thread of ours wakes us,
            // or the nearest deadline (a task's time limit, a stopped worker's grace) passes.
            let got = match self.next_wake() {
                None => self.results.get_bytes(),
                Some(at) => self
                    .results
                    .get_bytes_timeout(at.saturating_duration_since(self.now)),
            };
            if self.timers {
                self.now = Instant::now();
            }
            match got {
                Ok(rec) => self.record(&rec),
                Err(Error::Closed) => return,
                Err(Error::Empty) => {}
                // A result ring found corrupt (memory written by someone else) was emptied to
                // stay usable: one error must not end the loop that serves every other task.
                Err(e) => tracing::warn!(error = %e, "a pool's result ring could not be read"),
            }
            self.drain_results();
            while let Ok(ev) = self.rx.try_recv() {
                if self.handle(ev) {
                    return;
                }
            }
            self.check_deadlines();
            self.dispatch();
            self.publish_waiting();
            if self.closing && self.finished() {
                return;
            }
        }
    }

    /// The nearest time the supervisor must act without news: a deadline or a kill.
    fn next_wake(&self) -> Option<Instant> {
        if !self.timers {
            return None;
        }
        self.workers
            .iter()
            .flatten()
            .flat_map(|w| [w.deadline.map(|(_, at)| at), w.kill_at])
            .flatten()
            .min()
    }

    /// Stops the workers whose running task ran out of time; kills the stopped ones whose
    /// grace is over.
    fn check_deadlines(&mut self) {
        if !self.timers {
            return;
        }
        let now = self.now;
        for slot in 0..self.workers.len() {
            let Some(w) = self.workers[slot].as_mut() else {
                continue;
            };
            if w.kill_at.is_some_and(|at| at <= now) {
                // Ignored SIGTERM (or is slow to die): end-of-file follows this.
                let _ = w.process.kill();
                w.kill_at = None;
            }
            if let Some((id, at)) = w.deadline
                && at <= now
            {
                w.deadline = None;
                self.stop_running(slot, id, Error::Timeout);
            }
        }
    }

    fn publish_waiting(&self) {
        let queued: usize = self
            .workers
            .iter()
            .flatten()
            .map(|w| w.inflight.len().saturating_sub(1))
            .sum();
        self.counters
            .waiting
            .store((self.pending.len() + queued) as u64, Ordering::Relaxed);
    }

    /// Takes back every record still on worker `slot`'s queue onto the head of `pending`;
    /// returns their ids.
    fn take_back_all(&mut self, slot: usize) -> Vec<u64> {
        let Some(w) = self.workers[slot].as_mut() else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        while let Ok(rec) = w.tasks.get_bytes_timeout(Duration::ZERO) {
            records::task_ids(&rec, &mut taken);
        }
        self.give_back(slot, &taken);
        taken
    }

    /// Tasks `taken` back off worker `slot`'s queue go to the head of `pending`, in order.
    ///
    /// The oldest task in flight at a worker may be among them: its deadline was armed when it
    /// became the oldest, but the worker had not reached it yet (it was slow to be scheduled,
    /// or stopped). The task the worker takes next is then the oldest: the deadline is armed
    /// again for it. Left armed for the task taken back, it would find nothing to stop there,
    /// and the next task would run with no limit at all.
    fn give_back(&mut self, slot: usize, taken: &[u64]) {
        if taken.is_empty() {
            return;
        }
        let Some(w) = self.workers[slot].as_mut() else {
            return;
        };
        let oldest = w.inflight.front().copied();
        w.inflight.retain(|id| !taken.contains(id));
        w.sent = w.sent.saturating_sub(taken.len());
        let oldest_taken = w.inflight.front().copied() != oldest;
        for &id in taken.iter().rev() {
            self.pending.push_front(id);
        }
        if oldest_taken {
            self.arm(slot);
        }
    }

    /// Stops task `id`, running (or about to) at worker `slot`: resolves it with `why`
    /// (`Timeout`, or `Cancelled` for `cancel_running`) and stops the worker, unless it
    /// finished first. `true` if it was resolved here.
    fn stop_running(&mut self, slot: usize, id: u64, why: Error) -> bool {
        // Nothing more may start there: what it had not taken goes back to the pending queue.
        let taken = self.take_back_all(slot);
        if taken.contains(&id) {
            // It had not even started: no worker to stop. A cancel resolves it; a deadline
            // armed for a task its worker had not reached yet leaves it pending, to be sent
            // (and its clock started) again.
            if matches!(why, Error::Timeout) {
                return false;
            }
            self.pending.retain(|&i| i != id);
            return self.resolve_stopped(id, why);
        }
        // A task that finished in time keeps its value.
        self.drain_results();
        let Some(w) = self.workers[slot].as_mut() else {
            return false;
        };
        if !w.inflight.contains(&id) || !self.jobs.contains_key(&id) {
            return false;
        }
        w.kill_at = Some(Instant::now() + KILL_GRACE);
        self.timers = true;
        w.deadline = None;
        let _ = w.process.terminate();
        tracing::debug!(
            target: "multiproc::pool",
            slot,
            pid = w.process.pid(),
            reason = %why,
            "stopping a pool worker's running task"
        );
        self.resolve_stopped(id, why)
    }

    fn resolve_stopped(&mut self, id: u64, why: Error) -> bool {
        let Some(job) = self.jobs.remove(&id) else {
            return false;
        };
        if matches!(why, Error::Timeout) {
            Counters::bump(&self.counters.timed_out);
            job.done.finish(Err(Error::Timeout));
        } else {
            Counters::bump(&self.counters.cancelled);
            job.done.cancel_running();
        }
        true
    }

    /// `Future::cancel` with `cancel_running`: task `id` wherever it is.
    fn cancel_running(&mut self, id: u64) -> bool {
        if !self.jobs.contains_key(&id) {
            return false;
        }
        if let Some(pos) = self.pending.iter().position(|&i| i == id) {
            self.pending.remove(pos);
            return self.resolve_stopped(id, Error::Cancelled);
        }
        let slot = self
            .workers
            .iter()
            .position(|w| w.as_ref().is_some_and(|w| w.inflight.contains(&id)));
        match slot {
            Some(slot) => self.stop_running(slot, id, Error::Cancelled),
            None => false,
        }
    }

    /// Takes in every record already on the result queue.
    fn drain_results(&mut self) {
        while let Ok(rec) = self.results.get_bytes_timeout(Duration::ZERO) {
            self.record(&rec);
        }
    }

    /// Handles one event; `true` when the supervisor must stop now (terminate).
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Submit(jobs) => {
                for (id, job) in jobs {
                    self.task_limits |= job.timeout.is_some();
                    self.jobs.insert(id, job);
                    self.pending.push_back(id);
                }
                if self.closing && self.live_workers() == 0 {
                    self.fail_pending(|| Error::PoolClosed);
                }
            }
            Event::Eof { slot, generation } => self.worker_ended(slot, generation),
            Event::CancelRunning { id, reply } => {
                let _ = reply.send(self.cancel_running(id));
            }
            Event::Close => self.closing = true,
            Event::CancelPending => {
                for id in std::mem::take(&mut self.pending) {
                    if let Some(job) = self.jobs.remove(&id) {
                        Counters::bump(&self.counters.cancelled);
                        job.done.cancel();
                    }
                }
            }
            Event::Terminate => {
                self.kill_all();
                for id in std::mem::take(&mut self.pending) {
                    if let Some(job) = self.jobs.remove(&id) {
                        Counters::bump(&self.counters.cancelled);
                        job.done.cancel();
                    }
                }
                for (_, job) in self.jobs.drain() {
                    Counters::bump(&self.counters.cancelled);
                    job.done.finish(Err(Error::Cancelled));
                }
                self.counters.waiting.store(0, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    fn live_workers(&self) -> usize {
        self.workers.iter().flatten().count()
    }

    /// Closing: once nothing is left to run, tell every worker to stop; done when all are gone.
    fn finished(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        let mut all_gone = true;
        for w in self.workers.iter_mut().flatten() {
            all_gone = false;
            if w.inflight.is_empty() && !w.stopping {
                w.stopping = true;
                let _ = w.tasks.put_bytes(&[records::STOP]);
            }
        }
        all_gone
    }

    fn limit(&self) -> usize {
        if self.avg_ns <= 0.0 {
            1
        } else {
            ((QUEUED_WORK_NS / self.avg_ns) as usize).clamp(1, MAX_IN_FLIGHT)
        }
    }

    /// Hands out the pending tasks, then lets idle workers take queued tasks back from busy
    /// ones: no task waits at one worker while another has nothing to do.
    fn dispatch(&mut self) {
        loop {
            self.hand_out();
            if !self.pending.is_empty() || !self.steal_for_idle() {
                break;
            }
        }
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
    }

    /// Sends pending tasks, each to the worker with the fewest in flight (an idle one first),
    /// until every worker holds its limit. One task per record: a record a worker has not
    /// taken yet can still be taken back whole ([`Self::steal_for_idle`]), and tasks in one
    /// record could not be split between workers.
    fn hand_out(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let limit = self.limit();
        while let Some(slot) = self.least_loaded(limit) {
            let Some(id) = self.pending.pop_front() else {
                break;
            };
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if !job.done.claim() {
                self.jobs.remove(&id);
                Counters::bump(&self.counters.cancelled);
                continue;
            }
            records::begin(&mut self.buf, records::TASKS);
            records::push_task(&mut self.buf, id, job.call, &job.args);
            let w = self.workers[slot]
                .as_mut()
                .expect("least_loaded picks a live one");
            w.inflight.push_back(id);
            w.sent += 1;
            // A failed put means the worker died: its end-of-file event handles that.
            let _ = w.tasks.put_bytes(&self.buf);
            if w.inflight.len() == 1 {
                // An idle worker starts it now.
                self.arm(slot);
            }
        }
    }

    /// How many more tasks worker `w` may be sent now.
    fn room(&self, w: &Worker, limit: usize) -> usize {
        if w.stopping || w.kill_at.is_some() {
            return 0;
        }
        let mut room = limit.saturating_sub(w.inflight.len());
        if self.cfg.max_tasks != 0 {
            room = room.min(self.cfg.max_tasks.saturating_sub(w.sent));
        }
        room
    }

    /// The live worker with room and the fewest tasks in flight (the lowest slot on a tie).
    fn least_loaded(&self, limit: usize) -> Option<usize> {
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(slot, w)| Some((slot, w.as_ref()?)))
            .filter(|(_, w)| self.room(w, limit) > 0)
            .min_by_key(|(slot, w)| (w.inflight.len(), *slot))
            .map(|(slot, _)| slot)
    }

    /// With nothing pending: when a worker is idle and another has tasks queued behind the one
    /// it runs, takes about half of those back (the records it has not taken yet) onto the head
    /// of `pending`. `true` when it took any.
    ///
    /// A worker takes one record at a time and reports each result at once, so of the tasks in
    /// flight at a worker all but the oldest are still records on its queue, or about to be
    /// taken (the oldest too, when the worker has not reached it yet: [`Self::give_back`] then
    /// moves its time limit to the next): the queue hands each record to exactly one consumer,
    /// so a task is either taken back here or run there, never both. The ids come from the
    /// records themselves, so what the worker took meanwhile stays in its `inflight`.
    fn steal_for_idle(&mut self) -> bool {
        let idle = self
            .workers
            .iter()
            .flatten()
            .filter(|w| w.inflight.is_empty() && self.room(w, 1) > 0)
            .count();
        if idle == 0 {
            return false;
        }
        let victim = self
            .workers
            .iter()
            .enumerate()
            .filter_map(|(slot, w)| Some((slot, w.as_ref()?)))
            .filter(|(_, w)| !w.stopping && w.kill_at.is_none() && w.inflight.len() > 1)
            .max_by_key(|(_, w)| w.inflight.len())
            .map(|(slot, _)| slot);
        let Some(victim) = victim else {
            return false;
        };
        let w = self.workers[victim].as_mut().expect("picked a live one");
        let queued = w.inflight.len() - 1;
        // Share the queued tasks out evenly between the victim and the idle workers.
        let want = (queued * idle).div_ceil(idle + 1);
        let mut taken = Vec::with_capacity(want);
        while taken.len() < want {
            let Ok(rec) = w.tasks.get_bytes_timeout(Duration::ZERO) else {
                break;
            };
            if !records::task_ids(&rec, &mut taken) {
                break;
            }
        }
        if taken.is_empty() {
            return false;
        }
        tracing::trace!(
            target: "multiproc::pool",
            from = victim,
            tasks = taken.len(),
            "took queued tasks back for an idle worker"
        );
        self.give_back(victim, &taken);
        true
    }

    /// One record from the result queue.
    fn record(&mut self, rec: &[u8]) {
        let mut cur = Cursor(rec);
        match cur.u8() {
            Ok(records::RESULT) => {}
            Ok(records::READY) => {
                if let Ok(slot) = cur.u32()
                    && let Some(w) = self.workers.get_mut(slot as usize).and_then(Option::as_mut)
                {
                    w.ready = true;
                    self.arm(slot as usize);
                }
                return;
            }
            _ => return,
        }
        let (Ok(slot), Ok(id), Ok(kind), Ok(ns), Ok(bytes)) =
            (cur.u32(), cur.u64(), cur.u8(), cur.u64(), cur.bytes())
        else {
            return;
        };
        if let Some(w) = self.workers.get_mut(slot as usize).and_then(Option::as_mut) {
            w.completed += 1;
            if w.inflight.front() == Some(&id) {
                w.inflight.pop_front();
            } else {
                w.inflight.retain(|&i| i != id);
            }
        }
        let ns = ns.max(1) as f64;
        self.avg_ns = if self.avg_ns <= 0.0 {
            ns
        } else {
            0.8 * self.avg_ns + 0.2 * ns
        };
        // The next task it holds starts now.
        self.arm(slot as usize);
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        Counters::bump(if kind == records::OK {
            &self.counters.completed
        } else {
            &self.counters.failed
        });
        let outcome = match kind {
            records::OK => Ok(bytes),
            records::PANIC => Err(Error::TaskFailed {
                message: String::from_utf8_lossy(bytes).into_owned(),
            }),
            _ => Err(Error::Codec(String::from_utf8_lossy(bytes).into_owned())),
        };
        job.done.finish(outcome);
    }

    /// Worker `slot` starts the head of its queue now (its predecessor's result came, or it
    /// was idle): arms that task's deadline if it has a time limit, else clears the deadline.
    fn arm(&mut self, slot: usize) {
        let Some(w) = self.workers.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        w.deadline = None;
        if !w.ready || w.kill_at.is_some() {
            return;
        }
        let Some(&id) = w.inflight.front() else {
            return;
        };
        let limit = if self.task_limits {
            self.jobs
                .get(&id)
                .and_then(|j| j.timeout.or(self.cfg.task_timeout))
        } else {
            self.cfg.task_timeout
        };
        if let Some(limit) = limit {
            if !self.timers {
                // The first deadline: the loop has not been reading the clock.
                self.now = Instant::now();
                self.timers = true;
            }
            // A limit past the end of the clock (`Duration::MAX`) is no limit.
            w.deadline = self.now.checked_add(limit).map(|at| (id, at));
        }
    }

    fn worker_ended(&mut self, slot: usize, generation: u64) {
        if self.workers[slot]
            .as_ref()
            .is_none_or(|w| w.generation != generation)
        {
            return;
        }
        // Its last results may still be on the queue: take them in before deciding which task
        // it held.
        self.drain_results();
        let mut w = self.workers[slot].take().expect("checked");
        self.set_pid(slot, 0);
        if !w.process.wait_timeout(Duration::from_secs(5)) {
            // Closed its link but lives on: it is of no use to us any more.
            let _ = w.process.kill();
            w.process.wait_timeout(Duration::from_secs(30));
        }
        let exitcode = w.process.exitcode().unwrap_or(-9);
        let Worker {
            process,
            tasks,
            inflight,
            completed,
            ready,
            ..
        } = w;
        let pid = process.pid();
        // A worker reports a failure of its own (it could not decode its arguments, its
        // initializer panicked) only when it could not start serving: a task's panic is
        // caught and sent as that task's result, and a task that kills its worker leaves no
        // report. Such a worker ran none of the tasks sent to it.
        // A worker that died before it served anything, either before it said it was ready
        // or idle right after (whatever killed it: a failed allocation under a tiny memory
        // limit aborts it, in its start-up or in a thread it starts), failed as it started
        // too: replacing it for ever would loop.
        let start_failure = match process.join() {
            Err(Error::ProcessFailed { message, .. }) if completed == 0 && exitcode == 1 => {
                worker_report(&message)
            }
            _ if completed == 0 && (!ready || inflight.is_empty()) => {
                Some(match self.cfg.memory_limit {
                    0 => format!("it ended with exit code {exitcode} before serving"),
                    limit => format!(
                        "it ended with exit code {exitcode} before serving, under a memory limit of \
                     {limit} bytes beyond its size at start (too small to serve?)"
                    ),
                })
            }
            _ => None,
        };
        tracing::debug!(
            target: "multiproc::pool",
            slot,
            pid,
            exitcode,
            in_flight = inflight.len(),
            "pool worker ended"
        );
        // Records still on its queue were never taken: those tasks did not run, whatever
        // killed the worker (a task sent to a worker that was already dying is not to blame).
        let mut untaken = Vec::new();
        while let Ok(rec) = tasks.get_bytes_timeout(Duration::ZERO) {
            records::task_ids(&rec, &mut untaken);
        }
        let mut inflight = inflight;
        inflight.retain(|id| !untaken.contains(id));
        for &id in untaken.iter().rev() {
            self.pending.push_front(id);
        }
        if let Some(why) = start_failure {
            // Nothing it was sent ran: all of it goes to the next worker. A slot whose workers
            // keep failing to start is left empty (Python's pool would replace them for ever,
            // at full speed): the others carry on, and with none left the tasks fail with the
            // workers' own reason.
            while let Some(id) = inflight.pop_back() {
                self.pending.push_front(id);
            }
            self.start_failures[slot] += 1;
            if self.start_failures[slot] >= START_ATTEMPTS {
                tracing::warn!(
                    target: "multiproc::pool",
                    slot,
                    reason = %why,
                    "pool workers fail as they start: this slot stays empty"
                );
                if self.live_workers() == 0 {
                    self.fail_pending(|| Error::ProcessFailed {
                        exitcode: 1,
                        message: format!("every pool worker failed as it started: {why}"),
                    });
                }
                return;
            }
        } else {
            self.start_failures[slot] = 0;
        }
        // The oldest task in flight is the one it was running: it ended the worker (even with
        // exit code 0: a worker that retires after `maxtasksperchild` is never sent more than
        // its quota, so it leaves with nothing in flight). Re-running it would end the next
        // worker the same way, for ever.
        if let Some(id) = inflight.pop_front()
            && let Some(job) = self.jobs.remove(&id)
        {
            Counters::bump(&self.counters.failed);
            // An allocation past `RLIMIT_AS` makes Rust abort: under a limit, an abort is
            // the task going past it (documented at `memory_limit_per_worker`).
            let limit = self.cfg.memory_limit;
            job.done
                .finish(Err(if limit != 0 && crate::sys::aborted(exitcode) {
                    Error::MemoryLimit { limit }
                } else {
                    Error::WorkerDied { exitcode }
                }));
        }
        // The tasks it had not started go first to the next worker.
        while let Some(id) = inflight.pop_back() {
            self.pending.push_front(id);
        }
        drop(tasks);
        if self.closing && self.pending.is_empty() {
            return;
        }
        match self.spawn_worker(slot) {
            Ok(()) => Counters::bump(&self.counters.workers_replaced),
            Err(e) if self.live_workers() == 0 => {
                let msg = e.to_string();
                self.fail_pending(|| Error::ProcessFailed {
                    exitcode: -1,
                    message: format!("could not start a pool worker: {msg}"),
                });
            }
            Err(_) => {}
        }
    }

    fn fail_pending(&mut self, err: impl Fn() -> Error) {
        for id in std::mem::take(&mut self.pending) {
            if let Some(mut job) = self.jobs.remove(&id)
                && job.done.claim()
            {
                Counters::bump(&self.counters.failed);
                job.done.finish(Err(err()));
            }
        }
    }

    fn set_pid(&self, slot: usize, pid: u32) {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())[slot] = pid;
    }

    fn kill_all(&mut self) {
        for w in self.workers.iter().flatten() {
            let _ = w.process.kill();
        }
        for w in self.workers.iter_mut() {
            if let Some(mut w) = w.take() {
                w.process.wait_timeout(Duration::from_secs(30));
            }
        }
        for p in self
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            *p = 0;
        }
    }

    fn spawn_worker(&mut self, slot: usize) -> Result<()> {
        let (mine, theirs) = UnixStream::pair()?;
        let tasks = Queue::new()?;
        let method = self.cfg.method.unwrap_or_else(get_start_method);
        let kind = match method {
            StartMethod::Fork => "ForkPoolWorker",
            StartMethod::Spawn => "SpawnPoolWorker",
            StartMethod::ForkServer => "ForkServerPoolWorker",
        };
        self.next_gen += 1;
        let generation = self.next_gen;
        let process = Process::builder()
            .name(format!("{kind}-{generation}"))
            .daemon(true)
            .start_method(method)
            .spawn(
                worker_main,
                WorkerArgs {
                    tasks: tasks.clone(),
                    results: self.results.clone(),
                    lifeline: Link(theirs),
                    slot: slot as u32,
                    init: self.cfg.init.clone().map(InitField::Pending),
                    max_tasks: self.cfg.max_tasks,
                    max_memory: self.cfg.max_memory,
                    memory_limit: self.cfg.memory_limit,
                    ignore_sigint: self.cfg.ignore_sigint,
                },
            )?;
        Counters::bump(&self.counters.workers_started);
        let tx = self.tx.clone();
        let wake = self.results.clone();
        std::thread::Builder::new()
            .name("multiproc-pool-lifeline".into())
            .stack_size(64 * 1024)
            .spawn(move || watch_lifeline(mine, slot, generation, tx, wake))
            .map_err(Error::Io)?;
        self.set_pid(slot, process.pid());
        self.workers[slot] = Some(Worker {
            process,
            tasks,
            inflight: VecDeque::new(),
            sent: 0,
            completed: 0,
            generation,
            stopping: false,
            deadline: None,
            ready: false,
            kill_at: None,
        });
        Ok(())
    }
}

/// Blocks on a worker's lifeline until it closes (the worker ended), then tells the supervisor.
fn watch_lifeline(
    lifeline: UnixStream,
    slot: usize,
    generation: u64,
    tx: Sender<Event>,
    wake: Queue<()>,
) {
    let mut buf = [0u8; 16];
    loop {
        match (&lifeline).read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    if tx.send(Event::Eof { slot, generation }).is_ok() {
        let _ = wake.put_bytes(&[records::WAKE]);
    }
}
