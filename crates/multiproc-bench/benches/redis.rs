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

fn main() {
    let _own;
    let url = match std::env::var(URL_ENV) {
        Ok(u) => u,
        Err(_) => match LocalServer::start() {
            Ok(s) => {
                let u = s.url().to_string();
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
                        q.put(&i).unwrap();
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
    let [ours, ping] = alternate(
        5,
        [
            &mut || {
                Measure::new(3, n).per_op(|n| {
                    for i in 0..n {
                        assert_eq!(exec.submit(inc, i).unwrap().result().unwrap(), i + 1);
                    }
                })
            },
            &mut pinger(),
        ],
    );
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
    let mut baselines = vec![
        ("raw redis crate, 1 PING", ping),
        ("raw redis crate, 2 PINGs", PerOp::from_ns(2.0 * ping.ns)),
    ];
    if let Some(py) = python(PY_EXEC, &url, n) {
        baselines.insert(0, ("Python redis-py, same protocol", py));
    }
    match python(PY_RQ, &url, 200) {
        Some(rq) => baselines.insert(0, ("RQ enqueue + polled result", rq)),
        None => println!("(no RQ baseline: python3 with the `rq` package is missing)"),
    }
    report.rows("Executor submit + result (1 worker)", ours, &baselines);
    if py_q.is_none() {
        println!("(no Python baseline: python3 with the `redis` package is missing)");
    }
}
