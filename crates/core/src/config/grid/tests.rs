//! Grid expansion: combinations, names, errors, preset axes.

use super::*;

const GRID: &str = r#"
name = "g"
tags = ["table1"]
[train]
epochs = 2
[grid]
"method.name" = ["pgd-at", "fair-tat"]
seed = [0, 1, 2]
"#;

#[test]
fn methods_times_seeds_one_run_each() {
    let specs = expand(GRID, &[], "gid").unwrap().unwrap();
    let got: Vec<(String, &str, u64)> = specs
        .iter()
        .map(|s| (s.name.clone(), s.method.name.as_str(), s.seed))
        .collect();
    let want: Vec<(String, &str, u64)> = [("pgd-at", 0), ("pgd-at", 1), ("pgd-at", 2)]
        .into_iter()
        .chain([("fair-tat", 0), ("fair-tat", 1), ("fair-tat", 2)])
        .map(|(m, s)| (format!("g-{m}-s{s}"), m, s))
        .collect();
    assert_eq!(got, want);
    for s in &specs {
        assert_eq!(s.train.epochs, 2, "the base config applies to every run");
        assert_eq!(s.tags, ["table1", "grid:gid"]);
        assert_eq!(grid_of(&s.tags), Some("gid"));
        assert_eq!(group_name(&s.name), format!("g-{}", s.method.name.as_str()));
    }
    assert!(expand("name = \"plain\"", &[], "x").unwrap().is_none());
}

#[test]
fn errors_name_the_field_and_the_combination() {
    let bad = GRID.replace("\"fair-tat\"]", "\"fair-tat\", \"magic\"]");
    let e = expand(&bad, &[], "x").unwrap_err().to_string();
    assert!(
        e.contains("method.name") && e.contains("magic") && e.contains("fair-tat"),
        "{e}"
    );
    assert!(e.contains("grid combination"), "{e}");
    let e = expand("[grid]\nseed = 3\n", &[], "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid.seed") && e.contains("list"), "{e}");
    let e = expand("[grid]\nseed = []\n", &[], "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one"), "{e}");
    let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let e = expand(&format!("[grid]\nseed = [{}]\n", many.join(",")), &[], "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("65 combinations") && e.contains("64"), "{e}");
    // 32 axes of 4 values: 2^64 combinations, which an unchecked product wraps to 0.
    let axes: String = crate::config::SECTIONS
        .iter()
        .flat_map(|(s, keys)| {
            keys.iter()
                .map(move |k| format!("\"{s}.{k}\" = [1, 2, 3, 4]\n"))
        })
        .take(32)
        .collect();
    assert_eq!(axes.lines().count(), 32);
    let e = expand(&format!("[grid]\n{axes}"), &[], "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than") && e.contains("at most 64"), "{e}");
    let deep = vec!["a"; 12_000].join(".");
    let e = expand(&format!("[grid]\n\"{deep}\" = [1]\n"), &[], "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid axis") && e.len() < 400, "{e}");
    // A grid config is not a single run.
    let e = crate::config::from_toml_str(GRID, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("grid") && e.contains("fairtat train --config"),
        "{e}"
    );
}

#[test]
fn preset_axis_uses_each_preset_as_the_base() {
    let presets = |name: &str| -> Result<String, ConfigError> {
        match name {
            "rows/at" => Ok(
                "name = \"ignored\"\n[method]\nname = \"pgd-at\"\n[train]\nepochs = 9\nlr = 0.3\n"
                    .into(),
            ),
            "rows/tat" => Ok("[method]\nname = \"fair-tat\"\n".into()),
            other => no_presets(other),
        }
    };
    let text = "name = \"t1\"\n[train]\nepochs = 3\n[grid]\npreset = [\"rows/at\", \"rows/tat\"]\nseed = [5]\n";
    let specs = expand_with(text, &[], "g", &presets).unwrap().unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].name, "t1-at-s5");
    assert_eq!(specs[0].method.name.as_str(), "pgd-at");
    // The grid file's own keys override the preset's; the rest of the preset stays.
    assert_eq!(specs[0].train.epochs, 3);
    assert_eq!(specs[0].train.lr, 0.3);
    assert_eq!(specs[1].method.name.as_str(), "fair-tat");
    assert_eq!(specs[1].seed, 5);
    let e = expand_with("[grid]\npreset = [\"nope\"]\n", &[], "g", &presets)
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid.preset") && e.contains("nope"), "{e}");
}

#[test]
fn preset_names_cannot_escape_the_directory() {
    let dir = std::env::temp_dir();
    let load = presets_in(&dir);
    for bad in ["../etc/passwd", "/abs", "a/b/c", ".hidden", ""] {
        let e = load(bad).unwrap_err().to_string();
        assert!(e.contains("grid.preset"), "{bad}: {e}");
    }
}

#[test]
fn an_axis_given_twice_under_spellings_that_read_alike_is_refused() {
    let text = "name = \"g\"\n[grid]\nseed = [0, 1]\n\" seed\" = [2]\n";
    let e = expand(text, &[], "x").unwrap_err().to_string();
    assert!(e.contains("grid.seed") && e.contains("given twice"), "{e}");
    let text = "name = \"g\"\n[grid]\n\"train.epochs\" = [1]\n\"train . epochs\" = [2]\n";
    let e = expand(text, &[], "x").unwrap_err().to_string();
    assert!(
        e.contains("grid.train.epochs") && e.contains("given twice"),
        "{e}"
    );
}
