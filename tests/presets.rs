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
    assert!(n >= 39 + 8 + 7, "{n} presets");
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
            // "cifar100-x" does not start with "cifar10-"; reference-recipe rows have their grid.
            .filter(|s| s.starts_with(&format!("{ds}-")) && !s.ends_with("-ref"))
            .collect();
        assert_eq!(rows.len(), 16, "{ds}: {rows:?}");
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
        check_table1_rows(ds, &specs, &format!("{ds}-table1"), &format!("{ds}-trades"));
    }
}

/// What every Table 1 grid shares: FRL starts from the same seed's TRADES run (`trades_row`),
/// FAAL from its AT run, each trained first; WAT and FRL validate on the last images of each
/// class; the clean forwards follow each row's reference code.
fn check_table1_rows(ds: &str, specs: &[fairtat::config::RunSpec], base: &str, trades_row: &str) {
    use fairtat::config::{MethodKind, ValFrom};
    let order = fairtat::config::grid_init::dependency_order(specs).unwrap();
    for s in specs {
        let m = s.method.name;
        if m.def().needs_init_checkpoint {
            let (row, kind) = match m {
                MethodKind::Faal => (format!("{ds}-at"), MethodKind::PgdAt),
                _ => (trades_row.to_string(), MethodKind::Trades),
            };
            let src = format!("{base}-{row}-s{}", s.seed);
            assert_eq!(s.train.init_from_run, src, "{}", s.name);
            let at = |n: &str| order.iter().position(|&i| specs[i].name == n).unwrap();
            assert!(at(&src) < at(&s.name), "{} trains before {src}", s.name);
            let source = specs.iter().find(|x| x.name == src).unwrap();
            assert_eq!(source.method.name, kind);
            assert_eq!(source.data.normalize, s.data.normalize, "{}", s.name);
        } else {
            assert!(s.train.init_from_run.is_empty(), "{}", s.name);
        }
        if matches!(m, MethodKind::Wat | MethodKind::FrlRw | MethodKind::FrlRwrm) {
            assert_eq!(s.data.val_from, ValFrom::Last, "{}", s.name);
            let want = match ds {
                "cifar10" => 300,
                "cifar100" => 30,
                _ => 50,
            };
            assert_eq!(s.data.val_per_class, want, "{}", s.name);
        } else {
            assert_eq!(s.data.val_from, ValFrom::First, "{}", s.name);
        }
        let reference_recipe = s.tags.iter().any(|t| t == "reference-recipe");
        let want = match m {
            _ if reference_recipe => 0,
            MethodKind::FairTat
            | MethodKind::FairTatTrades
            | MethodKind::FairTatFat
            | MethodKind::FairTatCfa => 2,
            MethodKind::PgdAt | MethodKind::Trades | MethodKind::Fat | MethodKind::Cfa => 1,
            _ => 0,
        };
        assert_eq!(s.train.clean_forwards, want, "{}", s.name);
    }
}

#[test]
fn reference_recipe_grids_swap_in_the_baselines_own_recipes() {
    let dir = configs();
    let load = grid::presets_in(&dir);
    for ds in ["cifar10", "cifar100"] {
        let text =
            std::fs::read_to_string(configs().join(format!("{ds}-table1-ref-grid.toml"))).unwrap();
        let specs = grid::expand_with(&text, &[], "g", &load).unwrap().unwrap();
        assert_eq!(specs.len(), 16 * 3, "{ds}");
        let refs: Vec<&str> = specs
            .iter()
            .filter(|s| s.tags.iter().any(|t| t == "reference-recipe"))
            .map(|s| s.method.name.as_str())
            .collect();
        assert_eq!(refs.len(), 6 * 3, "{ds}: {refs:?}");
        for s in specs
            .iter()
            .filter(|s| matches!(s.method.name.as_str(), "trades" | "wat" | "bat"))
        {
            assert_eq!(s.attack.alpha, 0.007, "{}", s.name);
            assert_eq!(s.attack.eps, 0.031, "{}", s.name);
            assert_eq!(s.train.weight_decay, 2e-4, "{}", s.name);
            assert!(!s.method.trades_normalize, "{}", s.name);
        }
        check_table1_rows(
            ds,
            &specs,
            &format!("{ds}-table1-ref"),
            &format!("{ds}-trades-ref"),
        );
    }
}

#[test]
fn rice_recipe_pgd_at_presets_run_no_clean_forward() {
    for name in [
        "cifar10-prn18-at",
        "cifar10-xcit-at",
        "fmnist-at",
        "fmnist-quick-at",
    ] {
        let text = std::fs::read_to_string(configs().join(format!("{name}.toml"))).unwrap();
        let spec = config::from_toml_str(&text, &[]).unwrap();
        assert_eq!(spec.method.name.as_str(), "pgd-at");
        assert_eq!(spec.train.clean_forwards, 0, "{name}");
    }
}

/// A run config without the `[method]` keys method `m` does not read: the form clears them, the
/// command line keeps what the preset file sets; neither changes the run.
fn read_by(spec: &fairtat::config::RunSpec, m: fairtat::config::MethodKind) -> toml::Table {
    use fairtat::config::MethodKey;
    let mut t: toml::Table = spec.to_toml().parse().unwrap();
    if let Some(toml::Value::Table(method)) = t.get_mut("method") {
        method.retain(|k, _| {
            MethodKey::ALL
                .into_iter()
                .find(|key| key.name() == k)
                .is_none_or(|key| m.def().reads(key))
        });
    }
    t
}

/// Whether `message` starts with a `[method]` key that method `m` does not read.
fn unread_key(message: &str, m: fairtat::config::MethodKind) -> bool {
    fairtat::config::MethodKey::ALL
        .into_iter()
        .any(|key| message.starts_with(&format!("method.{}", key.name())) && !m.def().reads(key))
}

/// The form and the command line resolve a config the same way: every single-run preset with
/// every method, through the form (filled from the preset, `method.name` switched, submitted as
/// the server reads it) and through `--config PRESET --set method.name=M`, gives the same run
/// config in every key the method reads, or an error on both sides (FRL and FAAL without a
/// checkpoint).
#[test]
fn the_form_and_the_cli_resolve_every_preset_with_every_method_alike() {
    use fairtat::config::fields::{flatten, table_from_pairs};
    use fairtat::config::form_resolve::as_cli;
    use fairtat::config::{MethodKind, RawConfig};
    let mut compared = 0;
    for dir in [configs(), configs().join("table1")] {
        for p in tomls(&dir) {
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("[grid]") {
                continue;
            }
            let shown: toml::Table = config::from_toml_str(&text, &[])
                .unwrap()
                .to_toml()
                .parse()
                .unwrap();
            for m in MethodKind::ALL {
                let mut pairs = flatten(&shown);
                for (k, v) in pairs.iter_mut() {
                    if k == "method.name" {
                        *v = m.as_str().to_string();
                    }
                }
                let form = as_cli(&pairs, &text, true).and_then(|kept| {
                    let t = table_from_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    RawConfig::from_table(t)?.validate()
                });
                let cli = config::from_toml_str(&text, &[format!("method.name={m}")]);
                match (form, cli) {
                    (Ok(a), Ok(b)) => {
                        let (a, b) = (read_by(&a, m), read_by(&b, m));
                        assert_eq!(a, b, "{} with {m}", p.display());
                        compared += 1;
                    }
                    (Err(_), Err(_)) => {}
                    // The preset sets a key of another method that refuses this one (CCR needs
                    // a TRADES loss): the command line refuses, the form clears the key.
                    (Ok(_), Err(e)) if unread_key(&e.to_string(), m) => {}
                    (a, b) => panic!("{} with {m}: form {a:?}, cli {b:?}", p.display()),
                }
            }
        }
    }
    assert!(compared > 500, "{compared}");
}
