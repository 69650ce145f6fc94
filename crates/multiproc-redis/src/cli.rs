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
usage: worker [--url URL] [--processes N] [--prefetch N] [--namespace NS] [--heartbeat-ms MS]
       worker info [--url URL] [--namespace NS] [--json]

Runs tasks submitted to a multiproc Redis executor until the executor shuts its workers down.
`worker info` prints what the server holds of the namespace instead (tasks waiting, workers
and their heartbeats, tasks running and where, failed tasks not yet read) and exits.

options:
  --url URL          the Redis server, redis://[:password@]host:6379/0
                     (default: the MULTIPROC_REDIS_URL environment variable)
  --processes N      worker processes (default: one per CPU)
  --prefetch N       the most tasks a worker process takes from the server at once, a
                     positive integer (default 16; 1 turns prefetching off)
  --namespace NS     the executor's namespace (default: \"default\")
  --heartbeat-ms MS  how often the worker reports that it is alive, in milliseconds
  --json             (info) print one JSON object instead of lines for people
  -h, --help         print this help and exit
";

/// The entry point of a worker command line: parses `--url URL` (or the `MULTIPROC_REDIS_URL`
/// environment variable), `--processes N`, `--prefetch N` ([`Worker::prefetch`], a positive
/// integer), `--namespace NS` and `--heartbeat-ms MS` from `args` and runs a [`Worker`]; a
/// value that does not parse is `Err(Invalid)` saying which option and why; `--help` or `-h` anywhere prints [`WORKER_USAGE`] to
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
    let url = if multiproc_spawn::secure_exec() {
        None
    } else {
        std::env::var(crate::URL_ENV).ok()
    };
    let Parsed {
        show_info,
        json,
        worker: w,
    } = parse(args, url)?;
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

/// A worker command line, parsed.
#[derive(Debug)]
struct Parsed {
    /// `worker info`.
    show_info: bool,
    /// `--json` (of `worker info`).
    json: bool,
    /// The worker to run, its URL set.
    worker: Worker,
}

/// `--prefetch`'s value: a positive integer.
fn positive(name: &str, value: &str) -> Result<usize> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Invalid(format!(
            "{name} {value:?}: not a positive integer"
        ))),
    }
}

/// Parses the options of [`worker_cli`] (`--help` aside); `url` is the environment's.
fn parse(args: &[String], mut url: Option<String>) -> Result<Parsed> {
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
            "--prefetch" if !show_info => {
                w = w.prefetch(positive("--prefetch", &value("--prefetch")?)?);
            }
            "--namespace" => w = w.namespace(&value("--namespace")?),
            "--json" if show_info => json = true,
            "--processes" | "--prefetch" | "--heartbeat-ms" if show_info => {
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
    Ok(Parsed {
        show_info,
        json,
        worker: w,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Parsed> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, Some("redis://127.0.0.1/".into()))
    }

    #[test]
    fn prefetch_takes_a_positive_integer() {
        let w = parsed(&["--prefetch", "4"]).unwrap().worker;
        assert_eq!(w.prefetch_setting(), 4);
        assert_eq!(parsed(&[]).unwrap().worker.prefetch_setting(), 16);
        assert_eq!(
            parsed(&["--prefetch", "1", "--processes", "2"])
                .unwrap()
                .worker
                .prefetch_setting(),
            1
        );
        for bad in ["0", "-3", "x", "", "4.5", "99999999999999999999999"] {
            match parsed(&["--prefetch", bad]) {
                Err(Error::Invalid(m)) => {
                    assert!(
                        m.contains("--prefetch") && m.contains("positive"),
                        "{bad}: {m}"
                    );
                }
                other => panic!("--prefetch {bad:?}: {other:?}"),
            }
        }
        match parsed(&["--prefetch"]) {
            Err(Error::Invalid(m)) => assert!(m.contains("--prefetch needs a value"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Not an option of `worker info`.
        assert!(matches!(
            parsed(&["info", "--prefetch", "4"]),
            Err(Error::Invalid(_))
        ));
    }
}
