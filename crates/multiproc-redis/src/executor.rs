//! [`Executor`]: `ProcessPoolExecutor` whose workers run anywhere that reaches the Redis
//! server; [`Worker`] and [`worker_main`]: the worker side; [`task!`](crate::task): the registry
//! that names a plain `fn` the same in every build of the program. (The command line,
//! [`worker_cli`](crate::worker_cli), is in `cli.rs`; [`Executor::info`] in `info.rs`.)
//!
//! A task is a death count byte then `{id, function name, postcard argument, max attempts,
//! namespace, notification list}` in the queue
//! `multiproc:exec:NS:tasks` (a [`Queue`](crate::Queue) underneath: per-worker processing lists
//! and heartbeats). The requeue of a dead worker's tasks adds one to their first byte, so a
//! worker knows the attempt from the task itself. A worker refuses (logs at `warn`, never
//! runs) a task naming another namespace than the one it serves, or a function it does not
//! know (answered `Err(Invalid)`); one that does not decode is dropped and logged.
//!
//! Batching, where it does not show. A worker process takes tasks in one round trip: a
//! `BLMOVE` for the first and a script moving up to [`Worker::prefetch`] − 1 more into its
//! processing list, as many as fit in about 2 ms by the running average of its task times.
//! It runs them and stores their outcomes with one script sent in the same pipeline as its
//! next take: per task, the script removes it from the processing list and writes the outcome
//! to `…:result:ID` only if no outcome is there (`SET NX`) and the worker still holds the task;
//! for each outcome written it pushes the task id to the task's notification list (one
//! `RPUSH` per list). A task that ran twice (its first worker was declared dead, yet
//! finished) still completes its future once, and a worker that no longer holds the task
//! writes nothing: its late outcome is discarded rather than stored again after the future
//! has read and removed the first (the cluster test's partitioned worker host found this). If a
//! task runs past 50 ms, a watchdog thread gives the tasks prefetched behind it back to the
//! head of the queue and stores the outcomes finished before it. [`Executor::map`] sends its
//! tasks 1,000 to an `LPUSH`, and all of them notify one list: it collects outcomes many to a
//! round trip (`BLPOP` + `LPOP` of the list, `MGET` of the outcomes, `UNLINK` of those read
//! folded into the next wait). A single [`Executor::submit`]'s future waits on its own list
//! (`…:notify:ID`) with `BLPOP` and reads the outcome with `GET` in the same pipeline. Either
//! way an outcome is read without being taken: a reply lost with its connection loses at most
//! a wake-up, and the next round reads the outcome again. Once read, it is deleted with its
//! notification list: a finished, read task leaves no key behind.

use crate::conn::{BLOCK_CHUNK, Client, Conn, Pool, is_refused, random_token};
use crate::queue::{DEFAULT_HEARTBEAT, PUT_CHUNK, RawQueue, Receiver};
use multiproc_spawn::decode::decode_exact;
use multiproc_spawn::fnref::FnRef;
use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A registered task function: its name and a type-erased caller. Made by [`task!`](crate::task).
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskFn {
    /// The type name of the function item (`crate::module::fn_name`): what `submit` sees of
    /// the `fn` it is given, the same in every build of the same source.
    pub name: fn() -> &'static str,
    /// Decodes the argument, runs the function, encodes the outcome.
    pub call: fn(&[u8]) -> Outcome,
}

inventory::collect!(TaskFn);

/// Registers plain functions as tasks that an [`Executor`] can send to workers:
/// `multiproc::redis::task!(square, add);` at module level, in the program that both submits
/// and runs the workers. A task is named by its module path and name, so a worker built from
/// the same source finds it even on another machine. (Functions are told apart by the type
/// name of their item, never by address: the compiler may give one function several
/// addresses.)
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// multiproc::redis::task!(square);
/// ```
#[macro_export]
macro_rules! task {
    ($($f:ident),+ $(,)?) => {
        $(
            $crate::__inventory::submit! {
                $crate::TaskFn {
                    name: || ::std::any::type_name_of_val(&$f),
                    call: |bytes| $crate::__invoke($f, bytes),
                }
            }
        )+
    };
}

/// What running a task gave, as it travels back through Redis.
#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub enum Outcome {
    /// The encoded return value.
    Value(Vec<u8>),
    /// The task panicked: the message.
    Panicked(String),
    /// Every allowed attempt ended with its worker dead.
    Died,
    /// The worker does not know this function.
    Unknown(String),
    /// The argument did not decode, or the value did not encode.
    Codec(String),
}

/// Runs `f` on the encoded argument (used by [`task!`](crate::task)).
#[doc(hidden)]
pub fn __invoke<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R, bytes: &[u8]) -> Outcome {
    let arg: A = match decode_exact(bytes) {
        Ok(a) => a,
        Err(e) => return Outcome::Codec(format!("argument: {e}")),
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(arg))) {
        Ok(v) => match postcard::to_stdvec(&v) {
            Ok(b) => Outcome::Value(b),
            Err(e) => Outcome::Codec(format!("return value: {e}")),
        },
        Err(p) => Outcome::Panicked(
            p.downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "task panicked".into()),
        ),
    }
}

fn lookup_fn(name: &str) -> Option<&'static TaskFn> {
    inventory::iter::<TaskFn>
        .into_iter()
        .find(|t| (t.name)() == name)
}

/// One task on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskMsg {
    pub(crate) id: String,
    pub(crate) func: String,
    pub(crate) arg: Vec<u8>,
    pub(crate) max_attempts: u32,
    /// The executor namespace it was sent to: a worker of another namespace refuses it.
    pub(crate) namespace: String,
    /// The notification list (`…:notify:NOTIFY`) its completion wakes: empty for the task's
    /// own (`…:notify:ID`, a single `submit`), a batch's for [`Executor::map`].
    pub(crate) notify: String,
}

/// How often a waiting [`Executor::map`] that hears no wake-up reads every outcome it still
/// misses anyway (it does at once after a reconnect, when wake-ups may have been lost).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The keys of one executor namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) prefix: String,
}

impl Keys {
    pub(crate) fn new(ns: &str) -> Keys {
        Keys {
            prefix: format!("multiproc:exec:{ns}"),
        }
    }
    pub(crate) fn queue_name(&self, ns: &str) -> String {
        format!("exec:{ns}:tasks")
    }
    fn notify(&self, id: &str) -> String {
        format!("{}:notify:{id}", self.prefix)
    }
    pub(crate) fn result(&self, id: &str) -> String {
        format!("{}:result:{id}", self.prefix)
    }
    pub(crate) fn stop(&self) -> String {
        format!("{}:stop", self.prefix)
    }
}

/// The most tasks a worker process takes per round trip unless [`Worker::prefetch`] says
/// otherwise.
const DEFAULT_PREFETCH: usize = 16;

/// How long a finished task's outcome waits in Redis for its future (it is deleted as soon
/// as the future reads it).
const RESULT_TTL: Duration = Duration::from_secs(24 * 3600);

struct Shared {
    client: Client,
    keys: Keys,
    raw: Arc<RawQueue>,
    conns: Mutex<Vec<Conn>>,
    max_attempts: u32,
    namespace: String,
}

impl Shared {
    fn take_conn(&self) -> Result<Conn> {
        let pooled = self.conns.lock().unwrap_or_else(|p| p.into_inner()).pop();
        // A new one connects on its first command, within that command's deadline.
        Ok(pooled.unwrap_or_else(|| self.client.conn_lazy()))
    }
    fn give_conn(&self, c: Conn) {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }
}

/// `concurrent.futures.ProcessPoolExecutor` across machines: [`submit`](Executor::submit)
/// sends a registered plain `fn` and its argument to whichever [`Worker`] takes it first.
///
/// Delivery is at least once: a worker that dies mid-task (killed, its machine gone) stops
/// renewing its heartbeat, and another worker runs the task again; after
/// [`max_attempts`](ExecutorBuilder::max_attempts) deaths the future answers
/// `Err(WorkerDied)`. Each future completes exactly once, with the first outcome written.
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// use multiproc::redis::{Executor, Worker};
/// fn square(x: u64) -> u64 { x * x }
/// multiproc::redis::task!(square);
///
/// let ns = format!("doc-{}", std::process::id());
/// // Usually on other machines: `myprog worker --url redis://host:6379/0`.
/// let workers = std::thread::spawn({
///     let (url, ns) = (url.clone(), ns.clone());
///     move || Worker::new(&url).namespace(&ns).run_in_this_process()
/// });
/// let pool = Executor::builder(&url).namespace(&ns).build()?;
/// let f = pool.submit(square, 7)?;
/// assert_eq!(f.result()?, 49);
/// assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
/// pool.shutdown_workers()?;
/// workers.join().unwrap()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Executor {
    shared: Arc<Shared>,
    tx: Mutex<Conn>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("namespace", &self.shared.keys.prefix)
            .finish()
    }
}

/// Settings of an [`Executor`]: namespace, attempts, heartbeat.
#[derive(Debug, Clone)]
pub struct ExecutorBuilder {
    url: String,
    namespace: String,
    max_attempts: u32,
    heartbeat: Duration,
}

impl ExecutorBuilder {
    /// The namespace shared with the workers (default `"default"`): executors and workers
    /// with different namespaces never see each other's tasks.
    ///
    /// ```
    /// let b = multiproc::redis::Executor::builder("redis://127.0.0.1/").namespace("video");
    /// ```
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.to_string();
        self
    }

    /// How many times a task is started before its future answers `Err(WorkerDied)`
    /// (default 3, at most 254): each start after the first follows a worker that died
    /// running it, or rather whose heartbeat expired: a worker cut off from the server for
    /// longer than its heartbeat counts as dead too (the server cannot tell the two apart).
    ///
    /// ```
    /// let b = multiproc::redis::Executor::builder("redis://127.0.0.1/").max_attempts(5);
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.clamp(1, 254);
        self
    }

    /// Has no effect today: an executor never takes tasks, so it never requeues a dead
    /// worker's tasks either (the workers do, see [`Worker::heartbeat`], the setting that
    /// decides how soon a dead worker's task goes to another). Kept so that code setting it
    /// compiles.
    ///
    /// ```
    /// let b = multiproc::redis::Executor::builder("redis://127.0.0.1/").heartbeat(std::time::Duration::from_secs(2));
    /// ```
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// Connects.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let pool = multiproc::redis::Executor::builder(&url).build()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn build(self) -> Result<Executor> {
        let client = Client::open(&self.url)?;
        let keys = Keys::new(&self.namespace);
        let raw = Arc::new(RawQueue::with_death_count(
            &keys.queue_name(&self.namespace),
            self.heartbeat,
            true,
        ));
        let tx = Mutex::new(client.conn()?);
        Ok(Executor {
            shared: Arc::new(Shared {
                client,
                keys,
                raw,
                conns: Mutex::new(Vec::new()),
                max_attempts: self.max_attempts,
                namespace: self.namespace,
            }),
            tx,
        })
    }
}

impl Executor {
    /// An executor in the namespace `"default"`.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let pool = multiproc::redis::Executor::open(&url)?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn open(url: &str) -> Result<Executor> {
        Self::builder(url).build()
    }

    /// Settings before connecting.
    ///
    /// ```
    /// let b = multiproc::redis::Executor::builder("redis://127.0.0.1/");
    /// ```
    pub fn builder(url: &str) -> ExecutorBuilder {
        ExecutorBuilder {
            url: url.to_string(),
            namespace: "default".into(),
            max_attempts: 3,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }

    /// Sends `f(args)` to a worker. `f` is a plain function, named (not a closure, not a
    /// `fn` pointer), registered with [`task!`](crate::task) (`Err(Invalid)` otherwise).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// fn unregistered(x: u8) -> u8 { x }
    /// let pool = multiproc::redis::Executor::open(&url)?;
    /// assert!(matches!(pool.submit(unregistered, 1), Err(multiproc::Error::Invalid(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn submit<F, A, R>(&self, f: F, args: A) -> Result<Future<R>>
    where
        F: Fn(A) -> R,
        A: Serialize,
        R: DeserializeOwned,
    {
        let _ = f;
        let func = task_name::<F>()?;
        let id = random_token();
        let bytes = self.encode(func, &id, "", &args)?;
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.raw.put(&mut tx, &bytes)?;
        Ok(Future {
            shared: Arc::clone(&self.shared),
            id,
            taken: false,
            _r: PhantomData,
        })
    }

    /// A task as queued.
    fn encode<A: Serialize>(
        &self,
        func: &str,
        id: &str,
        notify: &str,
        args: &A,
    ) -> Result<Vec<u8>> {
        let msg = TaskMsg {
            id: id.to_string(),
            func: func.to_string(),
            arg: postcard::to_stdvec(args).map_err(|e| Error::Codec(e.to_string()))?,
            max_attempts: self.shared.max_attempts,
            namespace: self.shared.namespace.clone(),
            notify: notify.to_string(),
        };
        // The first byte counts the deaths of workers that held the task (the requeue script
        // adds one), so a worker knows the attempt without another round trip.
        let mut bytes = vec![0u8];
        bytes.extend(postcard::to_stdvec(&msg).map_err(|e| Error::Codec(e.to_string()))?);
        Ok(bytes)
    }

    /// Python's `map`: submits every item, then answers the values in input order (the first
    /// error, if any, once every task has finished).
    ///
    /// Batched where it does not show: the tasks go out 1,000
    /// to a round trip, and every task of the call wakes one notification list, so the
    /// outcomes come back many to a round trip (and are deleted once read, in the next one).
    /// An outcome is read without being taken, as in [`Future::result`]: a reply lost to a
    /// cut loses at most wake-ups, and a round that follows a reconnect (or hears
    /// nothing for 10 s) reads every outcome still missing.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// fn double(x: i32) -> i32 { 2 * x }
    /// multiproc::redis::task!(double);
    /// let pool = multiproc::redis::Executor::open(&url)?;
    /// let none: Vec<i32> = pool.map(double, Vec::<i32>::new())?;
    /// assert!(none.is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn map<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        F: Fn(A) -> R + Copy,
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let func = task_name::<F>()?;
        let batch = random_token();
        let mut ids = Vec::new();
        let mut queued = Vec::new();
        for (i, a) in items.into_iter().enumerate() {
            // Unique as the batch's random token is: no system call per task.
            let id = format!("{batch}.{i}");
            queued.push(self.encode(func, &id, &batch, &a)?);
            ids.push(id);
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        {
            let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.raw.put_many(&mut tx, &queued)?;
        }
        drop(queued);
        let mut conn = self.shared.take_conn()?;
        let got = self.collect(&mut conn, &batch, &ids);
        self.shared.give_conn(conn);
        got?.iter().map(|b| decode_outcome(b)).collect()
    }

    /// Waits for the outcomes of the tasks `ids`, which wake the notification list of
    /// `batch`; deletes each once read.
    fn collect(&self, conn: &mut Conn, batch: &str, ids: &[String]) -> Result<Vec<Vec<u8>>> {
        let keys = &self.shared.keys;
        let notify = keys.notify(batch);
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut outcomes: Vec<Option<Vec<u8>>> = vec![None; ids.len()];
        let mut left = ids.len();
        // Outcomes read and not yet deleted: deleted with the next round's wait.
        let mut read: Vec<String> = Vec::new();
        let mut sweep = false;
        let mut last_sweep = Instant::now();
        while left > 0 {
            let mut check: Vec<usize> = Vec::new();
            if sweep {
                check = (0..ids.len()).filter(|&i| outcomes[i].is_none()).collect();
            } else {
                let before = conn.reconnects;
                let (first, rest): (Option<(String, String)>, Option<Vec<String>>) =
                    conn.run(|c| {
                        let mut p = redis::pipe();
                        if !read.is_empty() {
                            p.cmd("UNLINK").arg(&read).ignore();
                        }
                        p.cmd("BLPOP")
                            .arg(&notify)
                            .arg(BLOCK_CHUNK.as_secs_f64())
                            .cmd("LPOP")
                            .arg(&notify)
                            .arg(PUT_CHUNK);
                        p.query(c)
                    })?;
                read.clear();
                // A reply lost to a reconnect took its wake-ups with it: read every outcome
                // still missing. (Also now and then while none come, as a safety net.)
                sweep = conn.reconnects != before
                    || (first.is_none() && last_sweep.elapsed() >= SWEEP_EVERY);
                for id in first
                    .map(|(_, v)| v)
                    .into_iter()
                    .chain(rest.unwrap_or_default())
                {
                    if let Some(&i) = index.get(id.as_str())
                        && outcomes[i].is_none()
                    {
                        check.push(i);
                    }
                }
                if sweep {
                    continue;
                }
            }
            if sweep {
                last_sweep = Instant::now();
            }
            sweep = false;
            check.sort_unstable();
            check.dedup();
            for chunk in check.chunks(PUT_CHUNK) {
                let names: Vec<String> = chunk.iter().map(|&i| keys.result(&ids[i])).collect();
                let values: Vec<Option<Vec<u8>>> =
                    conn.run(|c| redis::cmd("MGET").arg(&names).query(c))?;
                for ((&i, name), v) in chunk.iter().zip(names).zip(values) {
                    if let Some(v) = v {
                        outcomes[i] = Some(v);
                        left -= 1;
                        read.push(name);
                    }
                }
            }
        }
        read.push(notify);
        // Ours now: if this fails, they expire with the result TTL.
        let _ = conn.run(|c| redis::cmd("UNLINK").arg(&read).query::<()>(c));
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Tells every worker of this namespace to exit once its current task is done (they look
    /// at least once a second), like `shutdown()` on a pool whose workers you did not start.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let pool = multiproc::redis::Executor::builder(&url).namespace("doc-stop").build()?;
    /// pool.shutdown_workers()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn shutdown_workers(&self) -> Result<()> {
        let key = self.shared.keys.stop();
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.run(|c| redis::cmd("INCR").arg(&key).query::<i64>(c))
            .map(|_| ())
    }

    /// Tasks waiting for a worker (not counting those running).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let pool = multiproc::redis::Executor::builder(&url).namespace("doc-pending").build()?;
    /// assert_eq!(pool.pending()?, 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pending(&self) -> Result<usize> {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.raw.len(&mut tx)
    }

    /// Runs `f` on this executor's own connection, with its namespace (for `info`).
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Conn, &str) -> T) -> T {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut tx, &self.shared.namespace)
    }
}

/// The pending result of a task sent by [`Executor::submit`].
#[must_use = "a Future does nothing unless its result is asked for"]
pub struct Future<R> {
    shared: Arc<Shared>,
    id: String,
    /// Whether the outcome was read (by a `result_timeout` that answered it).
    taken: bool,
    _r: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Future<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future").field("id", &self.id).finish()
    }
}

impl<R: DeserializeOwned> Future<R> {
    /// Waits for the task: its value, `Err(TaskFailed)` if it panicked, `Err(WorkerDied)`
    /// when every attempt's worker died (exit code -1: not known across machines).
    /// `Err(Redis)` when the server stays out of reach for longer than the client's
    /// reconnect window; an outcome stored meanwhile is not lost (see the crate's "Network
    /// cuts").
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// # use multiproc::redis::{Executor, Worker};
    /// fn boom(_: ()) -> u8 { panic!("no luck") }
    /// multiproc::redis::task!(boom);
    /// # let ns = format!("doc-boom-{}", std::process::id());
    /// # let w = { let (u, n) = (url.clone(), ns.clone()); std::thread::spawn(move || Worker::new(&u).namespace(&n).run_in_this_process()) };
    /// let pool = Executor::builder(&url).namespace(&ns).build()?;
    /// let f = pool.submit(boom, ())?;
    /// assert!(matches!(f.result(), Err(multiproc::Error::TaskFailed { message }) if message == "no luck"));
    /// # pool.shutdown_workers()?; w.join().unwrap()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn result(self) -> Result<R> {
        let mut me = self;
        me.wait(None)
    }

    /// Like [`result`](Future::result), giving up after `timeout` with `Err(Timeout)`; the
    /// future stays usable then. The deadline holds while the server is out of reach too
    /// (within about a quarter of a second): `Err(Timeout)`, unless the reconnect window
    /// ran out first (`Err(Redis)`). Once it has answered the outcome, the future is spent:
    /// asking again is `Err(Invalid)`.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// fn never_run(x: u8) -> u8 { x }
    /// multiproc::redis::task!(never_run);
    /// let pool = multiproc::redis::Executor::builder(&url).namespace("doc-no-workers").build()?;
    /// let mut f = pool.submit(never_run, 1)?;
    /// assert!(matches!(f.result_timeout(std::time::Duration::from_millis(20)), Err(multiproc::Error::Timeout)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn result_timeout(&mut self, timeout: Duration) -> Result<R> {
        self.wait(Some(timeout))
    }

    /// The task's id (the key suffix in Redis).
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// fn ident(x: u8) -> u8 { x }
    /// multiproc::redis::task!(ident);
    /// let pool = multiproc::redis::Executor::builder(&url).namespace("doc-id").build()?;
    /// assert_eq!(pool.submit(ident, 1)?.id().len(), 32);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<R> {
        if self.taken {
            return Err(Error::Invalid(
                "this future's result was already taken".into(),
            ));
        }
        // `None` (no limit) also for a timeout past the end of the clock (`Duration::MAX`).
        let deadline = timeout.and_then(multiproc_sync::raw::deadline_after);
        let (key, notify) = (
            self.shared.keys.result(&self.id),
            self.shared.keys.notify(&self.id),
        );
        let mut conn = self.shared.take_conn()?;
        // The outcome is read without taking it (GET), after waiting on the notification
        // list: a reply lost with its connection (a network cut) loses at most a wake-up,
        // and the GET of the next round finds the outcome still there.
        let got = loop {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(BLOCK_CHUNK),
                None => BLOCK_CHUNK,
            };
            let r: Result<Option<Vec<u8>>> = conn.run_until(deadline, |c| {
                let mut p = redis::pipe();
                if !wait.is_zero() {
                    p.cmd("BLPOP").arg(&notify).arg(wait.as_secs_f64()).ignore();
                }
                p.cmd("GET").arg(&key);
                p.query::<(Option<Vec<u8>>,)>(c).map(|(v,)| v)
            });
            match r {
                Err(e) => break Err(e),
                Ok(Some(bytes)) => break Ok(bytes),
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    break Err(Error::Timeout);
                }
                Ok(None) => {}
            }
        };
        if got.is_ok() {
            self.taken = true;
            // Ours now: the outcome and its notification go (if this fails, they expire
            // with the result TTL).
            let _ = conn.run_until(deadline, |c| {
                redis::cmd("DEL").arg(&key).arg(&notify).query::<()>(c)
            });
        }
        self.shared.give_conn(conn);
        decode_outcome(&got?)
    }
}

/// The value of an outcome as stored by a worker, or its error.
fn decode_outcome<R: DeserializeOwned>(bytes: &[u8]) -> Result<R> {
    let outcome: Outcome =
        decode_exact(bytes).map_err(|e| Error::Codec(format!("outcome: {e}")))?;
    match outcome {
        Outcome::Value(b) => decode_exact(&b).map_err(Error::Codec),
        Outcome::Panicked(message) => Err(Error::TaskFailed { message }),
        Outcome::Died => Err(Error::WorkerDied { exitcode: -1 }),
        Outcome::Unknown(name) => Err(Error::Invalid(format!(
            "the worker does not know the task {name:?}: is it running the same program?"
        ))),
        Outcome::Codec(m) => Err(Error::Codec(m)),
    }
}

/// The registered name of the task function `F` (`Err(Invalid)` when it is not registered).
fn task_name<F>() -> Result<&'static str> {
    let wanted = std::any::type_name::<F>();
    lookup_fn(wanted).map(|t| (t.name)()).ok_or_else(|| {
        Error::Invalid(format!(
            "{wanted} is not registered as a task: add `multiproc::redis::task!(its_name);` at module level"
        ))
    })
}

/// How a worker process is set up (travels to the worker processes a [`Worker`] starts).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerConfig {
    url: String,
    namespace: String,
    heartbeat_ms: u64,
    /// The most tasks taken per round trip (see [`Worker::prefetch`]).
    prefetch: usize,
    /// The stop generation when the worker started: a different one means stop.
    stop_gen: i64,
    /// The registered tasks of the supervisor, by name, as offsets of their callers: a child
    /// process started by multiproc runs before the registry's constructors (its own start-up
    /// hook takes over first), so it learns the table from its parent.
    table: Vec<(String, isize)>,
}

/// The registered tasks as (name, offset of the caller) for the children.
fn task_table() -> Vec<(String, isize)> {
    inventory::iter::<TaskFn>
        .into_iter()
        .map(|t| {
            let call: fn(&[u8]) -> Outcome = t.call;
            ((t.name)().to_string(), FnRef::new(call as usize).offset())
        })
        .collect()
}

/// The caller of the task `name`: from this process's registry, or else from the table the
/// supervisor sent.
fn find_call(name: &str, table: &[(String, isize)]) -> Option<fn(&[u8]) -> Outcome> {
    if let Some(t) = lookup_fn(name) {
        return Some(t.call);
    }
    let (_, offset) = table.iter().find(|(n, _)| n == name)?;
    let address = FnRef::from_offset(*offset).address();
    // SAFETY: the offset was taken from a `fn(&[u8]) -> Outcome` (a `TaskFn::call`) by the
    // supervisor, which started this process from the identical executable (multiproc checks
    // that at start-up), so the address is that same function here.
    Some(unsafe { std::mem::transmute::<usize, fn(&[u8]) -> Outcome>(address) })
}

/// The worker side: takes tasks of one namespace and runs them, in `processes` child
/// processes that are restarted when they die.
///
/// Run from your own program (whose tasks are registered with [`task!`](crate::task)), e.g.
/// when it is started as `myprog worker --url redis://host:6379/0 --processes 8`
/// (see [`worker_cli`](crate::worker_cli)). Start it from the program's main process, not
/// from a process that `multiproc::spawn` started: such a child runs before the task registry is filled (the
/// worker processes this type starts get the registry from it).
///
/// ```
/// let w = multiproc::redis::Worker::new("redis://127.0.0.1/").processes(4).namespace("video");
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    pub(crate) url: String,
    pub(crate) namespace: String,
    processes: usize,
    heartbeat: Duration,
    prefetch: usize,
}

impl Worker {
    /// A worker for the namespace `"default"` with one process per CPU.
    ///
    /// ```
    /// let w = multiproc::redis::Worker::new("redis://127.0.0.1/");
    /// ```
    pub fn new(url: &str) -> Worker {
        Worker {
            url: url.to_string(),
            namespace: "default".into(),
            processes: multiproc_spawn::cpu_count(),
            heartbeat: DEFAULT_HEARTBEAT,
            prefetch: DEFAULT_PREFETCH,
        }
    }

    /// The most tasks a worker process takes from the server in one round trip (default 16;
    /// 1 turns prefetching off). It takes that many only while its
    /// tasks are short: as many as fit in about 2 ms by the running average of its task times
    /// (so one at a time for tasks of 2 ms or more), and it stores their outcomes together,
    /// with its next take. Prefetched tasks are held like a running one: in the worker's
    /// processing list, under its heartbeat, requeued if it dies (each such requeue counts
    /// towards [`ExecutorBuilder::max_attempts`], started or not). None waits behind a long
    /// task: once a task has run for 50 ms, the tasks prefetched behind it go back to the
    /// head of the queue for other workers, and the outcomes finished before it are stored.
    /// [`info`](crate::info()) lists the tasks taken ahead as `prefetched`, apart from the one
    /// running. The command line's `--prefetch N` sets it (see [`worker_cli`](crate::worker_cli)).
    ///
    /// ```
    /// let w = multiproc::redis::Worker::new("redis://127.0.0.1/").prefetch(4);
    /// ```
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n.max(1);
        self
    }

    /// The [`prefetch`](Worker::prefetch) set (for the command line's tests).
    #[cfg(test)]
    pub(crate) fn prefetch_setting(&self) -> usize {
        self.prefetch
    }

    /// The executor namespace to serve.
    ///
    /// ```
    /// let w = multiproc::redis::Worker::new("redis://127.0.0.1/").namespace("video");
    /// ```
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.to_string();
        self
    }

    /// How many worker processes [`run`](Worker::run) keeps running.
    ///
    /// ```
    /// let w = multiproc::redis::Worker::new("redis://127.0.0.1/").processes(2);
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = n.max(1);
        self
    }

    /// How soon a dead worker's task goes to another (default 5 s; renewed every third):
    /// once its heartbeat expired, an idle worker requeues it within about a second. A
    /// worker cut off from the server for longer counts as dead (its task runs again, and
    /// counts towards [`ExecutorBuilder::max_attempts`]).
    ///
    /// ```
    /// let w = multiproc::redis::Worker::new("redis://127.0.0.1/").heartbeat(std::time::Duration::from_secs(1));
    /// ```
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d.max(Duration::from_millis(30));
        self
    }

    /// The settings of the worker processes; waits for the server (see [`Worker::run`]).
    fn config(&self) -> Result<WorkerConfig> {
        let client = Client::parse(&self.url)?;
        let stop = Keys::new(&self.namespace).stop();
        let stop_gen: Option<i64> = persist("cannot reach the server", || {
            client
                .conn()?
                .run(|c| redis::cmd("GET").arg(&stop).query(c))
        })?;
        Ok(WorkerConfig {
            url: self.url.clone(),
            namespace: self.namespace.clone(),
            heartbeat_ms: crate::conn::redis_millis(self.heartbeat),
            prefetch: self.prefetch,
            stop_gen: stop_gen.unwrap_or(0),
            table: task_table(),
        })
    }

    /// Starts the worker processes and keeps them running (a dead one is replaced, its task
    /// retried elsewhere) until [`Executor::shutdown_workers`]; then waits for them.
    ///
    /// An unreachable server never ends it: the supervisor and its workers log each failure
    /// through `tracing` (`warn`) and try again after a pause from 1 s doubling up to 30 s
    /// (reset by a success), and carry on by themselves once the server answers; started
    /// while the server is down, it waits for it. A connection refused, reset or timed out,
    /// a server restarting, loading its data or full (`max number of clients`) are such
    /// outages.
    ///
    /// What no wait mends is an error at once, `Err(Redis)` with the words
    /// [`Client::open`] uses: a URL that does not parse, and the server refusing this
    /// worker's configuration, at start or later: a wrong password or unknown ACL user
    /// (`WRONGPASS`, "authentication failed"; `NOAUTH` without one), a command outside the
    /// user's ACL (`NOPERM`), a server certificate that does not verify (or a client
    /// certificate the server does not accept), plaintext `redis://` on a TLS port. Refused
    /// in a worker process, the supervisor stops the others and returns that process's error.
    ///
    /// ```no_run
    /// multiproc::redis::Worker::new("redis://10.0.0.5:6379/0").processes(8).run()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn run(self) -> Result<()> {
        let cfg = self.config()?;
        let client = Client::parse(&self.url)?;
        let mut conn = persist("cannot reach the server", || client.conn())?;
        let mut backoff = Backoff::new();
        let mut next_check = Instant::now();
        let stop_key = Keys::new(&cfg.namespace).stop();
        let mut children = Vec::new();
        for _ in 0..self.processes {
            children.push(Some(multiproc_spawn::spawn(worker_process, cfg.clone())?));
        }
        let mut stopping = false;
        loop {
            let mut live = 0;
            let mut refused = None;
            for slot in children.iter_mut() {
                let Some(child) = slot else { continue };
                if !child.wait_timeout(Duration::from_millis(100) / self.processes as u32) {
                    live += 1;
                    continue;
                }
                // A worker process refused by the server says why; one that died (a task
                // killed it) is replaced.
                if let Some(Ok(Some(why))) = slot.take().map(multiproc_spawn::Process::join) {
                    refused = Some(Error::Redis(why));
                    break;
                }
                if !stopping {
                    *slot = Some(multiproc_spawn::spawn(worker_process, cfg.clone())?);
                    live += 1;
                }
            }
            if let Some(e) = refused {
                return Err(stop_children(children, e));
            }
            if !stopping && Instant::now() >= next_check {
                // Bounded, so that the children are looked after during an outage too.
                let within = Some(Instant::now() + Duration::from_secs(2));
                match conn.run_until(within, |c| {
                    redis::cmd("GET").arg(&stop_key).query::<Option<i64>>(c)
                }) {
                    Ok(g) => {
                        stopping = g.unwrap_or(0) != cfg.stop_gen;
                        backoff.reset();
                    }
                    Err(e) if is_refused(&e) => return Err(stop_children(children, e)),
                    Err(e) => {
                        next_check =
                            Instant::now() + backoff.failed("cannot read the stop key", &e);
                    }
                }
            }
            if stopping && live == 0 {
                return Ok(());
            }
        }
    }

    /// Runs tasks in the calling process (one at a time) until
    /// [`Executor::shutdown_workers`]. A task that kills the process kills this loop. An
    /// unreachable server is waited for, as in [`run`](Worker::run).
    ///
    /// ```no_run
    /// multiproc::redis::Worker::new("redis://127.0.0.1/").run_in_this_process()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn run_in_this_process(self) -> Result<()> {
        serve(self.config()?)
    }
}

/// The body of a worker process started by [`Worker::run`]: `Some` error text when the
/// server refused it (see [`Worker::run`]), for the supervisor to return.
fn worker_process(cfg: WorkerConfig) -> Option<String> {
    match serve(cfg) {
        Ok(()) => None,
        Err(e) if is_refused(&e) => Some(match e {
            Error::Redis(m) => m,
            other => other.to_string(),
        }),
        Err(e) => {
            eprintln!("multiproc-redis worker {}: {e}", std::process::id());
            std::process::exit(3);
        }
    }
}

/// Stops the worker processes left (the server refused one of them, or the supervisor) and
/// answers `e`.
fn stop_children(
    children: Vec<Option<multiproc_spawn::Process<Option<String>>>>,
    e: Error,
) -> Error {
    tracing::error!(error = %e, "multiproc-redis worker: refused by the server; stopping");
    for child in children.iter().flatten() {
        let _ = child.terminate();
    }
    for child in children.into_iter().flatten() {
        let _ = child.join();
    }
    e
}

/// The pause after a worker's failed attempt to reach the server: from 1 s, doubling up to
/// 30 s, reset by a success. Each failure is logged through `tracing` (warn).
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Logs `e` and returns the pause to take before the next attempt.
    fn failed(&mut self, what: &str, e: &Error) -> Duration {
        let pause = self.next;
        tracing::warn!(
            pid = std::process::id(),
            error = %e,
            retry_in_ms = pause.as_millis() as u64,
            "multiproc-redis worker: {what}; retrying"
        );
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// Logs `e` and sleeps before the next attempt.
    fn sleep(&mut self, what: &str, e: &Error) {
        std::thread::sleep(self.failed(what, e));
    }
}

/// Runs `f` until it succeeds, backing off between attempts (see [`Backoff`]); gives up at
/// once on the server refusing this worker's configuration (see [`Worker::run`]).
fn persist<T>(what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = Backoff::new();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if is_refused(&e) => return Err(e),
            Err(e) => backoff.sleep(what, &e),
        }
    }
}

/// Stores a worker's finished outcomes and gives back the tasks it took but will not run, in
/// one script. KEYS: the worker's processing list, the task queue, then per outcome its
/// result key and notification list. ARGV: result TTL ms, the number of outcomes `n`, the
/// number of tasks given back `m`, then per outcome the task as queued, the outcome and the
/// task id; then the `m` tasks given back; then tasks to drop (refused). Each outcome is
/// written only if this worker still holds the task and no outcome is there (`SET NX`), and
/// only then its id is pushed to its
/// notification list (one `RPUSH` per list); a task is given back only if this worker still
/// holds it (its heartbeat did not expire meanwhile).
const FLUSH: &str = r"
local ttl, n, m = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lists, order = {}, {}
for i = 1, n do
  local a = 3 * i + 1
  local nk = KEYS[2 * i + 2]
  -- A worker that no longer holds the task (its heartbeat expired and the task went back to
  -- the queue) writes nothing: its outcome may have been read and deleted already.
  if redis.call('LREM', KEYS[1], -1, ARGV[a]) > 0
    and redis.call('SET', KEYS[2 * i + 1], ARGV[a + 1], 'NX', 'PX', ttl) then
    local l = lists[nk]
    if not l then l = {}; lists[nk] = l; order[#order + 1] = nk end
    l[#l + 1] = ARGV[a + 2]
  end
end
for _, nk in ipairs(order) do
  redis.call('RPUSH', nk, unpack(lists[nk]))
  redis.call('PEXPIRE', nk, ttl)
end
for j = 3 * n + 4, 3 * n + 3 + m do
  if redis.call('LREM', KEYS[1], -1, ARGV[j]) > 0 then redis.call('RPUSH', KEYS[2], ARGV[j]) end
end
for j = 3 * n + 4 + m, #ARGV do
  redis.call('LREM', KEYS[1], -1, ARGV[j])
end
return n
";

/// The longest a worker runs through prefetched tasks before their outcomes go out: it takes
/// as many tasks per round trip as fit in this, by the running average of its tasks' times.
const BATCH_BUDGET: Duration = Duration::from_millis(2);

/// How long a task may run before the worker gives back the tasks it prefetched behind it
/// (another worker takes them) and stores the outcomes it finished before it.
pub(crate) const PREFETCH_RELEASE: Duration = Duration::from_millis(50);

/// The tasks a worker process holds: finished ones whose outcome is not stored yet, and
/// prefetched ones not started yet.
#[derive(Default)]
struct Held {
    /// (task as queued, result key, notification list, encoded outcome, task id).
    done: Vec<Done>,
    waiting: VecDeque<Vec<u8>>,
    /// Undecodable or refused tasks: dropped from the processing list, never run.
    dropped: Vec<Vec<u8>>,
    /// When the task running now started.
    running_since: Option<Instant>,
}

struct Done {
    held: Vec<u8>,
    result: String,
    notify: String,
    payload: Vec<u8>,
    id: String,
}

impl Held {
    /// After a FLUSH went through: the outcomes stored, the tasks given back (`release`) and
    /// the dropped ones are no longer this worker's to hold.
    fn flushed(&mut self, rx: &Receiver, release: &[Vec<u8>]) {
        let gone: Vec<&[u8]> = self
            .done
            .iter()
            .map(|d| d.held.as_slice())
            .chain(release.iter().chain(&self.dropped).map(Vec::as_slice))
            .collect();
        rx.forget_items(&gone);
        self.done.clear();
        self.dropped.clear();
    }

    fn is_empty(&self) -> bool {
        self.done.is_empty() && self.dropped.is_empty()
    }
}

/// Adds the [`FLUSH`] script to `p` for `done`, `release` and `dropped`.
fn add_flush(
    p: &mut redis::Pipeline,
    script: &str,
    processing: &str,
    items: &str,
    done: &[Done],
    release: &[Vec<u8>],
    dropped: &[Vec<u8>],
) {
    p.cmd("EVAL")
        .arg(script)
        .arg(2 + 2 * done.len())
        .arg(processing)
        .arg(items);
    for d in done {
        p.arg(&d.result).arg(&d.notify);
    }
    p.arg(RESULT_TTL.as_millis() as u64)
        .arg(done.len())
        .arg(release.len());
    for d in done {
        p.arg(d.held.as_slice())
            .arg(d.payload.as_slice())
            .arg(&d.id);
    }
    for r in release.iter().chain(dropped) {
        p.arg(r.as_slice());
    }
    p.ignore();
}

/// Runs one task as queued: its encoded outcome, or `None` when it is refused (undecodable,
/// or of another namespace): dropped, logged, never run.
fn run_task(
    bytes: &[u8],
    cfg: &WorkerConfig,
    keys: &Keys,
    worker: &str,
) -> Option<(String, String, Vec<u8>, String)> {
    let Some(Ok(msg)) = bytes.get(1..).map(decode_exact::<TaskMsg>) else {
        tracing::warn!(worker, "dropped a task that does not decode");
        return None;
    };
    if msg.namespace != cfg.namespace {
        tracing::warn!(
            worker,
            task = %msg.func,
            id = %msg.id,
            namespace = %msg.namespace,
            serves = %cfg.namespace,
            "refused a task of a namespace this worker does not serve"
        );
        return None;
    }
    let attempt = u32::from(bytes[0]) + 1;
    // Every event of the task (its own included) is seen inside this span.
    let span = tracing::info_span!(
        "multiproc_redis_task",
        task = %msg.func,
        id = %msg.id,
        attempt,
        worker = %worker,
    );
    let outcome = span.in_scope(|| {
        if attempt > msg.max_attempts {
            tracing::warn!(
                max_attempts = msg.max_attempts,
                "every attempt's worker died"
            );
            Outcome::Died
        } else {
            match find_call(&msg.func, &cfg.table) {
                Some(call) => call(&msg.arg),
                None => {
                    tracing::warn!("refused a task this worker does not know: not run");
                    Outcome::Unknown(msg.func.clone())
                }
            }
        }
    });
    let payload = match postcard::to_stdvec(&outcome) {
        Ok(p) => p,
        Err(e) => postcard::to_stdvec(&Outcome::Codec(e.to_string())).unwrap_or_default(),
    };
    let notify = if msg.notify.is_empty() {
        keys.notify(&msg.id)
    } else {
        keys.notify(&msg.notify)
    };
    Some((keys.result(&msg.id), notify, payload, msg.id))
}

fn serve(cfg: WorkerConfig) -> Result<()> {
    let client = Client::parse(&cfg.url)?;
    let keys = Keys::new(&cfg.namespace);
    let raw = Arc::new(RawQueue::with_death_count(
        &keys.queue_name(&cfg.namespace),
        Duration::from_millis(cfg.heartbeat_ms),
        true,
    ));
    let items_key = raw.items().to_string();
    let pool = persist("cannot reach the server", || Pool::new(&client))?;
    let rx = Arc::new(Receiver::new(raw, pool));
    let mut conn = persist("cannot reach the server", || client.conn())?;
    let stop_key = keys.stop();
    let mut last_stop_check = Instant::now();
    let mut backoff = Backoff::new();
    let held = Arc::new(Mutex::new(Held::default()));
    let prefetch = cfg.prefetch.max(1);
    // The running average of this worker's task times (starts at the budget: one task per
    // round trip until it has seen them short).
    let mut average = BATCH_BUDGET;
    let (stop_release, release_stopped) = std::sync::mpsc::channel::<()>();
    let releaser = (prefetch > 1).then(|| {
        let (held, rx, client, items) = (
            Arc::clone(&held),
            Arc::clone(&rx),
            client.clone(),
            items_key.clone(),
        );
        std::thread::spawn(move || release_loop(&held, &rx, &client, &items, &release_stopped))
    });
    let result = loop {
        // The outcomes of the last batch ride with the next take (one round trip).
        let (done, dropped) = {
            let mut h = lock(&held);
            (std::mem::take(&mut h.done), std::mem::take(&mut h.dropped))
        };
        let processing = rx.processing_key();
        let want = if average.is_zero() {
            prefetch
        } else {
            ((BATCH_BUDGET.as_nanos() / average.as_nanos().max(1)) as usize).clamp(1, prefetch)
        };
        let got = rx.get_many(BLOCK_CHUNK, want, &|p| {
            if let Some(processing) = &processing
                && (!done.is_empty() || !dropped.is_empty())
            {
                add_flush(p, FLUSH, processing, &items_key, &done, &[], &dropped);
            }
        });
        match &got {
            Ok(_) => {
                let sent: Vec<&[u8]> = done
                    .iter()
                    .map(|d| d.held.as_slice())
                    .chain(dropped.iter().map(Vec::as_slice))
                    .collect();
                rx.forget_items(&sent);
            }
            Err(_) => {
                // Not known to be stored: sent again with the next take.
                let mut h = lock(&held);
                h.done.splice(0..0, done);
                h.dropped.splice(0..0, dropped);
            }
        }
        let empty = matches!(&got, Ok(v) if v.is_empty());
        if empty || last_stop_check.elapsed() >= BLOCK_CHUNK {
            last_stop_check = Instant::now();
            // Bounded: a server that stopped answering is retried after a pause, not waited
            // on for a read timeout and a reconnect window.
            let within = Some(Instant::now() + Duration::from_secs(5));
            match conn.run_until(within, |c| {
                redis::cmd("GET").arg(&stop_key).query::<Option<i64>>(c)
            }) {
                Ok(g) if g.unwrap_or(0) != cfg.stop_gen => {
                    // Tasks taken in the same breath go back to the queue (not counted as
                    // a death), outcomes not stored yet are stored.
                    let back = got.unwrap_or_default();
                    break finish(&held, &rx, &mut conn, &items_key, back);
                }
                Ok(_) => backoff.reset(),
                Err(e) if is_refused(&e) => break Err(e),
                // Tasks got in the same breath are still run (and completed below).
                Err(e) if matches!(&got, Ok(v) if !v.is_empty()) => {
                    backoff.failed("cannot read the stop key", &e);
                }
                Err(e) => {
                    backoff.sleep("cannot read the stop key", &e);
                    continue;
                }
            }
        }
        let batch = match got {
            Err(e) if is_refused(&e) => break Err(e),
            Err(e) => {
                backoff.sleep("cannot take a task", &e);
                continue;
            }
            Ok(b) => b,
        };
        let worker = rx.consumer_id().unwrap_or_default();
        lock(&held).waiting.extend(batch);
        loop {
            let next = {
                let mut h = lock(&held);
                let next = h.waiting.pop_front();
                if next.is_some() {
                    h.running_since = Some(Instant::now());
                }
                next
            };
            let Some(bytes) = next else { break };
            let started = Instant::now();
            let ran = run_task(&bytes, &cfg, &keys, &worker);
            let took = started.elapsed();
            average = (average * 3 + took) / 4;
            let mut h = lock(&held);
            h.running_since = None;
            match ran {
                Some((result, notify, payload, id)) => h.done.push(Done {
                    held: bytes,
                    result,
                    notify,
                    payload,
                    id,
                }),
                None => h.dropped.push(bytes),
            }
        }
    };
    drop(stop_release);
    if let Some(r) = releaser {
        let _ = r.join();
    }
    result
}

/// Stores what `held` has finished and gives back `back` and what it still waits to run:
/// the worker is stopping.
fn finish(
    held: &Mutex<Held>,
    rx: &Receiver,
    conn: &mut Conn,
    items: &str,
    back: Vec<Vec<u8>>,
) -> Result<()> {
    let mut h = lock(held);
    let mut release: Vec<Vec<u8>> = h.waiting.drain(..).collect();
    release.extend(back);
    let Some(processing) = rx.processing_key() else {
        return Ok(());
    };
    if h.is_empty() && release.is_empty() {
        return Ok(());
    }
    // Kept until stored: an outage only delays it.
    persist("cannot store a task's outcome", || {
        conn.run(|c| {
            let mut p = redis::pipe();
            add_flush(
                &mut p,
                FLUSH,
                &processing,
                items,
                &h.done,
                &release,
                &h.dropped,
            );
            p.query::<()>(c)
        })
    })?;
    h.flushed(rx, &release);
    Ok(())
}

/// Test hook (see [`crate::__keep_prefetched`]): the watchdogs of this process give nothing
/// back, so that a test sees a worker's prefetched tasks behind a long one.
pub(crate) static KEEP_PREFETCHED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The prefetching worker's watchdog: once a task has run for [`PREFETCH_RELEASE`], the
/// tasks prefetched behind it go back to the queue for other workers, and the outcomes
/// finished before it are stored, so that neither waits on a long task.
fn release_loop(
    held: &Mutex<Held>,
    rx: &Receiver,
    client: &Client,
    items: &str,
    stopped: &std::sync::mpsc::Receiver<()>,
) {
    let mut conn = client.conn_lazy();
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stopped.recv_timeout(PREFETCH_RELEASE / 2)
    {
        let mut h = lock(held);
        let long = h
            .running_since
            .is_some_and(|t| t.elapsed() >= PREFETCH_RELEASE);
        let held_back = KEEP_PREFETCHED.load(std::sync::atomic::Ordering::Relaxed);
        if !long || held_back || (h.is_empty() && h.waiting.is_empty()) {
            continue;
        }
        let Some(processing) = rx.processing_key() else {
            continue;
        };
        let release: Vec<Vec<u8>> = h.waiting.iter().cloned().collect();
        let within = Some(Instant::now() + Duration::from_secs(1));
        let sent = conn.run_until(within, |c| {
            let mut p = redis::pipe();
            add_flush(
                &mut p,
                FLUSH,
                &processing,
                items,
                &h.done,
                &release,
                &h.dropped,
            );
            p.query::<()>(c)
        });
        // On failure all stays as it was: the worker sends it with its next take.
        if sent.is_ok() {
            h.waiting.clear();
            h.flushed(rx, &release);
        }
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a worker for the namespace `"default"` with one process per CPU, until
/// [`Executor::shutdown_workers`]: `Worker::new(url).run()` (an unreachable server is
/// waited for, see [`Worker::run`]).
///
/// ```no_run
/// multiproc::redis::worker_main("redis://10.0.0.5:6379/0")?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn worker_main(url: &str) -> Result<()> {
    Worker::new(url).run()
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    fn len(s: String) -> usize {
        s.len()
    }

    fn codec(outcome: Outcome) -> String {
        match outcome {
            Outcome::Codec(text) => text,
            other => panic!("expected Outcome::Codec, got {other:?}"),
        }
    }

    #[test]
    fn task_arguments_decode_exactly() {
        let good = postcard::to_allocvec("Bob the Builder").unwrap();
        match __invoke(len, &good) {
            Outcome::Value(b) => assert_eq!(decode_exact::<usize>(&b), Ok(15)),
            other => panic!("{other:?}"),
        }
        for cut in 0..good.len() {
            let text = codec(__invoke(len, &good[..cut]));
            assert!(
                text.ends_with("expected alloc::string::String: the bytes end early"),
                "{text}"
            );
        }
        let mut longer = good.clone();
        longer.extend([1, 2]);
        let text = codec(__invoke(len, &longer));
        assert!(
            text.ends_with("expected alloc::string::String: 2 bytes left over"),
            "{text}"
        );
    }

    #[test]
    fn random_task_arguments_and_messages_never_panic() {
        let mut rng = multiproc_testkit::XorShift(0xDEAD_BEEF_CAFE_F00D);
        for _ in 0..10_000 {
            let b = rng.bytes(40);
            if let Outcome::Codec(text) = __invoke(len, &b) {
                assert!(text.contains("expected alloc::string::String: "), "{text}");
            }
            if let Err(text) = decode_exact::<TaskMsg>(&b) {
                assert!(text.contains("TaskMsg: "), "{text}");
            }
            if let Err(text) = decode_exact::<Outcome>(&b) {
                assert!(text.contains("Outcome: "), "{text}");
            }
        }
    }
}
