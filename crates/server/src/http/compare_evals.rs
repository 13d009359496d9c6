//! Tables 2-4 of the compare page from the runs' evaluation reports (`evals/*/eval.json`):
//! - the paper's Table 2 layout: AutoAttack and Square, overall and worst class, per run;
//! - the paper's Tables 3/4 layout: minimum class accuracy per corruption (rows) and run
//!   (columns), from the five severities pooled.
//!
//! A quick AutoAttack (a reduced ensemble) and the standard one, or the `last` and the `ema`
//! checkpoint, are different measurements: a column that mixes them compares unlike numbers.
//! So every table holds exactly one [`EvalLabel`] (suite and checkpoint kind) and says it in
//! its title; runs evaluated under several labels appear in several tables, and
//! [`mix_note`] says so in words when a page has more than one table of a kind.

use std::collections::BTreeMap;

use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::eval_report::EvalReport;
use fairtat_core::runs::provenance::Provenance;
use fairtat_core::runs::safe_fs::{self, EntryKind};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{CheckpointKind, RunDir};

/// A run with its evaluation reports, each with its `evals/` directory name.
pub type RunReports = (RunSummary, Vec<(String, EvalReport)>);

/// Every evaluation report of a run directory (`evals/*/eval.json`), newest directory last.
pub fn eval_reports(dir: &RunDir) -> Vec<(String, EvalReport)> {
    let Ok(entries) = safe_fs::list_dir(dir, "evals") else {
        return vec![];
    };
    // Listed sorted by name; a linked or unreadable report is left out (`safe_fs`).
    entries
        .into_iter()
        .filter(|(_, k)| *k == EntryKind::Dir)
        .filter_map(|(name, _)| {
            let bytes = safe_fs::read(dir, format!("evals/{name}/eval.json"), safe_fs::TEXT_CAP);
            Some((name, serde_json::from_slice(&bytes.ok()?).ok()?))
        })
        .collect()
}

/// Which suite and which checkpoint kind an evaluation used: one table's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvalLabel {
    /// `quick`, `standard`, `corruptions`, or `custom` for a hand-picked attack list.
    pub suite: String,
    /// `last`, `ema`, `fawa`, `best-worst-robust` (`unknown` for reports that name none).
    pub checkpoint: String,
}

impl EvalLabel {
    /// From the report (what it records), else from its directory name (older reports).
    pub fn of(dir_name: &str, r: &EvalReport) -> EvalLabel {
        let key = EvalKey::from_dir_name(dir_name);
        let suite = r
            .suite
            .clone()
            .or_else(|| key.map(|k| k.suite.as_str().to_string()))
            .unwrap_or_else(|| "custom".into());
        EvalLabel {
            suite,
            checkpoint: checkpoint_kind(dir_name, r)
                .map_or("unknown", |k| k.as_str())
                .into(),
        }
    }

    /// `standard-last`: usable in element ids.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.suite, self.checkpoint)
    }
}

/// `standard suite, last checkpoint`.
impl std::fmt::Display for EvalLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} suite, {} checkpoint", self.suite, self.checkpoint)
    }
}

/// The checkpoint kind a report names (`live` is the last model), else its directory's.
fn checkpoint_kind(dir_name: &str, r: &EvalReport) -> Option<CheckpointKind> {
    let named = match r.model.as_str() {
        "live" => Some(CheckpointKind::Last),
        m => CheckpointKind::parse(m),
    };
    named.or_else(|| EvalKey::from_dir_name(dir_name).map(|k| k.model))
}

/// The checkpoint an evaluation loaded: its kind, the epoch the checkpoint recorded, and for
/// `best-worst-robust` the validation figure the run's events say chose it.
pub fn report_provenance(s: &RunSummary, dir_name: &str, r: &EvalReport) -> Provenance {
    let kind = checkpoint_kind(dir_name, r);
    let mut p = Provenance::new(kind, Some(r.epoch));
    if kind == Some(CheckpointKind::BestWorstRobust) {
        p.val_worst_robust = s
            .best
            .as_ref()
            .filter(|b| b.epoch == r.epoch)
            .and_then(|b| b.val_worst_robust);
    }
    p
}

/// The newest report of each label of a run that `keep` accepts, in label order.
pub fn newest_by_label(
    reports: &[(String, EvalReport)],
    keep: impl Fn(&EvalReport) -> bool,
) -> BTreeMap<EvalLabel, (&str, &EvalReport)> {
    let mut out = BTreeMap::new();
    for (dir_name, r) in reports.iter().filter(|(_, r)| keep(r)) {
        out.insert(EvalLabel::of(dir_name, r), (dir_name.as_str(), r));
    }
    out
}

/// The attack of a report whose name starts with `prefix` (`autoattack`, `autoattack-quick`).
fn attack_of<'a>(r: &'a EvalReport, prefix: &str) -> Option<&'a str> {
    r.evals
        .iter()
        .rev()
        .find(|e| e.attack.starts_with(prefix))
        .map(|e| e.attack.as_str())
}

/// One row of a Table 2.
pub struct RobustRow {
    pub run_id: String,
    pub label: String,
    pub aa_overall: String,
    pub aa_worst: String,
    pub square_overall: String,
    pub square_worst: String,
    /// Test images the evaluation used.
    pub images: usize,
    /// The checkpoint and its epoch (`last (epoch 4)`).
    pub checkpoint: String,
}

/// One Table 2: the runs evaluated with one suite on one checkpoint kind, and the exact
/// attacks of its columns (`autoattack-quick` is not `autoattack`).
pub struct RobustTable {
    pub label: EvalLabel,
    pub aa: String,
    pub square: String,
    pub rows: Vec<RobustRow>,
}

fn cell(r: &EvalReport, attack: &str, worst_of: bool) -> String {
    r.evals
        .iter()
        .rev()
        .find(|e| e.attack == attack)
        .map(|e| {
            let m = &e.metrics;
            let v = if worst_of { m.paper_worst() } else { m.overall };
            format!("{:.1}", 100.0 * v)
        })
        .unwrap_or_else(|| "–".into())
}

/// Table 2s: one per (suite, checkpoint kind, attacks), a row per run evaluated so (its
/// newest such report).
pub fn robust_tables(runs: &[RunReports]) -> Vec<RobustTable> {
    let mut tables: BTreeMap<(EvalLabel, String, String), Vec<RobustRow>> = BTreeMap::new();
    for (s, reports) in runs {
        let has = |r: &EvalReport| {
            attack_of(r, "autoattack").is_some() || attack_of(r, "square").is_some()
        };
        for (label, (dir_name, r)) in newest_by_label(reports, has) {
            let aa = attack_of(r, "autoattack")
                .unwrap_or("autoattack")
                .to_string();
            let square = attack_of(r, "square").unwrap_or("square").to_string();
            let row = RobustRow {
                run_id: s.id.clone(),
                label: s.name.clone(),
                aa_overall: cell(r, &aa, false),
                aa_worst: cell(r, &aa, true),
                square_overall: cell(r, &square, false),
                square_worst: cell(r, &square, true),
                images: r.images,
                checkpoint: report_provenance(s, dir_name, r).to_string(),
            };
            tables.entry((label, aa, square)).or_default().push(row);
        }
    }
    tables
        .into_iter()
        .map(|((label, aa, square), rows)| RobustTable {
            label,
            aa,
            square,
            rows,
        })
        .collect()
}

/// One Tables 3/4: a column per run evaluated with one suite on one checkpoint kind, a row
/// per corruption (minimum class accuracy, pooled severities); a first `checkpoint` row names
/// each column's checkpoint and epoch.
pub struct CorruptionTable {
    pub label: EvalLabel,
    pub cols: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

/// Tables 3/4, one per (suite, checkpoint kind) that evaluated corruptions.
pub fn corruption_tables(runs: &[RunReports]) -> Vec<CorruptionTable> {
    let mut by: BTreeMap<EvalLabel, Vec<(String, String, &EvalReport)>> = BTreeMap::new();
    for (s, reports) in runs {
        let has = |r: &EvalReport| !r.corruption_summary.is_empty();
        for (label, (dir_name, r)) in newest_by_label(reports, has) {
            let prov = report_provenance(s, dir_name, r).to_string();
            by.entry(label).or_default().push((s.name.clone(), prov, r));
        }
    }
    by.into_iter()
        .map(|(label, cols)| corruption_table(label, &cols))
        .collect()
}

fn corruption_table(label: EvalLabel, cols: &[(String, String, &EvalReport)]) -> CorruptionTable {
    let mut names: Vec<&str> = Vec::new();
    for c in cols.iter().flat_map(|(_, _, r)| &r.corruption_summary) {
        if !names.contains(&c.corruption.as_str()) {
            names.push(&c.corruption);
        }
    }
    let checkpoints = cols.iter().map(|(_, p, _)| p.clone()).collect();
    let mut rows = vec![("checkpoint".to_string(), checkpoints)];
    rows.extend(names.into_iter().map(|n| {
        let vals = cols
            .iter()
            .map(|(_, _, r)| {
                r.corruption_summary
                    .iter()
                    .find(|c| c.corruption == n)
                    .map_or_else(|| "–".into(), |c| format!("{:.2}", c.worst))
            })
            .collect();
        (n.to_string(), vals)
    }));
    CorruptionTable {
        label,
        cols: cols.iter().map(|(n, _, _)| n.clone()).collect(),
        rows,
    }
}

/// When tables of one kind hold different labels, the sentence that says why they are apart:
/// `not comparable: quick suite, last checkpoint (a-s0); standard suite, last checkpoint
/// (b-s0) ...`; empty for zero or one label.
pub fn mix_note<'a>(tables: impl Iterator<Item = (&'a EvalLabel, Vec<&'a str>)>) -> String {
    let parts: Vec<String> = tables
        .map(|(label, runs)| format!("{label} ({})", runs.join(", ")))
        .collect();
    if parts.len() < 2 {
        return String::new();
    }
    format!(
        "Mixed evaluations, not comparable: {}. Each suite and checkpoint has its own table; \
         no column mixes them.",
        parts.join("; ")
    )
}
