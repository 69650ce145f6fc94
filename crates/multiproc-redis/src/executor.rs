//! [`Executor`]: `ProcessPoolExecutor` whose workers run anywhere that reaches the Redis
//! server; [`Worker`] and [`worker_main`]: the worker side; [`task!`](crate::task): the registry
//! that names a plain `fn` the same in every build of the program. (The command line,
//! [`worker_cli`](crate::worker_cli), is in `cli.rs`; [`Executor::info`] in `info.rs`.)
//!
//! A task is a death count byte then `{id, function name, postcard argument, max attempts}` in
//! the queue
//! `multiproc:exec:NS:tasks` (a [`Queue`](crate::Queue) underneath: per-worker processing lists
//! and heartbeats). The requeue of a dead worker's tasks adds one to their first byte, so a
//! worker knows the attempt from the task itself; it runs the function
//! and completes the task with one script that writes the outcome to the key `…:result:ID`
//! only if no outcome is there (`SET NX`), and then pushes a token to the list `…:notify:ID`:
//! a task that ran twice (its first worker was declared dead, yet finished) still completes
//! its future once, and the script writes nothing for a worker that no longer holds the task
//! (its late outcome is discarded rather than stored again after the future has read and
//! removed the first). The future waits on the notification list with `BLPOP` and reads the
//! outcome with `GET` in the same pipeline, without taking it: a reply lost with its
//! connection loses at most a wake-up, and the next round reads the outcome again. Once the
//! future has it, it deletes both keys: a finished, read task leaves no key behind.

use crate::conn::{BLOCK_CHUNK, Client, Conn, Pool, random_token};
use crate::queue::{DEFAULT_HEARTBEAT, RawQueue, Receiver};
use multiproc_spawn::decode::decode_exact;
use multiproc_spawn::fnref::FnRef;
use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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
}

/// Acknowledges the task and writes the outcome once: into the result key, unless an
/// outcome is there already, with a token pushed to the notification list that wakes the
/// future. A worker that no longer holds the task (its heartbeat expired, the task went back
/// to the queue, maybe already ran elsewhere and its future read the outcome and removed it)
/// writes nothing: its late outcome is discarded. KEYS: result, notification list, the
/// worker's processing list. ARGV: outcome, result TTL ms, the task as queued.
const COMPLETE: &str = r"
if redis.call('LREM', KEYS[3], -1, ARGV[3]) == 0 then
  return 0
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
";

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
        let wanted = std::any::type_name::<F>();
        let func = lookup_fn(wanted).map(|t| (t.name)()).ok_or_else(|| {
            Error::Invalid(format!(
                "{wanted} is not registered as a task: add `multiproc::redis::task!(its_name);` at module level"
            ))
        })?;
        let msg = TaskMsg {
            id: random_token(),
            func: func.to_string(),
            arg: postcard::to_stdvec(&args).map_err(|e| Error::Codec(e.to_string()))?,
            max_attempts: self.shared.max_attempts,
        };
        // The first byte counts the deaths of workers that held the task (the requeue script
        // adds one), so a worker knows the attempt without another round trip.
        let mut bytes = vec![0u8];
        bytes.extend(postcard::to_stdvec(&msg).map_err(|e| Error::Codec(e.to_string()))?);
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.raw.put(&mut tx, &bytes)?;
        Ok(Future {
            shared: Arc::clone(&self.shared),
            id: msg.id,
            taken: false,
            _r: PhantomData,
        })
    }

    /// Python's `map`: submits every item, then answers the values in input order (the first
    /// error, if any).
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
        let futures = items
            .into_iter()
            .map(|a| self.submit(f, a))
            .collect::<Result<Vec<_>>>()?;
        futures.into_iter().map(Future::result).collect()
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
        let deadline = timeout.map(|t| Instant::now() + t);
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
        let outcome: Outcome =
            decode_exact(&got?).map_err(|e| Error::Codec(format!("outcome: {e}")))?;
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
}

/// How a worker process is set up (travels to the worker processes a [`Worker`] starts).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WorkerConfig {
    url: String,
    namespace: String,
    heartbeat_ms: u64,
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
        }
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
        });
        Ok(WorkerConfig {
            url: self.url.clone(),
            namespace: self.namespace.clone(),
            heartbeat_ms: self.heartbeat.as_millis() as u64,
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
    /// while the server is down, it waits for it. Only a URL that does not parse is an error
    /// at once.
    ///
    /// ```no_run
    /// multiproc::redis::Worker::new("redis://10.0.0.5:6379/0").processes(8).run()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn run(self) -> Result<()> {
        let cfg = self.config()?;
        let client = Client::parse(&self.url)?;
        let mut conn = persist("cannot reach the server", || client.conn());
        let mut backoff = Backoff::new();
        let mut next_check = Instant::now();
        let stop_key = Keys::new(&cfg.namespace).stop();
        let mut children = Vec::new();
        for _ in 0..self.processes {
            children.push(multiproc_spawn::spawn(worker_process, cfg.clone())?);
        }
        let mut stopping = false;
        loop {
            let mut live = 0;
            for child in children.iter_mut() {
                if !child.wait_timeout(Duration::from_millis(100) / self.processes as u32) {
                    live += 1;
                    continue;
                }
                if !stopping {
                    *child = multiproc_spawn::spawn(worker_process, cfg.clone())?;
                    live += 1;
                }
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

/// The body of a worker process started by [`Worker::run`].
fn worker_process(cfg: WorkerConfig) {
    if let Err(e) = serve(cfg) {
        eprintln!("multiproc-redis worker {}: {e}", std::process::id());
        std::process::exit(3);
    }
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

/// Runs `f` until it succeeds, backing off between attempts (see [`Backoff`]).
fn persist<T>(what: &str, mut f: impl FnMut() -> Result<T>) -> T {
    let mut backoff = Backoff::new();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => backoff.sleep(what, &e),
        }
    }
}

fn serve(cfg: WorkerConfig) -> Result<()> {
    let client = Client::parse(&cfg.url)?;
    let keys = Keys::new(&cfg.namespace);
    let raw = Arc::new(RawQueue::with_death_count(
        &keys.queue_name(&cfg.namespace),
        Duration::from_millis(cfg.heartbeat_ms),
        true,
    ));
    let pool = persist("cannot reach the server", || Pool::new(&client));
    let rx = Receiver::new(raw, pool);
    let mut conn = persist("cannot reach the server", || client.conn());
    let complete = redis::Script::new(COMPLETE);
    let stop_key = keys.stop();
    let mut last_stop_check = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        let got = rx.get_bytes(Some(BLOCK_CHUNK));
        if matches!(got, Err(Error::Empty)) || last_stop_check.elapsed() >= BLOCK_CHUNK {
            last_stop_check = Instant::now();
            // Bounded: a server that stopped answering is retried after a pause, not waited
            // on for a read timeout and a reconnect window.
            let within = Some(Instant::now() + Duration::from_secs(5));
            match conn.run_until(within, |c| {
                redis::cmd("GET").arg(&stop_key).query::<Option<i64>>(c)
            }) {
                Ok(g) if g.unwrap_or(0) != cfg.stop_gen => {
                    // A task taken in the same breath goes back to the queue when `rx` drops.
                    return Ok(());
                }
                Ok(_) => backoff.reset(),
                // A task got in the same breath is still run (and completed below).
                Err(e) if got.is_ok() => {
                    backoff.failed("cannot read the stop key", &e);
                }
                Err(e) => {
                    backoff.sleep("cannot read the stop key", &e);
                    continue;
                }
            }
        }
        let bytes = match got {
            Err(Error::Empty) => continue,
            Err(e) => {
                backoff.sleep("cannot take a task", &e);
                continue;
            }
            Ok(b) => b,
        };
        let Some(Ok(msg)) = bytes.get(1..).map(decode_exact::<TaskMsg>) else {
            if let Err(e) = rx.ack() {
                backoff.failed("cannot drop an undecodable task", &e);
            }
            continue;
        };
        let attempt = u32::from(bytes[0]) + 1;
        // Every event of the task (its own included) is seen inside this span.
        let span = tracing::info_span!(
            "multiproc_redis_task",
            task = %msg.func,
            id = %msg.id,
            attempt,
            worker = %rx.consumer_id().unwrap_or_default(),
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
                        tracing::warn!("this worker does not know the task");
                        Outcome::Unknown(msg.func.clone())
                    }
                }
            }
        });
        let payload = postcard::to_stdvec(&outcome).map_err(|e| Error::Codec(e.to_string()))?;
        let ttl = RESULT_TTL.as_millis() as u64;
        let (result, notify) = (keys.result(&msg.id), keys.notify(&msg.id));
        let (processing, held) = rx.oldest().ok_or(Error::Closed)?;
        // The acknowledgement rides in the completion script: one round trip, and a worker
        // killed after it never runs the task again. The outcome is kept until it is stored:
        // an outage only delays it.
        persist("cannot store a task's outcome", || {
            conn.run(|c| {
                complete
                    .key(&result)
                    .key(&notify)
                    .key(&processing)
                    .arg(&payload)
                    .arg(ttl)
                    .arg(&held)
                    .invoke::<i64>(c)
            })
        });
        rx.acked_elsewhere();
    }
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
