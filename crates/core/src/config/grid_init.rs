//! Grid rows that start from another row's checkpoint: `train.init_from = "<row>"` (FRL's
//! Table 1 row says `"trades"`: hannxu123/fair_robust fine-tunes a TRADES-trained model).
//!
//! Grid expansion resolves each such row to the run of the same seed that the row names, by
//! its row label (the run name without the grid name and the `-s<seed>` suffix, e.g.
//! `cifar10-trades`) or, failing that, by its method (`trades`), and records the run's name in
//! `train.init_from_run`. [`dependency_order`] then lists sources before the runs that start
//! from them; the checkpoint itself is found when the run starts (`crate::runs::deps`).

use super::grid::group_name;
use super::{ConfigError, RunSpec};

/// A run's row label inside grid `base`: its name without `<base>-` and `-s<seed>`.
pub fn row_label<'a>(name: &'a str, base: &str) -> &'a str {
    let head = group_name(name);
    head.strip_prefix(base)
        .and_then(|r| r.strip_prefix('-'))
        .unwrap_or(head)
}

/// Fill `train.init_from_run` of every spec with a `train.init_from`, from its siblings of the
/// same seed. Errors name `train.init_from`, the row, and the labels it could have named.
pub fn resolve_init_from(specs: &mut [RunSpec], base: &str) -> Result<(), ConfigError> {
    for i in 0..specs.len() {
        let want = specs[i].train.init_from.trim().to_string();
        if want.is_empty() {
            continue;
        }
        let seed = specs[i].seed;
        let siblings: Vec<usize> = (0..specs.len())
            .filter(|&j| j != i && specs[j].seed == seed)
            .collect();
        let by_label: Vec<usize> = siblings
            .iter()
            .copied()
            .filter(|&j| row_label(&specs[j].name, base) == want)
            .collect();
        let matches = if by_label.is_empty() {
            siblings
                .iter()
                .copied()
                .filter(|&j| specs[j].method.name.as_str() == want)
                .collect()
        } else {
            by_label
        };
        let me = &specs[i].name;
        let labels = || {
            siblings
                .iter()
                .map(|&j| row_label(&specs[j].name, base).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match matches.as_slice() {
            [j] => {
                let src = specs[*j].name.clone();
                specs[i].train.init_from_run = src;
            }
            [] => {
                return Err(ConfigError::invalid(
                    "train.init_from",
                    format!(
                        "{want:?} (row {me}) names no row of seed {seed} in this grid; rows: {}",
                        labels()
                    ),
                ))
            }
            several => {
                let names: Vec<&str> = several
                    .iter()
                    .map(|&j| row_label(&specs[j].name, base))
                    .collect();
                return Err(ConfigError::invalid(
                    "train.init_from",
                    format!(
                        "{want:?} (row {me}) matches {} rows of seed {seed}: {}; name one by its row label",
                        several.len(),
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    dependency_order(specs).map(|_| ())
}

/// Indices of `specs` with every run after the run it starts from (otherwise in grid order);
/// an error naming `train.init_from` when rows start from each other in a cycle.
pub fn dependency_order(specs: &[RunSpec]) -> Result<Vec<usize>, ConfigError> {
    let source = |i: usize| -> Option<usize> {
        let want = specs[i].train.init_from_run.trim();
        (!want.is_empty())
            .then(|| specs.iter().position(|s| s.name == want))
            .flatten()
    };
    let mut order = Vec::with_capacity(specs.len());
    let mut placed = vec![false; specs.len()];
    for start in 0..specs.len() {
        // Walk up to the first unplaced ancestor chain, then place it top-down.
        let mut chain = vec![start];
        let mut cur = start;
        while let Some(src) = source(cur).filter(|&s| !placed[s]) {
            if chain.contains(&src) {
                return Err(ConfigError::invalid(
                    "train.init_from",
                    format!(
                        "rows start from each other in a cycle: {}",
                        chain
                            .iter()
                            .map(|&j| specs[j].name.as_str())
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                ));
            }
            chain.push(src);
            cur = src;
        }
        for &j in chain.iter().rev() {
            if !placed[j] {
                placed[j] = true;
                order.push(j);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::grid::expand_with;

    fn presets(name: &str) -> Result<String, ConfigError> {
        Ok(match name {
            "rows/trades" => "[method]\nname = \"trades\"\n",
            "rows/fair-tat-trades" => "[method]\nname = \"fair-tat-trades\"\n",
            "rows/frl" => "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"trades\"\n",
            "rows/frl-by-label" => {
                "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"fair-tat-trades\"\n"
            }
            other => return crate::config::grid::no_presets(other),
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

    #[test]
    fn frl_row_starts_from_the_same_seeds_trades_run_which_trains_first() {
        let specs = expand_with(
            &grid(&["frl", "fair-tat-trades", "trades"]),
            &[],
            "g",
            &presets,
        )
        .unwrap()
        .unwrap();
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
        let specs = expand_with(
            &grid(&["trades", "fair-tat-trades", "frl-by-label"]),
            &[],
            "g",
            &presets,
        )
        .unwrap()
        .unwrap();
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
        let mut specs = expand_with(&grid(&["trades", "fair-tat-trades"]), &[], "g", &presets)
            .unwrap()
            .unwrap();
        specs[0].train.init_from_run = specs[2].name.clone();
        specs[2].train.init_from_run = specs[0].name.clone();
        let e = dependency_order(&specs).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
    }
}
