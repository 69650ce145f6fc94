//! [`info`] and [`Executor::info`](crate::Executor::info): what the server holds of one
//! executor namespace, read from the keys the executor and its workers keep anyway (what
//! `rq info` and `celery inspect` show). Nothing here writes to the server.
//!
//! Read, in a few round trips (not one atomic snapshot: a task may move on between two of
//! them): the length of the task list; the set of workers (the task queue's consumers), for
//! each its heartbeat key (its record `"TTL_MS PID HOST"` and the time it has left) and its
//! processing list (the tasks it holds); the stop key; and every outcome key
//! `multiproc:exec:NS:result:ID` still stored (found with `SCAN`), whose failures are listed.
//!
//! Running or prefetched. A worker process runs the tasks it holds one at a time, oldest
//! first, in the order its processing list got them; it takes a batch (see
//! [`Worker::prefetch`](crate::Worker::prefetch)) only once the previous one is finished, and
//! the outcomes of a batch leave the list with the next take, or, behind a task running for
//! 50 ms, with the watchdog's round trip that also gives the tasks prefetched behind it back
//! to the queue. So the oldest task a worker holds is the one it runs, and the others are
//! prefetched: taken, not started. The worker records nothing per task for this (no round
//! trip is added to its path); the picture is exact but for one window: within a batch,
//! after its first task finished and before the next take (or the watchdog's flush, 50 to
//! 75 ms into a long task), the finished task is still the oldest and is shown running in
//! place of the one after it, which is shown prefetched.

use crate::conn::{Client, Conn};
use crate::executor::{Executor, Keys, Outcome, TaskMsg};
use crate::queue::RawQueue;
use multiproc_spawn::decode::decode_exact;
use multiproc_sync::Result;
use serde::{Serialize, Serializer};
use std::fmt::{self, Write as _};
use std::time::Duration;

/// What the server holds of one executor namespace, from [`info`] or
/// [`Executor::info`](crate::Executor::info). `Display` prints it for people (what
/// `myprog worker info` prints), [`to_json`](Info::to_json) as one JSON object (what
/// `--json` prints); it implements `Serialize` with the same field names (durations in
/// milliseconds, as `…_ms`).
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// let info = multiproc::redis::info(&url, "doc-info-nobody")?;
/// assert_eq!((info.waiting, info.workers.len()), (0, 0));
/// assert!(info.to_string().starts_with("namespace doc-info-nobody: 0 waiting"));
/// assert!(info.to_json().starts_with(r#"{"namespace":"doc-info-nobody","waiting":0,"#));
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Info {
    /// The executor namespace.
    pub namespace: String,
    /// Tasks waiting for a worker (the length of the task list).
    pub waiting: usize,
    /// How many times [`Executor::shutdown_workers`](crate::Executor::shutdown_workers) was
    /// called in this namespace, ever (0: never). A worker stops when this differs from what
    /// it was when the worker started.
    pub stop_generation: i64,
    /// The registered workers (one per worker process), live ones first. A worker whose
    /// heartbeat expired (dead, or cut off from the server) stays listed, `alive: false`,
    /// until another worker requeues its tasks (within about a second when one is idle).
    pub workers: Vec<WorkerInfo>,
    /// The tasks workers run now (taken and started, not yet completed), with the worker
    /// running each: the oldest task each worker holds (see the module documentation).
    pub running: Vec<RunningTask>,
    /// The tasks workers took ahead ([`Worker::prefetch`](crate::Worker::prefetch)) and have
    /// not started, oldest first, with the worker holding each: they wait behind its running
    /// task (and go back to the queue if that one runs for 50 ms). Listed under `running`
    /// before this field existed.
    pub prefetched: Vec<RunningTask>,
    /// Tasks that succeeded and whose value no future has read yet.
    pub finished: usize,
    /// Tasks that failed and whose outcome no future has read yet (a future deletes the
    /// outcome when it reads it; an unread one expires 24 h after the task ended).
    pub failed: Vec<FailedTask>,
}

/// One worker process, as its heartbeat key and processing list show it (in [`Info`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's consumer id (random, one per worker process and run).
    pub id: String,
    /// Whether its heartbeat key exists.
    pub alive: bool,
    /// How long ago it last renewed its heartbeat (by the server's clock: the heartbeat's
    /// TTL less the time its key has left); `None` when it is not alive.
    #[serde(rename = "last_heartbeat_ms", serialize_with = "opt_ms")]
    pub last_heartbeat: Option<Duration>,
    /// Its heartbeat period (the TTL it sets; renewed every third of it).
    #[serde(rename = "heartbeat_ms", serialize_with = "opt_ms")]
    pub heartbeat: Option<Duration>,
    /// Its process id, when alive (recorded in its heartbeat key).
    pub pid: Option<u32>,
    /// Its host name, when alive (recorded in its heartbeat key).
    pub host: Option<String>,
    /// How many tasks it runs now: 1 while it holds any (see [`Info::running`]), else 0.
    pub running: usize,
    /// How many tasks it took ahead and has not started (see [`Info::prefetched`]); it holds
    /// `running + prefetched` tasks.
    pub prefetched: usize,
}

/// A task a worker has taken and not completed yet, running or prefetched (in [`Info`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RunningTask {
    /// The task's id ([`Future::id`](crate::Future::id)).
    pub id: String,
    /// The task function's name (its module path and name).
    pub task: String,
    /// Which start this is: 1, or more after workers died holding it.
    pub attempt: u32,
    /// The starts allowed ([`ExecutorBuilder::max_attempts`](crate::ExecutorBuilder::max_attempts)).
    pub max_attempts: u32,
    /// The id of the worker holding it (see [`WorkerInfo::id`]).
    pub worker: String,
}

/// A failed task whose outcome is still stored (in [`Info`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FailedTask {
    /// The task's id ([`Future::id`](crate::Future::id)).
    pub id: String,
    /// How it failed: `"panicked"`, `"worker_died"` (every attempt's worker died),
    /// `"unknown_task"` (the worker does not know the function) or `"codec"` (the argument or
    /// the value did not encode).
    pub kind: &'static str,
    /// The error text: the panic message, the function's name, the codec error.
    pub error: String,
    /// How long until the outcome expires, unread.
    #[serde(rename = "expires_in_ms", serialize_with = "opt_ms")]
    pub expires_in: Option<Duration>,
}

fn opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

/// What the server at `url` holds of the executor namespace `namespace`: tasks waiting,
/// workers with their heartbeats, pids and hosts, the tasks they run, and failed outcomes not
/// yet read (see [`Info`]). Read only; the command line's `worker info` prints it.
///
/// ```
/// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
/// use multiproc::redis::{Executor, Worker};
/// fn slow(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
/// multiproc::redis::task!(slow);
///
/// let ns = format!("doc-info-fn-{}", std::process::id());
/// let w = { let (u, n) = (url.clone(), ns.clone());
///           std::thread::spawn(move || Worker::new(&u).namespace(&n).run_in_this_process()) };
/// let pool = Executor::builder(&url).namespace(&ns).build()?;
/// let f = pool.submit(slow, 300)?;
/// // Seen running on the worker (within a few seconds).
/// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
/// let info = loop {
///     let info = multiproc::redis::info(&url, &ns)?;
///     if !info.running.is_empty() || std::time::Instant::now() > deadline { break info; }
///     std::thread::sleep(std::time::Duration::from_millis(10));
/// };
/// assert_eq!(info.running[0].id, f.id());
/// assert_eq!(info.workers[0].pid, Some(std::process::id()));
/// assert_eq!(f.result()?, 300);
/// # pool.shutdown_workers()?; w.join().unwrap()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn info(url: &str, namespace: &str) -> Result<Info> {
    let client = Client::open(url)?;
    gather(&mut client.conn()?, namespace)
}

impl Executor {
    /// What the server holds of this executor's namespace now: tasks waiting, workers and
    /// their heartbeats, tasks running and on which worker, failed outcomes not yet read
    /// (see [`Info`] and the crate's "Inspecting a running system"); the same
    /// as [`info`] with this executor's server and namespace.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let ns = format!("doc-info-{}", std::process::id());
    /// let pool = multiproc::redis::Executor::builder(&url).namespace(&ns).build()?;
    /// let info = pool.info()?;
    /// assert_eq!(info.namespace, ns);
    /// assert_eq!(info.waiting, 0);
    /// assert!(info.workers.is_empty() && info.running.is_empty() && info.failed.is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn info(&self) -> Result<Info> {
        self.with_conn(gather)
    }
}

/// `MATCH` pattern characters escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Reads [`Info`] for `namespace` on `conn`.
pub(crate) fn gather(conn: &mut Conn, namespace: &str) -> Result<Info> {
    let keys = Keys::new(namespace);
    // The heartbeat does not matter here: only key names are used.
    let raw = RawQueue::new(&keys.queue_name(namespace), Duration::ZERO);
    let stop = keys.stop();
    let (waiting, mut ids, stop_gen): (usize, Vec<String>, Option<i64>) = conn.run(|c| {
        redis::pipe()
            .cmd("LLEN")
            .arg(raw.items())
            .cmd("SMEMBERS")
            .arg(raw.consumers())
            .cmd("GET")
            .arg(&stop)
            .query(c)
    })?;
    ids.sort();
    let mut workers = Vec::new();
    let mut running = Vec::new();
    let mut prefetched = Vec::new();
    for id in ids {
        let (alive_key, processing) = (raw.alive(&id), raw.processing(&id));
        let (record, pttl, held): (Option<String>, i64, Vec<Vec<u8>>) = conn.run(|c| {
            redis::pipe()
                .cmd("GET")
                .arg(&alive_key)
                .cmd("PTTL")
                .arg(&alive_key)
                .cmd("LRANGE")
                .arg(&processing)
                .arg(0)
                .arg(-1)
                .query(c)
        })?;
        // "TTL_MS PID HOST"; an older worker wrote "1" (no record).
        let mut parts = record.as_deref().unwrap_or("").splitn(3, ' ');
        let ttl: Option<u64> = parts.next().and_then(|t| t.parse().ok());
        let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let host = parts.next().map(str::to_string);
        let alive = record.is_some();
        let ttl = ttl.filter(|_| pid.is_some());
        let last_heartbeat = match (alive, ttl) {
            (true, Some(t)) if pttl >= 0 => Some(Duration::from_millis(
                t.saturating_sub(u64::try_from(pttl).unwrap_or(0)),
            )),
            _ => None,
        };
        // Oldest first (a worker pushes on the left): it runs the oldest, the others wait.
        for (i, bytes) in held.iter().rev().enumerate() {
            let Some(Ok(msg)) = bytes.get(1..).map(decode_exact::<TaskMsg>) else {
                continue;
            };
            let list = if i == 0 {
                &mut running
            } else {
                &mut prefetched
            };
            list.push(RunningTask {
                id: msg.id,
                task: msg.func,
                attempt: u32::from(bytes[0]) + 1,
                max_attempts: msg.max_attempts,
                worker: id.clone(),
            });
        }
        workers.push(WorkerInfo {
            id,
            alive,
            last_heartbeat,
            heartbeat: ttl.map(Duration::from_millis),
            pid,
            host,
            running: held.len().min(1),
            prefetched: held.len().saturating_sub(1),
        });
    }
    workers.sort_by(|a, b| (!a.alive, &a.host, a.pid).cmp(&(!b.alive, &b.host, b.pid)));

    let result_prefix = keys.result("");
    let pattern = format!("{}*", glob_escape(&result_prefix));
    let mut result_keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = conn.run(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(c)
        })?;
        result_keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    result_keys.sort();
    result_keys.dedup();
    let mut finished = 0;
    let mut failed = Vec::new();
    for key in result_keys {
        let (bytes, pttl): (Option<Vec<u8>>, i64) = conn.run(|c| {
            redis::pipe()
                .cmd("GET")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query(c)
        })?;
        let Some(Ok(outcome)) = bytes.as_deref().map(decode_exact::<Outcome>) else {
            continue; // read by its future meanwhile, or not an outcome
        };
        let (kind, error) = match outcome {
            Outcome::Value(_) => {
                finished += 1;
                continue;
            }
            Outcome::Panicked(m) => ("panicked", m),
            Outcome::Died => (
                "worker_died",
                "every attempt's worker died (max_attempts reached)".to_string(),
            ),
            Outcome::Unknown(name) => ("unknown_task", name),
            Outcome::Codec(m) => ("codec", m),
        };
        failed.push(FailedTask {
            id: key[result_prefix.len()..].to_string(),
            kind,
            error,
            expires_in: u64::try_from(pttl).ok().map(Duration::from_millis),
        });
    }
    Ok(Info {
        namespace: namespace.to_string(),
        waiting,
        stop_generation: stop_gen.unwrap_or(0),
        workers,
        running,
        prefetched,
        finished,
        failed,
    })
}

/// A JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt_ms(out: &mut String, d: Option<Duration>) {
    match d {
        Some(d) => {
            let _ = write!(out, "{}", d.as_millis());
        }
        None => out.push_str("null"),
    }
}

/// A JSON array of tasks held by workers.
fn json_tasks(o: &mut String, tasks: &[RunningTask]) {
    o.push('[');
    for (i, t) in tasks.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str("{\"id\":");
        json_str(o, &t.id);
        o.push_str(",\"task\":");
        json_str(o, &t.task);
        let _ = write!(
            o,
            ",\"attempt\":{},\"max_attempts\":{},\"worker\":",
            t.attempt, t.max_attempts
        );
        json_str(o, &t.worker);
        o.push('}');
    }
    o.push(']');
}

impl Info {
    /// One JSON object on one line, with the field names of the structs (durations as
    /// `…_ms` integers, absent values as `null`): what `worker info --json` prints.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let json = multiproc::redis::info(&url, "doc-info-json")?.to_json();
    /// assert_eq!(json, r#"{"namespace":"doc-info-json","waiting":0,"stop_generation":0,"workers":[],"running":[],"prefetched":[],"finished":0,"failed":[]}"#);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        o.push_str("{\"namespace\":");
        json_str(&mut o, &self.namespace);
        let _ = write!(
            o,
            ",\"waiting\":{},\"stop_generation\":{},\"workers\":[",
            self.waiting, self.stop_generation
        );
        for (i, w) in self.workers.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"id\":");
            json_str(&mut o, &w.id);
            let _ = write!(o, ",\"alive\":{},\"last_heartbeat_ms\":", w.alive);
            json_opt_ms(&mut o, w.last_heartbeat);
            o.push_str(",\"heartbeat_ms\":");
            json_opt_ms(&mut o, w.heartbeat);
            o.push_str(",\"pid\":");
            match w.pid {
                Some(p) => {
                    let _ = write!(o, "{p}");
                }
                None => o.push_str("null"),
            }
            o.push_str(",\"host\":");
            match &w.host {
                Some(h) => json_str(&mut o, h),
                None => o.push_str("null"),
            }
            let _ = write!(
                o,
                ",\"running\":{},\"prefetched\":{}}}",
                w.running, w.prefetched
            );
        }
        o.push_str("],\"running\":");
        json_tasks(&mut o, &self.running);
        o.push_str(",\"prefetched\":");
        json_tasks(&mut o, &self.prefetched);
        let _ = write!(o, ",\"finished\":{},\"failed\":[", self.finished);
        for (i, f) in self.failed.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"id\":");
            json_str(&mut o, &f.id);
            o.push_str(",\"kind\":");
            json_str(&mut o, f.kind);
            o.push_str(",\"error\":");
            json_str(&mut o, &f.error);
            o.push_str(",\"expires_in_ms\":");
            json_opt_ms(&mut o, f.expires_in);
            o.push('}');
        }
        o.push_str("]}");
        o
    }
}

/// Seconds with one decimal, or `-`.
fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.1}s", d.as_secs_f64()))
}

/// For people, a few aligned lines like `rq info`: a summary line, then the workers, the
/// running tasks, the prefetched ones and the failed tasks, one a line (the prefetched count
/// and list only when there are any).
impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alive = self.workers.iter().filter(|w| w.alive).count();
        writeln!(
            f,
            "namespace {}: {} waiting, {} running, {}{} finished unread, {} failed; workers: {} alive, {} dead{}",
            self.namespace,
            self.waiting,
            self.running.len(),
            if self.prefetched.is_empty() {
                String::new()
            } else {
                format!("{} prefetched, ", self.prefetched.len())
            },
            self.finished,
            self.failed.len(),
            alive,
            self.workers.len() - alive,
            if self.stop_generation > 0 {
                format!("; stop generation {}", self.stop_generation)
            } else {
                String::new()
            },
        )?;
        if !self.workers.is_empty() {
            writeln!(f, "workers:")?;
            let host_w = self
                .workers
                .iter()
                .map(|w| w.host.as_deref().unwrap_or("-").len())
                .max()
                .unwrap_or(0);
            for w in &self.workers {
                writeln!(
                    f,
                    "  {}  {:<5}  {:<host_w$}  pid {:<7}  heartbeat {:>6} ago  running {}{}",
                    w.id,
                    if w.alive { "alive" } else { "dead" },
                    w.host.as_deref().unwrap_or("-"),
                    w.pid.map_or_else(|| "-".into(), |p| p.to_string()),
                    secs(w.last_heartbeat),
                    w.running,
                    if w.prefetched > 0 {
                        format!("  prefetched {}", w.prefetched)
                    } else {
                        String::new()
                    },
                )?;
            }
        }
        for (title, tasks) in [
            ("running:", &self.running),
            ("prefetched (taken, not started):", &self.prefetched),
        ] {
            if tasks.is_empty() {
                continue;
            }
            writeln!(f, "{title}")?;
            let task_w = tasks.iter().map(|t| t.task.len()).max().unwrap_or(0);
            for t in tasks {
                writeln!(
                    f,
                    "  {}  {:<task_w$}  attempt {}/{}  on {}",
                    t.id, t.task, t.attempt, t.max_attempts, t.worker
                )?;
            }
        }
        if !self.failed.is_empty() {
            writeln!(f, "failed (outcome not read yet):")?;
            let kind_w = self.failed.iter().map(|t| t.kind.len()).max().unwrap_or(0);
            for t in &self.failed {
                writeln!(f, "  {}  {:<kind_w$}  {:?}", t.id, t.kind, t.error)?;
            }
        }
        Ok(())
    }
}
