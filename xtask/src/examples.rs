//! `cargo xtask examples`: builds every example, runs it, and checks its output against the
//! expected output written in the example's own header.
//!
//! An example declares what it prints in its `//!` header:
//!
//! ```text
//! //! Expected output:
//! //! ```text
//! //! 当前进程是: {pid}
//! //! 这里使用 {pid}进程 处理 Hello.
//! //! ```
//! ```
//!
//! Placeholders: `{pid}` and `{n}` match a number, `{*}` matches anything (also nothing). A fence
//! written ```` ```text,ordered ```` must match line by line in order; a plain one matches as a
//! multiset (every printed line matches a distinct expected line and none is left over), because
//! threads and processes interleave their output. A line `...` allows extra printed lines.

use crate::{DynResult, root, run, target_dir};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one example may run before it counts as hung.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn run_all(only: &[String]) -> DynResult {
    let names = example_names()?;
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--package",
            "multiproc-examples",
            "--examples",
        ],
    )?;
    let mut failures = Vec::new();
    let mut passed = 0;
    for name in names.iter().filter(|n| only.is_empty() || only.contains(n)) {
        if needs_redis(name)? && std::env::var_os("MULTIPROC_REDIS_URL").is_none() {
            // Reported by name and counted (a failure under CI), never passed.
            multiproc_testkit::skip(&format!("example {name}"), "no Redis server");
            continue;
        }
        match run_one(name) {
            Ok(()) => {
                passed += 1;
                eprintln!("example {name}: ok");
            }
            Err(e) => {
                eprintln!("example {name}: FAILED\n{e}");
                failures.push(name.clone());
            }
        }
    }
    eprintln!("examples: {passed} passed, {} failed", failures.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("examples failed: {}", failures.join(", ")).into())
    }
}

/// Whether example `name` talks to a Redis server (it uses the `redis` module).
fn needs_redis(name: &str) -> DynResult<bool> {
    let source = std::fs::read_to_string(root().join("examples").join(format!("{name}.rs")))?;
    Ok(source.contains("redis::"))
}

/// The `[[example]]` names declared in `examples/Cargo.toml`, in file order.
fn example_names() -> DynResult<Vec<String>> {
    let manifest = std::fs::read_to_string(root().join("examples/Cargo.toml"))?;
    Ok(manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "multiproc-examples")
        .map(str::to_owned)
        .collect())
}

/// Where `cargo build --release --examples` puts example `name` under `target`.
pub(crate) fn example_exe(target: &Path, name: &str) -> PathBuf {
    target
        .join("release")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run_one(name: &str) -> DynResult {
    let source = std::fs::read_to_string(root().join("examples").join(format!("{name}.rs")))?;
    let expected = Expected::parse(&source)
        .ok_or_else(|| format!("examples/{name}.rs has no `Expected output:` block"))?;
    let exe = example_exe(&target_dir(), name);
    eprintln!("$ {}", exe.display());
    let mut child = Command::new(&exe)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > EXAMPLE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung: killed after {EXAMPLE_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}").into());
    }
    expected
        .check(&stdout)
        .map_err(|e| format!("{e}\nprinted:\n{stdout}").into())
}

/// The expected output of one example.
#[derive(Debug)]
struct Expected {
    lines: Vec<String>,
    ordered: bool,
    extra_allowed: bool,
}

impl Expected {
    fn parse(source: &str) -> Option<Expected> {
        let mut in_header = false;
        let mut in_block = false;
        let mut ordered = false;
        let mut lines = Vec::new();
        for line in source.lines() {
            let Some(doc) = line.strip_prefix("//!") else {
                if in_block {
                    return None;
                }
                continue;
            };
            let doc = doc.strip_prefix(' ').unwrap_or(doc);
            if !in_header {
                in_header = doc.trim() == "Expected output:";
                continue;
            }
            if !in_block {
                if let Some(kind) = doc.trim().strip_prefix("```") {
                    in_block = true;
                    ordered = kind.contains("ordered");
                }
                continue;
            }
            if doc.trim() == "```" {
                let extra_allowed = lines.iter().any(|l: &String| l == "...");
                lines.retain(|l| l != "...");
                return Some(Expected {
                    lines,
                    ordered,
                    extra_allowed,
                });
            }
            lines.push(doc.trim_end().to_owned());
        }
        None
    }

    fn check(&self, stdout: &str) -> Result<(), String> {
        let actual: Vec<&str> = stdout.lines().map(str::trim_end).collect();
        if self.ordered {
            let mut it = actual.iter();
            for pattern in &self.lines {
                loop {
                    match it.next() {
                        Some(line) if matches(pattern, line) => break,
                        Some(line) if self.extra_allowed => {
                            let _ = line;
                            continue;
                        }
                        Some(line) => {
                            return Err(format!("expected `{pattern}`, printed `{line}`"));
                        }
                        None => return Err(format!("expected `{pattern}`, printed nothing more")),
                    }
                }
            }
            if let (false, Some(line)) = (self.extra_allowed, it.next()) {
                return Err(format!("printed an unexpected line `{line}`"));
            }
            return Ok(());
        }
        let mut used = vec![false; self.lines.len()];
        for line in &actual {
            let slot = self
                .lines
                .iter()
                .enumerate()
                .find(|(i, p)| !used[*i] && matches(p, line));
            match slot {
                Some((i, _)) => used[i] = true,
                None if self.extra_allowed => {}
                None => return Err(format!("printed an unexpected line `{line}`")),
            }
        }
        match used.iter().position(|u| !u) {
            Some(i) => Err(format!("never printed `{}`", self.lines[i])),
            None => Ok(()),
        }
    }
}

/// Matches `line` against `pattern` with the placeholders `{pid}`, `{n}` (digits, `.`, `-`) and
/// `{*}` (anything).
fn matches(pattern: &str, line: &str) -> bool {
    let Some(start) = pattern.find('{') else {
        return pattern == line;
    };
    let Some(len) = pattern[start..].find('}') else {
        return pattern == line;
    };
    let (literal, placeholder, rest) = (
        &pattern[..start],
        &pattern[start + 1..start + len],
        &pattern[start + len + 1..],
    );
    let Some(tail) = line.strip_prefix(literal) else {
        return false;
    };
    let numeric = matches!(placeholder, "pid" | "n");
    if !numeric && placeholder != "*" {
        // Not a placeholder: a literal brace.
        return line.starts_with(&pattern[..start + len + 1])
            && matches(rest, &line[start + len + 1..]);
    }
    // Try every split point: placeholders are short and lines are short.
    let mut taken = 0;
    loop {
        let candidate = &tail[..taken];
        let ok = !numeric
            || (!candidate.is_empty()
                && candidate
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.' || c == '-'));
        if ok && matches(rest, &tail[taken..]) {
            return true;
        }
        match tail[taken..].chars().next() {
            Some(c) => taken += c.len_utf8(),
            None => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_what_they_say() {
        assert!(matches("当前进程是: {pid}", "当前进程是: 9304"));
        assert!(!matches("当前进程是: {pid}", "当前进程是: abc"));
        assert!(matches(
            "Task {n} runs {n} seconds.",
            "Task 2 runs 0.14 seconds."
        ));
        assert!(matches("[{*}] 听音乐 x", "[2024-01-01 10:00:00] 听音乐 x"));
        assert!(matches("a {*}", "a "));
        assert!(!matches("a {pid}", "a "));
        assert!(matches("json {\"a\"}", "json {\"a\"}"));
    }

    #[test]
    fn unordered_blocks_match_as_multisets() {
        let src = "//! Expected output:\n//! ```text\n//! a {n}\n//! b\n//! ```\nfn main() {}";
        let e = Expected::parse(src).unwrap();
        assert!(!e.ordered);
        assert!(e.check("b\na 1\n").is_ok());
        assert!(e.check("b\na 1\nc\n").is_err());
        assert!(e.check("b\n").is_err());
    }

    #[test]
    fn ordered_blocks_match_in_order() {
        let src = "//! Expected output:\n//! ```text,ordered\n//! a\n//! b\n//! ```\n";
        let e = Expected::parse(src).unwrap();
        assert!(e.ordered);
        assert!(e.check("a\nb\n").is_ok());
        assert!(e.check("b\na\n").is_err());
    }
}
