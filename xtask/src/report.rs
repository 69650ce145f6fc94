//! `cargo xtask bench --report` (and `cargo xtask report`): turns the rows that the benchmark
//! harness appended to `target/bench-report.tsv` into `BENCHMARKS.md` and SVG charts under
//! `docs/charts/`.
//!
//! Nothing here knows which benchmarks exist: every group in the TSV becomes one table and one
//! horizontal bar chart (multiproc and each peer, log-scale ns per operation), and a group whose
//! rows carry an item size (the harness's `*_sized` rows) also gets throughput and latency
//! against item size, one line per figure and implementation. The TSV's columns are documented
//! by `multiproc_bench::TSV_COLUMNS`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::DynResult;

#[path = "../../crates/multiproc-bench/src/units.rs"]
#[allow(
    unreachable_pub,
    reason = "public in the benchmark crate, whose file this is"
)]
mod units;
use units::size_label;

/// One TSV row: multiproc's figure against one peer (or against none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) group: String,
    pub(crate) figure: String,
    pub(crate) ours_ns: f64,
    /// Bytes moved by one operation; 0 when the figure does not move data.
    pub(crate) bytes: u64,
    /// The peer's name; empty when the figure has no baseline.
    pub(crate) baseline: String,
    pub(crate) baseline_ns: f64,
    pub(crate) size: Option<u64>,
}

impl Row {
    fn label(&self) -> String {
        match self.size {
            Some(s) => format!("{} {}", self.figure, size_label(s)),
            None => self.figure.clone(),
        }
    }

    fn has_baseline(&self) -> bool {
        !self.baseline.is_empty() && self.baseline_ns.is_finite() && self.baseline_ns > 0.0
    }

    /// Bytes per ns (= GB/s) for a sized figure: the bytes one operation moves when the
    /// harness was told, else the item size.
    fn throughput(&self, ns: f64) -> Option<f64> {
        let bytes = if self.bytes > 0 {
            self.bytes
        } else {
            self.size?
        };
        (ns > 0.0).then(|| bytes as f64 / ns)
    }
}

/// Parses the TSV the harness wrote: 7 columns (older harness) or 8 (with `size`); lines that
/// are empty or start with `#` are skipped, as are rows whose multiproc figure is not a number.
pub(crate) fn parse_tsv(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let c: Vec<&str> = line.split('\t').collect();
            if c.len() < 7 {
                return None;
            }
            let ours_ns: f64 = c[2].trim().parse().ok()?;
            if !ours_ns.is_finite() {
                return None;
            }
            Some(Row {
                group: c[0].to_owned(),
                figure: c[1].to_owned(),
                ours_ns,
                bytes: c[3].trim().parse().unwrap_or(0),
                baseline: c[4].to_owned(),
                baseline_ns: c[5].trim().parse().unwrap_or(f64::NAN),
                size: c.get(7).and_then(|s| s.trim().parse().ok()),
            })
        })
        .collect()
}

/// The rows of each group, groups in the order they first appear.
fn groups(rows: &[Row]) -> Vec<(String, Vec<&Row>)> {
    let mut out: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, v)) => v.push(r),
            None => out.push((r.group.clone(), vec![r])),
        }
    }
    out
}

/// Where and how the benchmarks ran, for the report's header.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) python: Option<String>,
    pub(crate) date: String,
    /// The 1-minute load average when the run started, when known: on a shared machine it
    /// says how much the figures may have been disturbed.
    pub(crate) load: Option<f64>,
    /// The same at the end of the run.
    pub(crate) load_end: Option<f64>,
}

impl Machine {
    /// Reads this machine's facts (each one "unknown" when it cannot be read).
    pub(crate) fn here() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_owned());
        let rustc = command_line("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into());
        // Python 3 prints its version on stdout (Python 2 on stderr: not ours anyway).
        let python = command_line("python3", &["--version"]);
        Machine {
            cpu,
            cores,
            kernel,
            rustc,
            python,
            date: utc_now(),
            load: None,
            load_end: None,
        }
    }

    fn line(&self) -> String {
        let python = self
            .python
            .as_deref()
            .unwrap_or("no python3 (its rows are skipped)");
        let load = match (self.load, self.load_end) {
            (None, None) => String::new(),
            (start, end) => {
                let show = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
                let most = start.unwrap_or(0.0).max(end.unwrap_or(0.0));
                let busy = if most >= 0.5 * self.cores as f64 {
                    ": other work shared the CPUs, expect noisy figures"
                } else {
                    ""
                };
                format!(
                    " (1-minute load average {} at the start, {} at the end{busy})",
                    show(start),
                    show(end)
                )
            }
        };
        format!(
            "{}, {} core{}, {}, {}, {}; {}{load}",
            self.cpu,
            self.cores,
            if self.cores == 1 { "" } else { "s" },
            self.kernel,
            self.rustc,
            python,
            self.date
        )
    }
}

/// The first line a command prints, when it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next()?.trim().to_owned()).filter(|s| !s.is_empty())
}

/// What the TSV's comment lines say about the run (`# started\t<date>`, `# took\t<seconds>`).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RunFacts {
    pub(crate) started: Option<String>,
    pub(crate) took: Option<Duration>,
    pub(crate) load: Option<f64>,
    pub(crate) load_end: Option<f64>,
}

impl RunFacts {
    pub(crate) fn parse(tsv: &str) -> Self {
        let mut facts = RunFacts::default();
        for line in tsv.lines() {
            let Some(rest) = line.strip_prefix("# ") else {
                continue;
            };
            match rest.split_once('\t') {
                Some(("started", v)) => facts.started = Some(v.trim().to_owned()),
                Some(("load", v)) => facts.load = v.trim().parse().ok(),
                Some(("load_end", v)) => facts.load_end = v.trim().parse().ok(),
                Some(("took", v)) => {
                    facts.took = v.trim().parse().ok().map(Duration::from_secs_f64);
                }
                _ => {}
            }
        }
        facts
    }
}

/// The 1-minute load average (`/proc/loadavg`), as text.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// Now, as `YYYY-MM-DD HH:MM UTC` (no date crate: days to a civil date, Howard Hinnant's way).
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `v` with three significant digits (for 1 ≤ v < 1000): `1.18`, `21.8`, `160`.
fn sig3(v: f64) -> String {
    if v >= 99.95 {
        format!("{v:.0}")
    } else if v >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A time per operation with three significant digits and a unit.
fn show_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".into()
    } else if ns < 999.5 {
        format!("{} ns", sig3(ns))
    } else if ns < 999_500.0 {
        format!("{} µs", sig3(ns / 1e3))
    } else if ns < 999_500_000.0 {
        format!("{} ms", sig3(ns / 1e6))
    } else {
        format!("{} s", sig3(ns / 1e9))
    }
}

/// A time on an axis, where ticks fall on round values: `1 µs`, not `1.00 µs`.
fn axis_ns(ns: f64) -> String {
    show_ns(ns).replace(".00 ", " ").replace(".0 ", " ")
}

/// A time cell, with the throughput after it when the row moves data.
fn show_cell(row: &Row, ns: f64) -> String {
    match row.throughput(ns) {
        Some(gbps) if row.size.is_some() || row.bytes > 0 => {
            format!("{} ({})", show_ns(ns), show_rate(gbps))
        }
        _ => show_ns(ns),
    }
}

fn show_rate(bytes_per_ns: f64) -> String {
    let bytes_per_s = bytes_per_ns * 1e9;
    if bytes_per_s >= 999.5e6 {
        format!("{} GB/s", sig3(bytes_per_s / 1e9))
    } else if bytes_per_s >= 999.5e3 {
        format!("{} MB/s", sig3(bytes_per_s / 1e6))
    } else {
        format!("{} kB/s", sig3(bytes_per_s / 1e3))
    }
}

/// A GB/s axis value: `10`, `1`, `0.1`, `0.001` (no trailing zeros).
fn show_axis(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "0" {
        format!("{v:.1e}")
    } else {
        s.to_owned()
    }
}

fn show_ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        "".into()
    } else if ratio < 0.95 {
        // Within 5 % is a tie on a shared VM: no "1.0× faster".
        format!("{ratio:.2}× ({:.1}× faster)", 1.0 / ratio)
    } else {
        format!("{ratio:.2}×")
    }
}

/// A file-name-safe form of a group name: `process start (spawn + join…)` → `process-start-spawn-join`.
pub(crate) fn slug(group: &str) -> String {
    let mut out = String::new();
    for c in group.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let short: String = out.chars().take(48).collect();
    let short = short.trim_end_matches('-').to_owned();
    if short.is_empty() {
        "group".into()
    } else {
        short
    }
}

/// The charts of one group, as paths relative to the repository root.
#[derive(Debug, Default)]
struct Charts {
    bars: Option<String>,
    throughput: Option<String>,
    latency: Option<String>,
}

/// Writes `BENCHMARKS.md` at `root` and the charts under `root/docs/charts/` (old SVGs there
/// are removed first: every chart in that folder is generated).
/// Where the written analysis of a group lives, one file per group named by its slug
/// (`docs/bench-notes/thread-pools-2-threads-submit-of-100-000-closure.md`): what a table
/// cannot say (the machine's state, counts, what was tried) survives each regeneration.
pub(crate) const NOTES_DIR: &str = "docs/bench-notes";

/// The notes by slug (file stem); none when the folder is missing.
fn read_notes(dir: &Path) -> DynResult<BTreeMap<String, String>> {
    let mut notes = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(notes);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            notes.insert(stem.to_owned(), std::fs::read_to_string(&path)?);
        }
    }
    Ok(notes)
}

pub(crate) fn write(
    root: &Path,
    rows: &[Row],
    machine: &Machine,
    took: Option<Duration>,
) -> DynResult {
    let chart_dir = root.join("docs").join("charts");
    std::fs::create_dir_all(&chart_dir)?;
    for entry in std::fs::read_dir(&chart_dir)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "svg") {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut notes = read_notes(&root.join(NOTES_DIR))?;
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str(
        "Generated by `cargo xtask bench --report` (do not edit by hand: a group's written \
         notes live in `docs/bench-notes/<group slug>.md`). Every row measures \
         multiproc and its peer **in the same run**, as medians of several samples; *ratio* is \
         multiproc's time divided by the peer's, so below 1 means multiproc is faster. On a \
         small shared VM absolute times move from run to run; the ratios are what to read. \
         Figures between two processes depend on which CPU each lands on: those rows alternate \
         multiproc and its floor in fresh process pairs and let each pair settle before \
         timing.\n\n",
    );
    let _ = writeln!(md, "**Machine:** {}.  ", machine.line());
    let took = took.map_or_else(String::new, |t| {
        format!(
            "; building and running the benchmarks took {}",
            show_duration(t)
        )
    });
    let _ = writeln!(
        md,
        "**Run:** {} rows in {} groups{took}.\n",
        rows.len(),
        groups(rows).len(),
    );
    md.push_str(
        "Reproduce: `cargo xtask bench --report` (all benchmarks, under 10 minutes on 2 cores), \
         or `cargo xtask bench sync` for one bench without touching this file. \
         `cargo xtask report` redraws this page from `bench-report.tsv` in cargo's target directory.\n",
    );
    for (group, rows) in groups(rows) {
        let base = slug(&group);
        let charts = draw_group(&chart_dir, &base, &group, &rows)?;
        let _ = writeln!(md, "\n## {group}\n");
        md.push_str("| figure | multiproc | peer (same run) | peer | ratio |\n");
        md.push_str("|---|---:|---|---:|---:|\n");
        let mut last: Option<(String, f64)> = None;
        for r in &rows {
            let label = r.label();
            let same = last
                .as_ref()
                .is_some_and(|(l, ns)| *l == label && *ns == r.ours_ns);
            let (fig, ours) = if same {
                (String::new(), String::new())
            } else {
                (escape(&label), show_cell(r, r.ours_ns))
            };
            last = Some((label, r.ours_ns));
            if r.has_baseline() {
                let _ = writeln!(
                    md,
                    "| {fig} | {ours} | {} | {} | {} |",
                    escape(&r.baseline),
                    show_cell(r, r.baseline_ns),
                    show_ratio(r.ours_ns / r.baseline_ns)
                );
            } else {
                let _ = writeln!(md, "| {fig} | {ours} | — | | |");
            }
        }
        md.push('\n');
        for (what, path) in [
            ("ns per operation", &charts.bars),
            ("throughput against item size", &charts.throughput),
            ("latency against item size", &charts.latency),
        ] {
            if let Some(p) = path {
                let _ = writeln!(md, "![{group}: {what}]({p})\n");
            }
        }
        if let Some(note) = notes.remove(&base) {
            md.push_str(note.trim_end());
            md.push_str("\n\n");
        }
    }
    // Notes whose group this run did not measure (a bench left out, a group renamed) are
    // kept, not lost: they follow the tables, under their file's name.
    for (slug, note) in notes {
        let _ = writeln!(md, "\n## Notes: {slug}\n\n{}\n", note.trim_end());
    }
    std::fs::write(root.join("BENCHMARKS.md"), md)?;
    eprintln!(
        "report: wrote BENCHMARKS.md and {} chart(s) in docs/charts/",
        std::fs::read_dir(&chart_dir)?.count()
    );
    Ok(())
}

fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Tableau's ten colours: multiproc is always the first (blue), peers take the others in the
/// order they first appear in the group.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of each implementation of a group: "multiproc" first, then the peers.
fn colours(rows: &[&Row]) -> BTreeMap<String, RGBColor> {
    let mut map = BTreeMap::new();
    map.insert("multiproc".to_owned(), PALETTE[0]);
    for r in rows.iter().filter(|r| r.has_baseline()) {
        let next = PALETTE[1 + (map.len() - 1) % (PALETTE.len() - 1)];
        map.entry(r.baseline.clone()).or_insert(next);
    }
    map
}

/// One bar of the bar chart.
struct Bar {
    label: String,
    ns: f64,
    colour: RGBColor,
}

fn draw_group(dir: &Path, base: &str, group: &str, rows: &[&Row]) -> DynResult<Charts> {
    let colours = colours(rows);
    let mut bars = Vec::new();
    let mut last: Option<(String, f64)> = None;
    for r in rows {
        let label = r.label();
        if last.as_ref() != Some(&(label.clone(), r.ours_ns)) {
            bars.push(Bar {
                label: format!("{label} · multiproc"),
                ns: r.ours_ns,
                colour: colours["multiproc"],
            });
        }
        last = Some((label, r.ours_ns));
        if r.has_baseline() {
            bars.push(Bar {
                label: format!("    vs {}", r.baseline),
                ns: r.baseline_ns,
                colour: colours[&r.baseline],
            });
        }
    }
    let mut charts = Charts::default();
    if !bars.is_empty() {
        let name = format!("{base}.svg");
        draw_bars(&dir.join(&name), group, &bars)?;
        charts.bars = Some(format!("docs/charts/{name}"));
    }
    let sized: Vec<&Row> = rows.iter().copied().filter(|r| r.size.is_some()).collect();
    if !sized.is_empty() {
        let series = size_series(&sized);
        let name = format!("{base}-throughput.svg");
        draw_lines(
            &dir.join(&name),
            &format!("{group}: throughput"),
            "GB/s (log scale; higher is better)",
            &series,
            &colours,
            |p| p.gbps,
            show_axis,
        )?;
        charts.throughput = Some(format!("docs/charts/{name}"));
        let name = format!("{base}-latency.svg");
        draw_lines(
            &dir.join(&name),
            &format!("{group}: time per operation"),
            "ns per operation (log scale; lower is better)",
            &series,
            &colours,
            |p| p.ns,
            axis_ns,
        )?;
        charts.latency = Some(format!("docs/charts/{name}"));
    }
    Ok(charts)
}

fn draw_bars(path: &Path, group: &str, bars: &[Bar]) -> DynResult {
    let n = bars.len();
    let height = 90 + 24 * n as u32;
    let lo = bars.iter().map(|b| b.ns).fold(f64::INFINITY, f64::min) / 2.0;
    let hi = bars.iter().map(|b| b.ns).fold(0.0, f64::max) * 4.0;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(group, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(390)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n as i32).into_segmented())?;
    let labels: Vec<String> = bars.iter().map(|b| shorten(&b.label, 62)).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_style(("sans-serif", 13))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (0..n as i32).contains(i) => {
                labels[n - 1 - *i as usize].clone()
            }
            _ => String::new(),
        })
        .x_desc("time per operation (log scale; shorter is faster)")
        .x_label_formatter(&|x| axis_ns(*x))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let y = (n - 1 - i) as i32;
        let mut r = Rectangle::new(
            [
                (lo, SegmentValue::Exact(y)),
                (b.ns, SegmentValue::Exact(y + 1)),
            ],
            b.colour.filled(),
        );
        r.set_margin(3, 3, 0, 0);
        r
    }))?;
    let value_style = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let y = (n - 1 - i) as i32;
        Text::new(
            format!(" {}", show_ns(b.ns)),
            (b.ns, SegmentValue::CenterOf(y)),
            value_style.clone(),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// One point of a size series.
#[derive(Clone, Copy, Debug)]
struct Point {
    size: u64,
    ns: f64,
    gbps: f64,
}

/// The lines of a sized group: key (figure, implementation) → points sorted by size.
type Series = Vec<((String, String), Vec<Point>)>;

fn size_series(rows: &[&Row]) -> Series {
    let mut out: Series = Vec::new();
    let mut add = |figure: &str, who: &str, row: &Row, ns: f64| {
        let (Some(size), Some(gbps)) = (row.size, row.throughput(ns)) else {
            return;
        };
        let key = (figure.to_owned(), who.to_owned());
        let at = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                out.push((key, Vec::new()));
                out.len() - 1
            }
        };
        let points = &mut out[at].1;
        if !points.iter().any(|p| p.size == size) {
            points.push(Point { size, ns, gbps });
        }
    };
    for r in rows {
        add(&r.figure, "multiproc", r, r.ours_ns);
        if r.has_baseline() {
            add(&r.figure, &r.baseline, r, r.baseline_ns);
        }
    }
    for (_, points) in &mut out {
        points.sort_by_key(|p| p.size);
    }
    out
}

fn draw_lines(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &Series,
    colours: &BTreeMap<String, RGBColor>,
    value: impl Fn(&Point) -> f64,
    axis: impl Fn(f64) -> String,
) -> DynResult {
    let mut sizes: Vec<u64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let values = series.iter().flat_map(|(_, p)| p.iter().map(&value));
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = (lo / 3.0, hi * 3.0);
    let figures: Vec<&String> = {
        let mut f: Vec<&String> = series.iter().map(|((f, _), _)| f).collect();
        f.dedup();
        f
    };
    let k = sizes.len() as i32;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(-1..k, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(sizes.len() + 2)
        .x_label_formatter(&|i| {
            usize::try_from(*i)
                .ok()
                .and_then(|i| sizes.get(i))
                .map(|s| size_label(*s))
                .unwrap_or_default()
        })
        .x_desc("item size")
        .y_desc(y_desc)
        .y_label_formatter(&|v| axis(*v))
        .draw()?;
    // Different figures of one group get different dash-free markers: filled circles for the
    // first, hollow for the others; colours say the implementation.
    for ((figure, who), points) in series {
        let colour = colours.get(who).copied().unwrap_or(PALETTE[7]);
        let filled = Some(figure) == figures.first().copied();
        let coords: Vec<(i32, f64)> = points
            .iter()
            .map(|p| (sizes.binary_search(&p.size).unwrap_or(0) as i32, value(p)))
            .collect();
        let label = if figures.len() > 1 {
            format!("{who}: {figure}")
        } else {
            who.clone()
        };
        chart
            .draw_series(LineSeries::new(coords.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(coords.into_iter().map(move |c| {
            let style = if filled {
                colour.filled()
            } else {
                colour.stroke_width(2)
            };
            Circle::new(c, 4, style)
        }))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "\
# group\tfigure\tours_ns\tbytes\tbaseline\tbaseline_ns\tratio\tsize
# started\t2025-01-01 00:00 UTC
# load\t0.25
sync\tLock uncontended\t10\t0\tparking_lot::Mutex\t9\t1.11
sync\tLock uncontended\t10\t0\tstd::sync::Mutex\t12\t0.83
start\tFork\t160000\t0\t\tNaN\tNaN
queues\tQueue put+get\t900\t0\tpipe\t1800\t0.5\t8
queues\tQueue put+get\t2000\t0\tpipe\t2500\t0.8\t1024
queues\tQueue put+get\t90000\t0\tpipe\t100000\t0.9\t1048576
old format without a ratio
# took\t75.5
# load_end\t1.75
";

    #[test]
    fn parses_both_formats_and_skips_junk() {
        let rows = parse_tsv(TSV);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0].size, None);
        assert!(!rows[2].has_baseline());
        assert_eq!(rows[5].size, Some(1 << 20));
        assert_eq!(rows[5].label(), "Queue put+get 1 MiB");
        let g = groups(&rows);
        let names: Vec<&str> = g.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sync", "start", "queues"]);
        let facts = RunFacts::parse(TSV);
        assert_eq!(facts.started.as_deref(), Some("2025-01-01 00:00 UTC"));
        assert_eq!(facts.took, Some(Duration::from_secs_f64(75.5)));
        assert_eq!(facts.load, Some(0.25));
        assert_eq!(facts.load_end, Some(1.75));
    }

    #[test]
    fn writes_markdown_and_charts() {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let machine = Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            kernel: "Linux 6".into(),
            rustc: "rustc 1.87".into(),
            python: None,
            date: "2025-01-01 00:00 UTC".into(),
            load: Some(1.5),
            load_end: None,
        };
        write(
            &dir,
            &parse_tsv(TSV),
            &machine,
            Some(Duration::from_secs(75)),
        )
        .unwrap();
        let md = std::fs::read_to_string(dir.join("BENCHMARKS.md")).unwrap();
        assert!(md.contains("Test CPU, 2 cores"), "{md}");
        assert!(
            md.contains("load average 1.50 at the start, ? at the end: other work"),
            "{md}"
        );
        assert!(md.contains("1 min 15 s"));
        assert!(
            md.contains("| Lock uncontended | 10.0 ns | parking_lot::Mutex | 9.00 ns | 1.11× |")
        );
        assert!(md.contains("|  |  | std::sync::Mutex | 12.0 ns | 0.83× (1.2× faster) |"));
        assert_eq!(show_ratio(0.98), "0.98×");
        assert!(
            md.contains("| Queue put+get 8 B | 900 ns (8.89 MB/s) | pipe | 1.80 µs (4.44 MB/s) |"),
            "{md}"
        );
        assert!(md.contains("docs/charts/queues-throughput.svg"));
        for chart in ["sync.svg", "start.svg", "queues.svg", "queues-latency.svg"] {
            let svg = std::fs::read_to_string(dir.join("docs/charts").join(chart)).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("multiproc"),
                "{chart}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn slugs_dates_and_units() {
        assert_eq!(
            slug("process start (spawn + join of a no-op target)"),
            "process-start-spawn-join-of-a-no-op-target"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(size_label(64 << 20), "64 MiB");
        assert_eq!(show_ratio(0.5), "0.50× (2.0× faster)");
        assert_eq!(show_ns(160_000.0), "160 µs");
        assert_eq!(show_ns(1_180_000.0), "1.18 ms");
        assert_eq!(show_ns(999.9), "1.00 µs");
        assert_eq!(show_rate(11.65), "11.7 GB/s");
        assert_eq!(show_axis(0.001), "0.001");
        assert_eq!(show_axis(10.0), "10");
        assert_eq!(axis_ns(1000.0), "1 µs");
        assert_eq!(axis_ns(100.0), "100 ns");
    }
}
