//! The server fails under running clients (these tests own their server and kill it with
//! SIGKILL): with an append-only file, no acknowledged item is lost and every future completes
//! once; without persistence, everything is gone, and the clients carry on; past the reconnect
//! window, a clear error.

mod common;

use multiproc::Error;
use multiproc::redis::{Client, Executor, Queue, Worker};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

fn square(x: u64) -> u64 {
    x * x
}

multiproc::redis::task!(square);

/// See `tests/executor.rs`: this binary re-run as a worker program.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var("MULTIPROC_TEST_WORKER") else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    Worker::new(parts[0])
        .namespace(parts[1])
        .processes(2)
        .heartbeat(Duration::from_millis(500))
        .run()
        .unwrap();
}

fn patient(url: &str) -> Client {
    Client::open(url)
        .unwrap()
        .reconnect_timeout(Duration::from_secs(20))
}

#[test]
fn a_durable_server_killed_mid_stream_loses_no_acknowledged_item() {
    let Some(mut server) = common::own_server(true) else {
        return;
    };
    let url = server.url().to_string();
    const N: u32 = 3000;
    let producer = {
        let url = url.clone();
        std::thread::spawn(move || {
            let q: Queue<u32> =
                Queue::with_client(&patient(&url), "stream", Duration::from_secs(2)).unwrap();
            for i in 0..N {
                q.put(i).unwrap();
            }
        })
    };
    let (restart_now, restart) = mpsc::channel::<()>();
    let (restarted_tx, restarted) = mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        restart.recv().unwrap();
        server.restart().unwrap();
        restarted_tx.send(()).unwrap();
        server // keeps it running until the test ends
    });
    let q: Queue<u32> =
        Queue::with_client(&patient(&url), "stream", Duration::from_secs(2)).unwrap();
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    while seen.len() < N as usize {
        let v = q.get_timeout(Duration::from_secs(25)).unwrap();
        q.task_done().unwrap();
        *seen.entry(v).or_default() += 1;
        if seen.len() == 1000 && seen[&v] == 1 {
            restart_now.send(()).unwrap();
        }
    }
    producer.join().unwrap();
    restarted.recv().unwrap();
    let _server = killer.join().unwrap();
    let dups = seen.values().filter(|&&c| c > 1).count();
    eprintln!("{dups} items delivered twice (replies lost to the restart)");
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..N).collect::<Vec<_>>()
    );
    assert!(matches!(
        q.get_timeout(Duration::from_millis(300)),
        Err(Error::Empty)
    ));
}

#[test]
fn an_in_memory_server_restarted_forgets_everything_and_clients_carry_on() {
    let Some(mut server) = common::own_server(false) else {
        return;
    };
    let q: Queue<u8> =
        Queue::with_client(&patient(server.url()), "volatile", Duration::from_secs(2)).unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.qsize().unwrap(), 5);
    server.restart().unwrap();
    // Without persistence the restarted server starts empty: the 5 items are gone.
    assert_eq!(q.qsize().unwrap(), 0);
    q.put(9).unwrap();
    assert_eq!(q.get().unwrap(), 9);
    q.task_done().unwrap();
}

#[test]
fn a_server_gone_past_the_reconnect_window_is_a_clear_error() {
    let Some(mut server) = common::own_server(false) else {
        return;
    };
    let client = Client::open(server.url())
        .unwrap()
        .reconnect_timeout(Duration::from_millis(300));
    let q: Queue<u8> = Queue::with_client(&client, "gone", Duration::from_secs(2)).unwrap();
    q.put(1).unwrap();
    server.kill();
    match q.put(2) {
        Err(Error::Redis(m)) => assert!(m.contains("127.0.0.1"), "{m}"),
        other => panic!("{other:?}"),
    }
    match q.get_timeout(Duration::from_secs(1)) {
        Err(Error::Redis(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn executor_futures_complete_once_across_a_durable_server_restart() {
    let Some(mut server) = common::own_server(true) else {
        return;
    };
    let url = server.url().to_string();
    let ns = common::unique("restart");
    let mut supervisor = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_WORKER", format!("{url} {ns}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let first: Vec<u64> = exec.map(square, 0..20).unwrap();
    assert_eq!(first, (0..20).map(|x| x * x).collect::<Vec<_>>());
    let futures: Vec<_> = (0..200).map(|x| exec.submit(square, x).unwrap()).collect();
    server.restart().unwrap();
    for (x, f) in (0..200u64).zip(futures) {
        assert_eq!(f.result().unwrap(), x * x);
    }
    exec.shutdown_workers().unwrap();
    assert!(supervisor.wait().unwrap().success());
}
