//! The layering rule of `cargo xtask tidy`: inside each crate, the modules under `src/` (a
//! `src/x.rs` file or a `src/x/` folder is module `x`) must not import each other in a circle.
//! An edge `a -> b` is any `crate::b` path in module `a`'s non-test code. Circles that exist
//! today are listed in [`KNOWN`] (debts of the redesign in ARCHITECTURE.md, to shrink); a new
//! circle, or a known one that grew, fails the check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The circles present when the rule was written, by crate: each must shrink, never grow.
/// Empty since the redesign step broke both (ipc's `codec`/`holders`, spawn's
/// `child`/`forkserver`/`registry`/`state`): every crate is circle-free, and stays so.
const KNOWN: &[(&str, &[&str])] = &[];

/// Module -> the modules it imports, for one crate's `src/`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The import circles of every crate under `crates/` (each a set of module names, sorted).
pub(crate) fn circles(root: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(crates) = std::fs::read_dir(root.join("crates")) else {
        return out;
    };
    let mut dirs: Vec<_> = crates.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for scc in strongly_connected(&graph(&src)) {
            out.push((name.clone(), scc));
        }
    }
    out
}

/// Checks [`circles`] against [`KNOWN`]: the problems found.
pub(crate) fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (krate, circle) in circles(root) {
        let allowed = KNOWN
            .iter()
            .any(|(k, known)| *k == krate && circle.iter().all(|m| known.contains(&m.as_str())));
        if !allowed {
            problems.push(format!(
                "crates/{krate}/src: modules import each other in a circle: {} (see \
                 ARCHITECTURE.md: a lower module must not reach back up)",
                circle.join(" -> ")
            ));
        }
    }
    problems
}

fn graph(src: &Path) -> Graph {
    let mut g = Graph::new();
    let Ok(entries) = std::fs::read_dir(src) else {
        return g;
    };
    for e in entries.flatten() {
        let path = e.path();
        let module = match path.file_stem().and_then(|s| s.to_str()) {
            Some(m) if path.is_dir() => m.to_owned(),
            Some(m) if path.extension().is_some_and(|x| x == "rs") => m.to_owned(),
            _ => continue,
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let edges = g.entry(module.clone()).or_default();
        for file in files(&path) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            // The file's code up to its tests, comments left out, as one text so that a
            // group `crate::{…}` that rustfmt spread over several lines is read whole.
            let mut code = String::new();
            for line in text.lines() {
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                code.push_str(line.split("//").next().unwrap_or(""));
                code.push('\n');
            }
            for target in targets(&code) {
                if target != module {
                    edges.insert(target);
                }
            }
        }
    }
    let modules: BTreeSet<String> = g.keys().cloned().collect();
    for edges in g.values_mut() {
        edges.retain(|t| modules.contains(t));
    }
    g
}

/// The top-level modules that the `crate::` paths of `code` name: `crate::a::x` gives `a`, and
/// a group `crate::{a, b::x, c}` (over any number of lines) gives `a`, `b` and `c`.
fn targets(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split on commas outside nested braces.
            let mut depth = 0usize;
            let mut start = 0usize;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
                if i + c.len_utf8() == group.len() {
                    out.push(ident(&group[start..]));
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|t| !t.is_empty() && t != "self");
    out
}

fn files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            out.extend(files(&e.path()));
        }
    }
    out
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn strongly_connected(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    }

    #[test]
    fn reads_paths_and_groups() {
        assert_eq!(targets("use crate::ring::Ring;"), ["ring"]);
        assert_eq!(
            targets("use crate::{entry, forkserver::Server, sys::{self, pid}};"),
            ["entry", "forkserver", "sys"]
        );
        assert_eq!(targets("let x = crate::a::f(crate::b::g());"), ["a", "b"]);
        assert_eq!(
            targets("use crate::{\n    a,\n    b::{c, d},\n};"),
            ["a", "b"]
        );
    }

    #[test]
    fn finds_a_circle_and_leaves_a_chain_alone() {
        assert!(strongly_connected(&g(&[("a", "b"), ("b", "c")])).is_empty());
        let found = strongly_connected(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
        assert_eq!(found, vec![vec!["a".to_owned(), "b".into(), "c".into()]]);
    }
}
