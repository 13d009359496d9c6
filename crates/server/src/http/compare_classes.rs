//! Per-class comparisons for the compare page and its exports: each run's per-class clean and
//! robust test accuracy at its last evaluated epoch, averaged over the seeds of a group; the
//! per-class tables (one row per class, one column per group) and the diverging bar chart of
//! one group minus another (e.g. FAIR-TAT minus PGD-AT): the picture a fairness paper needs.

use super::compare_export::ExportTable;
use super::compare_rho::rho_cells;
use super::compare_tables::{by_seed_group, last_label, mean_std, GroupRow};
use super::views::pct;
use crate::store::RunFold;
use fairtat_charts::{bar_chart_with, BarAxes};
use fairtat_core::config::{MethodKey, MethodKind};
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
    pub clean: Vec<f64>,
    pub robust: Vec<f64>,
    /// The epochs its runs' rows come from (one per run that has any).
    pub epochs: Vec<usize>,
}

/// The mean of each class over `rows`, from the runs that have a finite value for it.
fn mean_rows(rows: &[&Vec<f64>]) -> Vec<f64> {
    let k = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    (0..k)
        .map(|c| {
            let v: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.get(c).copied())
                .filter(|x| x.is_finite())
                .collect();
            mean_std(&v).map_or(f64::NAN, |(m, _)| m)
        })
        .collect()
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
                clean: mean_rows(&accs.iter().map(|a| &a.clean).collect::<Vec<_>>()),
                robust: mean_rows(&accs.iter().map(|a| &a.robust).collect::<Vec<_>>()),
                epochs: accs.iter().filter_map(|a| a.epoch).collect(),
                name,
            }
        })
        .collect()
}

/// A `key=<number>` parameter of the query.
fn param(q: Option<&str>, key: &str) -> Option<usize> {
    q.unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The two groups of the per-class difference: `da=`/`db=` of the query, else a group whose
/// method draws FAIR-TAT's targets minus one of a plain baseline (`pgd-at`, `trades`), chosen by
/// the runs' `method.name`, not by their names; else the first two.
pub fn delta_pair(groups: &[GroupClassAcc], q: Option<&str>) -> Option<(usize, usize)> {
    let n = groups.len();
    if n < 2 {
        return None;
    }
    let find = |want: &dyn Fn(MethodKind) -> bool| {
        groups
            .iter()
            .position(|g| MethodKind::parse(&g.method).is_some_and(want))
    };
    let fair_tat = |m: MethodKind| m.def().reads(MethodKey::targets);
    let baseline = |m: MethodKind| matches!(m, MethodKind::PgdAt | MethodKind::Trades);
    let a = param(q, "da")
        .filter(|i| *i < n)
        .or_else(|| find(&fair_tat))
        .unwrap_or(0);
    let b = param(q, "db")
        .filter(|i| *i < n)
        .or_else(|| find(&baseline).filter(|b| *b != a))
        .unwrap_or(if a == 0 { 1 } else { 0 });
    Some((a, b))
}

/// The caption under the per-class difference of `a` minus `b`: rho of `a` with `b` as the
/// base (from the seed-group means, as the seed table computes it) and the checkpoint.
pub fn delta_caption(
    a: &GroupClassAcc,
    b: &GroupClassAcc,
    groups: &[GroupRow],
    checkpoint: &str,
) -> String {
    let means = |g: &GroupClassAcc| groups.iter().find(|r| r.name == g.name).map(|r| r.means);
    let (nat, rob) = match (means(a), means(b)) {
        (Some(ma), Some(mb)) => rho_cells(&ma, &mb),
        _ => ("–".into(), "–".into()),
    };
    format!(
        "rho_rob {rob}, rho_nat {nat} for {} with {} as the base; checkpoint {checkpoint}",
        a.name, b.name
    )
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
                        pct(v.get(c).copied())
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

/// The per-class difference `a - b` (robust or clean accuracy) as a diverging bar chart.
pub fn delta_chart(a: &GroupClassAcc, b: &GroupClassAcc, robust: bool) -> String {
    let (va, vb) = if robust {
        (&a.robust, &b.robust)
    } else {
        (&a.clean, &b.clean)
    };
    let k = va.len().min(vb.len());
    let diff: Vec<f64> = (0..k).map(|c| va[c] - vb[c]).collect();
    let what = if robust { "robust" } else { "clean" };
    let title = format!("Per-class {what} accuracy: {} minus {}", a.name, b.name);
    let top = diff
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    let y = format!("{what} accuracy difference");
    let axes = BarAxes {
        x: "class",
        y: &y,
        y_range: (top > 0.0).then_some((-top * 1.05, top * 1.05)),
        ..Default::default()
    };
    bar_chart_with(&title, &a.names, &diff, axes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, clean: &[f64], robust: &[f64]) -> (RunSummary, ClassAcc) {
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

    /// The default difference is chosen by the runs' methods, whatever their names say.
    #[test]
    fn the_default_pair_is_fair_tat_minus_a_baseline_by_method() {
        let with = |name: &str, method: &str| {
            let (mut s, a) = run(name, &[0.5, 0.5], &[0.2, 0.2]);
            s.method = method.into();
            (s, a)
        };
        let runs = [
            with("x-pgd-at-like-s0", "trades"),
            with("x-other-s0", "dafa"),
            with("x-mine-s0", "fair-tat-trades"),
        ];
        let g = groups(&runs);
        assert_eq!(delta_pair(&g, None), Some((2, 0)));
        assert_eq!(delta_pair(&g, Some("da=1&db=2")), Some((1, 2)));
        let none = [with("a-s0", "dafa"), with("b-s0", "trix")];
        assert_eq!(delta_pair(&groups(&none), None), Some((0, 1)));
    }

    #[test]
    fn groups_average_seeds_and_tables_have_a_row_per_class() {
        let runs = [
            run("g-fair-tat-s0", &[0.8, 0.6], &[0.5, 0.2]),
            run("g-fair-tat-s1", &[0.9, 0.4], &[0.3, 0.4]),
            run("g-pgd-at-s0", &[0.9, 0.7], &[0.6, 0.1]),
        ];
        let g = groups(&runs);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].runs, 2);
        assert!((g[0].robust[1] - 0.3).abs() < 1e-12);
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
        let svg = delta_chart(&g[0], &g[1], true);
        // The worst class gains 20 points, the best loses 20: the hover titles say so.
        assert!(
            svg.contains("dog: 0.2") && svg.contains("cat: -0.2"),
            "{svg}"
        );
    }
}
