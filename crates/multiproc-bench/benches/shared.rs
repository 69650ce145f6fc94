//! Process-shared state benchmarks (`cargo xtask bench shared`): every row measures multiproc
//! and its baseline in the same run. Goals: uncontended process `Lock` ≤ 1.5× the thread
//! `Lock`; two processes incrementing a `Value` under its lock ≤ 250 ns per increment (10×
//! faster than Python's `multiprocessing.Value`); `Event` ping-pong between two processes
//! ≤ 3× a raw shared-memory spin round trip.

use multiproc::{Barrier, Event, Lock, Process, StartMethod, Value};
use multiproc_bench::{BenchLock, Measure, PerOp, Report, alternate, python_ns, uncontended};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A robust, process-shared pthread mutex in an anonymous shared mapping (what C programs
/// use for the same job).
struct PthreadRobust {
    m: *mut libc::pthread_mutex_t,
}

impl PthreadRobust {
    fn new() -> Self {
        // SAFETY: a fresh shared anonymous mapping large enough for one mutex, initialised
        // with a process-shared, robust attribute before any use.
        unsafe {
            let m = libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<libc::pthread_mutex_t>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
            .cast::<libc::pthread_mutex_t>();
            assert!(m.cast() != libc::MAP_FAILED);
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(m, &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            PthreadRobust { m }
        }
    }
}

impl BenchLock for PthreadRobust {
    #[inline]
    fn with(&self, f: impl FnOnce()) {
        // SAFETY: `m` is an initialised mutex that lives as long as `self`; this thread
        // unlocks what it locked.
        unsafe {
            libc::pthread_mutex_lock(self.m);
            f();
            libc::pthread_mutex_unlock(self.m);
        }
    }
}

fn increment_child((v, ready, go, n): (Value<u64>, Event, Event, u64)) {
    ready.set();
    go.wait();
    for _ in 0..n {
        *v.lock() += 1;
    }
}

/// Two processes (this one and a forked child) each add 1 to a `Value` under its lock `n`
/// times; time per increment.
fn value_increments() -> PerOp {
    Measure::new(5, 1_000_000).per_op_timed(|n| {
        let v = Value::new(0u64).unwrap();
        let (ready, go) = (Event::new().unwrap(), Event::new().unwrap());
        let child = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(increment_child, (v.clone(), ready.clone(), go.clone(), n))
            .unwrap();
        ready.wait();
        let start = Instant::now();
        go.set();
        for _ in 0..n {
            *v.lock() += 1;
        }
        // Done when the count is complete (the child's exit is not part of the figure).
        while v.get() != 2 * n {
            std::hint::spin_loop();
        }
        let t = start.elapsed();
        child.join().unwrap();
        t / 2
    })
}

fn python_value() -> Option<PerOp> {
    python_ns(
        r#"
import multiprocessing as mp, time
ctx = mp.get_context('fork')
def work(v, go, n):
    go.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
n = 100000
times = []
for _ in range(3):
    v = ctx.Value('q', 0)
    go = ctx.Event()
    p = ctx.Process(target=work, args=(v, go, n)); p.start()
    t = time.perf_counter(); go.set()
    work(v, go, n)
    while v.value != 2 * n:
        pass
    times.append((time.perf_counter() - t) / (2 * n))
    p.join()
times.sort()
print(times[1] * 1e9)
"#,
    )
}

fn python_lock() -> Option<PerOp> {
    python_ns(
        "import multiprocessing as mp,time\nl=mp.get_context('fork').Lock()\nn=300000\nbest=[]\nfor _ in range(3):\n  t=time.perf_counter()\n  for _ in range(n):\n    l.acquire(); l.release()\n  best.append((time.perf_counter()-t)/n*1e9)\nbest.sort()\nprint(best[1])",
    )
}

fn pong_events((a, b, n): (Event, Event, u64)) {
    for _ in 0..n {
        a.wait();
        a.clear();
        b.set();
    }
}

/// Untimed round trips before each timed run of a two-process ping-pong: a freshly forked
/// child often starts on its parent's CPU, and until the scheduler moves it every round trip
/// is a context switch; without this a median compares scheduler luck.
const SETTLE: u64 = 20_000;

/// Round trips: we set `a` and wait for `b`; a child waits for `a`, clears it, sets `b`.
fn event_ping_pong() -> PerOp {
    Measure::new(1, 20_000).per_op_timed(|n| {
        let a = Event::new().unwrap();
        let b = Event::new().unwrap();
        let child = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(pong_events, (a.clone(), b.clone(), SETTLE + n))
            .unwrap();
        for _ in 0..SETTLE {
            a.set();
            b.wait();
            b.clear();
        }
        let start = Instant::now();
        for _ in 0..n {
            a.set();
            b.wait();
            b.clear();
        }
        let t = start.elapsed();
        child.join().unwrap();
        t
    })
}

/// A shared anonymous mapping of one counter word, inherited by a forked child.
fn shared_word() -> &'static AtomicU64 {
    // SAFETY: a fresh shared anonymous mapping of one page, never unmapped (leaked for the
    // benchmark's lifetime); an AtomicU64 is valid for zeroed memory.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert!(p != libc::MAP_FAILED);
        &*p.cast::<AtomicU64>()
    }
}

/// The floor: two processes spinning on one shared word, passing a counter back and forth.
fn raw_spin_ping_pong() -> PerOp {
    Measure::new(1, 20_000).per_op_timed(|n| {
        let word = shared_word();
        let rounds = SETTLE + n;
        let child = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn_closure(move || {
                for i in 1..=rounds {
                    while word.load(Ordering::Acquire) != 2 * i - 1 {
                        std::hint::spin_loop();
                    }
                    word.store(2 * i, Ordering::Release);
                }
            })
            .unwrap();
        let mut round = |i: u64| {
            word.store(2 * i - 1, Ordering::Release);
            while word.load(Ordering::Acquire) != 2 * i {
                std::hint::spin_loop();
            }
        };
        (1..=SETTLE).for_each(&mut round);
        let start = Instant::now();
        (SETTLE + 1..=rounds).for_each(&mut round);
        let t = start.elapsed();
        child.join().unwrap();
        t
    })
}

fn barrier_party((b, n): (Barrier, u64)) {
    for _ in 0..n {
        b.wait().unwrap();
    }
}

/// Barrier cycles between this process and a forked child.
fn barrier_cycles() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let b = Barrier::new(2).unwrap();
        let child = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(barrier_party, (b.clone(), n + 1))
            .unwrap();
        b.wait().unwrap();
        let start = Instant::now();
        barrier_party((b.clone(), n));
        let t = start.elapsed();
        child.join().unwrap();
        t
    })
}

/// The same with the thread `Barrier` and two threads.
fn thread_barrier_cycles() -> PerOp {
    Measure::new(7, 20_000).per_op_timed(|n| {
        let b = std::sync::Arc::new(multiproc_sync::Barrier::new(2));
        let b2 = b.clone();
        let h = std::thread::spawn(move || {
            for _ in 0..=n {
                b2.wait().unwrap();
            }
        });
        b.wait().unwrap();
        let start = Instant::now();
        for _ in 0..n {
            b.wait().unwrap();
        }
        let t = start.elapsed();
        h.join().unwrap();
        t
    })
}

fn main() {
    let mut r = Report::new("shared (process-shared state)");
    let ours = uncontended(&Lock::new().unwrap());
    r.row(
        "process Lock acquire+release, uncontended",
        ours,
        "threading::Lock",
        uncontended(&multiproc_sync::Lock::new()),
    );
    r.row(
        "process Lock acquire+release, uncontended",
        ours,
        "pthread robust pshared mutex",
        uncontended(&PthreadRobust::new()),
    );
    if let Some(py) = python_lock() {
        r.row(
            "process Lock acquire+release, uncontended",
            ours,
            "Python multiprocessing.Lock",
            py,
        );
    }
    let ours = value_increments();
    match python_value() {
        Some(py) => r.row(
            "Value += 1 under its lock, 2 processes",
            ours,
            "Python multiprocessing.Value",
            py,
        ),
        None => r.figure("Value += 1 under its lock, 2 processes", ours),
    }
    // One fresh pair of processes per sample, alternating ours and the floor, so that both
    // medians come from the same spread of CPU placements.
    let [event, spin] = alternate(9, [&mut event_ping_pong, &mut raw_spin_ping_pong]);
    r.row(
        "Event ping-pong, 2 processes (round trip)",
        event,
        "raw shared-word spin round trip",
        spin,
    );
    r.row(
        "Barrier cycle, 2 processes",
        barrier_cycles(),
        "threading::Barrier, 2 threads",
        thread_barrier_cycles(),
    );
}
