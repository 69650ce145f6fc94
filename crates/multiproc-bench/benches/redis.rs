//! multiproc::redis: one client's round trips to a local Redis server (the server of
//! `MULTIPROC_REDIS_URL`, or a `redis-server` this bench starts; skipped with a note when
//! there is none). The queue's put + get + task_done (LPUSH, BLMOVE, LREM) against the same
//! three commands from Python's `redis` client and from the raw `redis` crate, and against
//! three raw PINGs; the executor's submit + result with one worker thread (LPUSH, BLMOVE,
//! HINCRBY, EVALSHA, LREM, BLPOP) against Python's client running the same protocol with a
//! worker process, against RQ (an `rq` `SimpleWorker` process, the client polling the job's
//! result every millisecond, as RQ users do; skipped when `rq` is missing), and against a raw
//! PING. Ours and the raw baselines alternate round by round (see `alternate`).
//!
//! The queue's put + get + task_done takes two round trips (the acknowledgement rides with the
//! next BLMOVE), Python's three; an executor task takes at least two (submit, then the blocking
//! wait for its result, which the worker's own round trips delay). Ours poll the socket before
//! they sleep (`multiproc-redis`'s `wire.rs`), the raw crate's block at once. A raw PING is
//! bimodal on two vCPUs: ~45 µs between them, ~12 µs when the kernel put client and server on
//! one (the CPU passes straight across); the row shows whichever the run got.

use multiproc::redis::raw;
use multiproc::redis::{Client, Executor, LocalServer, Queue, URL_ENV, Worker};
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns};

fn inc(x: u64) -> u64 {
    x + 1
}
multiproc::redis::task!(inc);

const PY_QUEUE: &str = r#"
import sys, time, redis
r = redis.Redis.from_url(URL)
q, p = 'bench:py:items', 'bench:py:processing'
r.delete(q, p)
def one(i):
    r.lpush(q, b'%d' % i)
    v = r.blmove(q, p, 1, 'RIGHT', 'LEFT')
    r.lrem(p, -1, v)
def run(n):
    t = time.perf_counter()
    for i in range(n):
        one(i)
    return (time.perf_counter() - t) / n
run(100)
ts = sorted(run(N) for _ in range(7))
print(ts[len(ts) // 2] * 1e9)
"#;

const PY_EXEC: &str = r#"
import sys, time, redis, multiprocessing as mp
COMPLETE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('RPUSH', KEYS[2], ARGV[1]); redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[3]) return 1 end
return 0
"""
def worker(url):
    r = redis.Redis.from_url(url)
    complete = r.register_script(COMPLETE)
    while True:
        b = r.blmove('bench:pyx:tasks', 'bench:pyx:proc', 1, 'RIGHT', 'LEFT')
        if b is None:
            continue
        if b == b'stop':
            r.lrem('bench:pyx:proc', -1, b)
            return
        tid, x = b.split(b':')
        r.hincrby('bench:pyx:att', tid, 1)
        complete(keys=[b'bench:pyx:done:' + tid, b'bench:pyx:res:' + tid, 'bench:pyx:att'],
                 args=[int(x) + 1, 86400000, tid])
        r.lrem('bench:pyx:proc', -1, b)
if __name__ == '__main__':
    r = redis.Redis.from_url(URL)
    r.delete('bench:pyx:tasks', 'bench:pyx:proc')
    w = mp.get_context('fork').Process(target=worker, args=(URL,))
    w.start()
    seq = [0]
    def one(i):
        seq[0] += 1
        tid = b'%d-%d' % (seq[0], time.time_ns())
        r.lpush('bench:pyx:tasks', tid + b':%d' % i)
        _, v = r.blpop(b'bench:pyx:res:' + tid, 5)
        assert int(v) == i + 1
    def run(n):
        t = time.perf_counter()
        for i in range(n):
            one(i)
        return (time.perf_counter() - t) / n
    run(100)
    ts = sorted(run(N) for _ in range(7))
    r.lpush('bench:pyx:tasks', 'stop')
    w.join()
    print(ts[len(ts) // 2] * 1e9)
"#;

const PY_RQ: &str = r#"
import time, operator, multiprocessing as mp
from redis import Redis
from rq import Queue, SimpleWorker
def work(url):
    conn = Redis.from_url(url)
    SimpleWorker([Queue('bench-rq', connection=conn)], connection=conn).work(logging_level='ERROR')
if __name__ == '__main__':
    w = mp.get_context('fork').Process(target=work, args=(URL,))
    w.start()
    q = Queue('bench-rq', connection=Redis.from_url(URL))
    def one(i):
        job = q.enqueue(operator.add, i, 1)
        while True:
            v = job.return_value()
            if v is not None:
                break
            time.sleep(0.001)
        assert v == i + 1
    def run(n):
        t = time.perf_counter()
        for i in range(n):
            one(i)
        return (time.perf_counter() - t) / n
    run(20)
    ts = sorted(run(N) for _ in range(5))
    w.terminate(); w.join()
    print(ts[len(ts) // 2] * 1e9)
"#;

fn python(script: &str, url: &str, n: u64) -> Option<PerOp> {
    let path =
        std::env::temp_dir().join(format!("multiproc_bench_redis_{}.py", std::process::id()));
    let body = format!("URL = {url:?}\nN = {n}\n{script}");
    std::fs::write(&path, body).ok()?;
    let r = python_ns(&format!(
        "import runpy; runpy.run_path({:?}, run_name='__main__')",
        path
    ));
    let _ = std::fs::remove_file(path);
    r
}

/// The CPUs `pid` (0: this thread) may run on.
fn affinity(pid: libc::pid_t) -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(pid, std::mem::size_of_val(&set), &mut set) };
    (r == 0).then_some(set)
}

fn set_affinity(pid: libc::pid_t, set: &libc::cpu_set_t) {
    // SAFETY: `set` is a live cpu_set_t of the size passed; a failure leaves the mask as it was.
    unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(set), set) };
}

/// Runs `f` with this thread on `mine` and the server on `its` (CPU numbers), then puts both
/// masks back: a PING is ~45 µs between two vCPUs and ~12 µs on one (the scheduler hands the
/// CPU straight across), and unpinned the kernel picks either, so the baseline is shown both
/// ways.
fn pinned<T>(server: libc::pid_t, mine: usize, its: usize, f: impl FnOnce() -> T) -> T {
    let (Some(me0), Some(it0)) = (affinity(0), affinity(server)) else {
        return f();
    };
    let one = |cpu| {
        // SAFETY: as in `affinity`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked by the caller: a CPU this thread may use).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        set
    };
    set_affinity(server, &one(its));
    set_affinity(0, &one(mine));
    let r = f();
    set_affinity(0, &me0);
    set_affinity(server, &it0);
    r
}

/// Two CPUs this thread may use, if it may use two.
fn two_cpus() -> Option<(usize, usize)> {
    let set = affinity(0)?;
    // SAFETY: CPU_ISSET reads the bit array of a live cpu_set_t; `c` is below CPU_SETSIZE.
    let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
    Some((cpus.next()?, cpus.next()?))
}

fn main() {
    let _own;
    let mut server_pid = None;
    let url = match std::env::var(URL_ENV) {
        Ok(u) => u,
        Err(_) => match LocalServer::start() {
            Ok(s) => {
                let u = s.url().to_string();
                server_pid = libc::pid_t::try_from(s.pid()).ok();
                _own = s;
                u
            }
            Err(e) => {
                println!("\n## redis\nskipped: no Redis server ({e})");
                return;
            }
        },
    };
    let client = Client::open(&url).expect("the server answers");
    let n = 1_000;
    let pinger = || {
        let mut con = client.raw_connection().expect("the server answers");
        move || {
            Measure::new(3, n).per_op(|n| {
                for _ in 0..n {
                    raw::cmd("PING").query::<()>(&mut con).unwrap();
                }
            })
        }
    };

    let mut report = Report::new("redis (one client, local server, per round trip)");
    let q: Queue<u64> = Queue::open(&url, &format!("bench-{}", std::process::id())).unwrap();
    let mut con = client.raw_connection().expect("the server answers");
    let [ours, raw_same, ping] = alternate(
        5,
        [
            &mut || {
                Measure::new(3, n).per_op(|n| {
                    for i in 0..n {
                        q.put(i).unwrap();
                        std::hint::black_box(q.get().unwrap());
                        q.task_done().unwrap();
                    }
                })
            },
            &mut || {
                Measure::new(3, n).per_op(|n| {
                    for i in 0..n {
                        raw::cmd("LPUSH")
                            .arg("bench:raw:items")
                            .arg(i)
                            .query::<()>(&mut con)
                            .unwrap();
                        let v: Vec<u8> = raw::cmd("BLMOVE")
                            .arg("bench:raw:items")
                            .arg("bench:raw:processing")
                            .arg("RIGHT")
                            .arg("LEFT")
                            .arg(1)
                            .query(&mut con)
                            .unwrap();
                        raw::cmd("LREM")
                            .arg("bench:raw:processing")
                            .arg(-1)
                            .arg(v)
                            .query::<()>(&mut con)
                            .unwrap();
                    }
                })
            },
            &mut pinger(),
        ],
    );
    let mut baselines = vec![
        ("raw redis crate, same 3 commands", raw_same),
        ("raw redis crate, 3 PINGs", PerOp::from_ns(3.0 * ping.ns)),
    ];
    let py_q = python(PY_QUEUE, &url, n);
    if let Some(py) = py_q {
        baselines.insert(0, ("Python redis-py, same 3 commands", py));
    }
    report.rows("Queue put + get + task_done", ours, &baselines);

    let ns = format!("bench-{}", std::process::id());
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || Worker::new(&url).namespace(&ns).run_in_this_process())
    };
    let exec = Executor::builder(&url).namespace(&ns).build().unwrap();
    let exec_ours;
    let mut ours_exec = || {
        Measure::new(3, n).per_op(|n| {
            for i in 0..n {
                assert_eq!(exec.submit(inc, i).unwrap().result().unwrap(), i + 1);
            }
        })
    };
    let mut baselines = match (server_pid, two_cpus()) {
        (Some(server), Some((a, b))) => {
            let (mut apart, mut together) = (pinger(), pinger());
            let [ours, ping2, ping1] = alternate(
                5,
                [
                    &mut ours_exec,
                    &mut || pinned(server, a, b, &mut apart),
                    &mut || pinned(server, a, a, &mut together),
                ],
            );
            exec_ours = ours;
            vec![
                ("raw redis crate, 1 PING, two vCPUs", ping2),
                ("raw redis crate, 1 PING, one vCPU", ping1),
                (
                    "raw redis crate, 2 PINGs, two vCPUs",
                    PerOp::from_ns(2.0 * ping2.ns),
                ),
            ]
        }
        _ => {
            let [ours, ping] = alternate(5, [&mut ours_exec, &mut pinger()]);
            exec_ours = ours;
            vec![
                ("raw redis crate, 1 PING", ping),
                ("raw redis crate, 2 PINGs", PerOp::from_ns(2.0 * ping.ns)),
            ]
        }
    };
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
    if let Some(py) = python(PY_EXEC, &url, n) {
        baselines.insert(0, ("Python redis-py, same protocol", py));
    }
    match python(PY_RQ, &url, 200) {
        Some(rq) => baselines.insert(0, ("RQ enqueue + polled result", rq)),
        None => println!("(no RQ baseline: python3 with the `rq` package is missing)"),
    }
    report.rows("Executor submit + result (1 worker)", exec_ours, &baselines);
    if py_q.is_none() {
        println!("(no Python baseline: python3 with the `redis` package is missing)");
    }
}
