//! The executor across hosts (issue 29): a Redis host, two worker hosts and a client host,
//! each a network namespace of its own on a bridge (see `common/netns.rs`). Scenarios:
//! a. 1,000 tasks across both worker hosts, every result once;
//! b. a worker host cut off mid-task: another host completes the task once, the late result is
//!    discarded, and the healed worker serves again without a restart;
//! c. the client cut off while waiting: `result_timeout` keeps its deadline, results arrive
//!    after the heal;
//! d. 5 ms each way between client and Redis (a delaying TCP relay: no `netem` here):
//!    correctness, and the throughput ratio printed;
//! e. the Redis host killed and restarted with `appendonly yes`: no accepted task lost.
//!
//! Needs root and `ip`; otherwise each test is reported skipped by name (a failure under CI).

mod common;
#[path = "common/netns.rs"]
mod netns;

use multiproc::Error;
use multiproc::redis::{Client, Executor, Queue, Worker};
use netns::{CLIENT, Cluster, HOST_ENV, W1, W2};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The worker hosts' heartbeat: short, so that a cut-off host's task moves on within a
/// second or two.
const HEARTBEAT_MS: u64 = 500;

/// The variable that makes this binary a worker host: `URL NAMESPACE PROCESSES`.
const WORKER_ENV: &str = "MULTIPROC_CLUSTER_WORKER";

/// The host a task runs on (the worker host's [`HOST_ENV`]) and the process that runs it.
fn whoami() -> (String, u32) {
    (
        std::env::var(HOST_ENV).unwrap_or_else(|_| "?".into()),
        std::process::id(),
    )
}

fn square_on(x: u64) -> (u64, String, u32) {
    let (host, pid) = whoami();
    (x * x, host, pid)
}

/// Sleeps `ms` (the work itself is time here), then squares.
fn slow_square(args: (u64, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(args.1));
    args.0 * args.0
}

/// On host `slow_on`: tells the queue `events` at `url` "HOST PID" (it has started), then
/// works for `hold_ms`; elsewhere answers at once.
fn held(args: (u64, String, u64, String, String)) -> (u64, String, u32) {
    let (x, slow_on, hold_ms, url, events) = args;
    let (host, pid) = whoami();
    if host == slow_on {
        let q: Queue<String> = Queue::open(&url, &events).expect("the events queue");
        q.put(format!("{host} {pid}")).expect("the start event");
        std::thread::sleep(Duration::from_millis(hold_ms));
    }
    (x * x, host, pid)
}

multiproc::redis::task!(square_on, slow_square, held);

/// The worker host: this binary run again inside a host's namespace, serving until the
/// executor shuts the workers down (or the cluster kills it).
#[test]
fn worker_host() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    Worker::new(parts[0])
        .namespace(parts[1])
        .processes(parts[2].parse().unwrap())
        .heartbeat(Duration::from_millis(HEARTBEAT_MS))
        .run()
        .unwrap();
}

/// Starts a worker host with `processes` worker processes on `host`.
fn start_workers(cluster: &mut Cluster, host: &str, ns: &str, processes: usize) -> usize {
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{} {ns} {processes}", cluster.redis_url());
    cluster.spawn_in(
        host,
        &exe,
        &["--exact", "worker_host", "--nocapture", "--test-threads=1"],
        &[(WORKER_ENV, spec)],
    )
}

/// Waits (at most 60 s) until `n` workers of `ns` are alive.
fn wait_for_workers(url: &str, ns: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = multiproc::redis::info(url, ns).unwrap();
        let alive = info.workers.iter().filter(|w| w.alive).count();
        if alive >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {alive} of {n} workers registered within 60 s"
        );
        // The workers register by themselves: nothing to wait on but time.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The keys of executor namespace `ns` that hold task `id`'s outcome or notification.
fn outcome_keys(url: &str, ns: &str, id: &str) -> Vec<String> {
    use multiproc::redis::raw::Commands;
    let mut con = Client::open(url).unwrap().raw_connection().unwrap();
    let mut left = Vec::new();
    for k in [
        format!("multiproc:exec:{ns}:result:{id}"),
        format!("multiproc:exec:{ns}:notify:{id}"),
    ] {
        if con.exists::<_, bool>(&k).unwrap() {
            left.push(k);
        }
    }
    left
}

#[test]
fn a_thousand_tasks_across_two_worker_hosts_each_complete_once() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.start_redis(false);
    let url = cluster.redis_url();
    let ns = common::unique("cluster-a");
    let w1 = start_workers(&mut cluster, W1, &ns, 2);
    let w2 = start_workers(&mut cluster, W2, &ns, 2);
    cluster.enter(CLIENT);
    // Every worker registered before the first task: both hosts get a share.
    wait_for_workers(&url, &ns, 4);
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let got = exec.map(square_on, 0..1000u64).unwrap();
    assert_eq!(got.len(), 1000);
    let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
    for (x, (value, host, _)) in got.iter().enumerate() {
        assert_eq!(*value, (x * x) as u64, "task {x}");
        *per_host.entry(host.clone()).or_default() += 1;
    }
    println!("tasks per host: {per_host:?}");
    assert_eq!(
        per_host.keys().map(String::as_str).collect::<Vec<_>>(),
        [W1, W2],
        "{per_host:?}"
    );
    // Nothing of a finished task is left (each future read its outcome once and removed it).
    let info = multiproc::redis::info(&url, &ns).unwrap();
    assert_eq!((info.waiting, info.running.len()), (0, 0), "{info:?}");
    exec.shutdown_workers().unwrap();
    for w in [w1, w2] {
        let status = cluster.wait_exit(w, Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "worker host: {status:?}"
        );
    }
}

#[test]
fn a_worker_host_cut_off_mid_task_loses_it_to_the_other_and_serves_again_after_the_heal() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.start_redis(false);
    let url = cluster.redis_url();
    let ns = common::unique("cluster-b");
    let events = common::unique("cluster-b-events");
    let w1 = start_workers(&mut cluster, W1, &ns, 1);
    cluster.enter(CLIENT);
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let started: Queue<String> = Queue::open(&url, &events).unwrap();
    // Only w1 runs yet: it takes the task, says so, and works on it for 1 s (it finishes
    // while cut off, and must reach the server again to report).
    let mut f = exec
        .submit(held, (7, W1.to_string(), 1000, url.clone(), events.clone()))
        .unwrap();
    let id = f.id().to_string();
    let event = started.get_timeout(Duration::from_secs(60)).unwrap();
    started.task_done().unwrap();
    let (host, pid) = event.split_once(' ').unwrap();
    assert_eq!(host, W1);
    let w1_pid: u32 = pid.parse().unwrap();

    cluster.partition(W1);
    let w2 = start_workers(&mut cluster, W2, &ns, 1);
    // w1's lease runs out; w2 requeues the task and completes it.
    let r = f.result_timeout(Duration::from_secs(60));
    let (value, host, _) = r.unwrap();
    assert_eq!((value, host.as_str()), (49, W2));
    assert!(matches!(
        f.result_timeout(Duration::from_millis(100)),
        Err(Error::Invalid(_))
    ));

    cluster.heal(W1);
    // Now only w1 can take a task: the same worker process serves it, no restart.
    cluster.partition(W2);
    let mut g = exec.submit(square_on, 5).unwrap();
    let (value, host, pid) = g.result_timeout(Duration::from_secs(90)).unwrap();
    assert_eq!((value, host.as_str(), pid), (25, W1, w1_pid));
    assert!(cluster.running(w1), "w1's worker host still runs");
    // w1 serves one task at a time, so its late completion of the first task came before
    // this one: it was discarded, not stored for a future that has its outcome already.
    let left = outcome_keys(&url, &ns, &id);
    assert!(left.is_empty(), "the late result was stored: {left:?}");
    cluster.heal(W2);
    assert!(cluster.running(w2));
    started.delete().unwrap();
}

#[test]
fn a_client_cut_off_while_waiting_keeps_its_deadlines_and_gets_every_result_after_the_heal() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.start_redis(false);
    let url = cluster.redis_url();
    let ns = common::unique("cluster-c");
    start_workers(&mut cluster, W1, &ns, 1);
    start_workers(&mut cluster, W2, &ns, 1);
    cluster.enter(CLIENT);
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    // Each task takes 1 s: they finish while the client is cut off.
    let mut futures: Vec<_> = (0..4u64)
        .map(|x| exec.submit(slow_square, (x, 1000)).unwrap())
        .collect();
    cluster.partition(CLIENT);
    let slack = Duration::from_millis(1500);
    for (f, timeout) in futures
        .iter_mut()
        .zip([2000, 1000, 300].map(Duration::from_millis))
    {
        let t = Instant::now();
        let r = f.result_timeout(timeout);
        let took = t.elapsed();
        println!("cut off: result_timeout({timeout:?}) answered {r:?} after {took:?}");
        assert!(matches!(r, Err(Error::Timeout)), "{r:?} after {took:?}");
        assert!(took < timeout + slack, "{took:?} for {timeout:?}");
    }
    cluster.heal(CLIENT);
    for (x, f) in futures.iter_mut().enumerate() {
        let r = f.result_timeout(Duration::from_secs(60));
        assert_eq!(r.unwrap(), (x * x) as u64, "task {x}");
    }
}

/// A TCP relay that delays every chunk by `delay` in each direction, keeping order (a chunk
/// read at t is written at t + delay; chunks behind it are not held up by its wait, so the
/// relay adds latency, not a bandwidth limit). Listens on 127.0.0.1 of the calling thread's
/// namespace; answers the address. Its threads end with their connections.
fn delaying_relay(to: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for down in listener.incoming() {
            let Ok(down) = down else { return };
            let Ok(up) = TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
                return;
            };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            for (from, into) in [
                (down.try_clone().unwrap(), up.try_clone().unwrap()),
                (up, down),
            ] {
                pump(from, into, delay);
            }
        }
    });
    at
}

/// Copies `from` to `into`, each chunk `delay` after it was read.
fn pump(mut from: TcpStream, mut into: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            // The latency under test is time itself.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if into.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = into.shutdown(Shutdown::Write);
    });
}

#[test]
fn five_ms_each_way_between_client_and_redis_delivers_every_result_once() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.start_redis(false);
    let url = cluster.redis_url();
    let ns = common::unique("cluster-d");
    start_workers(&mut cluster, W1, &ns, 2);
    start_workers(&mut cluster, W2, &ns, 2);
    cluster.enter(CLIENT);
    wait_for_workers(&url, &ns, 4);
    let server: SocketAddr = format!("{}:{}", cluster.addr(netns::REDIS), netns::REDIS_PORT)
        .parse()
        .unwrap();
    let relay = delaying_relay(server, Duration::from_millis(5));
    let slow_url = format!("redis://{relay}/0");
    const N: u64 = 5000;
    let want: Vec<u64> = (0..N).map(|x| x * x).collect();
    let mut rates: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    // Alternated, two rounds each: the machine's load changes under both alike.
    for round in 0..2 {
        for (label, u) in [("direct", &url), ("5 ms each way", &slow_url)] {
            let exec = Executor::builder(u).namespace(&ns).build().unwrap();
            let t = Instant::now();
            let got: Vec<u64> = exec.map(slow_square, (0..N).map(|x| (x, 0))).unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(got, want, "{label}, round {round}");
            rates.entry(label).or_default().push(N as f64 / secs);
        }
    }
    let best = |label: &str| rates[label].iter().cloned().fold(0.0f64, f64::max);
    println!(
        "{N} tasks by map, 4 workers on 2 hosts: direct {:?} tasks/s, 5 ms each way {:?} \
         tasks/s; ratio (best direct / best delayed) {:.1}x",
        rates["direct"],
        rates["5 ms each way"],
        best("direct") / best("5 ms each way")
    );
    let info = multiproc::redis::info(&url, &ns).unwrap();
    assert_eq!((info.waiting, info.running.len()), (0, 0), "{info:?}");
}

#[test]
fn a_durable_redis_host_killed_and_restarted_loses_no_accepted_task() {
    let Some(mut cluster) = Cluster::new() else {
        return;
    };
    cluster.start_redis(true);
    let url = cluster.redis_url();
    let ns = common::unique("cluster-e");
    start_workers(&mut cluster, W1, &ns, 1);
    start_workers(&mut cluster, W2, &ns, 1);
    cluster.enter(CLIENT);
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    const N: u64 = 200;
    // Accepted: submit answered Ok, so the server has the task (fsynced before it answered).
    let mut futures: Vec<_> = (0..N)
        .map(|x| exec.submit(slow_square, (x, 5)).unwrap())
        .collect();
    // Mid-drain: some done, some running, most waiting.
    assert_eq!(
        futures[0].result_timeout(Duration::from_secs(60)).unwrap(),
        0
    );
    cluster.kill_redis();
    cluster.restart_redis();
    for (x, f) in futures.iter_mut().enumerate().skip(1) {
        let r = f.result_timeout(Duration::from_secs(60));
        assert_eq!(r.unwrap(), (x * x) as u64, "task {x}");
    }
    let info = multiproc::redis::info(&url, &ns).unwrap();
    assert_eq!((info.waiting, info.running.len()), (0, 0), "{info:?}");
}
