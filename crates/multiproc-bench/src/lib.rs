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
//!
//! A [`Report`] is one group of rows: one table and one bar chart in BENCHMARKS.md. One figure
//! may have several baselines ([`Report::rows`]); a figure measured at several item sizes
//! passes the size apart from its name ([`Report::row_sized`], [`Report::rows_sized`]), so that
//! `cargo xtask bench --report` also draws throughput and latency against item size. The file
//! format between the harness and xtask is [`TSV_COLUMNS`].

mod locks;
mod units;
pub use locks::{BenchLock, uncontended};
pub use units::size_label;

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

/// Measures several figures in alternation, `rounds` rounds of each in turn (A B C A B C …),
/// and returns each figure's median round. For figures taken between processes, whose
/// conditions drift within a run (which CPU each process lands on, a neighbour's load):
/// measured one after the other they would compare two different moments, alternated their
/// ratio compares like with like. Each closure measures one round (typically a short
/// [`Measure`] with its own processes).
///
/// ```
/// use multiproc_bench::{Measure, alternate};
/// let quick = || Measure::new(3, 100).per_op(|n| (0..n).for_each(|i| { std::hint::black_box(i); }));
/// let [a, b] = alternate(3, [&mut { quick }, &mut { quick }]);
/// assert!(a.ns >= 0.0 && b.ns >= 0.0);
/// ```
pub fn alternate<const N: usize>(
    rounds: usize,
    mut figures: [&mut dyn FnMut() -> PerOp; N],
) -> [PerOp; N] {
    let mut taken: [Vec<PerOp>; N] = std::array::from_fn(|_| Vec::new());
    for _ in 0..rounds.max(1) {
        for (f, t) in figures.iter_mut().zip(taken.iter_mut()) {
            t.push(f());
        }
    }
    taken.map(|mut t| {
        t.sort_by(|a, b| a.ns.total_cmp(&b.ns));
        t[t.len() / 2]
    })
}

/// The columns of one TSV row, in order (tab-separated, one row per figure and baseline).
///
/// | # | column | content |
/// |---|---|---|
/// | 1 | `group` | the [`Report`]'s group: one table (and one bar chart) in BENCHMARKS.md |
/// | 2 | `figure` | what is measured, **without** the item size (`"Queue put+get"`) |
/// | 3 | `ours_ns` | multiproc's median ns per operation |
/// | 4 | `bytes` | bytes moved by one operation ([`PerOp::with_bytes`]), `0` when none |
/// | 5 | `baseline` | the peer's name; empty for a figure with no baseline |
/// | 6 | `baseline_ns` | the peer's median ns per operation, `NaN` when none |
/// | 7 | `ratio` | `ours_ns / baseline_ns` (below 1: multiproc is faster) |
/// | 8 | `size` | the item size in bytes for a sized figure ([`Report::row_sized`]), empty otherwise |
///
/// Rows of one group that carry a `size` are also drawn as throughput (bytes / ns, that is
/// GB/s) and latency against item size, one line per figure and implementation; throughput
/// counts column 4 when it is set and the item size otherwise.
pub const TSV_COLUMNS: [&str; 8] = [
    "group",
    "figure",
    "ours_ns",
    "bytes",
    "baseline",
    "baseline_ns",
    "ratio",
    "size",
];

/// The environment variable naming the TSV file that every row is appended to
/// (`cargo xtask bench --report` sets it to `target/bench-report.tsv`).
pub const TSV_ENV: &str = "MULTIPROC_BENCH_TSV";

/// Prints rows of `figure | multiproc | baseline | baseline value | ratio` as they are measured,
/// and appends them to the file named by `MULTIPROC_BENCH_TSV` (see [`TSV_COLUMNS`]), from
/// which `cargo xtask bench --report` writes BENCHMARKS.md and the charts in `docs/charts/`.
///
/// A group becomes one table and one bar chart. A figure measured for several item sizes
/// (queues, pipes) uses the `_sized` forms: the figure name stays the same for every size
/// (`"Queue put+get (round trip)"`) and the size goes in its own column, so the report can
/// also draw throughput and latency against item size:
///
/// ```no_run
/// use multiproc_bench::{PerOp, Report};
/// let mut r = Report::new("process queues");
/// for size in [8, 1024, 1 << 20] {
///     let ours = PerOp::from_ns(1000.0);
///     let pipe = PerOp::from_ns(1500.0);
///     let python = PerOp::from_ns(30_000.0);
///     r.rows_sized(
///         "Queue put+get (round trip)",
///         size,
///         ours,
///         &[("raw pipe", pipe), ("Python multiprocessing.Queue", python)],
///     );
/// }
/// ```
///
/// Several baselines of one figure are several rows (printed and written one per baseline).
#[derive(Debug)]
pub struct Report {
    group: String,
}

impl Report {
    /// Starts a group of rows and prints its header. Groups are shown in the order they are
    /// first created; a group name used again by a later bench adds to the same table.
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
        self.emit(figure, None, ours, baseline_name, baseline);
    }

    /// One figure against several baselines: one row per baseline.
    pub fn rows(&mut self, figure: &str, ours: PerOp, baselines: &[(&str, PerOp)]) {
        for (name, base) in baselines {
            self.emit(figure, None, ours, name, *base);
        }
    }

    /// Like [`Report::row`] for a figure measured at an item size of `size_bytes` (printed as
    /// `"<figure> 1 KiB"`; the TSV keeps the figure and the size apart).
    pub fn row_sized(
        &mut self,
        figure: &str,
        size_bytes: u64,
        ours: PerOp,
        baseline_name: &str,
        baseline: PerOp,
    ) {
        self.emit(figure, Some(size_bytes), ours, baseline_name, baseline);
    }

    /// Like [`Report::rows`] for a figure measured at an item size of `size_bytes`.
    pub fn rows_sized(
        &mut self,
        figure: &str,
        size_bytes: u64,
        ours: PerOp,
        baselines: &[(&str, PerOp)],
    ) {
        for (name, base) in baselines {
            self.emit(figure, Some(size_bytes), ours, name, *base);
        }
    }

    /// A row with no baseline (a figure reported for scale only).
    pub fn figure(&mut self, figure: &str, ours: PerOp) {
        println!("{:<46} {:>13}", figure, show(ours));
        self.append_tsv(figure, None, ours, "", PerOp::from_ns(f64::NAN), f64::NAN);
    }

    /// Like [`Report::figure`] at an item size of `size_bytes`.
    pub fn figure_sized(&mut self, figure: &str, size_bytes: u64, ours: PerOp) {
        let label = format!("{figure} {}", size_label(size_bytes));
        println!("{:<46} {:>13}", label, show(ours));
        self.append_tsv(
            figure,
            Some(size_bytes),
            ours,
            "",
            PerOp::from_ns(f64::NAN),
            f64::NAN,
        );
    }

    fn emit(
        &mut self,
        figure: &str,
        size: Option<u64>,
        ours: PerOp,
        baseline_name: &str,
        baseline: PerOp,
    ) {
        let ratio = ours.ns / baseline.ns;
        let label = match size {
            Some(s) => format!("{figure} {}", size_label(s)),
            None => figure.to_owned(),
        };
        // Below 1 the ratio alone rounds to 0.00x against slow peers: say how many times faster.
        let shown = if ratio < 0.95 {
            format!("{ratio:.2}x ({:.1}x faster)", 1.0 / ratio)
        } else {
            format!("{ratio:.2}x")
        };
        println!(
            "{:<46} {:>13} {:>13}  {:<34} {:>6}",
            label,
            show(ours),
            show(baseline),
            baseline_name,
            shown
        );
        self.append_tsv(figure, size, ours, baseline_name, baseline, ratio);
    }

    fn append_tsv(
        &self,
        figure: &str,
        size: Option<u64>,
        ours: PerOp,
        name: &str,
        base: PerOp,
        ratio: f64,
    ) {
        let Some(path) = std::env::var_os(TSV_ENV) else {
            return;
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(
                f,
                "{}",
                tsv_line(&self.group, figure, size, ours, name, base, ratio)
            );
        }
    }
}

/// One TSV line (no newline); tabs and newlines inside names become spaces.
fn tsv_line(
    group: &str,
    figure: &str,
    size: Option<u64>,
    ours: PerOp,
    name: &str,
    base: PerOp,
    ratio: f64,
) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        clean(group),
        clean(figure),
        ours.ns,
        ours.bytes.unwrap_or(0),
        clean(name),
        base.ns,
        ratio,
        size.map(|s| s.to_string()).unwrap_or_default()
    )
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

    #[test]
    fn sizes_are_labelled_in_binary_units() {
        assert_eq!(size_label(8), "8 B");
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(1536), "1.5 KiB");
        assert_eq!(size_label(64 << 20), "64 MiB");
    }

    #[test]
    fn a_tsv_line_has_every_column() {
        let line = tsv_line(
            "g",
            "put\tget",
            Some(1024),
            PerOp::from_ns(10.0).with_bytes(2048),
            "pipe",
            PerOp::from_ns(20.0),
            0.5,
        );
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), TSV_COLUMNS.len());
        assert_eq!(
            cols,
            ["g", "put get", "10", "2048", "pipe", "20", "0.5", "1024"]
        );
        let plain = tsv_line(
            "g",
            "f",
            None,
            PerOp::from_ns(1.0),
            "",
            PerOp::from_ns(f64::NAN),
            f64::NAN,
        );
        assert!(plain.ends_with("\tNaN\tNaN\t"), "{plain}");
    }
}
