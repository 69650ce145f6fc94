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

multiproc::redis::task!(square, boom, die_once, always_die);

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
