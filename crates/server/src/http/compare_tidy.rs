//! The compare page's tidy export (`/compare.long.csv`): one row per group x metric x class,
//! numbers as numbers, so `pandas.read_csv` loads it as it is. Every row names where its
//! numbers come from (`suite`, `checkpoint`, `attack`) and what went into them (`n` runs,
//! `inputs`); accuracies are fractions in [0, 1]; `std` is the sample standard deviation over
//! seeds, empty below two seeds.
//!
//! Rows: each seed group's headline figures (`class` = `all`) and per-class accuracy from the
//! per-epoch test evaluation of the `last` model; every attack of every evaluation report,
//! grouped by suite and checkpoint as Tables 2-4 are (a quick and a standard AutoAttack never
//! share a row); each corruption's pooled accuracy; and the per-class difference of the page's
//! two groups (`group` = `A minus B`, `std` combined over both groups' seeds).

use std::collections::BTreeMap;

use super::compare_classes::{ClassStats, GroupClassAcc};
use super::compare_delta::class_delta;
use super::compare_evals::{newest_by_label, EvalLabel, RunReports};
use super::compare_tables::{mean_std, GroupRow, HEADLINES};
use fairtat_core::runs::eval_report::EvalReport;
use fairtat_core::runs::reports::csv_field;

/// The header of the tidy export.
pub const COLUMNS: [&str; 11] = [
    "group",
    "method",
    "metric",
    "class",
    "suite",
    "checkpoint",
    "attack",
    "mean",
    "std",
    "n",
    "inputs",
];

/// Where the per-epoch test figures come from: no suite, the `last` model.
const PER_EPOCH: &str = "per-epoch-test";

/// One row: text columns, then the aggregate.
struct Row {
    text: [String; 7],
    mean: f64,
    /// NaN: undefined (fewer than two seeds); written empty.
    std: f64,
    n: usize,
    inputs: String,
}

impl Row {
    fn of(text: [&str; 7], values: &[f64], inputs: &str) -> Option<Row> {
        let (mean, std) = mean_std(values)?;
        Some(Row {
            text: text.map(String::from),
            mean,
            std: if values.len() > 1 { std } else { f64::NAN },
            n: values.len(),
            inputs: inputs.into(),
        })
    }

    fn line(&self) -> String {
        let num = |v: f64| {
            if v.is_finite() {
                v.to_string()
            } else {
                String::new()
            }
        };
        let mut cells: Vec<String> = self.text.to_vec();
        cells.extend([num(self.mean), num(self.std), self.n.to_string()]);
        cells.push(self.inputs.clone());
        let cells: Vec<String> = cells.iter().map(|c| csv_field(c).into_owned()).collect();
        cells.join(",") + "\n"
    }
}

/// The robust attack of a group's per-epoch figures (`pgd-20`; `pgd-10 + pgd-20` when its
/// runs differ: the inputs column says which run used which).
fn attack_of(g: &GroupRow, reports: &[RunReports]) -> String {
    let mut v: Vec<&str> = reports
        .iter()
        .filter(|(s, _)| g.run_ids.contains(&s.id))
        .filter_map(|(s, _)| s.robust.as_ref().map(|h| h.attack.as_str()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v.join(" + ")
}

fn headline_rows(g: &GroupRow, attack: &str, out: &mut Vec<Row>) {
    for (metric, values) in HEADLINES.iter().zip(&g.values) {
        let att = if metric.starts_with("clean") {
            "clean"
        } else {
            attack
        };
        let text = [&g.name, &g.method, *metric, "all", PER_EPOCH, "last", att];
        out.extend(Row::of(text, values, &g.inputs));
    }
}

/// Rows of per-class stats that are already aggregated (class means and differences).
fn class_rows(
    head: [&str; 3],
    names: &[String],
    s: &ClassStats,
    attack: &str,
    inputs: &str,
) -> Vec<Row> {
    (0..names.len().min(s.mean.len()))
        .filter(|c| s.mean[*c].is_finite())
        .map(|c| Row {
            text: [
                head[0], head[1], head[2], &names[c], PER_EPOCH, "last", attack,
            ]
            .map(String::from),
            mean: s.mean[c],
            std: s.std[c],
            n: s.n[c],
            inputs: inputs.into(),
        })
        .collect()
}

/// Values of the reports of one group, keyed by (label, attack, metric).
type EvalValues = BTreeMap<(EvalLabel, String, &'static str), (Vec<f64>, Vec<String>)>;

/// Each attack's overall and worst-class accuracy, each corruption's pooled ones.
fn report_values(name: &str, label: &EvalLabel, r: &EvalReport, out: &mut EvalValues) {
    let mut put = |attack: &str, metric: &'static str, v: f64| {
        let e = out
            .entry((label.clone(), attack.to_string(), metric))
            .or_default();
        e.0.push(v);
        e.1.push(name.to_string());
    };
    for e in r.evals.iter().filter(|e| e.split == "test") {
        let m = &e.metrics;
        put(&e.attack, "overall", m.overall);
        put(&e.attack, "worst", m.paper_worst());
    }
    for c in &r.corruption_summary {
        put(&c.corruption, "corruption_overall", c.overall);
        put(&c.corruption, "corruption_worst", c.worst);
    }
}

fn eval_rows(g: &GroupRow, reports: &[RunReports], out: &mut Vec<Row>) {
    let mut values = EvalValues::new();
    for (s, rs) in reports.iter().filter(|(s, _)| g.run_ids.contains(&s.id)) {
        for (label, (_, r)) in newest_by_label(rs, |_| true) {
            report_values(&s.name, &label, r, &mut values);
        }
    }
    for ((label, attack, metric), (v, runs)) in values {
        let text = [
            &g.name,
            &g.method,
            metric,
            "all",
            &label.suite,
            &label.checkpoint,
            &attack,
        ];
        out.extend(Row::of(text, &v, &runs.join("; ")));
    }
}

/// The whole tidy CSV of a compare: groups (with the runs that count), their runs' reports,
/// their per-class accuracy and the page's difference pair.
pub fn tidy_csv(
    groups: &[GroupRow],
    reports: &[RunReports],
    classes: &[GroupClassAcc],
    delta: Option<(usize, usize)>,
) -> String {
    let mut rows = Vec::new();
    for g in groups {
        let attack = attack_of(g, reports);
        headline_rows(g, &attack, &mut rows);
        if let Some(c) = classes.iter().find(|c| c.name == g.name) {
            let head = [g.name.as_str(), &g.method, "class_clean"];
            rows.extend(class_rows(head, &c.names, &c.clean, "clean", &g.inputs));
            let head = [g.name.as_str(), &g.method, "class_robust"];
            rows.extend(class_rows(head, &c.names, &c.robust, &attack, &g.inputs));
        }
        eval_rows(g, reports, &mut rows);
    }
    if let Some((a, b)) = delta.and_then(|(a, b)| Some((classes.get(a)?, classes.get(b)?))) {
        rows.extend(delta_rows(a, b));
    }
    let mut out = COLUMNS.join(",") + "\n";
    out.extend(rows.iter().map(Row::line));
    out
}

/// The per-class difference `a - b`, clean and robust, with the combined seed std.
fn delta_rows(a: &GroupClassAcc, b: &GroupClassAcc) -> Vec<Row> {
    let group = format!("{} minus {}", a.name, b.name);
    let method = format!("{} minus {}", a.method, b.method);
    let inputs = format!(
        "{} runs minus {} runs; std = sqrt(std_a^2 + std_b^2)",
        a.runs, b.runs
    );
    let mut out = Vec::new();
    for (metric, sa, sb) in [
        ("diff_class_clean", &a.clean, &b.clean),
        ("diff_class_robust", &a.robust, &b.robust),
    ] {
        let (mean, std) = class_delta(sa, sb);
        let n = (0..mean.len()).map(|c| sa.n[c].min(sb.n[c])).collect();
        let stats = ClassStats { mean, std, n };
        let attack = if metric.ends_with("clean") {
            "clean"
        } else {
            "robust"
        };
        out.extend(class_rows(
            [&group, &method, metric],
            &a.names,
            &stats,
            attack,
            &inputs,
        ));
    }
    out
}
