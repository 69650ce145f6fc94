//! Thread toolbox benchmarks (`cargo xtask bench sync`): every row measures multiproc and its
//! baseline in the same run. Goals: uncontended Lock ≤ 1.1× parking_lot, Queue throughput
//! ≥ 0.7× a bounded crossbeam channel, Thread spawn+join ≤ 1.2× std.

use multiproc_bench::{BenchLock, Measure, PerOp, Report, python_ns, uncontended};
use multiproc_sync::queue::Queue;
use multiproc_sync::{Condition, Event, Lock, Thread};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn hammer<L: BenchLock + Send + Sync + 'static>(l: L) -> PerOp {
    let l = Arc::new(l);
    Measure::new(7, 200_000).per_op_timed(|n| {
        let l2 = l.clone();
        let start = Instant::now();
        let h = std::thread::spawn(move || {
            for i in 0..n / 2 {
                l2.with(|| {
                    black_box(i);
                });
            }
        });
        for i in 0..n / 2 {
            l.with(|| {
                black_box(i);
            });
        }
        h.join().unwrap();
        start.elapsed()
    })
}

/// Two threads hand a turn back and forth `n` times through `ping`/`pong` primitives.
fn ping_pong(
    n: u64,
    ping: impl Fn(u64) + Send + 'static,
    pong: impl Fn(u64) + Send + 'static,
) -> Duration {
    let start = Instant::now();
    let h = std::thread::spawn(move || {
        for i in 0..n {
            pong(i);
        }
    });
    for i in 0..n {
        ping(i);
    }
    h.join().unwrap();
    start.elapsed()
}

fn event_ping_pong() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let a = Arc::new((Event::new(), Event::new()));
        let b = a.clone();
        ping_pong(
            n,
            move |_| {
                a.0.set();
                a.1.wait();
                a.1.clear();
            },
            move |_| {
                b.0.wait();
                b.0.clear();
                b.1.set();
            },
        )
    })
}

fn condition_ping_pong() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let a = Arc::new(Condition::with_value(0u64));
        let b = a.clone();
        ping_pong(
            n,
            move |i| {
                let mut g = a.acquire();
                *g = 2 * i + 1;
                g.notify(1);
                while *g != 2 * i + 2 {
                    g.wait();
                }
            },
            move |i| {
                let mut g = b.acquire();
                while *g != 2 * i + 1 {
                    g.wait();
                }
                *g = 2 * i + 2;
                g.notify(1);
            },
        )
    })
}

fn std_condvar_ping_pong() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let a = Arc::new((std::sync::Mutex::new(0u64), std::sync::Condvar::new()));
        let b = a.clone();
        ping_pong(
            n,
            move |i| {
                let mut g = a.0.lock().unwrap();
                *g = 2 * i + 1;
                a.1.notify_one();
                while *g != 2 * i + 2 {
                    g = a.1.wait(g).unwrap();
                }
            },
            move |i| {
                let mut g = b.0.lock().unwrap();
                while *g != 2 * i + 1 {
                    g = b.1.wait(g).unwrap();
                }
                *g = 2 * i + 2;
                b.1.notify_one();
            },
        )
    })
}

const CAP: usize = 1024;

fn queue_throughput() -> PerOp {
    Measure::new(7, 1_000_000).per_op_timed(|n| {
        let q = Arc::new(Queue::new(CAP));
        let q2 = q.clone();
        let start = Instant::now();
        let h = std::thread::spawn(move || {
            for _ in 0..n {
                black_box(q2.get().unwrap());
            }
        });
        for i in 0..n {
            q.put(i).unwrap();
        }
        h.join().unwrap();
        start.elapsed()
    })
}

fn crossbeam_throughput() -> PerOp {
    Measure::new(7, 1_000_000).per_op_timed(|n| {
        let (tx, rx) = crossbeam_channel::bounded(CAP);
        let start = Instant::now();
        let h = std::thread::spawn(move || {
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
        });
        for i in 0..n {
            tx.send(i).unwrap();
        }
        h.join().unwrap();
        start.elapsed()
    })
}

fn queue_ping_pong() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let a = Arc::new((Queue::new(1), Queue::new(1)));
        let b = a.clone();
        ping_pong(
            n,
            move |i| {
                a.0.put(i).unwrap();
                black_box(a.1.get().unwrap());
            },
            move |_| {
                let x = b.0.get().unwrap();
                b.1.put(x).unwrap();
            },
        )
    })
}

fn crossbeam_ping_pong() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let (tx1, rx1) = crossbeam_channel::bounded(1);
        let (tx2, rx2) = crossbeam_channel::bounded(1);
        ping_pong(
            n,
            move |i| {
                tx1.send(i).unwrap();
                black_box(rx2.recv().unwrap());
            },
            move |_| {
                let x = rx1.recv().unwrap();
                tx2.send(x).unwrap();
            },
        )
    })
}

fn main() {
    let mut r = Report::new("sync");
    let ours = uncontended(&Lock::new());
    r.row(
        "Lock acquire+release, uncontended",
        ours,
        "parking_lot::Mutex",
        uncontended(&parking_lot::Mutex::new(())),
    );
    r.row(
        "Lock acquire+release, uncontended",
        ours,
        "std::sync::Mutex",
        uncontended(&std::sync::Mutex::new(())),
    );
    let ours = hammer(Lock::new());
    r.row(
        "Lock, two threads hammering (per op)",
        ours,
        "parking_lot::Mutex",
        hammer(parking_lot::Mutex::new(())),
    );
    r.row(
        "Lock, two threads hammering (per op)",
        ours,
        "std::sync::Mutex",
        hammer(std::sync::Mutex::new(())),
    );
    let base = std_condvar_ping_pong();
    r.row(
        "Event ping-pong (round trip)",
        event_ping_pong(),
        "std Mutex+Condvar pair",
        base,
    );
    r.row(
        "Condition ping-pong (round trip)",
        condition_ping_pong(),
        "std Mutex+Condvar pair",
        base,
    );
    r.row(
        "queue::Queue one-way throughput (per item)",
        queue_throughput(),
        "crossbeam bounded(1024)",
        crossbeam_throughput(),
    );
    r.row(
        "queue::Queue ping-pong (round trip)",
        queue_ping_pong(),
        "crossbeam bounded(1)",
        crossbeam_ping_pong(),
    );
    let spawn = Measure::new(9, 500);
    let ours = spawn.per_op(|n| {
        for i in 0..n {
            black_box(Thread::spawn(move || i).unwrap().join().unwrap());
        }
    });
    let std_t = spawn.per_op(|n| {
        for i in 0..n {
            black_box(std::thread::spawn(move || i).join().unwrap());
        }
    });
    r.row("Thread spawn+join", ours, "std::thread::spawn+join", std_t);
    if let Some(py) = python_ns(
        "import threading,time\nn=2000\nt=time.perf_counter()\nfor _ in range(n):\n  th=threading.Thread(target=lambda:None); th.start(); th.join()\nprint((time.perf_counter()-t)/n*1e9)",
    ) {
        r.row("Thread spawn+join", ours, "Python threading start+join", py);
    }
}
