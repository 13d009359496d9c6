//! Training methods behind one trait. Adding a method is one file plus a line in [`build`].
//!
//! A method decides, per batch, which adversarial examples to make and which loss to minimise;
//! the loop (`crate::train`) owns the optimiser, the schedule, the bookkeeping and the events.
//! Class-wise statistics the methods calibrate from (C_FPS, r_k) come from the previous epoch's
//! training adversarial predictions, which the loop collects from [`StepOutput::logits`]:
//! no extra forward pass (algorithms.md §1.3, §9). Methods that need the validation split (WAT's
//! Hedge costs, FRL's constraint violations) get it in [`Method::prepare_epoch`]; FAWA is the
//! loop's (`crate::train::fawa`) and applies to every method.
//!
//! Files: `pgd_at` (PGD-AT, + CCM), `fair_tat` (FAIR-TAT), `trades` (TRADES, CFA and their
//! FAIR-TAT combinations; CCR), `fat` (FAT, FAIR-TAT + FAT), `wat` (WAT), `bat` (BAT), `frl` +
//! `frl_rule` (FRL-RW, FRL-RWRM); shared: `kl` (TRADES loss and KL attack), `calibration` +
//! `calibrated` (CCM/CCR/C_FPS per epoch), `sampler` (target draws).

mod bat;
mod calibrated;
pub mod calibration;
mod fair_tat;
mod fat;
mod frl;
pub mod frl_rule;
pub mod kl;
mod pgd_at;
pub mod sampler;
mod trades;
mod wat;

pub use bat::{early_stopped_kl, kl_to_uniform, Bat, KlStop};
pub use fair_tat::FairTat;
pub use fat::{early_stopped_pgd, EarlyStop, Fat};
pub use frl::{clean_and_boundary_errors, Frl};
pub use pgd_at::PgdAt;
pub use trades::{class_trades_weights, trades_adversarial, Trades};
pub use wat::{hedge_weights, validation_costs, Wat};

use std::collections::BTreeMap;

use tch::Tensor;

use crate::attacks::{per_sample_eps, pgd, PgdConfig};
use fairtat_core::config::{AttackSpec, BnMode, MethodKind, RunSpec};
use crate::data::Dataset;
use fairtat_core::fairness::ClassMetrics;
use crate::models::Model;
use fairtat_core::util::Rng;

/// One training batch on the model's device, with the labels also on the host for sampling.
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub labels: Vec<i64>,
}

/// What a method hands back to the loop for one batch.
pub struct StepOutput {
    /// Scalar loss to minimise (carries the graph).
    pub loss: Tensor,
    /// Logits of the forward pass the loss used, on the training adversarial examples.
    pub logits: Tensor,
    /// Targets drawn for this batch (targeted methods).
    pub targets: Option<Vec<i64>>,
}

/// What a method may look at before an epoch's training: the model as the previous epoch left
/// it and the validation split (WAT's Hedge costs, FRL's constraint violations).
pub struct EpochCtx<'a> {
    /// The epoch about to be trained (0-based).
    pub epoch: usize,
    pub model: &'a Model,
    pub val: &'a Dataset,
    /// Batch size for passes over `val` (the evaluation batch size).
    pub batch_size: usize,
}

/// A training method.
pub trait Method {
    fn name(&self) -> &'static str;
    /// Before epoch `ctx.epoch`'s first batch, with the model and the validation split; called
    /// once per epoch, not again when a run resumes in the middle of that epoch (the state it
    /// computes is restored instead). The loop seeds torch's generator before the call.
    fn prepare_epoch(&mut self, _ctx: &EpochCtx) -> Result<(), tch::TchError> {
        Ok(())
    }
    /// Prepare epoch `epoch` (0-based) from the previous epoch's training adversarial metrics.
    fn begin_epoch(&mut self, epoch: usize, prev_train: Option<&ClassMetrics>);
    /// Per-class training epsilon in force this epoch.
    fn class_eps(&self) -> &[f64];
    /// Target-sampling distribution in force this epoch (targeted methods).
    fn target_probs(&self) -> Option<&[f64]> {
        None
    }
    /// Build the adversarial batch and the loss.
    fn step(
        &mut self,
        model: &Model,
        batch: &Batch,
        rng: &mut Rng,
    ) -> Result<StepOutput, tch::TchError>;
    /// Called after the optimiser step.
    fn after_step(&mut self, _model: &Model, _batch: &Batch) {}
    /// Method-specific class-wise state to record per epoch.
    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::new()
    }
    /// Cross-epoch state a resumed run needs (saved in `checkpoints/state.json`); state that
    /// [`Method::begin_epoch`] rebuilds from the previous epoch's metrics need not be here.
    fn resume_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::new()
    }
    /// Restore what [`Method::resume_state`] saved (missing keys keep their initial values).
    fn restore_state(&mut self, _state: &BTreeMap<String, Vec<f64>>) {}
}

/// The method a spec asks for.
pub fn build(spec: &RunSpec) -> Box<dyn Method> {
    match spec.method.name {
        MethodKind::PgdAt => Box::new(PgdAt::new(spec)),
        MethodKind::FairTat => Box::new(FairTat::new(spec)),
        MethodKind::Trades
        | MethodKind::FairTatTrades
        | MethodKind::Cfa
        | MethodKind::FairTatCfa => Box::new(Trades::new(spec)),
        MethodKind::Fat | MethodKind::FairTatFat => Box::new(Fat::new(spec)),
        MethodKind::Wat => Box::new(Wat::new(spec)),
        MethodKind::Bat => Box::new(Bat::new(spec)),
        MethodKind::FrlRw | MethodKind::FrlRwrm => Box::new(Frl::new(spec)),
    }
}

/// PGD configuration of the training attack.
pub fn train_pgd_config(a: &AttackSpec) -> PgdConfig {
    PgdConfig {
        alpha: a.alpha,
        steps: a.steps,
        random_start: a.random_start,
        bn_train: a.bn_mode == BnMode::Train,
    }
}

/// Shared core of PGD-AT and FAIR-TAT: PGD with per-sample epsilon (the true class's), untargeted
/// or toward `targets`, then cross-entropy on the true labels in train mode.
pub(crate) fn adversarial_ce(
    model: &Model,
    batch: &Batch,
    class_eps: &[f64],
    targets: Option<&Tensor>,
    cfg: &PgdConfig,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let eps = per_sample_eps(class_eps, &batch.y);
    let x_adv = pgd(model, &batch.x, &batch.y, &eps, targets, cfg);
    let logits = model.forward_t(&x_adv, true);
    let loss = logits.cross_entropy_for_logits(&batch.y);
    Ok((loss, logits))
}
