//! Manager proxies (issue 14's figures): the round trip of a dict get of a u64 through a
//! proxy, and 10^5 dict inserts, against Python's `multiprocessing.Manager()` doing the same
//! in the same run (skipped, with a note, when `python3` is missing), and against a bare
//! [`Pipe`](multiproc::Pipe) round trip, the transport underneath (the two alternated); and
//! dict gets from 4 threads of one process (each thread has its own connection) against 1
//! thread, alternated too (issue 26).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use multiproc::managers::DictProxy;
use multiproc::{Connection, Manager, Pipe, Process, StartMethod};
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns};

const PY_GET: &str = r#"
import time
from multiprocessing import Manager
with Manager() as m:
    d = m.dict(); d[1] = 1
    for _ in range(500): d.get(1)
    n, runs = 3000, []
    for _ in range(3):
        t = time.perf_counter_ns()
        for _ in range(n): d.get(1)
        runs.append((time.perf_counter_ns() - t) / n)
    runs.sort(); print(runs[1])
"#;

const PY_INSERTS: &str = r#"
import time
from multiprocessing import Manager
with Manager() as m:
    d = m.dict()
    for i in range(500): d[i] = i
    d.clear()
    n = 100_000
    t = time.perf_counter_ns()
    for i in range(n): d[i] = i
    print((time.perf_counter_ns() - t) / n)
"#;

fn pipe_echo(c: Connection<u64>) {
    while let Ok(v) = c.recv() {
        c.send(v + 1).unwrap();
    }
}

fn rt_pipe(ops: u64) -> PerOp {
    let (a, b) = Pipe::duplex().unwrap();
    let child = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(pipe_echo, b)
        .unwrap();
    let r = Measure::new(3, ops).per_op(|n| {
        for i in 0..n {
            a.send(i).unwrap();
            black_box(a.recv().unwrap());
        }
    });
    drop(a);
    child.join().unwrap();
    r
}

/// `ops` dict gets shared out among `threads` threads of this process: the time from their
/// common start to the last one's end.
fn threaded_gets(d: &DictProxy<u64, u64>, threads: u64, ops: u64) -> Duration {
    let start = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start.wait();
                for _ in 0..ops / threads {
                    black_box(d.get(&1).unwrap());
                }
            });
        }
        start.wait();
        let t = Instant::now();
        // The scope's end joins every thread.
        t
    })
    .elapsed()
}

fn main() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u64, u64>().unwrap();
    d.insert(1, 1).unwrap();
    // The get and its transport alternate, so that their ratio compares like with like on a
    // machine whose load drifts.
    let [get, pipe] = alternate(
        5,
        [
            &mut || {
                Measure::new(3, 20_000).per_op(|n| {
                    for _ in 0..n {
                        black_box(d.get(&1).unwrap());
                    }
                })
            },
            &mut || rt_pipe(20_000),
        ],
    );
    let inserts = Measure::new(3, 100_000).per_op_timed(|n| {
        let d = manager.dict::<u64, u64>().unwrap();
        let t = Instant::now();
        for i in 0..n {
            d.insert(i, i).unwrap();
        }
        t.elapsed()
    });
    let threaded = |threads: u64| {
        let d = &d;
        move || Measure::new(3, 20_000).per_op_timed(|n| threaded_gets(d, threads, n))
    };
    let [one_thread, four_threads] = alternate(5, [&mut threaded(1), &mut threaded(4)]);
    manager.shutdown().unwrap();

    let mut report = Report::new("managers: proxy calls to the server process");
    let py_get = python_ns(PY_GET);
    let py_ins = python_ns(PY_INSERTS);
    if py_get.is_none() {
        println!("(python3 not found or failed: the Python Manager rows are skipped)");
    }
    let mut base = vec![("Pipe send+recv round trip (transport)", pipe)];
    base.extend(py_get.map(|p| ("Python multiprocessing.Manager dict", p)));
    report.rows("Manager dict get round trip (u64)", get, &base);
    match py_ins {
        Some(p) => report.row(
            "Manager dict insert, 10^5 (per insert)",
            inserts,
            "Python multiprocessing.Manager dict",
            p,
        ),
        None => report.figure("Manager dict insert, 10^5 (per insert)", inserts),
    }
    // Below 1: the 4 threads make more calls per second than 1 (1/ratio times as many).
    report.row(
        "Manager dict get, 4 threads of one process",
        four_threads,
        "the same gets from 1 thread",
        one_thread,
    );
}
