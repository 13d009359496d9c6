//! One training batch: seeded augmentation and method sampling, the learning rate at the
//! fractional epoch, the method's step, the optimiser update, and the predictions the book-keeping
//! reads from the step's own logits (one small device-to-host copy, no extra forward).
//!
//! Every random stream is derived from (seed, epoch, batch, stream), so a resumed run redoes a
//! batch exactly as an uninterrupted one would.

use tch::Device;

use super::schedule::lr_at;
use super::session::Session;
use super::TrainError;
use crate::data::make_batch;
use crate::methods::Batch;
use crate::models::Model;
use fairtat_core::config::RunSpec;
use fairtat_core::util::Rng;

/// RNG stream ids: data order, augmentation, method sampling, torch seed, epoch preparation.
pub const STREAM_ORDER: u64 = 1;
const STREAM_AUG: u64 = 2;
const STREAM_METHOD: u64 = 3;
const STREAM_TORCH: u64 = 4;
pub const STREAM_PREPARE: u64 = 5;

/// What one trained batch leaves for the book-keeping.
#[derive(Clone, Debug)]
pub struct BatchStep {
    /// The batch's mean loss (finite).
    pub loss: f64,
    pub labels: Vec<i64>,
    /// Predictions on the training adversarial examples.
    pub predictions: Vec<i64>,
    /// Targets the method drew (targeted methods).
    pub targets: Option<Vec<i64>>,
    /// The learning rate this batch used.
    pub lr: f64,
}

/// The torch seed of stream `path` of run seed `seed` (a non-negative i64).
pub fn torch_seed(seed: u64, path: &[u64]) -> i64 {
    Rng::derive(seed, path).next_u64() as i64 & 0x7fff_ffff_ffff
}

/// Seed torch's generator for stream `path`.
pub fn seed_torch(seed: u64, path: &[u64]) {
    tch::manual_seed(torch_seed(seed, path));
}

/// The learning rate of batch `b` (0-based) of `n` in epoch `epoch`: the schedule at the
/// fractional epoch the batch ends.
pub fn batch_lr(spec: &RunSpec, epoch: usize, (b, n): (usize, usize)) -> f64 {
    let t = epoch as f64 + (b + 1) as f64 / n as f64;
    lr_at(spec.train.lr_schedule, spec.train.lr, t, spec.train.epochs)
}

/// The step's loss, or why the run stops: a non-finite loss would turn every weight into NaN,
/// so it is read before the update and the run fails clearly instead of training on garbage.
pub fn check_loss(loss: f64, epoch: usize, b: usize) -> Result<f64, TrainError> {
    if loss.is_finite() {
        return Ok(loss);
    }
    Err(TrainError::Invalid(format!(
        "loss became {} at epoch {epoch} batch {} (lower train.lr or train.weight_decay)",
        if loss.is_nan() { "NaN" } else { "infinite" },
        b + 1
    )))
}

/// Train batch `b` of `n` (the images `idx`) of epoch `epoch`.
pub fn train_batch(
    s: &mut Session,
    epoch: usize,
    (b, n): (usize, usize),
    idx: &[usize],
) -> Result<BatchStep, TrainError> {
    let (seed, e, bb) = (s.spec.seed, epoch as u64, b as u64);
    seed_torch(seed, &[e, bb, STREAM_TORCH]);
    let batch = load_batch(s, idx, &mut Rng::derive(seed, &[e, bb, STREAM_AUG]));
    let lr = batch_lr(&s.spec, epoch, (b, n));
    s.opt.lr = lr;
    let rng = &mut Rng::derive(seed, &[e, bb, STREAM_METHOD]);
    // One precision scope over the attack and the loss forward: the weights do not change
    // until the optimiser step below.
    let out = {
        let _scope = s.model.precision_scope();
        s.method.step(&s.model, &batch, rng)?
    };
    let loss = check_loss(out.loss.double_value(&[]), epoch, b)?;
    // The references' extra clean train-mode forwards (`train.clean_forwards`): FAIR-TAT's
    // code runs one before `opt.step()`, CFA's and FAIR-TAT's one after. Only BatchNorm's
    // running statistics see them.
    let clean_forwards = s.spec.train.clean_forwards;
    if clean_forwards >= 2 {
        clean_forward(&s.model, &batch);
    }
    s.opt.backward_step(&out.loss);
    if clean_forwards >= 1 {
        clean_forward(&s.model, &batch);
    }
    s.method.after_step(&s.model, &batch);
    let preds = out.logits.argmax(-1, false).to_device(Device::Cpu);
    let predictions: Vec<i64> = Vec::try_from(&preds)?;
    if let Some(c) = s.sampler.as_mut() {
        c.update(&batch.labels, &predictions);
    }
    Ok(BatchStep {
        loss,
        labels: batch.labels,
        predictions,
        targets: out.targets,
        lr,
    })
}

/// The training images `idx`, augmented (when the run augments) and on the model's device.
fn load_batch(s: &Session, idx: &[usize], aug_rng: &mut Rng) -> Batch {
    let device = s.model.device();
    let augment = (!s.augment.is_identity()).then_some(&s.augment);
    let (x, y) = make_batch(&s.splits.train, idx, augment.map(|a| (a, aug_rng)));
    let labels = idx
        .iter()
        .map(|&i| s.splits.train.labels[i] as i64)
        .collect();
    Batch {
        x: x.to_device(device),
        y: y.to_device(device),
        labels,
    }
}

/// A train-mode forward of the clean batch whose output is dropped: it moves BatchNorm's
/// running statistics toward clean-batch statistics (algorithms.md §1.5; PKU-ML/CFA
/// `train.py` `train_epoch`, TejaswiniMedi/FAIR-TAT `target_train_new.py` `train_epoch`).
fn clean_forward(model: &Model, batch: &Batch) {
    tch::no_grad(|| drop(model.forward_t(&batch.x, true)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_loss_names_epoch_and_batch() {
        assert_eq!(check_loss(0.5, 0, 0).unwrap(), 0.5);
        let nan = check_loss(f64::NAN, 3, 6).unwrap_err().to_string();
        assert!(
            nan.starts_with("loss became NaN at epoch 3 batch 7"),
            "{nan}"
        );
        let inf = check_loss(f64::NEG_INFINITY, 0, 0).unwrap_err().to_string();
        assert!(
            inf.starts_with("loss became infinite at epoch 0 batch 1"),
            "{inf}"
        );
    }

    #[test]
    fn the_learning_rate_follows_the_fractional_epoch() {
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        spec.train.epochs = 2;
        spec.train.lr = 0.1;
        spec.train.lr_schedule = fairtat_core::config::LrSchedule::Piecewise;
        // Piecewise drops at half the run: the last batch of epoch 0 ends exactly there.
        assert_eq!(batch_lr(&spec, 0, (8, 10)), 0.1);
        assert!((batch_lr(&spec, 0, (9, 10)) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn torch_seeds_are_fixed_per_stream_and_non_negative() {
        let a = torch_seed(7, &[1, 2, STREAM_TORCH]);
        assert_eq!(a, torch_seed(7, &[1, 2, STREAM_TORCH]));
        assert_ne!(a, torch_seed(7, &[1, 3, STREAM_TORCH]));
        assert!((0..1000).all(|b| torch_seed(7, &[0, b, STREAM_TORCH]) >= 0));
    }
}
