//! `cargo xtask`: the workspace's one entry point for tests, benchmarks and checks.
//!
//! Every command it runs is echoed first, so a failure can be reproduced by hand.
//!
//! - `cargo xtask test`: rustfmt check, clippy `-D warnings`, tidy checks, every crate's unit,
//!   integration and doc tests (nextest with per-test timeouts when it is installed), rustdoc
//!   with warnings denied, every example run to completion with its output checked, and
//!   `cargo publish --workspace --dry-run`, then the loom model checks. It ends with a summary of the steps and their
//!   times, and lists the tests that skipped (see `multiproc-testkit`).
//! - `cargo xtask examples [NAME…]`: build and run the examples, checking each one's output.
//! - `cargo xtask bench [--report] [FILTER…]`: run the benchmarks; each prints figure, value,
//!   baseline, ratio. With `--report` every row also goes to `bench-report.tsv` in cargo's
//!   target directory (wherever `CARGO_TARGET_DIR` or a cargo config puts it), and
//!   `BENCHMARKS.md` and the SVG charts in `docs/charts/` are written from it (see `report.rs`).
//! - `cargo xtask report`: redraw `BENCHMARKS.md` and the charts from the last TSV.
//! - `cargo xtask loom`: the loom model checks (`--cfg multiproc_loom`).
//! - `cargo xtask tidy`: the house rules (see `tidy.rs`).
//! - `cargo xtask ci`: what `.ci/run` runs (the same as `test`).
#![deny(missing_docs)]

mod examples;
mod layers;
mod redis;
mod report;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type DynResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "test" | "ci" => test(),
        "examples" => examples::run_all(rest),
        "bench" => bench(rest),
        "report" => report_from_tsv(),
        "loom" => loom(),
        "tidy" => tidy::check(&root()).map_err(Into::into),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|examples [NAME…]|bench [--report] [FILTER…]|report|loom|tidy|ci>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this package's directory).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// Echoes and runs a command in the workspace root; a non-zero exit is an error.
pub(crate) fn run(program: &str, args: &[&str]) -> DynResult {
    run_env(program, args, &[])
}

/// Like [`run`], with extra environment variables.
pub(crate) fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> DynResult {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("$ {}{program} {}", prefixed(&shown), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed with {status}", args.join(" ")).into())
    }
}

fn prefixed(parts: &[String]) -> String {
    parts.iter().map(|p| format!("{p} ")).collect()
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The file that collects the tests that skipped (see multiproc-testkit), in the target dir.
fn skip_log() -> PathBuf {
    target_dir().join("skipped-tests.txt")
}

/// The steps of a run and what each took, printed at the end whatever happened.
#[derive(Default)]
struct Steps {
    done: Vec<(String, std::time::Duration, Result<(), String>)>,
}

impl Steps {
    /// Runs one step, timing it; a failure is remembered and returned.
    fn run(&mut self, name: &str, step: impl FnOnce() -> DynResult) -> DynResult {
        let start = std::time::Instant::now();
        let outcome = step().map_err(|e| e.to_string());
        self.done
            .push((name.to_owned(), start.elapsed(), outcome.clone()));
        outcome.map_err(Into::into)
    }

    fn print(&self, skipped: &[String]) {
        eprintln!("\n== cargo xtask test: summary ==");
        for (name, took, outcome) in &self.done {
            let status = match outcome {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("FAILED: {e}"),
            };
            eprintln!("{name:<34} {:>7.1} s  {status}", took.as_secs_f64());
        }
        if skipped.is_empty() {
            eprintln!("skipped tests: none");
        } else {
            eprintln!(
                "skipped tests: {} (not passed: they did not run)",
                skipped.len()
            );
            for line in skipped {
                eprintln!("  {line}");
            }
        }
    }
}

fn test() -> DynResult {
    let log = skip_log();
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&log);
    // SAFETY: xtask is single-threaded here, so no other thread reads the environment while it
    // changes; every test, doc test and example it starts inherits the variable.
    unsafe { std::env::set_var(multiproc_testkit::SKIP_LOG_ENV, &log) };
    print_machine();
    let mut steps = Steps::default();
    let result = test_steps(&mut steps);
    let skipped: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    steps.print(&skipped);
    result
}

/// One line on the limits the tests run under, so that a failure on another machine (a CI
/// runner) can be read against them: descriptors, processes, `/dev/shm`, CPUs, kernel.
fn print_machine() {
    let sh = |script: &str| {
        Command::new("bash")
            .args(["-c", script])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    println!(
        "== machine: nofile {}/{}, nproc {}, /dev/shm {}, {} cpus, kernel {}, uid {}",
        sh("ulimit -Sn"),
        sh("ulimit -Hn"),
        sh("ulimit -u"),
        sh("df -h /dev/shm | awk 'NR==2 {print $2\" (\"$4\" free)\"}'"),
        sh("nproc"),
        sh("uname -r"),
        sh("id -u"),
    );
}

fn test_steps(steps: &mut Steps) -> DynResult {
    steps.run("rustfmt --check", || {
        run("cargo", &["fmt", "--all", "--", "--check"])
    })?;
    steps.run("clippy -D warnings", || {
        run(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    steps.run("tidy", || tidy::check(&root()).map_err(Into::into))?;
    // Lives to the end of `test`: the tests, doc tests and examples use it.
    let mut server = None;
    steps.run("redis-server", || {
        redis::ensure_installed()?;
        server = redis::start_for_tests()?;
        Ok(())
    })?;
    let _redis = server;
    if !has_nextest() {
        eprintln!(
            "cargo-nextest is not installed: installing it now with `cargo install cargo-nextest \
             --locked` (a build of a few minutes, once; it gives each test a timeout and a \
             process of its own)"
        );
        if let Err(e) = run("cargo", &["install", "cargo-nextest", "--locked"]) {
            eprintln!("could not install cargo-nextest ({e}); falling back to `cargo test`");
        }
    }
    steps.run("unit and integration tests", || {
        if has_nextest() {
            let profile = if multiproc_testkit::under_ci() {
                "ci"
            } else {
                "default"
            };
            run(
                "cargo",
                &[
                    "nextest",
                    "run",
                    "--workspace",
                    "--profile",
                    profile,
                    "--no-tests=warn",
                ],
            )
        } else {
            eprintln!(
                "cargo-nextest is not installed: running `cargo test` (no per-test timeouts)"
            );
            // One test at a time: the leak checks count this process's descriptors.
            run(
                "cargo",
                &[
                    "test",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "--test-threads=1",
                ],
            )
        }
    })?;
    steps.run("doc tests", || {
        run("cargo", &["test", "--workspace", "--doc"])
    })?;
    // Reuses the check build, so it costs seconds: broken intra-doc links and missing docs
    // fail here, not on docs.rs.
    steps.run("rustdoc -D warnings", || {
        run_env(
            "cargo",
            &["doc", "--no-deps", "--workspace"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        )
    })?;
    steps.run("examples", || examples::run_all(&[]))?;
    // Packages every publishable crate and resolves it as crates.io would (a dependency cycle
    // through a versioned dev-dependency, a missing file, a bad manifest fail here). No
    // verification build: the steps above built everything already.
    steps.run("publish dry run", || {
        run(
            "cargo",
            &[
                "publish",
                "--workspace",
                "--dry-run",
                "--no-verify",
                "--allow-dirty",
            ],
        )
    })?;
    // The model checks of the lock algorithms and the ring protocol: run here too, so that
    // code added without its `multiproc_loom` gate (the async waits once were) cannot leave
    // them unbuildable unnoticed.
    steps.run("loom model checks", loom)
}

fn bench(rest: &[String]) -> DynResult {
    python_redis_clients();
    let report = rest.iter().any(|a| a == "--report");
    let mut args = vec!["bench", "--package", "multiproc-bench"];
    let filters: Vec<&str> = rest
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if !filters.is_empty() {
        args.push("--");
        args.extend(filters);
    }
    if !report {
        return run("cargo", &args);
    }
    let tsv = tsv_path();
    std::fs::create_dir_all(tsv.parent().expect("target/ has a parent"))?;
    // Comment lines carry the run's facts, so `cargo xtask report` can redraw the page later.
    std::fs::write(
        &tsv,
        format!(
            "# {}\n# started\t{}\n# load\t{}\n",
            multiproc_bench_columns(),
            report::utc_now(),
            report::load_average().unwrap_or_default()
        ),
    )?;
    let start = std::time::Instant::now();
    run_env(
        "cargo",
        &args,
        &[("MULTIPROC_BENCH_TSV", tsv.to_str().ok_or("non-UTF-8 path")?)],
    )?;
    let took = start.elapsed();
    eprintln!(
        "bench: building and running took {:.0} s",
        took.as_secs_f64()
    );
    let mut f = std::fs::OpenOptions::new().append(true).open(&tsv)?;
    let end = format!(
        "# took\t{}\n# load_end\t{}\n",
        took.as_secs_f64(),
        report::load_average().unwrap_or_default()
    );
    std::io::Write::write_all(&mut f, end.as_bytes())?;
    report_from_tsv()
}

/// The redis bench compares against Python's `redis` client and `rq` where `python3` exists
/// (the issue's "pip install redis where python3 exists"): installs them with pip when they are
/// missing. Without them (no pip, no network) those rows are left out, as the bench says.
fn python_redis_clients() {
    let imports = |python: &str| {
        Command::new(python)
            .args(["-c", "import redis, rq, celery"])
            .stderr(std::process::Stdio::null())
            .status()
    };
    match imports("python3") {
        // No python3 (or they are there already): nothing to install.
        Err(_) => return,
        Ok(status) if status.success() => return,
        Ok(_) => {}
    }
    eprintln!("bench: installing Python's redis, rq and celery for the redis baselines (pip)");
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "redis",
            "rq",
            "celery",
            // Celery's Redis transport imports it without depending on it.
            "packaging",
        ])
        .status();
    if !matches!(installed, Ok(s) if s.success())
        || !matches!(imports("python3"), Ok(s) if s.success())
    {
        eprintln!(
            "bench: could not install them; the redis-py, RQ and Celery rows will be missing"
        );
    }
}

/// The TSV's column names, as the harness documents them (`multiproc_bench::TSV_COLUMNS`).
fn multiproc_bench_columns() -> &'static str {
    "group\tfigure\tours_ns\tbytes\tbaseline\tbaseline_ns\tratio\tsize"
}

fn tsv_path() -> PathBuf {
    target_dir().join("bench-report.tsv")
}

/// Cargo's target directory for this workspace, found the way cargo finds it
/// (`CARGO_TARGET_DIR`, `build.target-dir` in any cargo config, or `<root>/target`), by asking
/// `cargo metadata`. Asked once per run: every later call returns the same path.
pub(crate) fn target_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        target_dir_with_env(&[], &[]).unwrap_or_else(|e| {
            // Without cargo metadata nothing else xtask runs would work either; say why once.
            eprintln!("xtask: cannot ask cargo for the target directory ({e}); assuming target/");
            root().join("target")
        })
    })
    .clone()
}

/// [`target_dir`] as `cargo metadata` answers it with extra environment variables set (the
/// tests use this to point `CARGO_TARGET_DIR` elsewhere without touching their own process),
/// and `unset` removed.
fn target_dir_with_env(env: &[(&str, &str)], unset: &[&str]) -> DynResult<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--no-deps"]);
    for key in unset {
        cmd.env_remove(key);
    }
    let out = cmd
        .envs(env.iter().copied())
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("`cargo metadata` failed with {}", out.status).into());
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let dir = meta["target_directory"]
        .as_str()
        .ok_or("`cargo metadata` printed no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Writes BENCHMARKS.md and the charts from `bench-report.tsv` in the target directory.
fn report_from_tsv() -> DynResult {
    let tsv = tsv_path();
    let text = std::fs::read_to_string(&tsv).map_err(|e| {
        format!(
            "cannot read {}: {e} (run `cargo xtask bench --report` first)",
            tsv.display()
        )
    })?;
    let rows = report::parse_tsv(&text);
    if rows.is_empty() {
        return Err(format!("{} holds no rows", tsv.display()).into());
    }
    let run = report::RunFacts::parse(&text);
    let mut machine = report::Machine::here();
    if let Some(started) = run.started {
        machine.date = started;
    }
    machine.load = run.load;
    machine.load_end = run.load_end;
    report::write(&root(), &rows, &machine, run.took)
}

fn loom() -> DynResult {
    // Its own directory beside the normal builds: `--cfg multiproc_loom` rebuilds everything,
    // and sharing the directory would throw the normal builds away each time.
    let loom_dir = target_dir().join("loom");
    run_env(
        "cargo",
        &["test", "--release", "--workspace", "--lib", "--", "loom_"],
        &[
            ("RUSTFLAGS", "--cfg multiproc_loom"),
            (
                "CARGO_TARGET_DIR",
                loom_dir.to_str().ok_or("non-UTF-8 path")?,
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_follows_cargo_target_dir() {
        let elsewhere = std::env::temp_dir().join("multiproc-xtask-elsewhere");
        let got = target_dir_with_env(&[("CARGO_TARGET_DIR", elsewhere.to_str().unwrap())], &[])
            .expect("cargo metadata runs");
        assert_eq!(got, elsewhere);
    }

    #[test]
    fn target_dir_follows_a_cargo_config() {
        // `build.target-dir` in its environment form, with `CARGO_TARGET_DIR` out of the way.
        let elsewhere = std::env::temp_dir().join("multiproc-xtask-config");
        let got = target_dir_with_env(
            &[("CARGO_BUILD_TARGET_DIR", elsewhere.to_str().unwrap())],
            &["CARGO_TARGET_DIR"],
        )
        .expect("cargo metadata runs");
        assert_eq!(got, elsewhere);
    }

    #[test]
    fn examples_are_looked_for_under_the_target_dir() {
        let exe = examples::example_exe(Path::new("/elsewhere"), "tour");
        assert!(exe.starts_with("/elsewhere/release/examples"), "{exe:?}");
    }
}
