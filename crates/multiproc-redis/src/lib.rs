//! multiproc beyond one machine, on Redis: a [`Queue`], a [`Lock`] and an [`Executor`] whose
//! [`Worker`]s run on any machine that reaches the server.
//!
//! Re-exported by the facade as `multiproc::redis` (cargo feature `redis`). Where work leaves
//! one machine it goes through an existing engine, a Redis server (the `redis` crate, sync
//! API), never a home-made network protocol; the shared-memory types of `multiproc` stay the
//! way to talk within one machine.
//!
//! | Python | multiproc::redis |
//! |---|---|
//! | `BaseManager` queue over the network, RQ/Celery broker queue | [`Queue`] (`put`, `get`, `get_timeout`, `qsize`, `empty`, `task_done`, `clear`, `delete`; [`QueueBuilder::expire_after`]) |
//! | a Redis lock (`redis.lock.Lock`) | [`Lock`] (lease, `extend`, token-checked `release`) |
//! | `ProcessPoolExecutor` / Celery `delay` / RQ `enqueue` | [`Executor::submit`], [`Executor::map`], [`Future::result`] |
//! | `celery worker`, `rq worker` | [`worker_cli`], [`worker_main`], [`Worker::run`] |
//! | `rq info`, `celery inspect active` | [`info`], [`Executor::info`], `myprog worker info [--json]` |
//!
//! # Delivery guarantees
//!
//! At least once. An item (or task) someone took stays in that consumer's processing list
//! until it is acknowledged ([`Queue::task_done`] acknowledges before it returns; a worker
//! acknowledges a task in the same script that stores its outcome); a consumer that dies stops renewing its heartbeat key, and its
//! items go back to the queue. So an item may be delivered twice (its consumer was declared
//! dead but had finished, or a reply was lost to a reconnect): tasks should be idempotent. A
//! [`Future`] still completes once: the first outcome written wins.
//!
//! Queues live in the server, not in a program: they outlive every handle and every run.
//! [`Queue::clear`] and [`Queue::delete`] remove an earlier run's items; a queue built with
//! [`QueueBuilder::expire_after`] disappears once no handle has touched it for that long.
//!
//! Every type is `Sync`: a thread waiting in a blocking call (`get`, `acquire`,
//! `Future::result`) holds a connection of its own, never one that another thread's call needs.
//!
//! A broken connection is re-opened and the command sent again for the client's
//! [reconnect window](Client::reconnect_timeout).
//!
//! # URLs, TLS and ACL users
//!
//! Every type takes the server as a URL (see [`Client`]); a worker started with
//! `--url` gets everything from it, so the URL carries the credentials and the TLS files:
//!
//! | URL | meaning |
//! |---|---|
//! | `redis://10.0.0.5:6379/0` | plain TCP, no password (one private network only) |
//! | `redis://worker:PASSWORD@10.0.0.5:6379/0` | `AUTH worker PASSWORD` (an ACL user) on every connection and reconnection |
//! | `rediss://worker:PASSWORD@redis.internal:6379/0?cacert=/etc/ca.pem` | TLS, the server's certificate checked against `ca.pem` and the host name |
//! | `rediss://…?cacert=ca.pem&cert=client.pem&key=client.key` | TLS with a client certificate (`tls-auth-clients yes`) |
//! | `rediss://redis.example.com/0` | TLS against the system's certificate authorities |
//! | `unix:///run/redis.sock?db=0` | a Unix socket |
//!
//! The `redis` crate takes TLS files as bytes through `Client::build_with_tls`; this crate
//! reads them from the URL's `cacert`, `cert` and `key` (PEM files, read once when the URL is
//! parsed) and hands them to both paths: its own polling socket, wrapped in rustls, and the
//! `redis` crate's connections ([`Client::raw_connection`]), through the crate's `tls-rustls`.
//! `#insecure` (no certificate check) is refused. A refused password, a certificate that does
//! not verify, plaintext `redis://` on a TLS port (the error says so) or a missing file fails
//! at once with `Err(Redis)` naming the server, never retried for the reconnect window; a
//! command outside the user's ACL answers `NOPERM` at once. A [`Worker`] stops on these
//! too, where it waits out an outage. The README's "Securing the server" gives the ACL line the workers need, which
//! `tests/secure.rs` runs an executor, its workers, a queue and a lock through.
//!
//! ```
//! // TLS settings without TLS are a mistake, caught before connecting.
//! let e = multiproc::redis::Client::open("redis://127.0.0.1/0?cacert=/etc/ca.pem").unwrap_err();
//! assert!(e.to_string().contains("rediss://"));
//! ```
//!
//! # Network cuts
//!
//! - **Deadlines hold.** A call with a timeout ([`Future::result_timeout`],
//!   [`Queue::get_timeout`], [`Lock::acquire_timeout`]) returns by its deadline (give or take
//!   a quarter of a second) even while the server is out of reach: every read waits at most
//!   the time left, and the reconnect window ends at the deadline. It answers as on any
//!   timeout: `Err(Timeout)`, `Err(Empty)`, `Ok(false)`. When the reconnect window ends
//!   before the deadline (or there is no deadline), the answer is still `Err(Redis)` naming
//!   the server.
//! - **A result is never lost to a cut.** A task's outcome stays in a key until its future
//!   has read it; the future is woken through a separate notification list and reads the
//!   outcome without taking it, so a reply lost with its connection is read again after the
//!   reconnect. A future answers once: asked again after it answered, it says
//!   `Err(Invalid)`.
//! - **Workers wait for the server.** [`Worker::run`], [`Worker::run_in_this_process`],
//!   [`worker_main`] and [`worker_cli`] never give up on an unreachable server: every
//!   failure is logged through `tracing` (at `warn`) and retried after a pause from 1 s
//!   doubling up to 30 s, reset by a success. A worker started while the server is down
//!   waits for it. A task whose outcome cannot be stored is kept, and stored once the server
//!   answers. What no wait mends fails at once with the `Err(Redis)` that [`Client::open`]
//!   gives: a URL that does not parse, and the server refusing the worker's configuration (a
//!   wrong password or unknown user, `NOPERM`, a certificate that does not verify, plaintext
//!   on a TLS port; see [`Worker::run`]).
//! - **A cut longer than the heartbeat counts as a death.** A worker whose heartbeat key
//!   expired (dead, or cut off: the server cannot tell) has its tasks requeued, each such
//!   requeue counting towards [`ExecutorBuilder::max_attempts`]; when the cut-off worker
//!   finishes anyway, its outcome is discarded (it no longer holds the task), and it goes on
//!   serving once it reaches the server again.
//!
//! These are checked across real network boundaries by `tests/cluster.rs`: a Redis host, two
//! worker hosts and a client host, each a Linux network namespace on a bridge (root only;
//! reported skipped by name elsewhere), with hosts cut off by taking their link down, 5 ms of
//! latency each way through a delaying relay, and a durable server killed and restarted.
//!
//! # Inspecting a running system
//!
//! [`info`]`(url, namespace)` (or [`Executor::info`]) reads what the server holds of an
//! executor namespace and answers an [`Info`]: the tasks waiting; the workers (one per worker
//! process) with how long ago each renewed its heartbeat, its heartbeat period, its process id
//! and host; the tasks running, each with its attempt and the worker holding it; the tasks
//! prefetched (taken ahead by a worker, see [`Worker::prefetch`], not started: a worker runs
//! the oldest task it holds, the others wait behind it); and the
//! failed tasks whose outcome no future has read yet, with their error text (a future deletes
//! the outcome it reads, so a failure shows until its future asks for it, or for 24 h). It
//! only reads, from the keys the executor and workers keep anyway: each worker's heartbeat
//! key holds its record `"TTL_MS PID HOST"` (the heartbeat's age is that TTL less the time
//! the key has left, by the server's clock alone), its processing list holds its tasks, and
//! the outcomes are found with `SCAN`. It takes a few round trips, not one atomic snapshot.
//!
//! The same from a shell, with the program that runs the workers ([`worker_cli`]):
//!
//! ```text
//! $ myprog worker info --url redis://10.0.0.5:6379/0 --namespace video
//! namespace video: 2 waiting, 1 running, 0 finished unread, 1 failed; workers: 1 alive, 0 dead
//! workers:
//!   2b9e9dfee0b2132f2465232edc51e871  alive  node7  pid 11189    heartbeat   0.4s ago  running 1
//! running:
//!   ef91e870697f28a1f2e22944b8e87ef8  myprog::encode  attempt 1/3  on 2b9e9dfee0b2132f2465232edc51e871
//! failed (outcome not read yet):
//!   9c095dd5ad923ce9c875010ee428020e  panicked  "no luck"
//! $ myprog worker info --url redis://10.0.0.5:6379/0 --namespace video --json
//! {"namespace":"video","waiting":2,"stop_generation":0,"workers":[{"id":"2b9e…","alive":true,"last_heartbeat_ms":412,"heartbeat_ms":5000,"pid":11189,"host":"node7","running":1,"prefetched":0}],"running":[…],"prefetched":[],"finished":0,"failed":[{"id":"9c09…","kind":"panicked","error":"no luck","expires_in_ms":86399974}]}
//! ```
//!
//! A worker holding tasks it prefetched shows them apart (the count in the summary, the
//! worker's line and the list only when there are any):
//!
//! ```text
//! namespace video: 0 waiting, 1 running, 3 prefetched, 0 finished unread, 0 failed; workers: 1 alive, 0 dead
//! workers:
//!   2b9e9dfee0b2132f2465232edc51e871  alive  node7  pid 11189    heartbeat   0.4s ago  running 1  prefetched 3
//! running:
//!   ef91e870697f28a1f2e22944b8e87ef8  myprog::encode  attempt 1/3  on 2b9e9dfee0b2132f2465232edc51e871
//! prefetched (taken, not started):
//!   5d0c4a7e1f3b9a8c2e6d1f0a9b8c7d6e  myprog::encode  attempt 1/3  on 2b9e9dfee0b2132f2465232edc51e871
//!   …
//! ```
//!
//! Each task a worker runs is inside a `tracing` span named `multiproc_redis_task` with the
//! fields `task` (the function's name), `id` (its [`Future::id`]), `attempt` and `worker`
//! (the [`WorkerInfo::id`] that `info` shows): a subscriber sees the task's own events, and
//! the worker's, within it.
//!
//! ```
//! # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
//! let info = multiproc::redis::info(&url, &format!("doc-inspect-{}", std::process::id()))?;
//! for w in &info.workers {
//!     println!("{} on {:?} pid {:?}: beat {:?} ago", w.id, w.host, w.pid, w.last_heartbeat);
//! }
//! for f in &info.failed {
//!     println!("task {} {}: {}", f.id, f.kind, f.error);
//! }
//! # Ok::<(), multiproc::Error>(())
//! ```
//!
//! # Keys left in the server
//!
//! A task leaves nothing behind once its future has read the outcome: the outcome key and
//! its notification list are deleted then. An outcome no future reads (the future was
//! dropped, or the task ran twice and its second outcome came after the first was read)
//! expires after 24 h. An executor namespace otherwise holds its stop key
//! (`multiproc:exec:NS:stop`, once [`Executor::shutdown_workers`] was called) and the task
//! queue's keys (a list, a set of workers, and per live worker a processing list and a
//! heartbeat key, whose value is the worker's record `"TTL_MS PID HOST"`). What survives a server restart is what the
//! server persisted: with `--appendonly yes --appendfsync always` everything it acknowledged;
//! with no persistence (the test suite's server) nothing: every queue, lock and pending task
//! is gone after a restart, and clients carry on with an empty server.
//!
//! ```
//! # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
//! use multiproc::redis::Queue;
//! let q: Queue<(u32, String)> = Queue::open(&url, &format!("crate-doc-{}", std::process::id()))?;
//! q.put((1, "one".into()))?;
//! let (n, s) = q.get()?;
//! q.task_done()?;
//! assert_eq!((n, s.as_str()), (1, "one"));
//! # Ok::<(), multiproc::Error>(())
//! ```
#![deny(missing_docs)]

mod cli;
mod conn;
mod executor;
mod info;
mod lock;
mod queue;
mod server;
mod socket;

pub use cli::{WORKER_USAGE, worker_cli};
pub use conn::Client;
#[doc(hidden)]
pub use executor::{__invoke, Outcome, TaskFn};
pub use executor::{Executor, ExecutorBuilder, Future, Worker, worker_main};
pub use info::{FailedTask, Info, RunningTask, WorkerInfo, info};
#[doc(hidden)]
pub use inventory as __inventory;
pub use lock::Lock;
pub use queue::{Queue, QueueBuilder};
pub use server::{LocalServer, LocalServerBuilder};

/// The `redis` crate itself, for commands this crate does not wrap (`WATCH`/`MULTI`/`EXEC`,
/// your own scripts); get a connection with [`Client::raw_connection`].
pub use redis as raw;

/// The environment variable naming the server that the test suite, the examples and the
/// benchmarks use (`cargo xtask test` sets it).
pub const URL_ENV: &str = "MULTIPROC_REDIS_URL";

/// Test hook: the next reply to a `BLPOP` (alone or in a pipeline) that popped something is
/// read and then thrown away, and its connection closed, as when a network cut kills the
/// connection after the server ran the command. For the fault tests only.
///
/// ```
/// let lost = multiproc_redis::__blpop_replies_lost();
/// multiproc_redis::__lose_next_blpop_reply(); // armed until a BLPOP pops something
/// assert_eq!(multiproc_redis::__blpop_replies_lost(), lost);
/// ```
#[doc(hidden)]
pub fn __lose_next_blpop_reply() {
    socket::LOSE_BLPOP_REPLY.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Test hook: how many replies [`__lose_next_blpop_reply`] made this process lose.
///
/// ```
/// assert_eq!(multiproc_redis::__blpop_replies_lost(), 0);
/// ```
#[doc(hidden)]
pub fn __blpop_replies_lost() -> usize {
    socket::BLPOP_REPLIES_LOST.load(std::sync::atomic::Ordering::SeqCst)
}

/// Test hook: while on, the workers running in this process
/// ([`Worker::run_in_this_process`]) keep the tasks they prefetched behind a long task instead
/// of giving them back after 50 ms, so that a test sees them prefetched. For the tests only.
///
/// ```
/// multiproc_redis::__keep_prefetched(true);
/// multiproc_redis::__keep_prefetched(false);
/// ```
#[doc(hidden)]
pub fn __keep_prefetched(on: bool) {
    executor::KEEP_PREFETCHED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// For the documentation's examples: the server of [`URL_ENV`], or else a [`LocalServer`]
/// started for this process. `None` (the example is skipped, and the skip is logged where
/// `cargo xtask test` counts skips) when neither is there, unless the `CI` variable is set:
/// then it panics, so CI never skips them silently.
#[doc(hidden)]
pub fn doc_url() -> Option<String> {
    match test_server_url() {
        Ok(url) => Some(url),
        Err(e) if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") => {
            panic!("CI is set and no Redis server could be started: {e}")
        }
        Err(e) => {
            let line = format!("SKIPPED a multiproc-redis doc example: no Redis server ({e})");
            eprintln!("{line}");
            // Counted by `cargo xtask test` (see multiproc-testkit's `SKIP_LOG_ENV`).
            if let Some(log) = std::env::var_os("MULTIPROC_SKIP_LOG") {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                {
                    let _ = f.write_all(format!("{line}\n").as_bytes());
                }
            }
            None
        }
    }
}

/// For tests: the server of [`URL_ENV`], or else a [`LocalServer`] started once for this
/// process (it lives as long as the process); the error says why neither is there.
#[doc(hidden)]
pub fn test_server_url() -> std::result::Result<String, String> {
    use std::sync::OnceLock;
    static SERVER: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    if let Ok(url) = std::env::var(URL_ENV)
        && !multiproc_spawn::secure_exec()
    {
        return Ok(url);
    }
    SERVER
        .get_or_init(|| match LocalServer::start() {
            Ok(s) => {
                let url = s.url().to_string();
                // Lives as long as the process; its guard stops it when the process exits.
                std::mem::forget(s);
                Ok(url)
            }
            Err(e) => Err(e.to_string()),
        })
        .clone()
}
