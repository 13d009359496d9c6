//! Training methods behind one trait. Adding a method is one file plus a line in [`build`], the
//! registry keyed by [`MethodKind`] (whose `as_str` is the method's name: no name is spelled
//! here), beside its row in core's `methods!` table (name, keys it reads, reference defaults:
//! `fairtat_core::config::spec::method`), which the server reads without linking libtorch.
//!
//! A method decides, per batch, which adversarial examples to make and which loss to minimise;
//! the loop (`crate::train`) owns the optimiser, the schedule, the bookkeeping and the events.
//! Class-wise statistics the methods calibrate from (C_FPS, r_k) come from the previous epoch's
//! training adversarial predictions, which the loop collects from [`StepOutput::logits`]:
//! no extra forward pass (algorithms.md §1.3, §9). Methods that need the validation split (WAT's
//! Hedge costs, FRL's constraint violations) get it in [`Method::prepare_epoch`]; FAWA is the
//! loop's (`crate::train::fawa`) and applies to every method.
//!
//! Files: `pgd_at` (PGD-AT, + CCM, FAIR-TAT), `trades` (TRADES, CFA and their FAIR-TAT
//! combinations; CCR), `fat` (FAT, FAIR-TAT + FAT), `wat` (WAT), `bat` (BAT), `frl` +
//! `frl_rule` (FRL-RW, FRL-RWRM), `dafa` (DAFA on TRADES or PGD-AT), `trix` (TRIX), `faal`
//! (FAAL); shared: `kl` (TRADES loss and KL attack), `calibration` +
//! `calibrated` (CCM/CCR/C_FPS per epoch, target draws, the wrapper that makes the first
//! three families [`Method`]s), `sampler` (target distributions).

mod bat;
mod calibrated;
pub mod calibration;
pub mod dafa;
pub mod faal;
mod fat;
mod frl;
pub mod frl_rule;
pub mod kl;
mod pgd_at;
pub mod sampler;
mod trades;
pub mod trix;
mod wat;

pub use bat::{early_stopped_kl, kl_to_uniform, Bat, KlStop};
pub use dafa::{dafa_step, dafa_weights, Dafa, DafaStep};
pub use faal::{class_margins, dro_weights, faal_loss, Faal};
pub use fat::{early_stopped_pgd, EarlyStop, Fat};
pub use frl::{clean_and_boundary_errors, Frl};
pub use pgd_at::PgdAt;
pub use trades::{class_trades_weights, trades_adversarial, Trades};
pub use trix::{batch_weights, trix_step, Trix, TrixOut, TrixStep};
pub use wat::{hedge_weights, validation_costs, Wat};

use std::collections::BTreeMap;

use tch::Tensor;

use crate::attacks::PgdConfig;
use crate::data::Dataset;
use crate::models::Model;
use fairtat_core::config::{AttackSpec, BnMode, MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
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

/// What [`Method::step`] returns.
pub type StepResult = Result<StepOutput, tch::TchError>;

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
    /// Which method this is; the spec's `method.name` it was built from.
    fn kind(&self) -> MethodKind;
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }
    /// Before epoch `ctx.epoch`'s first batch, with the model and the validation split; called
    /// once per epoch, not again when a run resumes in the middle of that epoch (the state it
    /// computes is restored instead). The loop seeds torch's generator before the call.
    fn prepare_epoch(&mut self, _ctx: &EpochCtx) -> Result<(), tch::TchError> {
        Ok(())
    }
    /// Prepare epoch `epoch` (0-based) from the previous epoch's training adversarial metrics.
    fn begin_epoch(&mut self, _epoch: usize, _prev_train: Option<&ClassMetrics>) {}
    /// Per-class training epsilon in force this epoch.
    fn class_eps(&self) -> &[f64];
    /// Target-sampling distribution in force this epoch (targeted methods).
    fn target_probs(&self) -> Option<&[f64]> {
        None
    }
    /// Build the adversarial batch and the loss.
    fn step(&mut self, model: &Model, batch: &Batch, rng: &mut Rng) -> StepResult;
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

/// [`Method::resume_state`] and [`Method::restore_state`] of a method whose whole cross-epoch
/// state lives in one field (DAFA's and TRIX's class weights): written once, used inside their
/// `impl Method` blocks as `resume_state_in!(field);`.
macro_rules! resume_state_in {
    ($field:ident) => {
        fn resume_state(&self) -> std::collections::BTreeMap<String, Vec<f64>> {
            self.$field.resume_state()
        }

        fn restore_state(&mut self, s: &std::collections::BTreeMap<String, Vec<f64>>) {
            self.$field.restore_state(s);
        }
    };
}
pub(crate) use resume_state_in;

/// The method a spec asks for: the registry, one line per file. The match is exhaustive, so a
/// new [`MethodKind`] does not compile until it is registered here.
pub fn build(spec: &RunSpec) -> Box<dyn Method> {
    use MethodKind as K;
    match spec.method.name {
        K::PgdAt | K::FairTat => PgdAt::build(spec),
        K::Trades | K::FairTatTrades | K::Cfa | K::FairTatCfa => Trades::build(spec),
        K::Fat | K::FairTatFat => Fat::build(spec),
        K::Wat => Box::new(Wat::new(spec)),
        K::Bat => Box::new(Bat::new(spec)),
        K::FrlRw | K::FrlRwrm => Box::new(Frl::new(spec)),
        K::Dafa | K::DafaPgdAt => Box::new(Dafa::new(spec)),
        K::Trix => Box::new(Trix::new(spec)),
        K::Faal => Box::new(Faal::new(spec)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::config::from_toml_str;

    /// The registry is complete: every method name builds the method of that kind.
    #[test]
    fn every_method_kind_builds() {
        for name in MethodKind::NAMES {
            // FRL fine-tunes: its spec needs a checkpoint to start from (not read here).
            let sets = [
                format!("method.name={name}"),
                "train.init_checkpoint=x.safetensors".to_string(),
            ];
            let spec = from_toml_str("", &sets).unwrap();
            let method = build(&spec);
            assert_eq!(method.kind(), spec.method.name);
            assert_eq!(method.name(), name);
            assert_eq!(method.class_eps().len(), spec.num_classes());
        }
    }
}
