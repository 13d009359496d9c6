//! The architecture as rules a test keeps (README, "Architecture"):
//! - the crate graph: each workspace crate depends only on the fairtat crates the README's table
//!   allows, and the crates marked "no tch" / "no tokio" do not depend on them (so the server,
//!   and the `fairtat-dashboard` program built from it, never link libtorch);
//! - no import circles between modules: inside each crate, `use crate::...` / `super::...`
//!   edges between modules that are not ancestor and descendant, projected onto siblings, form
//!   no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row of the README's architecture table: crate, folder, allowed fairtat deps, forbidden deps.
struct Row {
    name: String,
    dir: String,
    allowed: BTreeSet<String>,
    forbidden: BTreeSet<String>,
}

fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Architecture")
        .nth(1)
        .expect("README has an Architecture section");
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().replace('`', ""))
            .collect()
    };
    let list = |c: &str| -> BTreeSet<String> {
        c.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "-")
            .map(String::from)
            .collect()
    };
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let c = cells(l);
            assert!(c.len() >= 5, "architecture row with too few cells: {l}");
            Row {
                name: c[0].clone(),
                dir: c[1].clone(),
                allowed: list(&c[2]),
                forbidden: list(&c[3]),
            }
        })
        .collect()
}

/// The names of the `[dependencies]` of a crate's manifest (not dev- or build-dependencies).
fn deps(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_crate_graph_is_the_readmes() {
    let rows = readme_rows();
    let names: BTreeSet<String> = rows.iter().map(|r| r.name.clone()).collect();
    for want in [
        "fairtat-core",
        "fairtat-charts",
        "fairtat-engine",
        "fairtat-server",
        "fairtat",
    ] {
        assert!(
            names.contains(want),
            "README's architecture table lacks {want}"
        );
    }
    for r in &rows {
        let d = deps(&root().join(&r.dir).join("Cargo.toml"));
        let ours: BTreeSet<String> = d
            .iter()
            .filter(|n| n.starts_with("fairtat"))
            .cloned()
            .collect();
        assert_eq!(
            ours, r.allowed,
            "{}: fairtat dependencies differ from the README",
            r.name
        );
        for f in &r.forbidden {
            assert!(
                !d.contains(f),
                "{} depends on {f}, which the README rules out",
                r.name
            );
        }
    }
}

/// The server's whole dependency tree: no crate that brings libtorch.
#[test]
fn the_server_cannot_reach_tch() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let v: toml::Value = toml::from_str(&lock).unwrap();
    let pkgs = v["package"].as_array().unwrap();
    let by_name: BTreeMap<&str, Vec<&str>> = pkgs
        .iter()
        .map(|p| {
            let deps = p
                .get("dependencies")
                .and_then(|d| d.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .map(|s| s.split(' ').next().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            (p["name"].as_str().unwrap(), deps)
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec!["fairtat-server"];
    while let Some(n) = todo.pop() {
        if seen.insert(n) {
            todo.extend(by_name.get(n).into_iter().flatten().copied());
        }
    }
    for bad in ["tch", "torch-sys", "fairtat-engine"] {
        assert!(!seen.contains(bad), "fairtat-server reaches {bad}");
    }
    assert!(
        seen.contains("axum"),
        "the walk found the server's dependencies"
    );
}

/// Module path of a source file: `crates/x/src/a/b.rs` -> [a, b]; `a/mod.rs` -> [a]; lib.rs -> [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().unwrap() != "bin" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (docs may name any module), without what follows
/// `#[cfg(test)]` (unit tests may import what they test from anywhere) and without the bodies of
/// `macro_rules!` definitions (their paths are resolved where the macro is invoked, as
/// `cargo modules` sees them too).
fn non_test(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("macro_rules!") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let open = after.find('{').unwrap_or(after.len());
        let mut depth = 0;
        let mut end = after.len();
        for (j, c) in after[open..].char_indices() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = open + j + 1;
                break;
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Unit-test modules kept in files of their own (`tests.rs`, `*_tests.rs`).
fn is_test_file(f: &Path) -> bool {
    let stem = f.file_stem().unwrap().to_string_lossy();
    stem == "tests" || stem.ends_with("_tests")
}

/// The module paths a `use`-tree names, read from just after a `crate::` / `super::` prefix:
/// `a::b::C` gives [a, b]; `a::{b::C, d}` gives [a, b] and [a, d] (lowercase words only: types
/// and functions end the path).
fn paths(tail: &str) -> Vec<Vec<String>> {
    let mut words = Vec::new();
    let mut rest = tail;
    loop {
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = inner
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(inner.len(), |(i, _)| i);
            let mut out = Vec::new();
            let (mut d, mut start) = (0, 0);
            let body = &inner[..end];
            for (i, c) in body.char_indices().chain([(body.len(), ',')]) {
                match c {
                    '{' => d += 1,
                    '}' => d -= 1,
                    ',' if d == 0 => {
                        for p in paths(body[start..i].trim()) {
                            out.push(words.iter().cloned().chain(p).collect());
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return out;
        }
        let w: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if w.is_empty() || !w.starts_with(|c: char| c.is_lowercase()) || w == "self" {
            return vec![words];
        }
        rest = &rest[w.len()..];
        words.push(w);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => return vec![words],
        }
    }
}

/// `crate::a::b::C` and `super::x` references of one file, as module paths.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        out.extend(paths(&text[i + 7..]));
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with("super::") {
            continue;
        }
        // `super` is the parent module, whether this module is a file or a folder.
        let mut base: Vec<String> = module.to_vec();
        let mut rest = &text[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
            base.pop();
        }
        for p in paths(rest) {
            out.push(base.iter().cloned().chain(p).collect());
        }
    }
    out
}

/// Edges between sibling modules (the children of the lowest common ancestor of both ends).
fn sibling_edges(src: &Path) -> BTreeSet<(Vec<String>, Vec<String>)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.retain(|f| !is_test_file(f));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges = BTreeSet::new();
    for f in &files {
        let from = module_of(src, f);
        let text = std::fs::read_to_string(f).unwrap();
        for mut to in references(&from, &non_test(&text)) {
            while !to.is_empty() && !modules.contains(&to) {
                to.pop();
            }
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // ancestor and descendant
            }
            edges.insert((from[..=common].to_vec(), to[..=common].to_vec()));
        }
    }
    edges
}

fn cycles(edges: &BTreeSet<(Vec<String>, Vec<String>)>) -> Vec<String> {
    let mut found = Vec::new();
    for (a, b) in edges
        .iter()
        .filter(|(a, b)| a < b || !edges.contains(&(b.clone(), a.clone())))
    {
        // a -> b; is there a path b -> ... -> a?
        let mut seen = BTreeSet::new();
        let mut todo = vec![b.clone()];
        while let Some(n) = todo.pop() {
            if &n == a {
                found.push(format!("{} <-> {}", a.join("::"), b.join("::")));
                break;
            }
            if seen.insert(n.clone()) {
                todo.extend(
                    edges
                        .iter()
                        .filter(|(x, _)| *x == n)
                        .map(|(_, y)| y.clone()),
                );
            }
        }
    }
    found
}

#[test]
fn no_import_circles_between_modules() {
    let mut all = Vec::new();
    for r in readme_rows() {
        let src = root().join(&r.dir).join("src");
        for c in cycles(&sibling_edges(&src)) {
            all.push(format!("{}: {c}", r.name));
        }
    }
    assert!(all.is_empty(), "import circles:\n{}", all.join("\n"));
}
