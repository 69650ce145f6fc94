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
//!
//! First, executor throughput: 10,000 no-op tasks in one `map` drained by 1, 2, 4 and 8 worker
//! processes, the same with batching off (a `submit` and a `result` per task, `prefetch(1)`),
//! RQ (SimpleWorker and the forking Worker) and Celery (prefork, Redis broker and backend)
//! with 4 workers where python3 imports them; rounds alternate the systems
//! (`MULTIPROC_BENCH_ROUNDS`, default 3). It prints tasks/s (median, spread), Redis commands
//! per task (`INFO commandstats`) and a text chart. `MULTIPROC_BENCH_THROUGHPUT_ONLY=1` stops
//! after it; `MULTIPROC_BENCH_CPU=1` prints the CPU time per task (this process, the worker
//! processes and the server) and skips the Python peers.

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

/// Throughput of RQ: N tasks enqueued in one pipeline, drained by W worker processes in burst
/// mode (they exit once the queue is empty). Prints tasks/s and Redis commands per task.
const PY_RQ_THROUGHPUT: &str = r#"
import time, operator, multiprocessing as mp
from redis import Redis
from rq import Queue, SimpleWorker, Worker
def calls(r):
    return sum(v['calls'] for k, v in r.info('commandstats').items())
def work(url, simple):
    conn = Redis.from_url(url)
    cls = SimpleWorker if simple else Worker
    cls([Queue('bench-rq-tp', connection=conn)], connection=conn).work(burst=True, logging_level='ERROR')
if __name__ == '__main__':
    r = Redis.from_url(URL)
    q = Queue('bench-rq-tp', connection=r)
    q.empty()
    c0 = calls(r)
    t = time.perf_counter()
    jobs = q.enqueue_many([Queue.prepare_data(operator.add, (i, 1), result_ttl=600) for i in range(N)])
    ws = [mp.get_context('fork').Process(target=work, args=(URL, SIMPLE)) for _ in range(W)]
    for w in ws: w.start()
    for w in ws: w.join()
    assert all(j.return_value() == i + 1 for i, j in enumerate(jobs))
    el = time.perf_counter() - t
    print(N / el, (calls(r) - c0) / N)
"#;

/// Throughput of Celery: a prefork worker with W processes, Redis as broker and result
/// backend; N tasks sent with `delay`, then every result got. Prints tasks/s and commands
/// per task.
const PY_CELERY_THROUGHPUT: &str = r#"
import os, sys, time, subprocess, tempfile
from redis import Redis
d = tempfile.mkdtemp()
open(os.path.join(d, 'benchtasks.py'), 'w').write(
    "from celery import Celery\napp = Celery('benchtasks', broker=%r, backend=%r)\n"
    "app.conf.task_default_queue = 'bench-celery'\n"
    "@app.task\ndef add(x, y):\n    return x + y\n" % (URL, URL))
sys.path.insert(0, d)
from benchtasks import add
def calls(r):
    return sum(v['calls'] for k, v in r.info('commandstats').items())
env = dict(os.environ, PYTHONPATH=d)
w = subprocess.Popen([sys.executable, '-m', 'celery', '-A', 'benchtasks', 'worker', '-c', str(W),
                      '--pool', 'prefork', '-Q', 'bench-celery', '--loglevel', 'ERROR', '--without-gossip',
                      '--without-mingle', '--without-heartbeat'], env=env, cwd=d,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    assert add.delay(1, 1).get(timeout=60) == 2
    r = Redis.from_url(URL)
    c0 = calls(r)
    t = time.perf_counter()
    rs = [add.delay(i, 1) for i in range(N)]
    assert [x.get(timeout=120) for x in rs] == [i + 1 for i in range(N)]
    el = time.perf_counter() - t
    print(N / el, (calls(r) - c0) / N)
finally:
    w.terminate(); w.wait()
"#;

/// Runs a Python throughput script: (tasks/s, commands per task), `None` when it fails.
fn python_throughput(
    script: &str,
    url: &str,
    n: u64,
    workers: usize,
    simple: bool,
) -> Option<(f64, f64)> {
    let path = std::env::temp_dir().join(format!(
        "multiproc_bench_redis_tp_{}.py",
        std::process::id()
    ));
    let body = format!(
        "URL = {url:?}\nN = {n}\nW = {workers}\nSIMPLE = {}\n{script}",
        if simple { "True" } else { "False" }
    );
    std::fs::write(&path, body).ok()?;
    let out = std::process::Command::new("python3")
        .arg(&path)
        .output()
        .ok()?;
    let _ = std::fs::remove_file(path);
    if !out.status.success() {
        eprintln!(
            "python throughput baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}

/// Every command the server has run so far (the sum of `INFO commandstats` calls).
fn command_count(con: &mut raw::Connection) -> u64 {
    let text: String = raw::cmd("INFO")
        .arg("commandstats")
        .query(con)
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// multiproc's Executor: `n` no-op tasks in one `map`, drained by `workers` worker processes
/// (started before and warmed up, not timed). Answers (tasks/s, commands per task).
/// With `batched` false: one `submit` and one `result` per task, and workers that take one
/// task per round trip (`prefetch(1)`): the same build with its batching off.
fn ours_throughput(url: &str, workers: usize, n: u64, batched: bool) -> (f64, f64) {
    let ns = format!("bench-tp-{}-{workers}-{}", std::process::id(), n);
    let runner = {
        let (url, ns) = (url.to_string(), ns.clone());
        std::thread::spawn(move || {
            Worker::new(&url)
                .namespace(&ns)
                .processes(workers)
                .prefetch(if batched { 16 } else { 1 })
                .run()
        })
    };
    let exec = Executor::builder(url).namespace(&ns).build().unwrap();
    let mut con = Client::open(url).unwrap().raw_connection().unwrap();
    let cpu0 = cpu_seconds(&mut con);
    // Every worker process up and polling.
    assert_eq!(exec.map(inc, 0..200).unwrap().len(), 200);
    let c0 = command_count(&mut con);
    let t = std::time::Instant::now();
    let got = if batched {
        exec.map(inc, 0..n).unwrap()
    } else {
        let futures: Vec<_> = (0..n).map(|i| exec.submit(inc, i).unwrap()).collect();
        futures.into_iter().map(|f| f.result().unwrap()).collect()
    };
    let el = t.elapsed().as_secs_f64();
    let cmds = command_count(&mut con) - c0;
    assert!(got.iter().enumerate().all(|(i, &v)| v == i as u64 + 1));
    exec.shutdown_workers().unwrap();
    runner.join().unwrap().unwrap();
    let cpu = cpu_seconds(&mut con) - cpu0;
    if std::env::var("MULTIPROC_BENCH_CPU").is_ok() {
        // Everything the run cost in CPU (warm-up, start and stop of the workers included),
        // per task of the timed part: what bounds tasks/s on a machine of this many CPUs.
        println!(
            "cpu: {workers} workers, batched {batched}: {:.1} us of CPU per task ({:.0} tasks/s per CPU)",
            cpu / n as f64 * 1e6,
            n as f64 / cpu
        );
    }
    (n as f64 / el, cmds as f64 / n as f64)
}

/// CPU seconds used so far by this process, its reaped children and the server (`INFO cpu`).
fn cpu_seconds(con: &mut raw::Connection) -> f64 {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the plain struct passed; all zeroes is a valid value of it.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a live rusage.
        if unsafe { libc::getrusage(who, &mut u) } == 0 {
            total += tv(u.ru_utime) + tv(u.ru_stime);
        }
    }
    let text: String = raw::cmd("INFO").arg("cpu").query(con).unwrap_or_default();
    for key in ["used_cpu_sys:", "used_cpu_user:"] {
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    total
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The executor throughput rows: multiproc with 1, 2, 4, 8 worker processes against RQ
/// (SimpleWorker, forking Worker) and Celery (prefork) with 4, on the same server, rounds
/// alternated; medians, spread, a text chart and commands per task.
fn throughput(url: &str) {
    let rounds: usize = std::env::var("MULTIPROC_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let n = 10_000;
    let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let add =
        |rows: &mut Vec<(String, Vec<f64>, Vec<f64>)>, name: String, r: Option<(f64, f64)>| {
            let Some((tps, cpt)) = r else { return };
            match rows.iter_mut().find(|(n, _, _)| *n == name) {
                Some(row) => {
                    row.1.push(tps);
                    row.2.push(cpt);
                }
                None => rows.push((name, vec![tps], vec![cpt])),
            }
        };
    let python = std::env::var("MULTIPROC_BENCH_CPU").is_err()
        && std::process::Command::new("python3")
            .args(["-c", "import redis, rq"])
            .status()
            .is_ok_and(|s| s.success());
    let celery = python
        && std::process::Command::new("python3")
            .args(["-c", "import celery"])
            .status()
            .is_ok_and(|s| s.success());
    for _ in 0..rounds {
        for workers in [1, 2, 4, 8] {
            add(
                &mut rows,
                format!("multiproc Executor, {workers} workers"),
                Some(ours_throughput(url, workers, n, true)),
            );
        }
        add(
            &mut rows,
            "multiproc, batching off, 4 workers".into(),
            Some(ours_throughput(url, 4, n, false)),
        );
        if python {
            add(
                &mut rows,
                "RQ SimpleWorker, 4 workers".into(),
                python_throughput(PY_RQ_THROUGHPUT, url, 2000, 4, true),
            );
            add(
                &mut rows,
                "RQ Worker (forking), 4 workers".into(),
                python_throughput(PY_RQ_THROUGHPUT, url, 400, 4, false),
            );
        }
        if celery {
            add(
                &mut rows,
                "Celery prefork, 4 workers".into(),
                python_throughput(PY_CELERY_THROUGHPUT, url, 2000, 4, false),
            );
        }
    }
    if !python {
        println!("(no RQ rows: python3 with `redis` and `rq` is missing)");
    }
    if !celery {
        println!("(no Celery rows: python3 with `celery` is missing)");
    }
    println!(
        "\n## redis executor throughput (10,000 no-op tasks in one map; peers 400-2,000; medians of {rounds} alternated rounds)"
    );
    println!("| system | tasks/s (median) | spread | Redis commands/task |");
    println!("|---|---:|---:|---:|");
    let best = rows.iter().map(|r| median(r.1.clone())).fold(0.0, f64::max);
    for (name, tps, cpt) in &rows {
        let lo = tps.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = tps.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.0} | {lo:.0}–{hi:.0} | {:.2} |",
            median(tps.clone()),
            median(cpt.clone())
        );
    }
    // The same rows as time per task, for the report's table (ratio: ours / peer's).
    let per_task = |name: &str| {
        rows.iter()
            .find(|r| r.0 == name)
            .map(|r| PerOp::from_ns(1e9 / median(r.1.clone())))
    };
    let mut report = Report::new(
        "redis executor throughput (no-op tasks drained by worker processes, time per task)",
    );
    for workers in [1, 2, 4, 8] {
        let Some(ours) = per_task(&format!("multiproc Executor, {workers} workers")) else {
            continue;
        };
        let figure = format!("Executor map, {workers} workers");
        let peers: Vec<(&str, PerOp)> = if workers == 4 {
            [
                "multiproc, batching off, 4 workers",
                "RQ SimpleWorker, 4 workers",
                "RQ Worker (forking), 4 workers",
                "Celery prefork, 4 workers",
            ]
            .into_iter()
            .filter_map(|name| Some((name, per_task(name)?)))
            .collect()
        } else {
            Vec::new()
        };
        if peers.is_empty() {
            report.figure(&figure, ours);
        } else {
            report.rows(&figure, ours, &peers);
        }
    }
    println!("\ntasks/s (each # is {:.0}):", best / 50.0);
    for (name, tps, _) in &rows {
        let m = median(tps.clone());
        println!(
            "{name:>32} {:<50} {m:.0}",
            "#".repeat((m / best * 50.0).round() as usize)
        );
    }
}

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
    throughput(&url);
    if std::env::var("MULTIPROC_BENCH_THROUGHPUT_ONLY").is_ok() {
        return;
    }
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
