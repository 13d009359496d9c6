//! Robustness evaluation of a trained model, class by class: `fairtat eval` and the dashboard's
//! evaluation jobs (issue 5).
//!
//! An evaluation is a list of attacks (`clean`, `fgsm`, `pgd-<k>`, `apgd-ce`, `apgd-t`, `fab-t`,
//! `square-<queries>`, `autoattack`, `autoattack-quick`) plus, optionally, common corruptions.
//! The named suites expand to fixed lists:
//! - `standard`: clean, PGD-20, the standard AutoAttack (with its per-stage, per-class
//!   breakdown) and Square-5000 alone (the paper's Table 2 columns);
//! - `quick`: clean, PGD-20 and a cheaper AutoAttack (see [`crate::attacks`]);
//! - `corruptions`: clean and every corruption at the five severities (Tables 3 and 4).
//!
//! Everything here is synchronous tch code; the server starts it as a child process.

mod checkpoint;
pub mod corruption;
mod robust;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

pub use checkpoint::{load, Loaded};
pub use corruption::{CorruptionSource, CIFAR_C_18};
pub use robust::RobustAttack;

use fairtat_core::config::DatasetKind;
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::runs::eval_report::{self, EvalReport};
use fairtat_core::runs::EvalRecord;
use crate::train::TrainError;

/// A named evaluation suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    Standard,
    Quick,
    Corruptions,
}

impl Suite {
    pub const NAMES: [&'static str; 3] = ["standard", "quick", "corruptions"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Suite::Standard => "standard",
            Suite::Quick => "quick",
            Suite::Corruptions => "corruptions",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Suite::Standard),
            "quick" => Some(Suite::Quick),
            "corruptions" => Some(Suite::Corruptions),
            _ => None,
        }
    }

    /// The attacks the suite runs, in order.
    pub fn attacks(&self) -> Vec<String> {
        let v: &[&str] = match self {
            Suite::Standard => &["clean", "pgd-20", "autoattack", "square-5000"],
            Suite::Quick => &["clean", "pgd-20", "autoattack-quick"],
            Suite::Corruptions => &["clean"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }
}

pub struct EvalOptions {
    pub checkpoint: PathBuf,
    /// Overrides the dataset recorded in the checkpoint.
    pub dataset: Option<DatasetKind>,
    pub data_dir: Option<PathBuf>,
    /// Attack names (see the module docs); `clean` is always run first.
    pub attacks: Vec<String>,
    pub suite: Option<Suite>,
    pub eps: f64,
    /// PGD step size.
    pub alpha: f64,
    /// Class-balanced test subset; 0 = all.
    pub subset: usize,
    pub batch_size: usize,
    pub device: Device,
    /// Seed of every random start, restart and corruption.
    pub seed: u64,
    /// Corruptions: where from, which, which severities. `None` = no corruption evaluation
    /// (the `corruptions` suite sets a procedural source when none is given).
    pub corruptions: Option<CorruptionSource>,
    pub corruption_names: Vec<String>,
    pub severities: Vec<u8>,
}

/// Evaluate; `on_progress(stage, done, total)` as work completes.
pub fn eval_checkpoint(
    opts: &EvalOptions,
    mut on_progress: impl FnMut(&str, usize, usize),
) -> Result<EvalReport, TrainError> {
    let t0 = Instant::now();
    let mut names = vec!["clean".to_string()];
    if let Some(s) = opts.suite {
        names.extend(s.attacks());
    }
    names.extend(opts.attacks.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    let attacks: Vec<RobustAttack> = names
        .iter()
        .map(|n| RobustAttack::parse(n, opts.eps, opts.alpha).map_err(TrainError::Invalid))
        .collect::<Result<_, _>>()?;
    let corruptions = match (&opts.corruptions, opts.suite) {
        (Some(src), _) => Some(src.clone()),
        (None, Some(Suite::Corruptions)) => Some(CorruptionSource::Procedural { seed: opts.seed }),
        (None, _) => None,
    };
    let corruption_names = match &corruptions {
        Some(src) => corruption::resolve_names(src, &opts.corruption_names)?,
        None => vec![],
    };
    if let Some(s) = opts.severities.iter().find(|s| !(1..=5).contains(*s)) {
        return Err(TrainError::Invalid(format!(
            "--severity {s} is out of range; allowed: 1, 2, 3, 4, 5"
        )));
    }
    let l = load(
        &opts.checkpoint,
        opts.dataset,
        opts.data_dir.as_ref(),
        opts.subset,
        opts.device,
    )?;
    let mut evals = vec![];
    let mut stages = vec![];
    for a in &attacks {
        let name = a.name();
        // The breakdown is AutoAttack's (a stand-alone Square or APGD run has its own row).
        let is_autoattack = name.starts_with("autoattack");
        let out = robust::run(
            &l.model,
            &l.test,
            a,
            opts.batch_size.max(1),
            opts.seed,
            &mut |stage: &str, d, t| on_progress(stage, d, t),
        )?;
        evals.push(EvalRecord {
            split: "test".into(),
            attack: name,
            model: l.info.kind.clone(),
            confusion: out.confusion.rows(),
            metrics: ClassMetrics::from_confusion(&out.confusion),
        });
        if is_autoattack {
            stages = out.stages;
        }
    }
    let mut results = vec![];
    if let Some(src) = &corruptions {
        let sev = if opts.severities.is_empty() {
            vec![1, 2, 3, 4, 5]
        } else {
            opts.severities.clone()
        };
        results = corruption::evaluate_corruptions(
            &l.model,
            &l.test,
            src,
            &corruption_names,
            &sev,
            opts.batch_size.max(1),
            &mut |s: &str, d, t| on_progress(s, d, t),
        )?;
    }
    Ok(EvalReport {
        checkpoint: opts.checkpoint.display().to_string(),
        arch: l.info.arch.as_str().into(),
        dataset: l.dataset.as_str().into(),
        epoch: l.info.epoch,
        model: l.info.kind.clone(),
        suite: opts.suite.map(|s| s.as_str().to_string()),
        eps: opts.eps,
        seed: opts.seed,
        images: l.test.len(),
        class_names: l.test.class_names.clone(),
        evals,
        autoattack: stages,
        corruption_summary: eval_report::summarize(&results),
        corruptions: results,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
