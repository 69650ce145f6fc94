//! Awaited queues (issue 16's figures): a u64 round trip between processes where the parent
//! awaits `put_async` and `get_async` on a current-thread tokio runtime, against the blocking
//! `put` + `get` round trip (alternated in the same run, goal: at most 3x) and against Python's
//! `asyncio` awaiting a `multiprocessing.Queue` through `loop.run_in_executor` (goal: at least
//! 20x faster; skipped, with a note, when `python3` is missing). The echo child is the same
//! blocking loop for all three, started with `Fork` outside the timed part.
//!
//! Parked tasks must not spin a core: the CPU time the whole process uses per millisecond
//! while 100 tasks await 100 empty queues is measured against 100 threads blocked in `get`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use multiproc::{Event, Process, Queue, StartMethod};
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns};

const PY_AWAITED: &str = r#"
import asyncio, multiprocessing as mp, time
def echo(a, b):
    while True:
        v = a.get()
        if v is None: return
        b.put(v + 1)
async def rounds(a, b):
    loop = asyncio.get_running_loop()
    for i in range(200): a.put(i); await loop.run_in_executor(None, b.get)
    n, ts = 2000, []
    for _ in range(5):
        t = time.perf_counter_ns()
        for i in range(n):
            a.put(i)
            await loop.run_in_executor(None, b.get)
        ts.append((time.perf_counter_ns() - t) / n)
    ts.sort(); return ts[2]
if __name__ == '__main__':
    mp.set_start_method('fork')
    a, b = mp.Queue(), mp.Queue()
    p = mp.Process(target=echo, args=(a, b)); p.start()
    r = asyncio.run(rounds(a, b))
    a.put(None); p.join()
    print(r)
"#;

fn queue_echo((req, resp): (Queue<u64>, Queue<u64>)) {
    while let Ok(v) = req.get() {
        resp.put(v + 1).unwrap();
    }
}

/// One round of `ops` round trips with a fresh echo child; `awaited` picks the async forms.
fn round_trip(ops: u64, awaited: bool) -> PerOp {
    let (req, resp) = (Queue::new().unwrap(), Queue::new().unwrap());
    let child = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(queue_echo, (req.clone(), resp.clone()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = Measure::new(3, ops).per_op(|n| {
        if awaited {
            runtime.block_on(async {
                for i in 0..n {
                    req.put_async(i).await.unwrap();
                    black_box(resp.get_async().await.unwrap());
                }
            });
        } else {
            for i in 0..n {
                req.put(i).unwrap();
                black_box(resp.get().unwrap());
            }
        }
    });
    drop((req, resp));
    child.join().unwrap();
    r
}

/// CPU time this process (all its threads) has used so far.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A child that holds the queues (so they stay open), waits for `go`, then feeds one item to
/// each.
fn feed_after((go, queues): (Event, Vec<Queue<u64>>)) {
    go.wait();
    for q in &queues {
        q.put(1).unwrap();
    }
}

/// ns of CPU per ms of wall time while `WAITERS` waiters wait 200 ms on empty queues, awaited
/// (`awaited`) or blocked threads.
fn idle_cpu(awaited: bool) -> PerOp {
    const WAITERS: usize = 100;
    let queues: Vec<Queue<u64>> = (0..WAITERS).map(|_| Queue::new().unwrap()).collect();
    let go = Event::new().unwrap();
    let child = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(feed_after, (go.clone(), queues.clone()))
        .unwrap();
    let window = Duration::from_millis(200);
    let measure = || {
        // Let every waiter get past its spin and park first.
        std::thread::sleep(Duration::from_millis(20));
        let (cpu, wall) = (process_cpu(), Instant::now());
        std::thread::sleep(window);
        let per_ms = (process_cpu() - cpu).as_nanos() as f64 / wall.elapsed().as_millis() as f64;
        go.set();
        per_ms
    };
    let per_ms = if awaited {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let tasks: Vec<_> = queues
            .iter()
            .map(|q| {
                let q = q.clone();
                runtime.spawn(async move { q.get_async().await.unwrap() })
            })
            .collect();
        let per_ms = measure();
        runtime.block_on(async {
            for t in tasks {
                assert_eq!(t.await.unwrap(), 1);
            }
        });
        per_ms
    } else {
        let threads: Vec<_> = queues
            .iter()
            .map(|q| {
                let q = q.clone();
                std::thread::spawn(move || q.get().unwrap())
            })
            .collect();
        let per_ms = measure();
        for t in threads {
            assert_eq!(t.join().unwrap(), 1);
        }
        per_ms
    };
    child.join().unwrap();
    PerOp::from_ns(per_ms)
}

fn main() {
    let mut report = Report::new("async: awaited queue round trip between processes (u64)");
    let [awaited, blocking] = alternate(
        5,
        [&mut || round_trip(20_000, true), &mut || {
            round_trip(20_000, false)
        }],
    );
    let script =
        std::env::temp_dir().join(format!("multiproc_bench_async_{}.py", std::process::id()));
    let python = std::fs::write(&script, PY_AWAITED).ok().and_then(|()| {
        python_ns(&format!(
            "import runpy; runpy.run_path({script:?}, run_name='__main__')"
        ))
    });
    let _ = std::fs::remove_file(&script);
    let mut base = vec![("blocking put+get round trip", blocking)];
    match python {
        Some(p) => base.push(("Python asyncio + run_in_executor(mp.Queue.get)", p)),
        None => println!("(python3 not found or failed: the Python asyncio row is skipped)"),
    }
    report.rows("awaited put_async+get_async round trip", awaited, &base);

    let mut report = Report::new("async: CPU used while 100 waiters wait on empty queues");
    let [parked, blocked] = alternate(3, [&mut || idle_cpu(true), &mut || idle_cpu(false)]);
    report.row(
        "100 awaited get_async, CPU ns per ms waited",
        parked,
        "100 threads blocked in get",
        blocked,
    );
}
