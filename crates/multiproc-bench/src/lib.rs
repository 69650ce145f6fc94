//! The benchmark harness behind `cargo xtask bench`: every figure is measured for multiproc and
//! for its baseline in the same run, and printed as medians with their ratio, because absolute
//! times on a shared 2-vCPU machine mean little while ratios taken minutes apart mean less.
//!
//! ```no_run
//! use multiproc_bench::{Measure, Report};
//! let mut report = Report::new("example");
//! let ours = Measure::new(9, 1000).per_op(|n| (0..n).for_each(|i| { std::hint::black_box(i); }));
//! let base = Measure::new(9, 1000).per_op(|n| (0..n).for_each(|i| { std::hint::black_box(i); }));
//! report.row("loop iteration", ours, "plain loop", base);
//! ```

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

/// How a figure is sampled: `samples` runs of `ops` operations each; the median run counts.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    samples: usize,
    ops: u64,
}

/// One measured figure: the median time of one operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerOp {
    /// Median nanoseconds per operation.
    pub ns: f64,
    /// Bytes moved by one operation, when it moves data (for throughput columns).
    pub bytes: Option<u64>,
}

impl PerOp {
    /// A figure measured elsewhere (for example by a Python script), in nanoseconds per op.
    pub fn from_ns(ns: f64) -> Self {
        PerOp { ns, bytes: None }
    }

    /// Marks the figure as moving `bytes` per operation, so the report shows GB/s too.
    pub fn with_bytes(self, bytes: u64) -> Self {
        PerOp {
            bytes: Some(bytes),
            ..self
        }
    }
}

impl Measure {
    /// `samples` runs (at least 1) of `ops` operations (at least 1) each.
    pub fn new(samples: usize, ops: u64) -> Self {
        Measure {
            samples: samples.max(1),
            ops: ops.max(1),
        }
    }

    /// Times `f(ops)`, which must perform `ops` operations, and returns the median per op.
    /// One untimed warm-up run comes first.
    pub fn per_op(&self, mut f: impl FnMut(u64)) -> PerOp {
        f(self.ops.min(16));
        let mut times: Vec<f64> = (0..self.samples)
            .map(|_| {
                let start = Instant::now();
                f(self.ops);
                start.elapsed().as_nanos() as f64 / self.ops as f64
            })
            .collect();
        times.sort_by(f64::total_cmp);
        PerOp {
            ns: times[times.len() / 2],
            bytes: None,
        }
    }

    /// Like [`Measure::per_op`] for code that times itself: `f(ops)` returns the elapsed time
    /// of the part that counts (for example without set-up).
    pub fn per_op_timed(&self, mut f: impl FnMut(u64) -> Duration) -> PerOp {
        f(self.ops.min(16));
        let mut times: Vec<f64> = (0..self.samples)
            .map(|_| f(self.ops).as_nanos() as f64 / self.ops as f64)
            .collect();
        times.sort_by(f64::total_cmp);
        PerOp {
            ns: times[times.len() / 2],
            bytes: None,
        }
    }
}

/// Prints rows of `figure | multiproc | baseline | baseline value | ratio` as they are measured,
/// and appends them to the file named by `MULTIPROC_BENCH_TSV` (for `cargo xtask bench --report`).
#[derive(Debug)]
pub struct Report {
    group: String,
}

impl Report {
    /// Starts a group of rows (one benchmark file) and prints its header.
    pub fn new(group: &str) -> Self {
        println!("\n## {group}");
        println!(
            "{:<46} {:>13} {:>13}  {:<34} {:>7}",
            "figure", "multiproc", "baseline", "baseline name", "ratio"
        );
        Report {
            group: group.to_owned(),
        }
    }

    /// One row: multiproc's figure against one baseline. Ratio = ours / baseline (lower is
    /// better for times).
    pub fn row(&mut self, figure: &str, ours: PerOp, baseline_name: &str, baseline: PerOp) {
        let ratio = ours.ns / baseline.ns;
        println!(
            "{:<46} {:>13} {:>13}  {:<34} {:>6.2}x",
            figure,
            show(ours),
            show(baseline),
            baseline_name,
            ratio
        );
        self.append_tsv(figure, ours, baseline_name, baseline, ratio);
    }

    /// A row with no baseline (a figure reported for scale only).
    pub fn figure(&mut self, figure: &str, ours: PerOp) {
        println!("{:<46} {:>13}", figure, show(ours));
        self.append_tsv(figure, ours, "", PerOp::from_ns(f64::NAN), f64::NAN);
    }

    fn append_tsv(&self, figure: &str, ours: PerOp, name: &str, base: PerOp, ratio: f64) {
        let Some(path) = std::env::var_os("MULTIPROC_BENCH_TSV") else {
            return;
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(
                f,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                self.group,
                figure,
                ours.ns,
                ours.bytes.unwrap_or(0),
                name,
                base.ns,
                ratio
            );
        }
    }
}

/// Formats a per-op time with a unit that keeps 3 significant digits, plus GB/s if it moves data.
pub fn show(p: PerOp) -> String {
    if p.ns.is_nan() {
        return "n/a".into();
    }
    if let Some(bytes) = p.bytes {
        return format!("{:.2} GB/s", bytes as f64 / p.ns);
    }
    let ns = p.ns;
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// Runs a Python 3 snippet that prints one number, nanoseconds per operation, and returns it;
/// `None` when `python3` is missing or the snippet fails (the row is then skipped).
pub fn python_ns(script: &str) -> Option<PerOp> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
        .map(PerOp::from_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_per_op_is_positive_and_shown_with_units() {
        let p = Measure::new(3, 100).per_op(|n| {
            for i in 0..n {
                std::hint::black_box(i);
            }
        });
        assert!(p.ns >= 0.0);
        assert_eq!(show(PerOp::from_ns(1500.0)), "1.50 µs");
        assert_eq!(show(PerOp::from_ns(2.5e6)), "2.50 ms");
        assert_eq!(
            show(PerOp::from_ns(1000.0).with_bytes(1_000_000)),
            "1000.00 GB/s"
        );
    }
}
