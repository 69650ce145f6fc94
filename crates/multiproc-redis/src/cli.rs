//! [`worker_cli`]: the command line of a user's program started as a worker
//! (`myprog worker --url …`), and of `myprog worker info` (see [`info`]).

use crate::executor::Worker;
use crate::info::info;
use multiproc_sync::{Error, Result};
use std::time::Duration;

/// What [`worker_cli`] prints for `--help` or `-h`.
///
/// ```
/// assert!(multiproc::redis::WORKER_USAGE.contains("--url"));
/// ```
pub const WORKER_USAGE: &str = "\
usage: worker [--url URL] [--processes N] [--namespace NS] [--heartbeat-ms MS]
       worker info [--url URL] [--namespace NS] [--json]

Runs tasks submitted to a multiproc Redis executor until the executor shuts its workers down.
`worker info` prints what the server holds of the namespace instead (tasks waiting, workers
and their heartbeats, tasks running and where, failed tasks not yet read) and exits.

options:
  --url URL          the Redis server, redis://[:password@]host:6379/0
                     (default: the MULTIPROC_REDIS_URL environment variable)
  --processes N      worker processes (default: one per CPU)
  --namespace NS     the executor's namespace (default: \"default\")
  --heartbeat-ms MS  how often the worker reports that it is alive, in milliseconds
  --json             (info) print one JSON object instead of lines for people
  -h, --help         print this help and exit
";

/// The entry point of a worker command line: parses `--url URL` (or the `MULTIPROC_REDIS_URL`
/// environment variable), `--processes N`, `--namespace NS` and `--heartbeat-ms MS` from
/// `args` and runs a [`Worker`]; `--help` or `-h` anywhere prints [`WORKER_USAGE`] to
/// standard output and answers `Ok(())` without running anything. With `info` first
/// (`info [--url URL] [--namespace NS] [--json]`) it runs no worker: it prints
/// [`info`](crate::info()) of the namespace to standard output (lines for people, or with
/// `--json` one JSON object, [`Info::to_json`](crate::Info::to_json)) and returns. Call it
/// from your program's `main` when it is started as a worker:
///
/// ```no_run
/// fn main() -> multiproc::Result<()> {
///     let args: Vec<String> = std::env::args().skip(1).collect();
///     if args.first().map(String::as_str) == Some("worker") {
///         return multiproc::redis::worker_cli(&args[1..]);
///     }
///     // … the submitting side …
///     Ok(())
/// }
/// ```
pub fn worker_cli(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{WORKER_USAGE}");
        return Ok(());
    }
    // In a setuid/setcap program the environment is the caller's: only `--url` counts there.
    let mut url = if multiproc_spawn::secure_exec() {
        None
    } else {
        std::env::var(crate::URL_ENV).ok()
    };
    let (show_info, args) = match args.split_first() {
        Some((first, rest)) if first == "info" => (true, rest),
        _ => (false, args),
    };
    let mut json = false;
    let mut w = Worker::new("");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("{name} needs a value")))
        };
        match a.as_str() {
            "--url" => url = Some(value("--url")?),
            "--processes" if !show_info => {
                let n = value("--processes")?;
                w = w.processes(
                    n.parse()
                        .map_err(|_| Error::Invalid(format!("--processes {n:?}: not a number")))?,
                );
            }
            "--namespace" => w = w.namespace(&value("--namespace")?),
            "--json" if show_info => json = true,
            "--processes" | "--heartbeat-ms" if show_info => {
                return Err(Error::Invalid(format!(
                    "{a} is not an option of `worker info` (--help lists them)"
                )));
            }
            "--heartbeat-ms" => {
                let n = value("--heartbeat-ms")?;
                let ms: u64 = n
                    .parse()
                    .map_err(|_| Error::Invalid(format!("--heartbeat-ms {n:?}: not a number")))?;
                w = w.heartbeat(Duration::from_millis(ms));
            }
            other => {
                return Err(Error::Invalid(format!(
                    "unknown worker option {other:?} (--help lists them)"
                )));
            }
        }
    }
    w.url = url.ok_or_else(|| {
        Error::Invalid(
            "no server: pass --url redis://host:6379/0 or set MULTIPROC_REDIS_URL".into(),
        )
    })?;
    if show_info {
        let info = info(&w.url, &w.namespace)?;
        if json {
            println!("{}", info.to_json());
        } else {
            print!("{info}");
        }
        return Ok(());
    }
    w.run()
}
