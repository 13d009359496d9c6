//! Grid rows that start from another row's checkpoint: resolution and order.

use super::expand_with;
use crate::config::grid_init::*;
use crate::config::{ConfigError, RunSpec};

fn presets(name: &str) -> Result<String, ConfigError> {
    Ok(match name {
        "rows/trades" => "[method]\nname = \"trades\"\n",
        "rows/fair-tat-trades" => "[method]\nname = \"fair-tat-trades\"\n",
        "rows/frl" => "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"trades\"\n",
        "rows/frl-by-label" => {
            "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"fair-tat-trades\"\n"
        }
        other => return super::no_presets(other),
    }
    .to_string())
}

fn grid(rows: &[&str]) -> String {
    let rows: Vec<String> = rows.iter().map(|r| format!("\"rows/{r}\"")).collect();
    format!(
        "name = \"t1\"\n[grid]\npreset = [{}]\nseed = [0, 1]\n",
        rows.join(", ")
    )
}

/// The runs of a grid over `rows` (each with seeds 0 and 1), which must expand.
fn expand_rows(rows: &[&str]) -> Vec<RunSpec> {
    expand_with(&grid(rows), &[], "g", &presets)
        .unwrap()
        .unwrap()
}

#[test]
fn frl_row_starts_from_the_same_seeds_trades_run_which_trains_first() {
    let specs = expand_rows(&["frl", "fair-tat-trades", "trades"]);
    let frl: Vec<&RunSpec> = specs.iter().filter(|s| s.name.contains("frl")).collect();
    assert_eq!(frl.len(), 2);
    for s in frl {
        assert_eq!(s.train.init_from_run, format!("t1-trades-s{}", s.seed));
    }
    let order = dependency_order(&specs).unwrap();
    let pos = |n: &str| order.iter().position(|&i| specs[i].name == n).unwrap();
    for seed in [0, 1] {
        assert!(pos(&format!("t1-trades-s{seed}")) < pos(&format!("t1-frl-s{seed}")));
    }
    assert_eq!(order.len(), specs.len());
    assert_eq!(row_label("t1-fair-tat-trades-s1", "t1"), "fair-tat-trades");
}

#[test]
fn a_row_label_wins_over_a_method_name_and_bad_references_name_the_key() {
    let specs = expand_rows(&["trades", "fair-tat-trades", "frl-by-label"]);
    let frl = specs
        .iter()
        .find(|s| s.name == "t1-frl-by-label-s0")
        .unwrap();
    assert_eq!(frl.train.init_from_run, "t1-fair-tat-trades-s0");
    // No TRADES row to start from.
    let e = expand_with(&grid(&["fair-tat-trades", "frl"]), &[], "g", &presets).unwrap_err();
    assert_eq!(e.key(), Some("train.init_from"));
    assert!(e.to_string().contains("fair-tat-trades"), "{e}");
}

#[test]
fn cycles_are_an_error() {
    let mut specs = expand_rows(&["trades", "fair-tat-trades"]);
    specs[0].train.init_from_run = specs[2].name.clone();
    specs[2].train.init_from_run = specs[0].name.clone();
    let e = dependency_order(&specs).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");
}
