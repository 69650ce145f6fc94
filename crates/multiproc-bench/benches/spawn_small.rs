//! Process start measured from a small program: this binary links `multiproc` and `libc` and
//! the harness's few std-only helpers, nothing else, so its own raw `fork` is as cheap as a
//! small user program's, and what multiproc adds to it is not hidden by a large parent (the
//! `spawn` bench links every peer, whose page tables every fork copies).
//!
//! Rounds alternate (A B A B …) and each figure's median round counts; the spread over the
//! rounds (min / median / max of each round's ratio) is printed too.

use multiproc::{Process, StartMethod};
use multiproc_bench::{Measure, PerOp, Report};

fn noop(_: ()) {}

const ROUNDS: usize = 9;

fn measure() -> Measure {
    Measure::new(7, 60)
}

fn spawn_join(method: StartMethod) -> PerOp {
    measure().per_op(|n| {
        for _ in 0..n {
            spawn_one(method);
        }
    })
}

fn raw_fork() -> PerOp {
    measure().per_op(|n| {
        for _ in 0..n {
            // SAFETY: the child only calls _exit; the parent reaps it with waitpid.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
            }
        }
    })
}

/// 512 MiB with every page written, so that all of it is resident.
fn touched_ballast() -> Vec<u8> {
    let mut ballast = vec![0u8; 512 << 20];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(ballast)
}

/// Runs `ours` and `base` alternately for `ROUNDS` rounds; returns each one's median round and
/// prints the spread of the per-round ratios.
fn alternated(
    label: &str,
    ours: &mut dyn FnMut() -> PerOp,
    base: &mut dyn FnMut() -> PerOp,
) -> (PerOp, PerOp) {
    let mut o = Vec::new();
    let mut b = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        let x = ours();
        let y = base();
        ratios.push(x.ns / y.ns);
        o.push(x);
        b.push(y);
    }
    let median = |v: &mut Vec<PerOp>| {
        v.sort_by(|a, b| a.ns.total_cmp(&b.ns));
        v[v.len() / 2]
    };
    ratios.sort_by(f64::total_cmp);
    println!(
        "  {label}: per-round ratio min {:.2}x / median {:.2}x / max {:.2}x over {ROUNDS} rounds",
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
    (median(&mut o), median(&mut b))
}

/// `MULTIPROC_BENCH_LOOP=fork|raw|forkserver:N` runs just N starts of one kind, untimed, for
/// `perf stat` / `strace -c -f` to count system calls and page faults per start.
fn profile_loop(spec: &str) {
    let (kind, n) = spec.split_once(':').unwrap_or((spec, "1000"));
    let n: u64 = n.parse().expect("MULTIPROC_BENCH_LOOP=kind:N");
    let one: fn() = match kind {
        "fork" => || spawn_one(StartMethod::Fork),
        "forkserver" => || spawn_one(StartMethod::ForkServer),
        "raw" => || {
            // SAFETY: as in `raw_fork`.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                libc::waitpid(pid, &mut 0, 0);
            }
        },
        other => panic!("unknown kind {other}"),
    };
    for _ in 0..n {
        one();
    }
}

fn spawn_one(method: StartMethod) {
    Process::builder()
        .start_method(method)
        .spawn(noop, ())
        .unwrap()
        .join()
        .unwrap();
}

fn main() {
    if let Ok(spec) = std::env::var("MULTIPROC_BENCH_LOOP") {
        return profile_loop(&spec);
    }
    let mut report = Report::new("process start from a small program");
    let (fork, raw) = alternated("Fork", &mut || spawn_join(StartMethod::Fork), &mut raw_fork);
    report.row(
        "Fork (small program)",
        fork,
        "raw fork+_exit+waitpid, small program",
        raw,
    );

    // The fork server starts before the ballast exists, as in a program that sets up its
    // pool early; the 512 MiB is touched again before each ForkServer round and unmapped
    // before each raw fork, so the raw fork is always the small program's.
    let ballast = std::cell::RefCell::new(None::<Vec<u8>>);
    let (fs_big, raw_small) = alternated(
        "ForkServer (512 MiB parent)",
        &mut || {
            ballast.borrow_mut().get_or_insert_with(touched_ballast);
            spawn_join(StartMethod::ForkServer)
        },
        &mut || {
            drop(ballast.borrow_mut().take());
            raw_fork()
        },
    );
    report.row(
        "ForkServer (512 MiB parent, small program)",
        fs_big,
        "raw fork+_exit+waitpid, small program",
        raw_small,
    );
}
