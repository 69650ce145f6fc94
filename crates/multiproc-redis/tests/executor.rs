//! `multiproc::redis::Executor` with workers in other processes: submit, map, panics, a worker
//! killed mid-task (the task runs again elsewhere), max attempts, and one completion per task.

mod common;

use multiproc::Error;
use multiproc::redis::{Client, Executor, Worker};
use std::time::Duration;

fn square(x: u64) -> u64 {
    x * x
}

fn boom(msg: String) -> u8 {
    panic!("{msg}")
}

/// Kills its own process the first time (the marker file does not exist yet), answers the
/// pid of the process that finally ran it.
fn die_once(marker: String) -> u32 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        kill_me();
    }
    std::process::id()
}

fn always_die(_: ()) -> u8 {
    kill_me()
}

fn kill_me() -> ! {
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::process::abort()
}

/// Creates the file `path` (a task that must never run shows it did).
fn touch(path: String) -> u8 {
    let _ = std::fs::write(path, b"ran");
    1
}

/// `(url, list, n)`: with `n == 0` a short task, which pushes one token to `list`; otherwise
/// the long task, which waits (up to 10 s each) for `n` tokens there: 1 when they all came while it
/// ran, 0 when they did not.
fn gate((url, list, n): (String, String, u32)) -> u32 {
    let mut con = Client::open(&url).unwrap().raw_connection().unwrap();
    if n == 0 {
        let _: () = multiproc::redis::raw::cmd("RPUSH")
            .arg(&list)
            .arg(1)
            .query(&mut con)
            .unwrap();
        return 1;
    }
    for _ in 0..n {
        let got: Option<(String, String)> = multiproc::redis::raw::cmd("BLPOP")
            .arg(&list)
            .arg(10)
            .query(&mut con)
            .unwrap();
        if got.is_none() {
            return 0;
        }
    }
    1
}

multiproc::redis::task!(square, boom, die_once, always_die, touch, gate);

/// The worker side, as a user's program runs it (`myprog worker …`): this test binary started
/// again with `MULTIPROC_TEST_WORKER="URL NS PROCESSES"` runs only this "test", which serves
/// tasks until the executor shuts the workers down.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var("MULTIPROC_TEST_WORKER") else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    Worker::new(parts[0])
        .namespace(parts[1])
        .processes(parts[2].parse().unwrap())
        .heartbeat(Duration::from_millis(300))
        .run()
        .unwrap();
}

struct Pool {
    exec: Executor,
    supervisor: std::process::Child,
}

impl Pool {
    fn start(url: &str, processes: usize, max_attempts: u32) -> Pool {
        let ns = common::unique("exec");
        let exec = Executor::builder(url)
            .namespace(&ns)
            .max_attempts(max_attempts)
            .build()
            .unwrap();
        let supervisor = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
            .env("MULTIPROC_TEST_WORKER", format!("{url} {ns} {processes}"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Pool { exec, supervisor }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.exec.shutdown_workers().unwrap();
        let status = self.supervisor.wait().unwrap();
        if !std::thread::panicking() {
            assert!(status.success(), "worker supervisor: {status}");
        }
    }
}

#[test]
fn submit_and_map_run_on_worker_processes() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 2, 3);
    assert_eq!(pool.exec.submit(square, 12).unwrap().result().unwrap(), 144);
    // A timeout past the end of the clock is no limit (it used to overflow it).
    let mut f = pool.exec.submit(square, 5).unwrap();
    assert_eq!(f.result_timeout(Duration::MAX).unwrap(), 25);
    let want: Vec<u64> = (0..50).map(|x| x * x).collect();
    assert_eq!(pool.exec.map(square, 0..50).unwrap(), want);
}

#[test]
fn a_panicking_task_fails_only_its_future() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 1, 3);
    let f = pool.exec.submit(boom, "no luck".to_string()).unwrap();
    assert!(matches!(f.result(), Err(Error::TaskFailed { message }) if message == "no luck"));
    assert_eq!(pool.exec.submit(square, 3).unwrap().result().unwrap(), 9);
}

#[test]
fn a_task_whose_worker_is_killed_runs_again_and_completes_once() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 2, 3);
    let dir = std::env::temp_dir().join(common::unique("marker"));
    let marker = dir.to_str().unwrap().to_string();
    let f = pool.exec.submit(die_once, marker.clone()).unwrap();
    let id = f.id().to_string();
    let pid = f.result().unwrap();
    assert!(pid > 0);
    assert!(dir.exists(), "the first attempt ran (and died)");
    let _ = std::fs::remove_file(&dir);
    // One completion: nothing else was written for this task.
    let mut con = Client::open(&url).unwrap().raw_connection().unwrap();
    let left: i64 = multiproc::redis::raw::cmd("LLEN")
        .arg(format!("multiproc:exec:{}:result:{id}", pool_ns(&pool)))
        .query(&mut con)
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(pool.exec.submit(square, 4).unwrap().result().unwrap(), 16);
}

fn pool_ns(pool: &Pool) -> String {
    let dbg = format!("{:?}", pool.exec);
    dbg.split("multiproc:exec:")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

#[test]
fn a_task_that_always_kills_its_worker_ends_in_worker_died() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 2, 2);
    let mut f = pool.exec.submit(always_die, ()).unwrap();
    assert!(matches!(
        f.result_timeout(Duration::from_secs(60)),
        Err(Error::WorkerDied { .. })
    ));
    // The pool replaced its workers and goes on.
    assert_eq!(pool.exec.submit(square, 5).unwrap().result().unwrap(), 25);
}

#[test]
fn an_unregistered_function_is_refused_at_submit() {
    let Some(url) = common::url() else { return };
    fn not_a_task(x: u8) -> u8 {
        x
    }
    let exec = Executor::builder(&url)
        .namespace(&common::unique("unreg"))
        .build()
        .unwrap();
    assert!(matches!(exec.submit(not_a_task, 1), Err(Error::Invalid(_))));
}

#[test]
fn worker_cli_parses_its_options() {
    let bad = |args: &[&str]| {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        multiproc::redis::worker_cli(&v)
    };
    assert!(matches!(
        bad(&["--processes", "x", "--url", "redis://127.0.0.1/"]),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(bad(&["--bogus"]), Err(Error::Invalid(_))));
    assert!(matches!(bad(&["--url", "nope"]), Err(Error::Redis(_))));
    // --prefetch: a positive integer, or a usage error naming it (never a panic); a good
    // value gets as far as the (bad) URL.
    for n in ["0", "-1", "x", "1.5", ""] {
        match bad(&["--prefetch", n, "--url", "redis://127.0.0.1/"]) {
            Err(Error::Invalid(m)) => {
                assert!(
                    m.contains("--prefetch") && m.contains("positive integer"),
                    "{n:?}: {m}"
                );
            }
            other => panic!("--prefetch {n:?}: {other:?}"),
        }
    }
    assert!(matches!(
        bad(&["--prefetch", "8", "--url", "nope"]),
        Err(Error::Redis(m)) if m.contains("bad redis url")
    ));
}

#[test]
fn worker_cli_help_prints_the_usage_and_succeeds() {
    let cli = |args: &[&str]| {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        multiproc::redis::worker_cli(&v)
    };
    // No server is needed, and nothing runs: `--help` answers at once, wherever it is.
    assert!(cli(&["--help"]).is_ok());
    assert!(cli(&["-h"]).is_ok());
    assert!(cli(&["--url", "nope", "--bogus", "--help"]).is_ok());
    for option in [
        "--url",
        "--processes",
        "--prefetch",
        "--namespace",
        "--heartbeat-ms",
        "--help",
    ] {
        assert!(multiproc::redis::WORKER_USAGE.contains(option), "{option}");
    }
    match cli(&["--bogus"]) {
        Err(Error::Invalid(m)) => assert!(m.contains("--help"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// postcard's varint of `n`.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A task as an executor queues it (a death count byte, then postcard's
/// `{id, func, arg, max_attempts, namespace, notify}`), written by hand as a client that can
/// write the keys could.
fn forged_task(id: &str, func: &str, arg: &[u8], namespace: &str) -> Vec<u8> {
    let mut b = vec![0u8];
    string(id, &mut b);
    string(func, &mut b);
    varint(arg.len() as u64, &mut b);
    b.extend_from_slice(arg);
    varint(3, &mut b);
    string(namespace, &mut b);
    string("", &mut b);
    b
}

#[test]
fn a_task_of_another_namespace_or_an_unknown_name_is_refused_never_run() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 1, 3);
    let ns = pool_ns(&pool);
    let marker = std::env::temp_dir().join(common::unique("refused"));
    let path = marker.to_str().unwrap().to_string();
    let mut arg = Vec::new();
    string(&path, &mut arg);
    let func = std::any::type_name_of_val(&touch);
    let mut con = Client::open(&url).unwrap().raw_connection().unwrap();
    let items = format!("multiproc:queue:exec:{ns}:tasks:items");
    // A registered task, sent to this namespace's queue but naming another namespace, and a
    // task name no worker knows.
    let other = forged_task("forged-other-ns", func, &arg, "someone-else");
    let unknown = forged_task("forged-unknown", "no::such::task", &[], &ns);
    let _: () = multiproc::redis::raw::cmd("LPUSH")
        .arg(&items)
        .arg(other)
        .arg(unknown)
        .query(&mut con)
        .unwrap();
    // The unknown name is answered as such (the outcome `Unknown`, variant 3), not run.
    let key = |what: &str, id: &str| format!("multiproc:exec:{ns}:{what}:{id}");
    let woke: Option<(String, String)> = multiproc::redis::raw::cmd("BLPOP")
        .arg(key("notify", "forged-unknown"))
        .arg(30)
        .query(&mut con)
        .unwrap();
    assert!(woke.is_some(), "the unknown task was never answered");
    let outcome: Vec<u8> = multiproc::redis::raw::cmd("GET")
        .arg(key("result", "forged-unknown"))
        .query(&mut con)
        .unwrap();
    assert_eq!(outcome.first(), Some(&3), "{outcome:?}");
    // Taken first (FIFO), the other namespace's task was handled before a task sent after it
    // completes: refused, never run, no outcome written.
    assert_eq!(pool.exec.submit(square, 6).unwrap().result().unwrap(), 36);
    assert!(!marker.exists(), "a task of another namespace ran");
    let stored: Option<Vec<u8>> = multiproc::redis::raw::cmd("GET")
        .arg(key("result", "forged-other-ns"))
        .query(&mut con)
        .unwrap();
    assert_eq!(stored, None);
    let waiting: i64 = multiproc::redis::raw::cmd("LLEN")
        .arg(&items)
        .query(&mut con)
        .unwrap();
    assert_eq!(waiting, 0);
}

#[test]
fn tasks_prefetched_behind_a_long_task_go_to_another_worker() {
    let Some(url) = common::url() else { return };
    let pool = Pool::start(&url, 2, 3);
    // Short tasks first: both workers learn that tasks are short and prefetch many.
    let want: Vec<u64> = (0..400).map(|x| x * x).collect();
    assert_eq!(pool.exec.map(square, 0..400).unwrap(), want);
    // One call queues the long task and eight short ones behind it in one push: the worker
    // that takes the long one takes short ones with it. The long one waits until all eight
    // ran: it answers 1 only if they were given back to the other worker meanwhile.
    let list = common::unique("gate");
    let mut args = vec![(url.clone(), list.clone(), 8u32)];
    args.extend((0..8).map(|_| (url.clone(), list.clone(), 0u32)));
    let got = pool.exec.map(gate, args).unwrap();
    assert_eq!(got, vec![1; 9], "short tasks waited behind the long one");
}
