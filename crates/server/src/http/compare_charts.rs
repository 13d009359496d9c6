//! The compare page's curves: per seed group (the runs that count in its means), the mean over
//! its seeds of a test metric per epoch and the standard deviation as a band, one colour per
//! group, group names in the legend and the runs' full names on hover. `from=`/`to=` keep an
//! epoch range (the page's drag-to-zoom). Beside the live model's four curves, the worst-class
//! curves of the averaged models (EMA, FAWA) and of the validation split, where the runs
//! recorded them ([`more_charts`]).

use super::compare_tables::{mean_std, GroupRow};
use crate::state::AppState;
use fairtat_charts::{band_chart, Band};
use fairtat_core::runs::summary::RunSummary;

/// The charts the page draws, by file name.
pub const CHARTS: [&str; 4] = [
    "robust_worst",
    "robust_overall",
    "clean_worst",
    "clean_overall",
];

/// The prefix of the charts of [`Metrics::more`](crate::metrics::Metrics) series:
/// `more-<split>_<model>_<clean|robust>_worst`.
const MORE: &str = "more-";

/// The averaged-model and validation curves the runs recorded, worst class only (what the
/// paper compares), as chart names.
pub fn more_charts(st: &AppState, sums: &[RunSummary]) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for s in sums {
        let entry = st.store().run(&st.summary_dir(s));
        let f = entry.fold();
        let keys = f.metrics().more.keys().filter(|k| k.ends_with(" worst"));
        names.extend(keys.map(|k| format!("{MORE}{}", k.replace(' ', "_"))));
    }
    names.into_iter().collect()
}

/// Whether `name` has the form of a [`more_charts`] name.
pub fn is_more(name: &str) -> bool {
    name.strip_prefix(MORE).is_some_and(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// One run's `(epoch, value)` points of chart `name`.
fn run_points(st: &AppState, s: &RunSummary, name: &str) -> Vec<(usize, f64)> {
    let entry = st.store().run(&st.summary_dir(s));
    let f = entry.fold();
    let m = f.metrics();
    let more;
    let ys = match name {
        n if is_more(n) => {
            more = m.more.get(&n[MORE.len()..].replace('_', " "));
            match more {
                Some(ys) => ys,
                None => return Vec::new(),
            }
        }
        "robust_worst" => &m.robust_worst,
        "robust_overall" => &m.robust_overall,
        "clean_worst" => &m.clean_worst,
        _ => &m.clean_overall,
    };
    m.epochs
        .iter()
        .zip(ys)
        .filter_map(|(e, y)| y.map(|y| (*e, y)))
        .collect()
}

/// Mean and std over the runs that have each epoch (std NaN below two runs).
fn aggregate(runs: &[Vec<(usize, f64)>]) -> Vec<(f64, f64, f64)> {
    let mut epochs: Vec<usize> = runs.iter().flatten().map(|p| p.0).collect();
    epochs.sort_unstable();
    epochs.dedup();
    epochs
        .into_iter()
        .filter_map(|e| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.iter().find(|p| p.0 == e).map(|p| p.1))
                .collect();
            let (m, s) = mean_std(&v)?;
            Some((e as f64, m, if v.len() > 1 { s } else { f64::NAN }))
        })
        .collect()
}

/// The SVG of chart `name` for `groups` (runs from `sums`), within `x_range` epochs.
pub fn group_chart(
    st: &AppState,
    (groups, sums): (&[GroupRow], &[RunSummary]),
    name: &str,
    x_range: Option<(f64, f64)>,
) -> String {
    let bands: Vec<Band> = groups
        .iter()
        .map(|g| {
            let runs: Vec<&RunSummary> =
                sums.iter().filter(|s| g.run_ids.contains(&s.id)).collect();
            let points: Vec<Vec<(usize, f64)>> =
                runs.iter().map(|s| run_points(st, s, name)).collect();
            Band {
                name: g.name.clone(),
                runs: runs.iter().map(|s| s.name.clone()).collect(),
                points: aggregate(&points),
            }
        })
        .collect();
    let title = format!(
        "{} (mean ± std over seeds)",
        name.trim_start_matches(MORE).replace('_', " ")
    );
    band_chart(
        (&title, "epoch", "accuracy"),
        &bands,
        Some((0.0, 1.0)),
        x_range,
    )
}

/// `from=`/`to=` of the query as an epoch range.
pub fn epoch_range(q: Option<&str>) -> Option<(f64, f64)> {
    let num = |k: &str| {
        q.unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    match (num("from"), num("to")) {
        (Some(a), Some(b)) if a <= b => Some((a, b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_average_per_epoch_with_a_spread_only_from_two_runs() {
        let a = aggregate(&[vec![(0, 0.2), (1, 0.4)], vec![(0, 0.4)]]);
        assert_eq!(a.len(), 2);
        assert!((a[0].1 - 0.3).abs() < 1e-12 && a[0].2 > 0.14 && a[0].2 < 0.15);
        assert!((a[1].1 - 0.4).abs() < 1e-12 && a[1].2.is_nan());
        assert_eq!(epoch_range(Some("ids=x&from=2&to=5")), Some((2.0, 5.0)));
        assert_eq!(epoch_range(Some("from=5&to=2")), None);
    }
}
