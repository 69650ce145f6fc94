//! `cargo xtask`: the workspace's one entry point for tests, benchmarks and checks.
//!
//! Every command it runs is echoed first, so a failure can be reproduced by hand.
//!
//! - `cargo xtask test`: rustfmt check, clippy `-D warnings`, tidy checks, every crate's unit,
//!   integration and doc tests (nextest with per-test timeouts when it is installed), and every
//!   example run to completion with its output checked.
//! - `cargo xtask examples [NAME…]`: build and run the examples, checking each one's output.
//! - `cargo xtask bench [--report]`: run the benchmarks; each prints figure, value, baseline, ratio.
//! - `cargo xtask loom`: the loom model checks (`--cfg multiproc_loom`).
//! - `cargo xtask tidy`: the house rules (see `tidy.rs`).
//! - `cargo xtask ci`: what `.ci/run` runs (the same as `test`).

mod examples;
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
        "loom" => loom(),
        "tidy" => tidy::check(&root()).map_err(Into::into),
        _ => {
            eprintln!("usage: cargo xtask <test|examples [NAME…]|bench [--report]|loom|tidy|ci>");
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

fn test() -> DynResult {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
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
    )?;
    tidy::check(&root())?;
    if has_nextest() {
        let profile = if std::env::var_os("CI").is_some() {
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
        )?;
    } else {
        eprintln!("cargo-nextest is not installed: running `cargo test` (no per-test timeouts)");
        run("cargo", &["test", "--workspace", "--all-targets"])?;
    }
    run("cargo", &["test", "--workspace", "--doc"])?;
    examples::run_all(&[])
}

fn bench(rest: &[String]) -> DynResult {
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
    if report {
        let out = root().join("target").join("bench-report.tsv");
        let _ = std::fs::remove_file(&out);
        run_env(
            "cargo",
            &args,
            &[("MULTIPROC_BENCH_TSV", out.to_str().unwrap())],
        )
    } else {
        run("cargo", &args)
    }
}

fn loom() -> DynResult {
    run_env(
        "cargo",
        &["test", "--release", "--workspace", "--lib", "--", "loom_"],
        &[
            ("RUSTFLAGS", "--cfg multiproc_loom"),
            ("CARGO_TARGET_DIR", "target/loom"),
        ],
    )
}
