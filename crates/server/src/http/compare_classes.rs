//! Per-class comparisons for the compare page and its exports: each run's per-class clean and
//! robust test accuracy at its last evaluated epoch, mean and spread over the seeds of a group,
//! and the per-class tables (one row per class, one column per group). The difference of two
//! groups is `compare_delta`.

use super::compare_export::ExportTable;
use super::compare_tables::{by_seed_group, last_label, mean_std};
use super::views::pct;
use crate::store::RunFold;
use fairtat_core::runs::summary::RunSummary;

/// Per-class accuracy of one run at the last epoch that evaluated the test set.
#[derive(Clone, Debug, Default)]
pub struct ClassAcc {
    pub names: Vec<String>,
    pub clean: Vec<f64>,
    pub robust: Vec<f64>,
    /// 0-based epoch of the rows (the robust one's when both exist): the `last` checkpoint's.
    pub epoch: Option<usize>,
}

/// The last non-empty row of `[epoch][class]` series, with its epoch.
fn last_row(epochs: &[usize], rows: &[Vec<f64>]) -> (Option<usize>, Vec<f64>) {
    rows.iter()
        .enumerate()
        .rev()
        .find(|(_, r)| !r.is_empty())
        .map_or((None, vec![]), |(i, r)| (epochs.get(i).copied(), r.clone()))
}

pub fn class_acc(f: &RunFold) -> ClassAcc {
    let m = f.metrics();
    let (clean_epoch, clean) = last_row(&m.epochs, &m.class_acc_clean);
    let (robust_epoch, robust) = last_row(&m.epochs, &m.class_acc_robust);
    ClassAcc {
        names: f.class_names_for(clean.len().max(robust.len())),
        clean,
        robust,
        epoch: robust_epoch.or(clean_epoch),
    }
}

/// A seed group's per-class accuracy, averaged over its runs that have the class.
#[derive(Clone, Debug)]
pub struct GroupClassAcc {
    pub name: String,
    /// The method of its runs (`method.name`).
    pub method: String,
    pub runs: usize,
    pub names: Vec<String>,
    pub clean: ClassStats,
    pub robust: ClassStats,
    /// The epochs its runs' rows come from (one per run that has any).
    pub epochs: Vec<usize>,
}

/// Per class: the mean over a group's seeds, their sample standard deviation (NaN below two
/// seeds: one run says nothing about the spread) and how many runs had the class.
#[derive(Clone, Debug, Default)]
pub struct ClassStats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub n: Vec<usize>,
}

impl ClassStats {
    /// Over `rows`, from the runs that have a finite value for each class.
    fn of(rows: &[&Vec<f64>]) -> ClassStats {
        let k = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut out = ClassStats::default();
        for c in 0..k {
            let v: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.get(c).copied())
                .filter(|x| x.is_finite())
                .collect();
            let (m, s) = mean_std(&v).unwrap_or((f64::NAN, f64::NAN));
            out.mean.push(m);
            out.std.push(if v.len() > 1 { s } else { f64::NAN });
            out.n.push(v.len());
        }
        out
    }
}

/// The longest of `names` (runs of a group may have recorded different class counts).
fn longest<'a>(names: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    names.max_by_key(|n| n.len()).cloned().unwrap_or_default()
}

/// Group runs by name without the `-s<seed>` suffix (as the mean ± std table does).
pub fn groups(runs: &[(RunSummary, ClassAcc)]) -> Vec<GroupClassAcc> {
    by_seed_group(runs, |(s, _)| &s.name)
        .into_iter()
        .map(|(name, runs)| {
            let accs: Vec<&ClassAcc> = runs.iter().map(|(_, a)| a).collect();
            GroupClassAcc {
                method: runs[0].0.method.clone(),
                runs: accs.len(),
                names: longest(accs.iter().map(|a| &a.names)),
                clean: ClassStats::of(&accs.iter().map(|a| &a.clean).collect::<Vec<_>>()),
                robust: ClassStats::of(&accs.iter().map(|a| &a.robust).collect::<Vec<_>>()),
                epochs: accs.iter().filter_map(|a| a.epoch).collect(),
                name,
            }
        })
        .collect()
}

/// Two tables, robust then clean: a row per class, a column per group (mean over its seeds).
pub fn per_class_tables(groups: &[GroupClassAcc]) -> Vec<ExportTable> {
    let names = longest(groups.iter().map(|g| &g.names));
    if names.is_empty() {
        return vec![];
    }
    let head: Vec<String> = std::iter::once("class".to_string())
        .chain(groups.iter().map(|g| match g.runs {
            1 => g.name.clone(),
            n => format!("{} (mean of {n})", g.name),
        }))
        .collect();
    let checkpoint = checkpoint_label(groups);
    let table = |robust: bool| ExportTable {
        title: format!(
            "Per-class {} test accuracy at the last epoch (%): checkpoint {checkpoint}",
            if robust { "robust" } else { "clean" }
        ),
        head: head.clone(),
        rows: names
            .iter()
            .enumerate()
            .map(|(c, n)| {
                std::iter::once(n.clone())
                    .chain(groups.iter().map(|g| {
                        let v = if robust { &g.robust } else { &g.clean };
                        pct(v.mean.get(c).copied())
                    }))
                    .collect()
            })
            .collect(),
    };
    vec![table(true), table(false)]
}

/// The checkpoint of every group's per-class rows: `last (epoch 7)` (or several epochs).
pub fn checkpoint_label(groups: &[GroupClassAcc]) -> String {
    let epochs: Vec<usize> = groups.iter().flat_map(|g| g.epochs.clone()).collect();
    last_label(&epochs)
}

/// A run with two classes (`cat`, `dog`) for the tests of the per-class views.
#[cfg(test)]
pub fn test_run(name: &str, clean: &[f64], robust: &[f64]) -> (RunSummary, ClassAcc) {
    let s = RunSummary {
        name: name.into(),
        ..RunSummary::empty(&fairtat_core::runs::RunDir::new("runs/x"))
    };
    let acc = ClassAcc {
        names: vec!["cat".into(), "dog".into()],
        clean: clean.to_vec(),
        robust: robust.to_vec(),
        epoch: Some(1),
    };
    (s, acc)
}

/// Three runs in two groups for the tests of the per-class views: `g-fair-tat` with two seeds
/// that differ by 0.2 on both classes, `g-pgd-at` with one.
#[cfg(test)]
pub fn test_runs() -> [(RunSummary, ClassAcc); 3] {
    [
        test_run("g-fair-tat-s0", &[0.8, 0.6], &[0.5, 0.2]),
        test_run("g-fair-tat-s1", &[0.9, 0.4], &[0.3, 0.4]),
        test_run("g-pgd-at-s0", &[0.9, 0.7], &[0.6, 0.1]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_average_seeds_and_tables_have_a_row_per_class() {
        let g = groups(&test_runs());
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].runs, 2);
        assert!((g[0].robust.mean[1] - 0.3).abs() < 1e-12);
        assert!((g[0].robust.std[1] - 0.02_f64.sqrt()).abs() < 1e-12);
        assert_eq!(g[0].robust.n, [2, 2]);
        assert!(g[1].robust.std[0].is_nan(), "one seed has no spread");
        let t = per_class_tables(&g);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].rows.len(), 2, "one row per class");
        assert_eq!(t[0].head[1], "g-fair-tat (mean of 2)");
        assert_eq!(t[0].rows[1], ["dog", "30.00", "10.00"]);
        assert!(
            t[0].title.ends_with("checkpoint last (epoch 1)"),
            "{}",
            t[0].title
        );
    }
}
