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
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tch::Device;

pub use checkpoint::{load, Loaded};
pub use corruption::{CorruptionSource, CIFAR_C_18};
pub use robust::RobustAttack;

use crate::train::{eval_record, TrainError};
use fairtat_core::config::{DatasetKind, EvalBatch, Precision};
use fairtat_core::runs::eval_report::{self, EvalReport, StageRecord};
use fairtat_core::runs::EvalRecord;

/// A named evaluation suite of `fairtat eval --suite`: the suites the dashboard queues
/// (`evals/<suite>-<model>`), one declaration for both.
pub use fairtat_core::runs::eval_key::EvalSuite as Suite;

/// The attacks `suite` runs, in order.
pub fn suite_attacks(suite: Suite) -> Vec<String> {
    let v: &[&str] = match suite {
        Suite::Standard => &["clean", "pgd-20", "autoattack", "square-5000"],
        Suite::Quick => &["clean", "pgd-20", "autoattack-quick"],
        Suite::Corruptions => &["clean"],
    };
    v.iter().map(|s| s.to_string()).collect()
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
    /// `auto` is sized once the checkpoint tells the model ([`EvalBatch::resolve`]).
    pub batch_size: EvalBatch,
    pub device: Device,
    /// The arithmetic of every forward (the run's `train.precision`).
    pub precision: Precision,
    /// Seed of every random start, restart and corruption.
    pub seed: u64,
    /// Corruptions: where from, which, which severities. `None` = no corruption evaluation
    /// (the `corruptions` suite sets a procedural source when none is given).
    pub corruptions: Option<CorruptionSource>,
    pub corruption_names: Vec<String>,
    pub severities: Vec<u8>,
}

/// What an evaluation runs, checked before anything is loaded.
struct Plan {
    attacks: Vec<RobustAttack>,
    /// Corruptions: where from, which, which severities (`None`: no corruption evaluation).
    corruptions: Option<(CorruptionSource, Vec<String>, Vec<u8>)>,
}

/// The attacks to run, in order: `clean` first, then the suite's, then the extra ones, each once.
fn attack_names(opts: &EvalOptions) -> Vec<String> {
    let mut names = vec!["clean".to_string()];
    if let Some(s) = opts.suite {
        names.extend(suite_attacks(s));
    }
    names.extend(opts.attacks.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

impl Plan {
    fn new(opts: &EvalOptions) -> Result<Self, TrainError> {
        let attacks = attack_names(opts)
            .iter()
            .map(|n| RobustAttack::parse(n, opts.eps, opts.alpha).map_err(TrainError::Invalid))
            .collect::<Result<_, _>>()?;
        let source = match (&opts.corruptions, opts.suite) {
            (Some(src), _) => Some(src.clone()),
            (None, Some(Suite::Corruptions)) => {
                Some(CorruptionSource::Procedural { seed: opts.seed })
            }
            (None, _) => None,
        };
        let names = match &source {
            Some(src) => corruption::resolve_names(src, &opts.corruption_names)?,
            None => vec![],
        };
        if let Some(s) = opts.severities.iter().find(|s| !(1..=5).contains(*s)) {
            return Err(TrainError::Invalid(format!(
                "--severity {s} is out of range; allowed: 1, 2, 3, 4, 5"
            )));
        }
        let severities = if opts.severities.is_empty() {
            vec![1, 2, 3, 4, 5]
        } else {
            opts.severities.clone()
        };
        Ok(Plan {
            attacks,
            corruptions: source.map(|src| (src, names, severities)),
        })
    }
}

/// Evaluate; `on_progress(stage, done, total)` as work completes. `stop` is checked before
/// every batch of every attack and corruption: [`TrainError::Stopped`] within one batch.
pub fn eval_checkpoint(
    opts: &EvalOptions,
    stop: &AtomicBool,
    mut on_progress: impl FnMut(&str, usize, usize),
) -> Result<EvalReport, TrainError> {
    let t0 = Instant::now();
    let plan = Plan::new(opts)?;
    let mut l = load(
        &opts.checkpoint,
        opts.dataset,
        opts.data_dir.as_ref(),
        opts.subset,
        opts.device,
    )?;
    l.model.set_precision(opts.precision);
    let on_gpu = opts.device.is_cuda();
    let batch = (opts.batch_size).resolve(l.info.arch, l.dataset, opts.precision, on_gpu);
    let progress = &mut |stage: &str, d, t| on_progress(stage, d, t);
    let sizes = (batch, opts.seed);
    let (evals, stages) = run_attacks(&l, &plan.attacks, sizes, stop, progress)?;
    let results = match &plan.corruptions {
        Some((src, names, severities)) => corruption::evaluate_corruptions(
            &l.model,
            &l.test,
            (src, names, severities),
            batch,
            stop,
            progress,
        )?,
        None => vec![],
    };
    Ok(EvalReport {
        checkpoint: opts.checkpoint.display().to_string(),
        arch: l.info.arch.as_str().into(),
        dataset: l.dataset.as_str().into(),
        epoch: l.info.epoch,
        model: l.info.kind.clone(),
        suite: opts.suite.map(|s| s.as_str().to_string()),
        eps: opts.eps,
        seed: opts.seed,
        batch_size: batch,
        images: l.test.len(),
        class_names: l.test.class_names.clone(),
        evals,
        autoattack: stages,
        corruption_summary: eval_report::summarize(&results),
        corruptions: results,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Run every attack on the loaded test set: a record each, and AutoAttack's per-stage
/// breakdown (a stand-alone Square or APGD run has its own row instead).
fn run_attacks(
    l: &Loaded,
    attacks: &[RobustAttack],
    sizes: (usize, u64),
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<(Vec<EvalRecord>, Vec<StageRecord>), TrainError> {
    let mut evals = vec![];
    let mut stages = vec![];
    for a in attacks {
        let name = a.name();
        let out = robust::run(&l.model, &l.test, a, sizes, stop, on_progress)?;
        evals.push(eval_record("test", &name, &l.info.kind, &out.confusion));
        if name.starts_with("autoattack") {
            stages = out.stages;
        }
    }
    Ok((evals, stages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(suite: Option<Suite>, attacks: &[&str], severities: Vec<u8>) -> EvalOptions {
        EvalOptions {
            checkpoint: PathBuf::from("none.safetensors"),
            dataset: None,
            data_dir: None,
            attacks: attacks.iter().map(|s| s.to_string()).collect(),
            suite,
            eps: 8.0 / 255.0,
            alpha: 2.0 / 255.0,
            subset: 0,
            batch_size: EvalBatch::Fixed(10),
            device: Device::Cpu,
            precision: Precision::Fp32,
            seed: 0,
            corruptions: None,
            corruption_names: vec![],
            severities,
        }
    }

    #[test]
    fn clean_comes_first_and_every_attack_runs_once() {
        let o = opts(Some(Suite::Quick), &["pgd-20", "fgsm", "clean"], vec![]);
        let names = attack_names(&o);
        assert_eq!(names, ["clean", "pgd-20", "autoattack-quick", "fgsm"]);
    }

    #[test]
    fn the_plan_checks_attacks_and_severities_and_the_corruption_suite_has_a_source() {
        let bad = Plan::new(&opts(None, &["pgd-x"], vec![])).err().unwrap();
        assert!(bad.to_string().contains("pgd-x"), "{bad}");
        let bad = Plan::new(&opts(None, &[], vec![6])).err().unwrap();
        assert!(bad.to_string().contains("--severity 6"), "{bad}");
        let plan = Plan::new(&opts(Some(Suite::Corruptions), &[], vec![])).unwrap();
        let (_, names, severities) = plan.corruptions.expect("a procedural source");
        assert!(!names.is_empty());
        assert_eq!(severities, vec![1, 2, 3, 4, 5]);
        assert!(Plan::new(&opts(None, &[], vec![]))
            .unwrap()
            .corruptions
            .is_none());
    }
}
