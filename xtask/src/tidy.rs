//! House rules that a compiler does not check, run by `cargo xtask test` (and as a unit test):
//!
//! - every `.rs` file starts with a `//!` header that says what it is for;
//! - every `unsafe {` block has a `// SAFETY:` comment within the six lines before it;
//! - no `libc::` or `rustix::` outside a crate's `src/sys/` (OS code stays behind one module);
//! - no `dbg!` left behind;
//! - no new import circle between the modules of a crate (see [`crate::layers`]).

use std::path::{Path, PathBuf};

pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for file in rust_files(root) {
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        problems.extend(check_file(&rel, &text));
    }
    problems.extend(crate::layers::check(root));
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(())
    } else {
        Err(format!(
            "tidy found {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        ))
    }
}

fn check_file(rel: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let shown = rel.display();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !first.starts_with("//!") {
        problems.push(format!(
            "{shown}: no `//!` header saying what the file is for"
        ));
    }
    let in_sys = rel.components().any(|c| c.as_os_str() == "sys");
    let in_crate_src =
        rel.starts_with("crates") && rel.components().any(|c| c.as_os_str() == "src");
    let is_tidy = rel.ends_with("xtask/src/tidy.rs");
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if is_tidy {
            continue;
        }
        if code.contains("unsafe {") || code.trim_end().ends_with("unsafe {") {
            let window = &lines[i.saturating_sub(6)..=i];
            if !window.iter().any(|l| l.contains("SAFETY:")) {
                problems.push(format!(
                    "{shown}:{}: `unsafe` block without a `// SAFETY:` comment",
                    i + 1
                ));
            }
        }
        if in_crate_src && !in_sys && (code.contains("libc::") || code.contains("rustix::")) {
            problems.push(format!("{shown}:{}: OS call outside `src/sys/`", i + 1));
        }
        if code.contains("dbg!(") {
            problems.push(format!("{shown}:{}: `dbg!` left behind", i + 1));
        }
    }
    problems
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = ["crates", "examples", "tests", "xtask"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        check(&crate::root()).unwrap();
    }

    #[test]
    fn tidy_catches_what_it_says() {
        let bad = "fn f() { unsafe { g() } }\nfn h() { dbg!(1); }\n";
        let p = check_file(Path::new("crates/x/src/lib.rs"), bad);
        assert_eq!(p.len(), 3, "{p:?}");
        let os = "//! x\nfn f() { libc::getpid(); }\n";
        assert_eq!(check_file(Path::new("crates/x/src/a.rs"), os).len(), 1);
        assert!(check_file(Path::new("crates/x/src/sys/linux.rs"), os).is_empty());
        let good = "//! x\n// SAFETY: fine\nunsafe { g() }\n";
        assert!(check_file(Path::new("crates/x/src/lib.rs"), good).is_empty());
    }
}
