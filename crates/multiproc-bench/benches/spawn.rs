//! Process start-up: spawn + join of a no-op target under each start method, against raw
//! `fork`+`_exit`+`waitpid`, `Command` of this same binary, procspawn (the Rust crate that
//! also starts this binary again to run a function) and Python's `multiprocessing`;
//! again with the parent holding 512 MiB of touched memory; and `subprocess::run` of
//! `/bin/true` against std's `Command`.

use multiproc::subprocess::{self, RunOptions};
use multiproc::{Process, StartMethod};
use multiproc_bench::{Measure, PerOp, Report, alternate, python_ns};
use std::process::Command;

/// When set, this binary exits at once: the baseline "Command of the same binary".
const NOOP_ENV: &str = "MULTIPROC_BENCH_NOOP";

fn noop(_: ()) {}

fn spawn_join(method: StartMethod) -> PerOp {
    Measure::new(9, 40).per_op(|n| {
        for _ in 0..n {
            Process::builder()
                .start_method(method)
                .spawn(noop, ())
                .unwrap()
                .join()
                .unwrap();
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

fn raw_fork() -> PerOp {
    Measure::new(9, 40).per_op(|n| {
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

fn command_of_self() -> PerOp {
    let exe = std::env::current_exe().unwrap();
    Measure::new(9, 20).per_op(|n| {
        for _ in 0..n {
            Command::new(&exe).env(NOOP_ENV, "1").status().unwrap();
        }
    })
}

/// procspawn's spawn+join of a no-op function: like our `Spawn`, it runs this binary again.
fn procspawn_join() -> PerOp {
    Measure::new(9, 20).per_op(|n| {
        for _ in 0..n {
            procspawn::spawn((), |()| ()).join().unwrap();
        }
    })
}

/// Python's multiprocessing spawn+join of a no-op target, per start method, in ns.
fn python(method: &str, n: u32) -> Option<PerOp> {
    let script = format!(
        r#"
import multiprocessing as mp, time
def f():
    pass
if __name__ == '__main__':
    ctx = mp.get_context('{method}')
    ctx.Process(target=f).start()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range({n}):
            p = ctx.Process(target=f); p.start(); p.join()
        times.append((time.perf_counter() - t) / {n})
    times.sort()
    print(times[len(times)//2] * 1e9)
"#
    );
    let path = std::env::temp_dir().join(format!("multiproc_bench_{method}.py"));
    std::fs::write(&path, script).ok()?;
    let r = python_ns(&format!(
        "import runpy; runpy.run_path({:?}, run_name='__main__')",
        path
    ));
    let _ = std::fs::remove_file(path);
    r
}

fn main() {
    // procspawn's children start here, and run their function inside `init`.
    procspawn::init();
    if std::env::var_os(NOOP_ENV).is_some() {
        return;
    }
    let mut report = Report::new("process start (spawn + join of a no-op target)");
    // Alternated, so that each ratio compares the same states of a noisy VM.
    let [fork, ours_fork, ours_fs] = alternate(
        5,
        [
            &mut raw_fork,
            &mut || spawn_join(StartMethod::Fork),
            &mut || spawn_join(StartMethod::ForkServer),
        ],
    );
    report.row("Fork", ours_fork, "raw fork+_exit+waitpid", fork);
    report.row("ForkServer", ours_fs, "raw fork+_exit+waitpid", fork);
    if std::env::var_os("MULTIPROC_BENCH_START_ONLY").is_some() {
        return;
    }
    let ours_spawn = spawn_join(StartMethod::Spawn);
    let cmd = command_of_self();
    report.row("Spawn", ours_spawn, "Command of the same binary", cmd);
    let peer = procspawn_join();
    report.row("Spawn", ours_spawn, "procspawn spawn+join", peer);
    report.row("ForkServer", ours_fs, "procspawn spawn+join", peer);
    for (name, ours, n) in [
        ("fork", ours_fork, 40),
        ("forkserver", ours_fs, 10),
        ("spawn", ours_spawn, 5),
    ] {
        if let Some(py) = python(name, n) {
            report.row(
                &format!("{name} vs Python"),
                ours,
                &format!("Python multiprocessing '{name}'"),
                py,
            );
        }
    }

    let mut report = Report::new("process start with a 512 MiB parent");
    // The ForkServer figures alternate with the small parent's raw fork, the 512 MiB mapped
    // and touched again before each big round and unmapped before each small one: measured
    // one after the other, their ratio would mostly compare two states of a noisy VM.
    let ballast = std::cell::RefCell::new(None::<Vec<u8>>);
    let grow = || {
        ballast.borrow_mut().get_or_insert_with(touched_ballast);
    };
    let shrink = || drop(ballast.borrow_mut().take());
    let [fork_small, fs_small, fs_big] = alternate(
        5,
        [
            &mut || {
                shrink();
                raw_fork()
            },
            &mut || {
                shrink();
                spawn_join(StartMethod::ForkServer)
            },
            &mut || {
                grow();
                spawn_join(StartMethod::ForkServer)
            },
        ],
    );
    report.row(
        "ForkServer (512 MiB parent)",
        fs_big,
        "ForkServer, small parent",
        fs_small,
    );
    report.row(
        "ForkServer (512 MiB parent)",
        fs_big,
        "raw fork+_exit+waitpid, small parent",
        fork_small,
    );
    grow();
    let fork_big = raw_fork();
    report.row(
        "Fork (512 MiB parent)",
        spawn_join(StartMethod::Fork),
        "raw fork, 512 MiB parent",
        fork_big,
    );
    report.row(
        "ForkServer (512 MiB parent)",
        fs_big,
        "raw fork, 512 MiB parent",
        fork_big,
    );
    report.row(
        "Spawn (512 MiB parent)",
        spawn_join(StartMethod::Spawn),
        "Command of the same binary",
        cmd,
    );
    shrink();

    let mut report = Report::new("subprocess");
    let ours = Measure::new(9, 40).per_op(|n| {
        for _ in 0..n {
            subprocess::run(["/bin/true"], &RunOptions::default()).unwrap();
        }
    });
    let std_cmd = Measure::new(9, 40).per_op(|n| {
        for _ in 0..n {
            Command::new("/bin/true").status().unwrap();
        }
    });
    report.row(
        "subprocess::run(/bin/true)",
        ours,
        "std Command::status",
        std_cmd,
    );
}
