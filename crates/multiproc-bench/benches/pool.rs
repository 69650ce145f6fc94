//! Pools and executors: per-task overhead of `Pool(2).map` of 200,000 `x + 1` tasks (default
//! chunk size) and of 20,000 with chunk size 1 (also with a time limit on every task, against
//! the same map without), `ProcessPoolExecutor` submit + result of 20,000
//! tasks, and `ThreadPoolExecutor` submit of 100,000 closures against rayon's `spawn` and
//! `std::thread::scope` chunks; each against Python's same call when `python3` is present, and
//! the executor also against procspawn's `Pool` (the Rust crate's process pool).

use multiproc::futures::{ProcessPoolExecutor, ThreadPoolExecutor};
use multiproc::pool::Pool;
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn inc(x: u64) -> u64 {
    x + 1
}

/// Runs a Python script (as `__main__`, so process pools work) that prints ns per task.
fn python(name: &str, body: &str) -> Option<PerOp> {
    let path = std::env::temp_dir().join(format!("multiproc_bench_pool_{name}.py"));
    std::fs::write(&path, body).ok()?;
    let r = python_ns(&format!(
        "import runpy; runpy.run_path({:?}, run_name='__main__')",
        path
    ));
    let _ = std::fs::remove_file(path);
    r
}

const PY_MEDIAN: &str = "
def median(f, n, samples):
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) / n)
    times.sort()
    return times[len(times) // 2] * 1e9
";

fn python_pool_map(n: u64, chunksize: Option<u64>) -> Option<PerOp> {
    let call = match chunksize {
        Some(c) => format!("p.map(inc, data, chunksize={c})"),
        None => "p.map(inc, data)".to_owned(),
    };
    python(
        &format!("map_{n}"),
        &format!(
            "import time, multiprocessing as mp\n{PY_MEDIAN}\ndef inc(x):\n    return x + 1\n\
             if __name__ == '__main__':\n    data = list(range({n}))\n    \
             with mp.get_context('fork').Pool(2) as p:\n        p.map(inc, range(100))\n        \
             print(median(lambda: {call}, {n}, 5))\n"
        ),
    )
}

fn python_ppe(n: u64) -> Option<PerOp> {
    python(
        "ppe",
        &format!(
            "import time, multiprocessing as mp\nfrom concurrent.futures import ProcessPoolExecutor\n\
             {PY_MEDIAN}\ndef inc(x):\n    return x + 1\n\
             def run(ex):\n    fs = [ex.submit(inc, i) for i in range({n})]\n    for f in fs: f.result()\n\
             if __name__ == '__main__':\n    \
             with ProcessPoolExecutor(2, mp_context=mp.get_context('fork')) as ex:\n        \
             ex.submit(inc, 1).result()\n        print(median(lambda: run(ex), {n}, 3))\n"
        ),
    )
}

fn python_tpe(n: u64) -> Option<PerOp> {
    python(
        "tpe",
        &format!(
            "import time\nfrom concurrent.futures import ThreadPoolExecutor, wait\n\
             def f():\n    pass\n\
             if __name__ == '__main__':\n    times = []\n    \
             with ThreadPoolExecutor(2) as ex:\n        for _ in range(5):\n            \
             t = time.perf_counter()\n            fs = [ex.submit(f) for _ in range({n})]\n            \
             times.append((time.perf_counter() - t) / {n})\n            wait(fs)\n    \
             times.sort()\n    print(times[len(times) // 2] * 1e9)\n"
        ),
    )
}

/// The baseline every pool figure can be held against when Python is missing: the same work
/// done in this thread.
fn sequential(n: u64) -> PerOp {
    Measure::new(9, n).per_op(|n| {
        let v: Vec<u64> = (0..n).map(|x| inc(std::hint::black_box(x))).collect();
        std::hint::black_box(v);
    })
}

/// procspawn's `Pool` of 2 processes: spawn + join of `n` tasks of `x + 1`, per task.
fn procspawn_pool(n: u64) -> PerOp {
    let pool = procspawn::Pool::new(2).unwrap();
    pool.spawn(1u64, inc).join().unwrap();
    Measure::new(5, n).per_op(|n| {
        let handles: Vec<_> = (0..n).map(|i| pool.spawn(i, inc)).collect();
        for h in handles {
            h.join().unwrap();
        }
    })
}

/// The cost of per-task time limits (issue 31: each task reports its start, and the
/// supervisor keeps its deadline): the same chunksize-1 map on a pool whose every task has a
/// limit and on one without, alternated in one run.
fn time_limit_cost(report: &mut Report, plain: &Pool) {
    let limited = Pool::builder()
        .processes(2)
        .task_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    limited.map(inc, 0..1000).unwrap();
    let n = 20_000;
    let map = |pool: &Pool| {
        Measure::new(3, n).per_op(|n| {
            let out = pool.map_chunked(inc, 0..n, 1).unwrap();
            assert_eq!(out.len(), n as usize);
        })
    };
    let [with, without] =
        multiproc_bench::alternate(5, [&mut || map(&limited), &mut || map(plain)]);
    report.row(
        "Pool.map, 20,000 x+1, chunksize 1, every task time-limited",
        with,
        "the same map without time limits",
        without,
    );
}

fn main() {
    // procspawn's pool workers start here, and serve inside `init`.
    procspawn::init();
    if std::env::var_os("MULTIPROC_BENCH_THREADS_ONLY").is_some() {
        return thread_pools();
    }
    let mut report = Report::new("process pools (2 workers, per task)");
    let pool = Pool::new(2).unwrap();
    pool.map(inc, 0..1000).unwrap();

    let n = 200_000;
    let data: Vec<u64> = (0..n).collect();
    let ours = Measure::new(9, n).per_op(|n| {
        let out = pool.map(inc, data[..n as usize].to_vec()).unwrap();
        assert_eq!(out.len(), n as usize);
    });
    match python_pool_map(n, None) {
        Some(py) => report.row(
            "Pool.map, 200,000 x+1, default chunksize",
            ours,
            "Python Pool(2).map",
            py,
        ),
        None => report.row(
            "Pool.map, 200,000 x+1, default chunksize",
            ours,
            "same map in one thread",
            sequential(n),
        ),
    }

    let n = 20_000;
    let ours = Measure::new(7, n).per_op(|n| {
        let out = pool.map_chunked(inc, 0..n, 1).unwrap();
        assert_eq!(out.len(), n as usize);
    });
    if let Some(py) = python_pool_map(n, Some(1)) {
        report.row(
            "Pool.map, 20,000 x+1, chunksize 1",
            ours,
            "Python Pool(2).map(chunksize=1)",
            py,
        );
    } else {
        report.figure("Pool.map, 20,000 x+1, chunksize 1", ours);
    }
    time_limit_cost(&mut report, &pool);
    drop(pool);

    let ex = ProcessPoolExecutor::new(2).unwrap();
    ex.submit(inc, 1).unwrap().result().unwrap();
    let ours = Measure::new(7, 20_000).per_op(|n| {
        let fs: Vec<_> = (0..n).map(|i| ex.submit(inc, i).unwrap()).collect();
        for f in fs {
            f.result().unwrap();
        }
    });
    if let Some(py) = python_ppe(20_000) {
        report.row(
            "ProcessPoolExecutor submit+result, 20,000",
            ours,
            "Python ProcessPoolExecutor(2)",
            py,
        );
    } else {
        report.figure("ProcessPoolExecutor submit+result, 20,000", ours);
    }
    report.row(
        "ProcessPoolExecutor submit+result, 20,000",
        ours,
        "procspawn Pool(2) spawn+join",
        procspawn_pool(2_000),
    );
    drop(ex);

    thread_pools();
}

/// `ThreadPoolExecutor` submit against rayon's `spawn` (alternated rounds, each figure's median
/// round), `std::thread::scope` and Python. `MULTIPROC_BENCH_THREADS_ONLY=1` runs only these.
fn thread_pools() {
    let mut report = Report::new("thread pools (2 threads, submit of 100,000 closures)");
    let n = 100_000;
    let tpe = ThreadPoolExecutor::new(2);
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let [ours, rayon] = alternate(
        7,
        [
            &mut || {
                Measure::new(3, n).per_op_timed(|n| {
                    let start = Instant::now();
                    let fs: Vec<_> = (0..n)
                        .map(|i| tpe.submit(move || std::hint::black_box(i)).unwrap())
                        .collect();
                    let took = start.elapsed();
                    for f in fs {
                        f.result().unwrap();
                    }
                    took
                })
            },
            &mut || {
                Measure::new(3, n).per_op_timed(|n| {
                    let left = Arc::new(AtomicU64::new(n));
                    let start = Instant::now();
                    for i in 0..n {
                        let left = Arc::clone(&left);
                        rayon_pool.spawn(move || {
                            std::hint::black_box(i);
                            left.fetch_sub(1, Ordering::Release);
                        });
                    }
                    let took = start.elapsed();
                    while left.load(Ordering::Acquire) != 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    took
                })
            },
        ],
    );
    report.row(
        "ThreadPoolExecutor.submit",
        ours,
        "rayon ThreadPool::spawn",
        rayon,
    );
    let scope = Measure::new(9, n).per_op(|n| {
        let jobs: Vec<Box<dyn FnOnce() -> u64 + Send>> = (0..n)
            .map(|i| Box::new(move || std::hint::black_box(i)) as Box<dyn FnOnce() -> u64 + Send>)
            .collect();
        let half = jobs.len() / 2;
        let mut jobs = jobs;
        let second = jobs.split_off(half);
        std::thread::scope(|s| {
            for chunk in [jobs, second] {
                s.spawn(move || chunk.into_iter().map(|j| j()).sum::<u64>());
            }
        });
    });
    report.row(
        "ThreadPoolExecutor.submit",
        ours,
        "std::thread::scope, 2 chunks (run)",
        scope,
    );
    if let Some(py) = python_tpe(n) {
        report.row(
            "ThreadPoolExecutor.submit",
            ours,
            "Python ThreadPoolExecutor(2).submit",
            py,
        );
    }
}
