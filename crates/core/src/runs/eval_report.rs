//! The evaluation report format: what `fairtat eval` writes into its output directory (for a
//! dashboard evaluation job, `runs/<id>/evals/<suite>-<checkpoint>/`). Plain data, no tch, so the
//! server reads it without touching tensors.
//!
//! Files:
//! - `eval.json`: the whole [`EvalReport`] (what the dashboard reads);
//! - `summary.csv`: one row per attack: overall, worst class, worst 10%, then per-class accuracy;
//! - `autoattack.csv`: robust accuracy after each AutoAttack stage, overall and per class;
//! - `corruptions.csv`: one row per (corruption, severity), severity `all` = the five pooled;
//! - `confusion_<attack>.csv`: the confusion matrix of every attack;
//! - `progress.json` while it runs, `error.txt` if it failed.
//!
//! Files are written atomically (temporary name, then rename), as the run reports are.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::events::EvalRecord;
use super::reports::{confusion_csv, csv_field, file_safe, num, write_atomic};
use crate::fairness::ClassMetrics;

/// Everything one `fairtat eval` measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub checkpoint: String,
    pub arch: String,
    pub dataset: String,
    pub epoch: usize,
    /// `live`, `ema` or `fawa`: which weights the checkpoint holds.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub suite: Option<String>,
    pub eps: f64,
    pub seed: u64,
    /// Images per batch (what `--batch-size`/`eval.batch_size`, `auto` included, came to;
    /// 0 in reports of older builds). Random starts and restarts are drawn per batch, so the
    /// batch is part of what reproduces a robust accuracy.
    #[serde(default)]
    pub batch_size: usize,
    pub images: usize,
    pub class_names: Vec<String>,
    pub evals: Vec<EvalRecord>,
    /// AutoAttack stages: robust accuracy, class by class, after each attack of the ensemble.
    #[serde(default)]
    pub autoattack: Vec<StageRecord>,
    #[serde(default)]
    pub corruptions: Vec<CorruptionResult>,
    #[serde(default)]
    pub corruption_summary: Vec<CorruptionSummary>,
    pub seconds: f64,
}

/// Robust accuracy after one stage of an attack ensemble (AutoAttack): points broken by this
/// stage and the class-wise metrics of the points' predictions so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub broken: u64,
    pub seconds: f64,
    #[serde(flatten)]
    pub metrics: ClassMetrics,
}

/// One (corruption, severity) evaluation; `severity == 0` pools the five severities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorruptionResult {
    pub corruption: String,
    pub severity: u8,
    pub confusion: Vec<Vec<u64>>,
    #[serde(flatten)]
    pub metrics: ClassMetrics,
}

/// Table-3 style summary: per corruption, overall and minimum class accuracy of the pooled row
/// and the mean over severities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorruptionSummary {
    pub corruption: String,
    pub overall: f64,
    pub worst: f64,
    pub worst10: f64,
    /// Mean over the evaluated severities of the per-severity minimum class accuracy.
    pub mean_worst_over_severities: f64,
}

/// One [`CorruptionSummary`] per corruption that has a pooled (severity 0) row.
pub fn summarize(results: &[CorruptionResult]) -> Vec<CorruptionSummary> {
    let mut out: Vec<CorruptionSummary> = Vec::new();
    for pooled in results.iter().filter(|r| r.severity == 0) {
        let per: Vec<f64> = results
            .iter()
            .filter(|r| r.corruption == pooled.corruption && r.severity > 0)
            .map(|r| r.metrics.worst)
            .collect();
        out.push(CorruptionSummary {
            corruption: pooled.corruption.clone(),
            overall: pooled.metrics.overall,
            worst: pooled.metrics.worst,
            worst10: pooled.metrics.worst10,
            mean_worst_over_severities: if per.is_empty() {
                0.0
            } else {
                per.iter().sum::<f64>() / per.len() as f64
            },
        });
    }
    out
}

/// Progress of a running evaluation (`progress.json`, rewritten as work completes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalProgress {
    pub stage: String,
    pub done: usize,
    pub total: usize,
    /// Unix seconds.
    pub updated_at: f64,
}

/// Write every file of `report` into `dir` (created if missing).
pub fn write(dir: &Path, report: &EvalReport) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("eval.json"), &json)?;
    let names = &report.class_names;
    let rows = report
        .evals
        .iter()
        .map(|e| (vec![e.attack.clone()], &e.metrics));
    write_atomic(&dir.join("summary.csv"), &table(&["attack"], names, rows))?;
    if !report.autoattack.is_empty() {
        let rows = report
            .autoattack
            .iter()
            .map(|s| (vec![s.stage.clone(), s.broken.to_string()], &s.metrics));
        write_atomic(
            &dir.join("autoattack.csv"),
            &table(&["stage", "broken"], names, rows),
        )?;
    }
    if !report.corruptions.is_empty() {
        let rows = report.corruptions.iter().map(|c| {
            let sev = match c.severity {
                0 => "all".to_string(),
                s => s.to_string(),
            };
            (vec![c.corruption.clone(), sev], &c.metrics)
        });
        write_atomic(
            &dir.join("corruptions.csv"),
            &table(&["corruption", "severity"], names, rows),
        )?;
    }
    for e in &report.evals {
        write_atomic(
            &dir.join(format!("confusion_{}.csv", file_safe(&e.attack))),
            &confusion_csv(names, &e.confusion),
        )?;
    }
    Ok(())
}

/// Key columns, then overall/worst/worst10 and one accuracy column per class.
fn table<'a>(
    keys: &[&str],
    class_names: &[String],
    rows: impl Iterator<Item = (Vec<String>, &'a ClassMetrics)>,
) -> String {
    let mut header: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    header.extend(["overall", "worst", "worst10"].map(String::from));
    header.extend(class_names.iter().map(|n| format!("acc_{n}")));
    let mut out = line(&header);
    for (mut fields, m) in rows {
        fields.extend([num(m.overall), num(m.worst), num(m.worst10)]);
        fields.extend(m.class_acc.iter().map(|v| num(*v)));
        out.push_str(&line(&fields));
    }
    out
}

fn line(fields: &[String]) -> String {
    let mut s = fields
        .iter()
        .map(|f| csv_field(f).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}
