//! Adversarial evaluation over a whole test set, batch by batch: PGD-k/FGSM, the AutoAttack
//! ensemble (standard or quick) and its single attacks (APGD-CE, APGD-T, FAB-T, Square-n).
//!
//! AutoAttack-type attacks return a confusion matrix of the final predictions and, per stage,
//! the class-wise robust accuracy after that stage, the number of points it broke and the time
//! it took (summed over batches).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tch::Device;

use crate::attacks::{AaStage, AutoAttack, AutoAttackConfig};
use crate::data::{batch_indices, make_batch, Dataset};
use crate::models::Model;
use crate::train::{check_stop, evaluate, EvalAttack, TrainError};
use fairtat_core::fairness::ConfusionMatrix;
use fairtat_core::runs::eval_report::StageRecord;

/// One evaluation attack, parsed from its name.
#[derive(Clone, Debug)]
pub enum RobustAttack {
    Clean,
    /// `fgsm`, `pgd-<k>` (random start, step alpha).
    Pgd(EvalAttack),
    /// `autoattack`, `autoattack-quick`, `apgd-ce`, `apgd-t`, `fab-t`, `square-<queries>`:
    /// the AutoAttack driver with these stages (the seed is set when it runs).
    Ensemble {
        name: String,
        eps: f64,
        stages: Vec<AaStage>,
    },
}

/// Accepted attack names, for error messages.
pub const ATTACK_NAMES: &str =
    "clean, fgsm, pgd-<k>, apgd-ce, apgd-t, fab-t, square-<queries>, autoattack, autoattack-quick";

impl RobustAttack {
    pub fn parse(s: &str, eps: f64, alpha: f64) -> Result<Self, String> {
        let bad = || format!("attack {s:?} is not known; allowed: {ATTACK_NAMES}");
        if let Some(a) = EvalAttack::parse(s, eps, alpha) {
            return Ok(match a {
                None => RobustAttack::Clean,
                Some(a) => RobustAttack::Pgd(a),
            });
        }
        let standard = AutoAttackConfig::standard(eps, 0);
        let stages = match s {
            "autoattack" => standard.stages,
            "autoattack-quick" => AutoAttackConfig::quick(eps, 0).stages,
            "apgd-ce" | "apgd-t" | "fab-t" => standard.only(&[s]).map_err(|_| bad())?.stages,
            _ => {
                let q = s
                    .strip_prefix("square-")
                    .and_then(|q| q.parse::<usize>().ok())
                    .filter(|q| (1..=100_000).contains(q))
                    .ok_or_else(bad)?;
                vec![AaStage::Square {
                    n_queries: q,
                    n_restarts: 1,
                }]
            }
        };
        Ok(RobustAttack::Ensemble {
            name: s.to_string(),
            eps,
            stages,
        })
    }

    pub fn name(&self) -> String {
        match self {
            RobustAttack::Clean => "clean".into(),
            RobustAttack::Pgd(a) => a.name.clone(),
            RobustAttack::Ensemble { name, .. } => name.clone(),
        }
    }
}

/// What one attack measured on the whole set.
pub struct RobustOutcome {
    pub confusion: ConfusionMatrix,
    /// Per stage of an ensemble (first `clean`); empty for clean and PGD.
    pub stages: Vec<StageRecord>,
}

/// Run `attack` over `ds` in batches; `on_progress(label, done_images, total_images)`;
/// [`TrainError::Stopped`] when `stop` is set before a batch.
pub fn run(
    model: &Model,
    ds: &Dataset,
    attack: &RobustAttack,
    (batch_size, seed): (usize, u64),
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<RobustOutcome, TrainError> {
    let name = attack.name();
    match attack {
        RobustAttack::Clean | RobustAttack::Pgd(_) => {
            let pgd = match attack {
                RobustAttack::Pgd(a) => Some(a),
                _ => None,
            };
            tch::manual_seed(seed as i64);
            let progress = |d, t| on_progress(&name, d, t);
            let confusion = evaluate(model, ds, pgd, batch_size, stop, progress)?;
            Ok(RobustOutcome {
                confusion,
                stages: vec![],
            })
        }
        RobustAttack::Ensemble { eps, stages, .. } => {
            let aa = AutoAttack::new(AutoAttackConfig {
                eps: *eps,
                stages: stages.clone(),
                seed,
            });
            ensemble(model, ds, (&aa, &name), batch_size, stop, on_progress)
        }
    }
}

fn ensemble(
    model: &Model,
    ds: &Dataset,
    (aa, name): (&AutoAttack, &str),
    batch_size: usize,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<RobustOutcome, TrainError> {
    let device: Device = model.device();
    let mut total: Option<crate::attacks::AaResult> = None;
    let mut secs: HashMap<String, f64> = HashMap::new();
    let mut done = 0;
    let n = ds.len();
    on_progress(name, 0, n);
    for idx in batch_indices(n, batch_size, None) {
        check_stop(stop)?;
        let (x, y) = make_batch(ds, &idx, None);
        let (x, y) = (x.to_device(device), y.to_device(device));
        // Time each stage: the driver reports a stage's start; the next report ends it.
        let mut current: Option<(String, Instant)> = None;
        let mut timer = |stage: &str| {
            if let Some((s, t)) = current.take() {
                *secs.entry(s).or_default() += t.elapsed().as_secs_f64();
            }
            current = Some((stage.to_string(), Instant::now()));
        };
        // One precision scope over the batch's attacks (the weights are fixed).
        let _scope = model.precision_scope();
        let result = aa
            .run(model, &x, &y, |stage, _, _| {
                timer(stage);
                on_progress(&format!("{name} {stage}"), done, n);
            })
            .map_err(|e| TrainError::Invalid(format!("{name}: {e}")))?;
        timer("done");
        done += idx.len();
        on_progress(name, done, n);
        let mut result = result;
        result.x_adv = None;
        match &mut total {
            Some(t) => t.append(result),
            None => total = Some(result),
        }
    }
    let k = ds.num_classes();
    let Some(total) = total else {
        return Ok(RobustOutcome {
            confusion: ConfusionMatrix::new(k),
            stages: vec![],
        });
    };
    let last = total
        .stages
        .last()
        .cloned()
        .unwrap_or_else(|| "clean".into());
    let confusion = total
        .confusion_after(&last)
        .unwrap_or_else(|| ConfusionMatrix::new(k));
    let stages = total
        .per_stage_metrics()
        .into_iter()
        .map(|m| StageRecord {
            broken: total
                .broken_by
                .iter()
                .filter(|b| b.as_deref() == Some(m.stage.as_str()))
                .count() as u64,
            seconds: secs.get(&m.stage).copied().unwrap_or(0.0),
            stage: m.stage,
            metrics: m.metrics,
        })
        .collect();
    Ok(RobustOutcome { confusion, stages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_names_parse_to_the_reference_budgets() {
        let eps = 8.0 / 255.0;
        let stages = |s: &str| match RobustAttack::parse(s, eps, eps / 4.0).unwrap() {
            RobustAttack::Ensemble { stages, .. } => {
                stages.iter().map(|s| s.name()).collect::<Vec<_>>()
            }
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            stages("autoattack"),
            ["apgd-ce", "apgd-t", "fab-t", "square"]
        );
        assert_eq!(stages("apgd-t"), ["apgd-t"]);
        match RobustAttack::parse("autoattack", eps, 0.0).unwrap() {
            RobustAttack::Ensemble { stages, .. } => {
                assert!(stages.contains(&AaStage::ApgdCe {
                    n_iter: 100,
                    n_restarts: 1
                }));
                assert!(stages.contains(&AaStage::ApgdT {
                    n_iter: 100,
                    n_restarts: 1,
                    n_targets: 9
                }));
                assert!(stages.contains(&AaStage::FabT {
                    n_iter: 100,
                    n_restarts: 1,
                    n_targets: 9
                }));
                assert!(stages.contains(&AaStage::Square {
                    n_queries: 5000,
                    n_restarts: 1
                }));
            }
            _ => unreachable!(),
        }
        match RobustAttack::parse("square-300", eps, 0.0).unwrap() {
            RobustAttack::Ensemble { stages, .. } => {
                assert_eq!(
                    stages,
                    [AaStage::Square {
                        n_queries: 300,
                        n_restarts: 1
                    }]
                )
            }
            _ => unreachable!(),
        }
        assert!(matches!(
            RobustAttack::parse("clean", eps, 0.0),
            Ok(RobustAttack::Clean)
        ));
        assert!(
            matches!(RobustAttack::parse("pgd-7", eps, 0.0), Ok(RobustAttack::Pgd(a)) if a.steps == 7)
        );
        for bad in ["square-0", "square-x", "apgd", "pgd-0", "aa"] {
            let e = RobustAttack::parse(bad, eps, 0.0).unwrap_err();
            assert!(e.contains(bad) && e.contains("autoattack-quick"), "{e}");
        }
    }
}
