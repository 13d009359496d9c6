//! What each run chart draws, as pure functions of the folded run state: the series, the
//! per-class selection (`?classes=worst5|all|3,7`: 100 per-class curves with the worst few
//! highlighted and the rest faded) and the data version a chart depends on.

use super::chart_more::points;
use crate::metrics::{finite_max, Metrics};
use crate::store::fold::dep;
use crate::store::{EpochDetail, RunFold};
use fairtat_charts::{
    bar_chart_with, heatmap_with, line_chart, line_chart_faded, BarAxes, HeatmapAxes, Scale, Series,
};

/// Largest `worstN`.
const MAX_WORST: usize = 50;
/// Classes drawn in full colour by default when a run has more than ten.
const DEFAULT_WORST: usize = 5;

/// Which classes a per-class chart highlights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classes {
    All,
    /// The `n` classes with the lowest latest accuracy (robust; clean for the clean chart).
    Worst(usize),
    /// Class indices.
    List(Vec<usize>),
}

impl Classes {
    /// Parse the `classes` query value.
    pub fn parse(s: &str) -> Result<Classes, String> {
        let bad = || {
            format!(
                "classes: {s:?} is not a class selection (allowed: all, worst1 .. worst{MAX_WORST}, \
                 or class indices like 3,7)"
            )
        };
        let s = s.trim();
        if s == "all" {
            return Ok(Classes::All);
        }
        if let Some(n) = s.strip_prefix("worst") {
            return match n.parse::<usize>() {
                Ok(n) if (1..=MAX_WORST).contains(&n) => Ok(Classes::Worst(n)),
                _ => Err(bad()),
            };
        }
        let list: Result<Vec<usize>, _> = s.split(',').map(|p| p.trim().parse()).collect();
        match list {
            Ok(mut v) if !v.is_empty() && v.len() <= 1000 => {
                v.sort_unstable();
                v.dedup();
                Ok(Classes::List(v))
            }
            _ => Err(bad()),
        }
    }

    /// The default for `k` classes: all of up to ten, else the worst five.
    pub fn default_for(k: usize) -> Classes {
        if k <= 10 {
            Classes::All
        } else {
            Classes::Worst(DEFAULT_WORST)
        }
    }

    pub fn key(&self) -> String {
        match self {
            Classes::All => "all".into(),
            Classes::Worst(n) => format!("worst{n}"),
            Classes::List(v) => v.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        }
    }
}

fairtat_core::named_enum! {
    /// Which C_FPS the C_FPS bars show (`?source=`).
    #[derive(Default)]
    pub enum CfpsSource {
        /// The training set under the training attack, this epoch: drives the next epoch's
        /// targets.
        #[default]
        Train = "train",
        /// The test set, clean.
        TestClean = "test-clean",
        /// The test set under the per-epoch evaluation attack (PGD-k).
        TestRobust = "test-robust",
    }
}

impl CfpsSource {
    /// The `?source=` value, or an error naming the allowed ones.
    pub fn from_query(s: &str) -> Result<CfpsSource, String> {
        CfpsSource::parse(s).ok_or_else(|| {
            format!(
                "source: {s:?} is not a C_FPS source (allowed: {})",
                CfpsSource::NAMES.join(", ")
            )
        })
    }
}

/// A chart request after validation.
#[derive(Clone, Debug, Default)]
pub struct ChartQuery {
    pub epoch: Option<usize>,
    pub classes: Option<Classes>,
    pub source: CfpsSource,
}

impl ChartQuery {
    fn classes(&self, m: &Metrics) -> Classes {
        self.classes
            .clone()
            .unwrap_or_else(|| Classes::default_for(m.class_names.len()))
    }

    /// Cache key of `name` under this query.
    pub fn key(&self, name: &str, m: &Metrics) -> String {
        format!(
            "{name}?e={:?}&c={}&s={}",
            self.epoch,
            self.classes(m).key(),
            self.source.as_str()
        )
    }
}

/// Charts drawing one line per class.
fn per_class_chart(name: &str) -> bool {
    matches!(
        name,
        "class-acc-clean" | "class-acc-robust" | "class-eps" | "targets"
    ) || name.starts_with("state-")
}

/// The data version of chart `name`: it changes exactly when the chart's data did.
pub fn version(name: &str, f: &RunFold, q: &ChartQuery) -> u64 {
    if super::chart_more::is_chart(name) {
        return f.version(super::chart_more::deps(name));
    }
    let own = match name {
        "cfps" | "confusion-clean" | "confusion-robust" | "confusion-diff" => {
            return f.epoch_version(q.epoch)
        }
        "loss" => dep::LOSS,
        "accuracy" => dep::ACCURACY,
        "class-acc-clean" | "class-acc-clean-heatmap" => dep::CLASS_ACC_CLEAN,
        "class-acc-robust" | "class-acc-robust-heatmap" => dep::CLASS_ACC_ROBUST,
        "class-eps" => dep::CLASS_EPS,
        "targets" => dep::TARGETS,
        "cfps-heatmap" => dep::CFPS,
        state => state,
    };
    let ranked = per_class_chart(name) && matches!(q.classes(f.metrics()), Classes::Worst(_));
    let rank = if name == "class-acc-clean" {
        dep::CLASS_ACC_CLEAN
    } else {
        dep::CLASS_ACC_ROBUST
    };
    if ranked {
        f.version(&[own, rank])
    } else {
        f.version(&[own])
    }
}

/// One line per class from `[epoch][class]` rows.
fn per_class(m: &Metrics, rows: &[Vec<f64>]) -> Vec<Series> {
    let k = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..k)
        .map(|c| {
            let pts = m
                .epochs
                .iter()
                .zip(rows)
                .filter_map(|(e, r)| r.get(c).map(|v| (*e as f64, *v)))
                .collect();
            Series::new(m.class_names.get(c).cloned().unwrap_or(c.to_string()), pts)
        })
        .collect()
}

/// The `n` classes with the lowest value in the latest non-empty row of `rank`.
fn worst(rank: &[Vec<f64>], n: usize, k: usize) -> Vec<usize> {
    let Some(last) = rank.iter().rev().find(|r| !r.is_empty()) else {
        return (0..n.min(k)).collect();
    };
    let mut order: Vec<usize> = (0..last.len()).collect();
    order.sort_by(|a, b| last[*a].total_cmp(&last[*b]));
    order.truncate(n);
    order
}

/// A per-class line chart: the selected classes in colour (worst first), the rest faded.
fn class_lines(
    title: &str,
    y_label: &str,
    mut series: Vec<Series>,
    sel: &Classes,
    rank: &[Vec<f64>],
    y_range: Option<(f64, f64)>,
) -> String {
    let k = series.len();
    let chosen: Vec<usize> = match sel {
        Classes::All => return line_chart(title, "epoch", y_label, &series, y_range),
        Classes::Worst(n) => worst(rank, *n, k),
        Classes::List(v) => v.iter().copied().filter(|c| *c < k).collect(),
    };
    // Faded lines first (drawn underneath), then the chosen ones in their order.
    let mut ordered: Vec<Series> = Vec::with_capacity(k);
    let mut faded = Vec::with_capacity(k);
    for (c, s) in series.iter_mut().enumerate() {
        if !chosen.contains(&c) {
            ordered.push(std::mem::replace(s, Series::new("", vec![])));
            faded.push(true);
        }
    }
    for c in &chosen {
        ordered.push(std::mem::replace(&mut series[*c], Series::new("", vec![])));
        faded.push(false);
    }
    let title = match sel {
        Classes::Worst(n) => format!("{title} (worst {n} highlighted)"),
        _ => title.to_string(),
    };
    line_chart_faded(&title, "epoch", y_label, &ordered, &faded, y_range)
}

/// Lines of one method-state key: one per class when the rows have K entries (class names as
/// labels), one per entry otherwise (`extra` beyond K, e.g. WAT's average expert).
fn state_series(m: &Metrics, key: &str) -> Vec<Series> {
    let Some(rows) = m.method_state.get(key) else {
        return vec![];
    };
    let k = m.class_names.len();
    let mut series = per_class(m, rows);
    for (i, s) in series.iter_mut().enumerate() {
        if i >= k {
            s.name = if i == k {
                "extra".into()
            } else {
                format!("extra {}", i - k)
            };
        }
    }
    if series.len() == 1 {
        series[0].name = key.to_string();
    }
    series
}

fn scale(rows: &[Vec<f64>], f: f64) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v * f).collect())
        .collect()
}

/// Render chart `name` (already validated) from the fold; `detail` is the chosen epoch's
/// evaluations (confusion charts).
pub fn render(name: &str, f: &RunFold, detail: Option<&EpochDetail>, q: &ChartQuery) -> String {
    let m = f.metrics();
    let sel = q.classes(m);
    if let Some(svg) = class_chart(name, m, &sel)
        .or_else(|| heatmap_chart(name, m))
        .or_else(|| super::chart_more::render(name, m))
    {
        return svg;
    }
    match name {
        "loss" => {
            let ys: Vec<Option<f64>> = m.train_loss.iter().map(|v| Some(*v)).collect();
            let s = [Series::new("train loss", points(m, &ys))];
            line_chart("Training loss", "epoch", "loss", &s, None)
        }
        "accuracy" => line_chart(
            "Test accuracy: overall and worst class",
            "epoch",
            "accuracy",
            &[
                Series::new("clean overall", points(m, &m.clean_overall)),
                Series::new("clean worst", points(m, &m.clean_worst)),
                Series::new("robust overall", points(m, &m.robust_overall)),
                Series::new("robust worst", points(m, &m.robust_worst)),
            ],
            Some((0.0, 1.0)),
        ),
        "cfps" => cfps_bars(m, f.row_of(q.epoch), detail, q.source),
        n if n.starts_with("state-") => {
            let key = &n["state-".len()..];
            let series = state_series(m, key);
            let title = format!("Method state: {key}");
            if series.len() == m.class_names.len() && series.len() > 1 {
                class_lines(&title, key, series, &sel, &m.class_acc_robust, None)
            } else {
                line_chart(&title, "epoch", key, &series, None)
            }
        }
        _ => confusion_chart(name, detail, &m.class_names),
    }
}

/// The per-class line charts (one line per selected class); `None` for other names.
fn class_chart(name: &str, m: &Metrics, sel: &Classes) -> Option<String> {
    let unit = Some((0.0, 1.0));
    let robust = &m.class_acc_robust;
    let (title, y_label, series, range) = match name {
        "class-acc-clean" => {
            let s = per_class(m, &m.class_acc_clean);
            ("Per-class clean accuracy", "accuracy", s, unit)
        }
        "class-acc-robust" => (
            "Per-class robust accuracy",
            "accuracy",
            per_class(m, robust),
            unit,
        ),
        "class-eps" => {
            let s = per_class(m, &scale(&m.class_eps, 255.0));
            (
                "Per-class training epsilon (x255)",
                "epsilon x 255",
                s,
                None,
            )
        }
        "targets" => {
            let s = per_class(m, &m.target_probs);
            ("Target-sampling distribution", "probability", s, unit)
        }
        _ => return None,
    };
    // "Worst" classes are ranked by clean accuracy on the clean chart, by robust elsewhere.
    let rank = if name == "class-acc-clean" {
        &m.class_acc_clean
    } else {
        robust
    };
    Some(class_lines(title, y_label, series, sel, rank, range))
}

/// The class x epoch heat maps; `None` for other names.
fn heatmap_chart(name: &str, m: &Metrics) -> Option<String> {
    let (title, rows, scale) = match name {
        "cfps-heatmap" => (
            "C_FPS (training set, adversarial), class x epoch",
            &m.cfps,
            Scale::Sequential,
        ),
        "class-acc-clean-heatmap" => (
            "Per-class clean accuracy, class x epoch",
            &m.class_acc_clean,
            Scale::Fixed(0.0, 1.0),
        ),
        "class-acc-robust-heatmap" => (
            "Per-class robust accuracy, class x epoch",
            &m.class_acc_robust,
            Scale::Fixed(0.0, 1.0),
        ),
        _ => return None,
    };
    Some(class_epoch_heatmap(title, m, rows, scale))
}

/// False-positive sinks highlighted in the C_FPS bars.
const SINKS: usize = 3;

/// The C_FPS bars of one epoch from `source`, on a y range that covers every epoch of that
/// source (so moving the epoch slider compares like with like), with the top
/// false-positive sinks (the classes predicted most often wrongly) highlighted.
fn cfps_bars(
    m: &Metrics,
    row: Option<usize>,
    detail: Option<&EpochDetail>,
    source: CfpsSource,
) -> String {
    let test = |robust: bool| {
        detail
            .and_then(|d| {
                if robust {
                    d.robust.as_ref()
                } else {
                    d.clean.as_ref()
                }
            })
            .map(|e| (e.metrics.cfps.clone(), e.attack.clone()))
    };
    let (vals, what) = match source {
        CfpsSource::Train => (
            row.and_then(|i| m.cfps.get(i)).cloned().unwrap_or_default(),
            row.map(|i| {
                format!(
                    "training set, adversarial: drives epoch {}'s targets",
                    m.epochs[i] + 1
                )
            })
            .unwrap_or_default(),
        ),
        CfpsSource::TestClean => test(false)
            .map(|(v, _)| (v, "test set, clean".to_string()))
            .unwrap_or_default(),
        CfpsSource::TestRobust => test(true)
            .map(|(v, a)| (v, format!("test set, under {a}")))
            .unwrap_or_default(),
    };
    let title = match row {
        Some(i) if !vals.is_empty() => format!("C_FPS per class, epoch {} ({what})", m.epochs[i]),
        Some(i) => format!(
            "C_FPS per class, epoch {}: not recorded for this source",
            m.epochs[i]
        ),
        None => "C_FPS per class (no epoch yet)".into(),
    };
    // One y range per source over every epoch, so the slider compares like with like.
    let source_top = match source {
        CfpsSource::Train => m.cfps.iter().map(|r| finite_max(r)).fold(0.0, f64::max),
        CfpsSource::TestClean => m.cfps_test_scale()[0],
        CfpsSource::TestRobust => m.cfps_test_scale()[1],
    };
    let top = source_top.max(finite_max(&vals));
    let mut order: Vec<usize> = (0..vals.len()).filter(|&c| vals[c] > 0.0).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    order.truncate(SINKS);
    let name = |c: usize| {
        m.class_names
            .get(c)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    let x = if order.is_empty() {
        "class".to_string()
    } else {
        let names: Vec<String> = order.iter().map(|&c| name(c)).collect();
        format!(
            "class (orange: top false-positive sinks {})",
            names.join(", ")
        )
    };
    let axes = BarAxes {
        x: &x,
        y: "C_FPS",
        y_range: (top > 0.0).then_some((0.0, top * 1.05)),
        highlight: &order,
        highlight_note: "top false-positive sink",
    };
    bar_chart_with(&title, &m.class_names, &vals, axes)
}

/// A class x epoch heatmap of `[epoch][class]` rows (rows of the picture = classes).
fn class_epoch_heatmap(title: &str, m: &Metrics, by_epoch: &[Vec<f64>], scale: Scale) -> String {
    let epochs: Vec<String> = m.epochs.iter().map(|e| e.to_string()).collect();
    let rows: Vec<Vec<f64>> = (0..m.class_names.len())
        .map(|c| {
            by_epoch
                .iter()
                .map(|r| r.get(c).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    let axes = HeatmapAxes {
        x: "epoch",
        y: "class",
        scale,
    };
    heatmap_with(title, &m.class_names, &epochs, &rows, axes)
}

fn confusion_chart(name: &str, detail: Option<&EpochDetail>, names: &[String]) -> String {
    let rows = |robust: bool| -> Vec<Vec<f64>> {
        let eval = detail.and_then(|d| match robust {
            true => d.robust.as_ref(),
            false => d.clean.as_ref(),
        });
        eval.map(|e| {
            e.confusion
                .iter()
                .map(|row| row.iter().map(|v| *v as f64).collect())
                .collect()
        })
        .unwrap_or_default()
    };
    let (title, values, scale) = match name {
        "confusion-clean" => ("Confusion matrix, clean", rows(false), Scale::Sequential),
        "confusion-robust" => (
            "Confusion matrix, under attack",
            rows(true),
            Scale::Sequential,
        ),
        _ => {
            let (a, c) = (rows(true), rows(false));
            let diff = a
                .iter()
                .zip(&c)
                .map(|(ra, rc)| ra.iter().zip(rc).map(|(x, y)| x - y).collect())
                .collect();
            (
                "Confusion difference: attacked - clean",
                diff,
                Scale::Diverging,
            )
        }
    };
    let axes = HeatmapAxes {
        x: "predicted class",
        y: "true class",
        scale,
    };
    heatmap_with(title, names, names, &values, axes)
}
