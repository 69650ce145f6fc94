//! Queues and pipes between processes (issue 4's figures): round trip of a u64, one-way
//! throughput of u64 items (1 producer + 1 consumer, 2 + 2), of 1 KiB and 1 MiB items, and
//! one 64 MiB item; against the shared-memory spin ping-pong (the hardware floor), a raw pipe,
//! ipc-channel, crossbeam-channel between threads (the in-process bound), memcpy, and Python's
//! `multiprocessing` when `python3` is present. All children are started with `Fork`, outside
//! the timed part.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ipc_channel::ipc;
use multiproc::{Connection, Pipe, Process, Queue, StartMethod};
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns, size_label};

fn fork<R>(f: impl FnOnce() -> R) -> Process<R>
where
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Process::builder()
        .start_method(StartMethod::Fork)
        .spawn_closure(f)
        .unwrap()
}

fn start<A, R>(f: fn(A) -> R, args: A) -> Process<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(f, args)
        .unwrap()
}

// ---- round trips ----

fn queue_echo((req, resp): (Queue<u64>, Queue<u64>)) {
    while let Ok(v) = req.get() {
        resp.put(v + 1).unwrap();
    }
}

fn rt_queue(ops: u64) -> PerOp {
    let (req, resp) = (Queue::new().unwrap(), Queue::new().unwrap());
    let child = start(queue_echo, (req.clone(), resp.clone()));
    let r = Measure::new(3, ops).per_op(|n| {
        for i in 0..n {
            req.put(i).unwrap();
            black_box(resp.get().unwrap());
        }
    });
    drop((req, resp));
    child.join().unwrap();
    r
}

fn pipe_echo(c: Connection<u64>) {
    while let Ok(v) = c.recv() {
        c.send(v + 1).unwrap();
    }
}

fn rt_pipe(ops: u64) -> PerOp {
    let (a, b) = Pipe::duplex().unwrap();
    let child = start(pipe_echo, b);
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

/// One cache line in anonymous shared memory, inherited by a forked child.
#[derive(Clone, Copy)]
struct SharedWord(*mut AtomicU64);

/// `bytes` of zero-filled anonymous shared memory, which a forked child shares with its parent.
fn shared_anonymous(bytes: usize) -> *mut u8 {
    // SAFETY: asks for a fresh mapping, overlapping nothing; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p.cast()
}

impl SharedWord {
    fn new() -> Self {
        SharedWord(shared_anonymous(4096).cast())
    }

    fn get(&self) -> &'static AtomicU64 {
        // SAFETY: the page stays mapped for the life of the process (never unmapped), and is
        // zero-initialised memory, a valid AtomicU64.
        unsafe { &*self.0 }
    }
}

/// `steps` dependent multiplications of `v`: a fixed amount of work (~0.45 ns a step on the
/// 2-vCPU VM) that the compiler cannot fold.
fn busy(v: u64, steps: u32) -> u64 {
    let mut x = v;
    for _ in 0..steps {
        x = std::hint::black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    x
}

/// Two processes bouncing one shared word: the requester writes an odd number, the echo
/// answers with the next even one, after `work` steps of [`busy`] (0 for the hardware floor).
///
/// The floor counts on the echo answering the moment the line arrives, before the
/// requester's next poll pulls the line back: then a hand-off moves the line once. An echo
/// that does any work first (a real receiver decodes, runs the caller's code, encodes) finds
/// the line shared again when it writes and pays a second transfer: on the 2-vCPU VM, 20
/// steps (~9 ns) take the round trip from ~120 ns to ~215 ns, and 40 steps to ~235 ns.
fn rt_spin(ops: u64, work: u32) -> PerOp {
    let w = SharedWord::new();
    let word = w.get();
    let child = fork(move || {
        let word = w.get();
        loop {
            let v = word.load(Ordering::Acquire);
            if v == u64::MAX {
                return;
            }
            if v % 2 == 1 {
                std::hint::black_box(busy(v, work));
                word.store(v + 1, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    });
    let mut next = 1;
    let r = Measure::new(3, ops).per_op(|n| {
        for _ in 0..n {
            word.store(next, Ordering::Release);
            while word.load(Ordering::Acquire) != next + 1 {
                std::hint::spin_loop();
            }
            next += 2;
        }
    });
    word.store(u64::MAX, Ordering::Release);
    child.join().unwrap();
    r
}

/// The floor for a request and its reply on two one-way channels (what any pair of queues,
/// or the two directions of a duplex pipe, must move): each side writes its own cache line
/// and spins on the other's. On this VM that costs over twice the one-line ping-pong above,
/// where a reply overwrites the request in the line the requester is already spinning on.
fn rt_spin_two_lines(ops: u64) -> PerOp {
    let (req, resp) = (SharedWord::new(), SharedWord::new());
    let child = fork(move || {
        let (req, resp) = (req.get(), resp.get());
        loop {
            let v = req.load(Ordering::Acquire);
            if v == u64::MAX {
                return;
            }
            if v != resp.load(Ordering::Relaxed) {
                resp.store(v, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    });
    let (req, resp) = (req.get(), resp.get());
    let mut next = 1;
    let r = Measure::new(3, ops).per_op(|n| {
        for _ in 0..n {
            req.store(next, Ordering::Release);
            while resp.load(Ordering::Acquire) != next {
                std::hint::spin_loop();
            }
            next += 1;
        }
    });
    req.store(u64::MAX, Ordering::Release);
    child.join().unwrap();
    r
}

fn rt_raw_pipe(ops: u64) -> PerOp {
    let (mut req_r, mut req_w) = std::io::pipe().unwrap();
    let (mut resp_r, mut resp_w) = std::io::pipe().unwrap();
    let child = fork(move || {
        // The child inherits the parent's write end too (fork copies every descriptor), so
        // it would never see end-of-file: a stop value ends it.
        let mut b = [0u8; 8];
        while req_r.read_exact(&mut b).is_ok() {
            let v = u64::from_le_bytes(b);
            if v == u64::MAX || resp_w.write_all(&(v + 1).to_le_bytes()).is_err() {
                break;
            }
        }
    });
    let r = Measure::new(9, ops).per_op(|n| {
        let mut b = [0u8; 8];
        for i in 0..n {
            req_w.write_all(&i.to_le_bytes()).unwrap();
            resp_r.read_exact(&mut b).unwrap();
        }
    });
    req_w.write_all(&u64::MAX.to_le_bytes()).unwrap();
    child.join().unwrap();
    r
}

fn rt_ipc_channel(ops: u64) -> PerOp {
    let (req_tx, req_rx) = ipc::channel::<u64>().unwrap();
    let (resp_tx, resp_rx) = ipc::channel::<u64>().unwrap();
    let child = fork(move || {
        while let Ok(v) = req_rx.recv() {
            if v == u64::MAX || resp_tx.send(v + 1).is_err() {
                break;
            }
        }
    });
    let r = Measure::new(9, ops).per_op(|n| {
        for i in 0..n {
            req_tx.send(i).unwrap();
            black_box(resp_rx.recv().unwrap());
        }
    });
    req_tx.send(u64::MAX).unwrap();
    child.join().unwrap();
    r
}

fn python_round_trip(kind: &str) -> Option<PerOp> {
    let (setup, child, ping) = if kind == "Queue" {
        (
            "a, b = mp.Queue(), mp.Queue()",
            "def echo(a, b):\n    while True:\n        v = a.get()\n        if v is None: return\n        b.put(v + 1)\n",
            ("a.put(i); b.get()", "a.put(None)"),
        )
    } else {
        (
            "a, b = mp.Pipe()",
            "def echo(_, b):\n    while True:\n        v = b.recv()\n        if v is None: return\n        b.send(v + 1)\n",
            ("a.send(i); a.recv()", "a.send(None)"),
        )
    };
    run_python(&format!(
        "import multiprocessing as mp, time\n{child}\nif __name__ == '__main__':\n    mp.set_start_method('fork')\n    {setup}\n    p = mp.Process(target=echo, args=(a, b)); p.start()\n    n = 2000\n    ts = []\n    for _ in range(5):\n        t = time.perf_counter()\n        for i in range(n): {}\n        ts.append((time.perf_counter() - t) / n)\n    {}\n    p.join()\n    ts.sort(); print(ts[2] * 1e9)\n",
        ping.0, ping.1
    ))
}

fn run_python(script: &str) -> Option<PerOp> {
    let path = std::env::temp_dir().join(format!("multiproc_bench_ipc_{}.py", std::process::id()));
    std::fs::write(&path, script).ok()?;
    let r = python_ns(&format!(
        "import runpy; runpy.run_path({path:?}, run_name='__main__')"
    ));
    let _ = std::fs::remove_file(path);
    r
}

// ---- one-way streams: a producer child sends 1 + settle + n items; the consumer times the
// last n ----

/// Items a u64 stream lets pass untimed first: a freshly forked producer often starts on its
/// consumer's CPU, and until the scheduler moves it the two take turns on one CPU.
const SETTLE: u64 = 100_000;

/// Takes `1 + settle` items untimed (the producer is up and placed), times `n` more, then
/// joins the producer.
fn time_stream(
    n: u64,
    settle: u64,
    child: Process<()>,
    mut take_one: impl FnMut(),
) -> std::time::Duration {
    for _ in 0..=settle {
        take_one();
    }
    let t = Instant::now();
    for _ in 0..n {
        take_one();
    }
    let e = t.elapsed();
    child.join().unwrap();
    e
}

fn produce_u64((q, n): (Queue<u64>, u64)) {
    for i in 0..=n + SETTLE {
        q.put(i).unwrap();
    }
}

fn stream_queue_u64(samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops).per_op_timed(|n| {
        let q = Queue::new().unwrap();
        let child = start(produce_u64, (q.clone(), n));
        time_stream(n, SETTLE, child, || {
            black_box(q.get().unwrap());
        })
    })
}

fn consume_u64((q, n): (Queue<u64>, u64)) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(q.get().unwrap());
    }
    sum
}

/// The stream as a program sees it: a fresh queue, the parent puts `n` items from the first
/// one on (the ring grows as it must), and the time runs until the consumer child has taken
/// the last one and is joined. Only the child's start is outside the timed part.
fn stream_queue_u64_cold(samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops).per_op_timed(|n| {
        let q = Queue::new().unwrap();
        let child = start(consume_u64, (q.clone(), n));
        let t = Instant::now();
        for i in 0..n {
            q.put(i).unwrap();
        }
        let sum = child.join().unwrap();
        let e = t.elapsed();
        assert_eq!(sum, n * (n - 1) / 2, "items lost or torn");
        e
    })
}

fn stream_ipc_channel_u64(samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops).per_op_timed(|n| {
        let (tx, rx) = ipc::channel::<u64>().unwrap();
        let child = fork(move || {
            for i in 0..=n + SETTLE {
                tx.send(i).unwrap();
            }
        });
        time_stream(n, SETTLE, child, || {
            black_box(rx.recv().unwrap());
        })
    })
}

fn stream_crossbeam_u64(samples: usize, ops: u64, producers: u64) -> PerOp {
    Measure::new(samples, ops).per_op_timed(|n| {
        let (tx, rx) = crossbeam_channel::unbounded::<u64>();
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..producers {
                let tx = tx.clone();
                s.spawn(move || {
                    for i in 0..n / producers {
                        tx.send(i).unwrap();
                    }
                });
            }
            drop(tx);
            for _ in 0..producers {
                let rx = rx.clone();
                s.spawn(move || while rx.recv().is_ok() {});
            }
        });
        t.elapsed()
    })
}

fn drain((q, sum): (Queue<u64>, Queue<(u64, u64)>)) {
    let (mut count, mut total) = (0, 0);
    while let Ok(v) = q.get() {
        count += 1;
        total += v;
    }
    sum.put((count, total)).unwrap();
}

fn produce_range((q, from, n): (Queue<u64>, u64, u64)) {
    for i in from..from + n {
        q.put(i).unwrap();
    }
}

/// `k` producer and `k` consumer processes; checks the count and sum; time includes the
/// starts (2k forks, well under 1% of the run).
fn stream_queue_mpmc(k: u64, samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops).per_op_timed(|n| {
        let q = Queue::new().unwrap();
        let sums = Queue::new().unwrap();
        let share = n / k;
        let t = Instant::now();
        let consumers: Vec<_> = (0..k)
            .map(|_| start(drain, (q.clone(), sums.clone())))
            .collect();
        let producers: Vec<_> = (0..k)
            .map(|i| start(produce_range, (q.clone(), i * share, share)))
            .collect();
        drop(q);
        for p in producers {
            p.join().unwrap();
        }
        for c in consumers {
            c.join().unwrap();
        }
        let e = t.elapsed();
        let (mut count, mut total) = (0, 0);
        for _ in 0..k {
            let (c, s) = sums.get().unwrap();
            count += c;
            total += s;
        }
        assert_eq!(count, k * share, "items lost or duplicated");
        assert_eq!(total, (0..k * share).sum::<u64>(), "items torn");
        e
    })
}

/// The baseline [`stream_slot_floor`] measures.
const SLOT_FLOOR: &str = "bare lock-free slot queue, processes";

/// The floor for `k` producer and `k` consumer processes moving u64s: a bare bounded MPMC
/// queue of fixed 16-byte slots (Vyukov's: a sequence word and the value), claimed with one
/// compare-and-swap on a shared counter a side, in anonymous shared memory between forked
/// processes. No encoding, no item of another size, no growth, no wake-ups (a waiter spins
/// with backoff, then yields), and no survival of a party killed between its claim and its
/// publish. Like [`stream_queue_mpmc`], it checks the count and sum and counts the forks.
fn stream_slot_floor(k: u64, samples: usize, ops: u64) -> PerOp {
    const SLOTS: usize = 1 << 16;
    // Two 128-byte lines for the counters, then the slots.
    let bytes = 256 + SLOTS * 16;
    Measure::new(samples, ops).per_op_timed(|n| {
        let share = n / k;
        // Zero-filled; unmapped after every child is joined.
        let base = shared_anonymous(bytes) as usize;
        // Counter `side` (0: producers, 1: consumers) and the slot of position `i`.
        let counter = move |side: usize| {
            // SAFETY: inside the mapping, aligned, and only ever accessed as an atomic.
            unsafe { &*((base + side * 128) as *const AtomicU64) }
        };
        let slot = move |i: u64| {
            // SAFETY: inside the mapping (the index is reduced modulo SLOTS), aligned, and
            // only ever accessed as atomics.
            unsafe { &*((base + 256 + (i as usize % SLOTS) * 16) as *const [AtomicU64; 2]) }
        };
        for i in 0..SLOTS as u64 {
            slot(i)[0].store(i, Ordering::Relaxed);
        }
        // Claims position `pos` of `side` once slot `pos` holds `ready(pos)`; returns it.
        let claim = move |side: usize, ready: &dyn Fn(u64) -> u64| {
            let mut spins = 0u32;
            let mut pos = counter(side).load(Ordering::Relaxed);
            loop {
                if slot(pos)[0].load(Ordering::Acquire) == ready(pos) {
                    match counter(side).compare_exchange_weak(
                        pos,
                        pos + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return pos,
                        Err(now) => pos = now,
                    }
                } else {
                    spins += 1;
                    if spins > 6 {
                        std::thread::yield_now();
                    } else {
                        (0..1 << spins).for_each(|_| std::hint::spin_loop());
                    }
                    pos = counter(side).load(Ordering::Relaxed);
                }
            }
        };
        let t = Instant::now();
        let consumers: Vec<_> = (0..k)
            .map(|_| {
                fork(move || {
                    let (mut count, mut total) = (0u64, 0u64);
                    for _ in 0..share {
                        let pos = claim(1, &|p| p + 1);
                        total += slot(pos)[1].load(Ordering::Relaxed);
                        slot(pos)[0].store(pos + SLOTS as u64, Ordering::Release);
                        count += 1;
                    }
                    (count, total)
                })
            })
            .collect();
        let producers: Vec<_> = (0..k)
            .map(|i| {
                fork(move || {
                    for v in i * share..(i + 1) * share {
                        let pos = claim(0, &|p| p);
                        slot(pos)[1].store(v, Ordering::Relaxed);
                        slot(pos)[0].store(pos + 1, Ordering::Release);
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let (mut count, mut total) = (0, 0);
        for c in consumers {
            let (c, s) = c.join().unwrap();
            count += c;
            total += s;
        }
        let e = t.elapsed();
        assert_eq!(count, k * share, "items lost or duplicated");
        assert_eq!(total, (0..k * share).sum::<u64>(), "items torn");
        // SAFETY: the mapping is ours, and every child that shared it has been joined.
        unsafe { libc::munmap(base as *mut libc::c_void, bytes) };
        e
    })
}

fn python_stream(item: &str, n: u32) -> Option<PerOp> {
    run_python(&format!(
        "import multiprocessing as mp, time\ndef prod(q, n):\n    x = {item}\n    for _ in range(n + 1): q.put(x)\nif __name__ == '__main__':\n    mp.set_start_method('fork')\n    ts = []\n    for _ in range(3):\n        q = mp.Queue(); p = mp.Process(target=prod, args=(q, {n})); p.start(); q.get()\n        t = time.perf_counter()\n        for _ in range({n}): q.get()\n        ts.append((time.perf_counter() - t) / {n}); p.join()\n    ts.sort(); print(ts[1] * 1e9)\n"
    ))
}

// ---- byte items ----

/// Items a byte stream lets pass untimed first (see [`SETTLE`]): 16 MiB worth.
fn settle_bytes(size: usize) -> u64 {
    ((16 << 20) / size.max(1)) as u64
}

fn produce_bytes((q, size, n): (Queue<()>, usize, u64)) {
    let item = vec![7u8; size];
    for _ in 0..=n + settle_bytes(size) {
        q.put_bytes(&item).unwrap();
    }
}

/// `maxsize`: the queue's item limit (0: none).
fn stream_queue_bytes(size: usize, maxsize: usize, samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops)
        .per_op_timed(|n| {
            let q = Queue::with_maxsize(maxsize).unwrap();
            let child = start(produce_bytes, (q.clone(), size, n));
            time_stream(n, settle_bytes(size), child, || {
                black_box(q.get_bytes().unwrap());
            })
        })
        .with_bytes(size as u64)
}

fn send_bytes_n((c, size, n): (Connection<()>, usize, u64)) {
    let item = vec![7u8; size];
    for _ in 0..=n + settle_bytes(size) {
        c.send_bytes(&item).unwrap();
    }
}

fn stream_pipe_bytes(size: usize, samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops)
        .per_op_timed(|n| {
            let (rx, tx) = Pipe::simplex().unwrap();
            let child = start(send_bytes_n, (tx, size, n));
            time_stream(n, settle_bytes(size), child, || {
                black_box(rx.recv_bytes().unwrap());
            })
        })
        .with_bytes(size as u64)
}

fn stream_ipc_bytes(size: usize, samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops)
        .per_op_timed(|n| {
            let (tx, rx) = ipc::bytes_channel().unwrap();
            let child = fork(move || {
                let item = vec![7u8; size];
                for _ in 0..=n + settle_bytes(size) {
                    tx.send(&item).unwrap();
                }
            });
            time_stream(n, settle_bytes(size), child, || {
                black_box(rx.recv().unwrap());
            })
        })
        .with_bytes(size as u64)
}

fn stream_raw_pipe_bytes(size: usize, samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops)
        .per_op_timed(|n| {
            let (mut r, mut w) = std::io::pipe().unwrap();
            let child = fork(move || {
                let item = vec![7u8; size];
                for _ in 0..=n + settle_bytes(size) {
                    w.write_all(&item).unwrap();
                }
            });
            time_stream(n, settle_bytes(size), child, || {
                let mut item = vec![0u8; size];
                r.read_exact(&mut item).unwrap();
                black_box(item);
            })
        })
        .with_bytes(size as u64)
}

fn memcpy(size: usize, samples: usize, ops: u64) -> PerOp {
    let src = vec![7u8; size];
    Measure::new(samples, ops)
        .per_op(|n| {
            for _ in 0..n {
                black_box(black_box(&src).to_vec());
            }
        })
        .with_bytes(size as u64)
}

/// The hardware floor for moving `size`-byte items from one process to another: a bare ring
/// of fixed slots in anonymous shared memory, each with a sequence word. The forked producer
/// waits (spinning) for a free slot, copies the item in and publishes it; the timed consumer
/// spins for it and copies it out into a fresh `Vec`, as `get_bytes` returns one. No lengths,
/// no locks, no wake-ups, no growth, no survival of a dead peer: only the two copies and the
/// cache-line transfers between two cores, which a one-core `memcpy` of a hot buffer does not
/// pay. The ring holds 256 KiB of items (a queue's first ring) and at least two.
fn stream_copy_floor(size: usize, samples: usize, ops: u64) -> PerOp {
    let slot = size.next_multiple_of(128);
    let slots = ((256 << 10) / slot).max(2);
    let seqs = slots * 128;
    let bytes = seqs + slot * slots;
    Measure::new(samples, ops)
        .per_op_timed(|n| {
            // Zero-filled, so every sequence word starts as a valid 0; unmapped after the
            // child is joined.
            let base = shared_anonymous(bytes) as usize;
            // Slot k's sequence word (one per 128-byte line pair): i + 1 once item i is in
            // it, i + slots once item i is taken (it may then take item i + slots).
            // SAFETY: inside the mapping, aligned, and zero or written only through atomics.
            let seq = move |k: usize| unsafe { &*((base + k * 128) as *const AtomicU64) };
            let data = move |k: usize| base + seqs + k * slot;
            for k in 0..slots {
                seq(k).store(k as u64, Ordering::Relaxed);
            }
            let settle = settle_bytes(size).max(1);
            let total = n + settle;
            let child = fork(move || {
                let item = vec![7u8; size];
                for i in 0..total {
                    let k = (i as usize) % slots;
                    while seq(k).load(Ordering::Acquire) != i {
                        std::hint::spin_loop();
                    }
                    // SAFETY: the slot is inside the mapping and ours until we publish it.
                    unsafe {
                        std::ptr::copy_nonoverlapping(item.as_ptr(), data(k) as *mut u8, size)
                    };
                    seq(k).store(i + 1, Ordering::Release);
                }
            });
            let mut i = 0u64;
            let e = time_stream(n, settle - 1, child, || {
                let k = (i as usize) % slots;
                while seq(k).load(Ordering::Acquire) != i + 1 {
                    std::hint::spin_loop();
                }
                // SAFETY: item i is published in slot k and the producer waits for us.
                let v = unsafe { std::slice::from_raw_parts(data(k) as *const u8, size) }.to_vec();
                black_box(v);
                seq(k).store(i + slots as u64, Ordering::Release);
                i += 1;
            });
            // SAFETY: the mapping is ours, and the child that shared it has been joined.
            unsafe { libc::munmap(base as *mut libc::c_void, bytes) };
            e
        })
        .with_bytes(size as u64)
}

/// Steps of [`busy`] for the floor whose echo works before it answers.
const SPIN_WORK: u32 = 40;

/// Whether the bench's filter arguments (`cargo bench --bench ipc -- mpmc bytes`, or
/// `cargo xtask bench mpmc`) select the section `name` (`rt`, `stream`, `mpmc`, `bytes`, and
/// `qbytes`: the queue's byte items against memcpy and the copy floor only); no filter, or `ipc`, selects every
/// one.
fn section(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| f == "ipc" || name.contains(f.as_str()))
}

/// A round's figure, also printed on stderr (the spread behind a median).
fn shown(name: &str, p: PerOp) -> PerOp {
    eprintln!("  round {name}: {:.1} ns", p.ns);
    p
}

fn main() {
    if section("rt") {
        round_trips();
    }
    if section("stream") {
        one_way_u64();
    }
    if section("mpmc") {
        mpmc();
    }
    if section("bytes") {
        byte_items(true);
    } else if section("qbytes") {
        // The queue and its memcpy floor only.
        byte_items(false);
    }
}

fn round_trips() {
    let mut report = Report::new("process queues and pipes: round trip of a u64");
    // Fresh processes each round, alternating ours and the floor: the three medians come
    // from the same spread of CPU placements.
    let [spin, spin_work, spin2, queue, pipe] = alternate(
        5,
        [
            &mut || rt_spin(100_000, 0),
            &mut || rt_spin(100_000, SPIN_WORK),
            &mut || rt_spin_two_lines(100_000),
            &mut || rt_queue(50_000),
            &mut || rt_pipe(50_000),
        ],
    );
    let raw_pipe = rt_raw_pipe(5_000);
    let ipcc = rt_ipc_channel(5_000);
    let mut base = vec![
        ("shared-memory spin ping-pong", spin),
        ("spin ping-pong, echo works ~20 ns", spin_work),
        ("spin ping-pong, one line per direction", spin2),
        ("raw pipe", raw_pipe),
        ("ipc-channel", ipcc),
    ];
    let py_q = python_round_trip("Queue");
    let py_p = python_round_trip("Pipe");
    let mut qb = base.clone();
    qb.extend(py_q.map(|p| ("Python multiprocessing.Queue", p)));
    report.rows("Queue put+get round trip", queue, &qb);
    base.extend(py_p.map(|p| ("Python multiprocessing.Pipe", p)));
    report.rows("Pipe send+recv round trip", pipe, &base);
}

fn one_way_u64() {
    let mut report = Report::new("process queues: one-way u64 items (time per item)");
    let q1 = stream_queue_u64(5, 1_000_000);
    let mut b = vec![
        (
            "crossbeam-channel, threads",
            stream_crossbeam_u64(5, 1_000_000, 1),
        ),
        ("ipc-channel", stream_ipc_channel_u64(3, 100_000)),
    ];
    b.extend(python_stream("0", 50_000).map(|p| ("Python multiprocessing.Queue", p)));
    report.rows("Queue 1 producer, 1 consumer", q1, &b);
    // Issue 13's goal: at least 10 M items/s one way, measured as a program would see it.
    report.rows(
        "Queue 1P1C from a cold start (parent puts, child gets, to join)",
        stream_queue_u64_cold(5, 2_000_000),
        &[("goal: 10 M items/s", PerOp::from_ns(100.0))],
    );
}

fn mpmc() {
    // The same group as the 1P1C rows. Alternated rounds: the queue's and crossbeam's
    // medians come from the same spread of machine states.
    let mut report = Report::new("process queues: one-way u64 items (time per item)");
    for k in [2u64, 4] {
        let [ours, cb, floor] = alternate(
            5,
            [
                &mut || {
                    shown(
                        &format!("queue {k}P{k}C"),
                        stream_queue_mpmc(k, 1, 2_000_000),
                    )
                },
                &mut || {
                    shown(
                        &format!("crossbeam {k}P{k}C"),
                        stream_crossbeam_u64(1, 2_000_000, k),
                    )
                },
                &mut || {
                    shown(
                        &format!("slot floor {k}P{k}C"),
                        stream_slot_floor(k, 1, 2_000_000),
                    )
                },
            ],
        );
        let name = format!("Queue {k} producers, {k} consumers");
        report.rows(
            &name,
            ours,
            &[("crossbeam-channel, threads", cb), (SLOT_FLOOR, floor)],
        );
    }
}

/// The baseline [`stream_copy_floor`] measures.
const FLOOR: &str = "two-process copy floor (bare spin ring)";

/// `peers`: also the pipe, ipc-channel, raw pipe and Python rows.
fn byte_items(peers: bool) {
    let mut report = Report::new("process queues and pipes: one-way byte items");
    // Rounds of 1 KiB and 1 MiB items are short (~20 and ~6 ms) and fall into one of two
    // regimes (the consumer keeping pace with its producer, or behind it), which of them
    // depending on how the processes start: 11 rounds, so that one median does not flip
    // with a single round.
    for (size, ops, samples) in [
        (1usize << 10, 100_000u64, 11usize),
        (1 << 20, 200, 11),
        (64 << 20, 2, 3),
    ] {
        // The queue and memcpy alternated: both medians from the same machine states.
        let label = size_label(size as u64);
        let [q, copy, floor] = alternate(
            samples,
            [
                &mut || {
                    shown(
                        &format!("queue {label}"),
                        stream_queue_bytes(size, 0, 1, ops),
                    )
                },
                &mut || shown(&format!("memcpy {label}"), memcpy(size, 1, ops.min(1000))),
                &mut || {
                    shown(
                        &format!("copy floor {label}"),
                        stream_copy_floor(size, 1, ops),
                    )
                },
            ],
        );
        let floor = (FLOOR, floor);
        if !peers {
            report.rows_sized(
                "Queue put_bytes/get_bytes",
                size as u64,
                q,
                &[("memcpy", copy), floor],
            );
            continue;
        }
        // A producer held back by a full queue (the consumer's pace, data still in cache).
        let bounded = (size <= 1 << 10).then(|| stream_queue_bytes(size, 256, samples, ops));
        let p = stream_pipe_bytes(size, samples, ops);
        let mut base = vec![
            ("ipc-channel bytes", stream_ipc_bytes(size, samples, ops)),
            ("raw pipe", stream_raw_pipe_bytes(size, samples, ops)),
            ("memcpy", copy),
            floor,
        ];
        if size <= 1 << 20 {
            let n = if size <= 1024 { 20_000 } else { 100 };
            if let Some(py) = python_stream(&format!("bytes({size})"), n) {
                base.push(("Python multiprocessing.Queue", py.with_bytes(size as u64)));
            }
        }
        report.rows_sized("Queue put_bytes/get_bytes", size as u64, q, &base);
        if let Some(b) = bounded {
            let name = "Queue(maxsize=256) put_bytes/get_bytes";
            report.rows_sized(name, size as u64, b, &base[..2]);
        }
        report.rows_sized("Pipe send_bytes/recv_bytes", size as u64, p, &base);
    }
}
