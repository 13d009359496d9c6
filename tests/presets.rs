//! Every shipped preset validates: the single-run presets, the Table 1 row presets and the grid
//! presets that expand them over seeds (a broken preset would only show up when a user starts it).

use std::path::{Path, PathBuf};

use fairtat::config::{self, grid};

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn single_run_and_row_presets_validate() {
    let mut n = 0;
    for dir in [configs(), configs().join("table1")] {
        for p in tomls(&dir) {
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("[grid]") {
                continue;
            }
            let spec = config::from_toml_str(&text, &[])
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            if dir.ends_with("table1") {
                assert_eq!(spec.name, stem, "{}", p.display());
                assert!(spec.tags.contains(&"table1".to_string()));
            }
            n += 1;
        }
    }
    assert!(n >= 39 + 7, "{n} presets");
}

#[test]
fn table1_grids_cover_every_row_of_their_dataset() {
    let dir = configs();
    let load = grid::presets_in(&dir);
    for ds in ["cifar10", "cifar100", "fmnist"] {
        let p = configs().join(format!("{ds}-table1-grid.toml"));
        let text = std::fs::read_to_string(&p).unwrap();
        let specs = grid::expand_with(&text, &[], "g", &load)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .expect("a grid");
        let rows: Vec<String> = tomls(&configs().join("table1"))
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            // "cifar100-x" does not start with "cifar10-".
            .filter(|s| s.starts_with(&format!("{ds}-")))
            .collect();
        assert_eq!(rows.len(), 13, "{ds}: {rows:?}");
        assert_eq!(specs.len(), rows.len() * 3, "{ds}: rows x 3 seeds");
        let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), specs.len(), "run names are unique");
        for row in &rows {
            let mine: Vec<_> = specs
                .iter()
                .filter(|s| grid::group_name(&s.name) == format!("{ds}-table1-{row}"))
                .collect();
            assert_eq!(mine.len(), 3, "{row}");
            let seeds: Vec<u64> = mine.iter().map(|s| s.seed).collect();
            assert_eq!(seeds, [0, 1, 2]);
        }
        // Rows keep their own recipe: FRL fine-tunes with a small learning rate.
        let frl = specs
            .iter()
            .find(|s| s.method.name.as_str() == "frl-rwrm")
            .unwrap();
        assert!(frl.train.lr <= 0.005, "{}", frl.train.lr);
        assert!(specs
            .iter()
            .any(|s| s.method.name.as_str() == "cfa" && s.method.ccr));
    }
}
