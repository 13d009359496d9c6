//! The compare page's seed groups, as pure functions of run summaries: runs of one grid that
//! differ only in seed, as mean ± standard deviation, with what went into each mean (Tables
//! 2-4 from the evaluations are in `compare_evals`).
//!
//! Every row says which checkpoint its numbers come from ([`Provenance`]): the per-epoch test
//! figures are the `last` model's.

use fairtat_core::config::grid::group_name;
use fairtat_core::runs::provenance::Provenance;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{CheckpointKind, RunStatus};

/// Mean over a group's seeds of each headline figure (fractions; None without any value):
/// what rho is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupMeans {
    pub clean_overall: Option<f64>,
    pub clean_worst: Option<f64>,
    pub robust_overall: Option<f64>,
    pub robust_worst: Option<f64>,
}

/// One seed group of the compare page.
pub struct GroupRow {
    pub name: String,
    pub method: String,
    pub seeds: usize,
    pub clean_overall: String,
    pub clean_worst: String,
    pub robust_overall: String,
    pub robust_worst: String,
    pub means: GroupMeans,
    /// Which checkpoint the figures come from (`last (epoch 1)`).
    pub checkpoint: String,
    /// rho against the page's base group (`–` until [`super::compare_rho::fill_rho`]).
    pub rho_nat: String,
    pub rho_rob: String,
    /// What went into the means: each run's seed, status, epochs and robust attack, and the
    /// runs left out ([`seed_groups`]).
    pub inputs: String,
    /// The ids of the runs that went into the means.
    pub run_ids: Vec<String>,
    /// Each headline figure of those runs (fractions), in [`HEADLINES`] order: the tidy
    /// export's mean, std and n come from these.
    pub values: [Vec<f64>; 4],
}

/// The headline figures of a seed group, as the tidy export names them.
pub const HEADLINES: [&str; 4] = [
    "clean_overall",
    "clean_worst",
    "robust_overall",
    "robust_worst",
];

/// `last (epoch 7)`, or `last (epochs 5, 7)` when the runs of a group stopped at different
/// epochs; `–` when nothing was evaluated.
pub fn last_label(epochs: &[usize]) -> String {
    let mut e = epochs.to_vec();
    e.sort_unstable();
    e.dedup();
    match e.as_slice() {
        [] => "–".into(),
        [one] => Provenance::last(Some(*one)).to_string(),
        many => {
            let list: Vec<String> = many.iter().map(|e| e.to_string()).collect();
            format!("{} (epochs {})", CheckpointKind::Last, list.join(", "))
        }
    }
}

/// Mean and sample standard deviation (n - 1; 0 for a single value).
pub fn mean_std(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some((mean, var.sqrt()))
}

/// "45.2 ± 0.8" in percent, or "–".
pub fn pm(v: &[f64]) -> String {
    match mean_std(v) {
        Some((m, s)) if v.len() > 1 => format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s),
        Some((m, _)) => format!("{:.1}", 100.0 * m),
        None => "–".into(),
    }
}

/// Items grouped by their run name without the `-s<seed>` suffix, in first-appearance order.
pub fn by_seed_group<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<(String, Vec<&T>)> {
    let mut out: Vec<(String, Vec<&T>)> = Vec::new();
    for item in items {
        let key = group_name(name(item));
        match out.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => v.push(item),
            None => out.push((key.to_string(), vec![item])),
        }
    }
    out
}

/// One run as an input of its group's means: `s0 finished 5/5 pgd-20`.
fn input_label(key: &str, s: &RunSummary) -> String {
    let seed = s
        .name
        .strip_prefix(key)
        .map_or(s.name.as_str(), |r| r.trim_start_matches('-'));
    let attack = s
        .robust
        .as_ref()
        .map_or("no robust evaluation", |h| h.attack.as_str());
    let status = s.status.as_str();
    format!(
        "{seed} {status} {}/{} {attack}",
        s.epochs_done, s.epochs_total
    )
}

/// What went into a group's means and what was left out.
fn inputs(key: &str, used: &[&RunSummary], left: &[&RunSummary]) -> String {
    let list = |v: &[&RunSummary]| v.iter().map(|s| input_label(key, s)).collect::<Vec<_>>();
    let mut out = list(used).join("; ");
    if !left.is_empty() {
        out.push_str(&format!("; left out: {}", list(left).join("; ")));
    }
    out
}

/// Group runs by name without the `-s<seed>` suffix, in first-appearance order. Runs that did
/// not finish (cancelled, failed, still running) are left out of the means unless
/// `unfinished`; every row says which runs went in and which did not.
pub fn seed_groups(sums: &[RunSummary], unfinished: bool) -> Vec<GroupRow> {
    by_seed_group(sums, |s| &s.name)
        .into_iter()
        .map(|(key, all)| {
            // Partitioned so a run that did not finish is named, never silently averaged.
            let (runs, left): (Vec<&RunSummary>, Vec<&RunSummary>) = all
                .iter()
                .partition(|s| unfinished || s.status == RunStatus::Finished);
            let vals = |f: &dyn Fn(&RunSummary) -> Option<f64>| -> Vec<f64> {
                runs.iter().filter_map(|s| f(s)).collect()
            };
            let cols = [
                vals(&|s| s.clean.as_ref().map(|h| h.overall)),
                vals(&|s| s.clean.as_ref().map(|h| h.paper_worst(&s.dataset))),
                vals(&|s| s.robust.as_ref().map(|h| h.overall)),
                vals(&|s| s.robust.as_ref().map(|h| h.paper_worst(&s.dataset))),
            ];
            let mean = |v: &[f64]| mean_std(v).map(|(m, _)| m);
            let epochs: Vec<usize> = runs
                .iter()
                .filter_map(|s| s.robust.as_ref().or(s.clean.as_ref()).map(|h| h.epoch))
                .collect();
            GroupRow {
                method: all[0].method.clone(),
                seeds: runs.len(),
                clean_overall: pm(&cols[0]),
                clean_worst: pm(&cols[1]),
                robust_overall: pm(&cols[2]),
                robust_worst: pm(&cols[3]),
                means: GroupMeans {
                    clean_overall: mean(&cols[0]),
                    clean_worst: mean(&cols[1]),
                    robust_overall: mean(&cols[2]),
                    robust_worst: mean(&cols[3]),
                },
                checkpoint: last_label(&epochs),
                rho_nat: "–".into(),
                rho_rob: "–".into(),
                inputs: inputs(&key, &runs, &left),
                run_ids: runs.iter().map(|s| s.id.clone()).collect(),
                values: cols,
                name: key,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::runs::summary::Headline;

    fn run(name: &str, status: RunStatus, done: usize, robust: f64) -> RunSummary {
        let h = |v: f64, attack: &str| Headline {
            epoch: done.saturating_sub(1),
            attack: attack.into(),
            overall: v,
            worst: v / 2.0,
            worst10: v / 2.0,
        };
        RunSummary {
            name: name.into(),
            method: "pgd-at".into(),
            status,
            epochs_done: done,
            epochs_total: 5,
            clean: Some(h(0.8, "clean")),
            robust: Some(h(robust, if done == 5 { "pgd-20" } else { "pgd-10" })),
            ..RunSummary::empty(&fairtat_core::runs::RunDir::new("runs/x"))
        }
    }

    /// A run cancelled after one epoch stays out of the means unless asked for, and the row
    /// says which runs went in, with their status, epochs and attack.
    #[test]
    fn unfinished_runs_are_left_out_of_the_means_and_named() {
        let sums = [
            run("g-s0", RunStatus::Finished, 5, 0.4),
            run("g-s1", RunStatus::Cancelled, 1, 0.1),
        ];
        let g = &seed_groups(&sums, false)[0];
        assert_eq!(g.seeds, 1);
        assert_eq!(g.robust_overall, "40.0");
        assert_eq!(
            g.inputs,
            "s0 finished 5/5 pgd-20; left out: s1 cancelled 1/5 pgd-10"
        );
        let all = &seed_groups(&sums, true)[0];
        assert_eq!(all.seeds, 2);
        assert_eq!(all.robust_overall, "25.0 ± 21.2");
        assert!(!all.inputs.contains("left out"), "{}", all.inputs);
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[0.4, 0.5, 0.6]).unwrap();
        assert!((m - 0.5).abs() < 1e-12);
        assert!((s - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]).unwrap(), (0.3, 0.0));
        assert!(mean_std(&[]).is_none());
        assert_eq!(pm(&[0.4, 0.5, 0.6]), "50.0 ± 10.0");
        assert_eq!(pm(&[0.25]), "25.0");
    }
}
