//! The repository is self-contained: nothing the tests, the benchmarks or the build read lives
//! outside it. A clean clone has no sibling folders, so a path that climbs out of the root (the
//! developers' `shared/` folder next to the checkout, a home directory of one machine) would
//! only fail there. This test scans the sources for such paths and checks that the PyTorch
//! files the tests and `make bench` run are in the repository.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively) whose extension is one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, exts, out);
        } else if p.extension().is_some_and(|x| exts.iter().any(|w| x == *w)) {
            out.push(p);
        }
    }
}

/// Paths that leave the repository. Spelled in pieces so this file does not match itself.
fn forbidden() -> Vec<String> {
    vec![
        format!("..{}shared", '/'),
        format!("{}work{}", '/', '/'),
        format!("{}root{}", '/', '/'),
    ]
}

#[test]
fn no_test_bench_or_build_path_leaves_the_repository() {
    let mut scanned = Vec::new();
    for dir in ["src", "tests", "bench"] {
        files(&root().join(dir), &["rs", "py", "toml", "sh"], &mut scanned);
    }
    for f in ["Makefile", "build.rs", "Cargo.toml"] {
        let p = root().join(f);
        if p.exists() {
            scanned.push(p);
        }
    }
    assert!(scanned.len() > 50, "scanned only {} files", scanned.len());
    let mut bad = Vec::new();
    for p in &scanned {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        for needle in forbidden() {
            for (i, line) in text.lines().enumerate() {
                if line.contains(&needle) {
                    bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "paths outside the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn pytorch_reference_files_are_in_the_repository() {
    for f in [
        "tests/py/models.py",
        "tests/py/check_checkpoint.py",
        "bench/pytorch_reference.py",
    ] {
        assert!(root().join(f).is_file(), "{f} is missing");
    }
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    assert!(makefile.contains("--reference bench/pytorch_reference.py"));
    let bench = std::fs::read_to_string(root().join("src/bin/fairtat-bench.rs")).unwrap();
    assert!(bench.contains("default_value = \"bench/pytorch_reference.py\""));
}
