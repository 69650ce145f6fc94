//! Network cuts (issue 29), simulated on one host: the test's own server stopped with
//! `SIGSTOP` (a cut: connections hang, nothing answers), killed and started again on the same
//! port (an outage), or a reply thrown away with its connection by a test hook.

mod common;

use multiproc::Error;
use multiproc::redis::{Client, Executor, LocalServer, Lock, Queue, Worker};
use std::time::{Duration, Instant};

fn square(x: u64) -> u64 {
    x * x
}

multiproc::redis::task!(square);

/// This binary re-run as a worker program (see `tests/executor.rs`).
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var("MULTIPROC_TEST_PARTITION_WORKER") else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    Worker::new(parts[0])
        .namespace(parts[1])
        .processes(1)
        .heartbeat(Duration::from_millis(500))
        .run()
        .unwrap();
}

/// Sends `sig` (`STOP`, `CONT`) to the server.
fn signal(server: &LocalServer, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(server.pid().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Resumes a stopped server when the test ends, however it ends.
struct Resume<'a>(&'a LocalServer);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// Keys whose name starts with `prefix`.
fn keys(url: &str, prefix: &str) -> Vec<String> {
    use multiproc::redis::raw::Commands;
    let mut con = Client::open(url).unwrap().raw_connection().unwrap();
    con.scan_match::<_, String>(format!("{prefix}*"))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap()
}

#[test]
fn blocking_calls_with_a_deadline_keep_it_during_a_cut() {
    let Some(server) = common::own_server(false) else {
        return;
    };
    let url = server.url().to_string();
    let exec = Executor::builder(&url)
        .namespace(&common::unique("cut"))
        .build()
        .unwrap();
    let mut f = exec.submit(square, 3).unwrap();
    let q: Queue<u8> = Queue::open(&url, &common::unique("cut-q")).unwrap();
    let lock = Lock::open(&url, &common::unique("cut-lock"), Duration::from_secs(30)).unwrap();
    signal(&server, "STOP");
    let _resume = Resume(&server);
    let slack = Duration::from_millis(700);

    let t = Instant::now();
    let r = f.result_timeout(Duration::from_secs(2));
    let took = t.elapsed();
    assert!(matches!(r, Err(Error::Timeout)), "{r:?} after {took:?}");
    assert!(took < Duration::from_secs(2) + slack, "{took:?}");

    let t = Instant::now();
    let r = q.get_timeout(Duration::from_secs(1));
    let took = t.elapsed();
    assert!(matches!(r, Err(Error::Empty)), "{r:?} after {took:?}");
    assert!(took < Duration::from_secs(1) + slack, "{took:?}");

    let t = Instant::now();
    let r = lock.acquire_timeout(Duration::from_secs(1));
    let took = t.elapsed();
    assert!(matches!(r, Ok(false)), "{r:?} after {took:?}");
    assert!(took < Duration::from_secs(1) + slack, "{took:?}");
}

#[test]
fn a_result_whose_reply_was_lost_still_arrives_once() {
    let Some(url) = common::url() else { return };
    let ns = common::unique("lost-reply");
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || Worker::new(&url).namespace(&ns).run_in_this_process())
    };
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let before = multiproc_redis::__blpop_replies_lost();
    multiproc_redis::__lose_next_blpop_reply();
    let mut f = exec.submit(square, 7).unwrap();
    let r = f.result_timeout(Duration::from_secs(10));
    assert_eq!(
        multiproc_redis::__blpop_replies_lost(),
        before + 1,
        "the hook took a reply"
    );
    assert_eq!(r.unwrap(), 49);
    // Read once: a second read is refused, and nothing of the task is left in the server.
    assert!(matches!(
        f.result_timeout(Duration::from_millis(200)),
        Err(Error::Invalid(_))
    ));
    let left = keys(&url, &format!("multiproc:exec:{ns}:"));
    assert!(left.is_empty(), "{left:?}");
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
}

#[test]
fn finished_tasks_leave_no_keys_behind() {
    let Some(url) = common::url() else { return };
    let ns = common::unique("keys");
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || Worker::new(&url).namespace(&ns).run_in_this_process())
    };
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let got: Vec<u64> = exec.map(square, 0..1000u64).unwrap();
    assert_eq!(got, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
    let left = keys(&url, &format!("multiproc:exec:{ns}:"));
    assert!(
        left.len() <= 1,
        "{} keys left: {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
    let left = keys(&url, &format!("multiproc:exec:{ns}:"));
    assert!(left.len() <= 1, "{left:?}");
}

#[test]
fn a_worker_started_during_an_outage_waits_for_the_server() {
    let Some(mut server) = common::own_server(false) else {
        return;
    };
    let url = server.url().to_string();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|s| s.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let ns = common::unique("outage");
    server.kill();
    // Stands in for the server, to see the worker try (and fail: it gets no answer).
    let fake = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut supervisor = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_PARTITION_WORKER", format!("{url} {ns}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A blocking accept on a thread of its own, so that the wait for the worker's first try is
    // bounded without polling; the listener closes (freeing the port) when the thread ends.
    let (tx, rx) = std::sync::mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        let tried = fake.accept().is_ok();
        let _ = tx.send(tried);
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false),
        "the worker never tried to connect"
    );
    acceptor.join().unwrap();
    // It failed once; now the server comes back.
    server.restart().unwrap();
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let mut f = exec.submit(square, 12).unwrap();
    let r = f.result_timeout(Duration::from_secs(30));
    let still_running = supervisor.try_wait().unwrap().is_none();
    if r.is_err() {
        let _ = supervisor.kill();
    }
    assert_eq!(r.unwrap(), 144);
    assert!(still_running, "the same worker process served the task");
    exec.shutdown_workers().unwrap();
    assert!(supervisor.wait().unwrap().success());
}

#[test]
fn workers_outlive_an_outage_longer_than_the_reconnect_window() {
    let Some(mut server) = common::own_server(false) else {
        return;
    };
    let url = server.url().to_string();
    let ns = common::unique("long-outage");
    let mut supervisor = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_PARTITION_WORKER", format!("{url} {ns}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    assert_eq!(exec.submit(square, 2).unwrap().result().unwrap(), 4);
    server.kill();
    // Past the workers' reconnect window (10 s): they used to exit here.
    let deadline = Instant::now() + Duration::from_secs(13);
    while Instant::now() < deadline {
        if supervisor.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.restart().unwrap();
    let mut f = exec.submit(square, 5).unwrap();
    let r = f.result_timeout(Duration::from_secs(30));
    let still_running = supervisor.try_wait().unwrap().is_none();
    if r.is_err() || !still_running {
        let _ = supervisor.kill();
    }
    assert!(still_running, "the worker process outlived the outage");
    assert_eq!(r.unwrap(), 25);
    exec.shutdown_workers().unwrap();
    assert!(supervisor.wait().unwrap().success());
}

#[test]
fn an_idle_worker_requeues_a_dead_workers_task_within_a_poll() {
    use multiproc::redis::raw::Commands;
    let Some(url) = common::url() else { return };
    let ns = common::unique("idle-reap");
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let queue = format!("multiproc:queue:exec:{ns}:tasks");
    let mut con = Client::open(&url).unwrap().raw_connection().unwrap();
    // A task held by a consumer whose heartbeat ends in 1.5 s (a worker cut off).
    let mut f = exec.submit(square, 4).unwrap();
    let moved: Option<Vec<u8>> = con
        .lmove(
            format!("{queue}:items"),
            format!("{queue}:processing:ghost"),
            multiproc::redis::raw::Direction::Right,
            multiproc::redis::raw::Direction::Left,
        )
        .unwrap();
    assert!(moved.is_some());
    let _: () = con
        .pset_ex(format!("{queue}:alive:ghost"), 1, 1500)
        .unwrap();
    let _: () = con.sadd(format!("{queue}:consumers"), "ghost").unwrap();
    let t = Instant::now();
    // A long heartbeat: the worker's periodic reaps come once per 6 s.
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || {
            Worker::new(&url)
                .namespace(&ns)
                .heartbeat(Duration::from_secs(6))
                .run_in_this_process()
        })
    };
    let r = f.result_timeout(Duration::from_secs(20));
    let took = t.elapsed();
    assert_eq!(r.unwrap(), 16);
    assert!(
        took < Duration::from_millis(4500),
        "requeued after {took:?}"
    );
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
}
