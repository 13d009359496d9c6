//! Grid rows that start from another row's checkpoint: `train.init_from = "<row>"` (FRL's
//! Table 1 row says `"trades"`: hannxu123/fair_robust fine-tunes a TRADES-trained model).
//!
//! Grid expansion resolves each such row to the run of the same seed that the row names, by
//! its row label (the run name without the grid name and the `-s<seed>` suffix, e.g.
//! `cifar10-trades`) or, failing that, by its method (`trades`), and records the run's name in
//! `train.init_from_run`. [`dependency_order`] then lists sources before the runs that start
//! from them; the checkpoint itself is found when the run starts (`crate::runs::deps`).

use super::error::ConfigError;
use super::spec::RunSpec;

/// The name of a grid run without its `-s<seed>` suffix: runs sharing it differ only in seed.
pub fn group_name(name: &str) -> &str {
    match name.rsplit_once("-s") {
        Some((head, seed)) if !seed.is_empty() && seed.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    }
}

/// The grid id of a run's tags, if it belongs to one.
pub fn grid_of(tags: &[String]) -> Option<&str> {
    tags.iter().find_map(|t| t.strip_prefix("grid:"))
}

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
