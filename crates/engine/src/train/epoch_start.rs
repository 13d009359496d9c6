//! The start and the record of one epoch: the method's preparation (skipped when an epoch is
//! resumed, which already did it), the batch order, where training starts (after the batches a
//! cancelled process trained), the per-class settings the method fixes for the epoch, and, at its
//! end, the [`EpochRecord`] built from them, the training tally and the evaluations.

use super::epoch_eval::EpochEvals;
use super::session::Session;
use super::step::{seed_torch, STREAM_ORDER, STREAM_PREPARE};
use super::tally::EpochTally;
use super::TrainError;
use crate::data::batch_indices;
use crate::methods::EpochCtx;
use fairtat_core::config::RunSpec;
use fairtat_core::runs::EpochRecord;
use fairtat_core::util::Rng;

pub struct EpochStart {
    /// The images of each batch, in this epoch's order.
    pub batches: Vec<Vec<usize>>,
    /// The first batch to train (non-zero when resuming a cancelled epoch).
    pub first: usize,
    pub tally: EpochTally,
    /// The method's per-class training epsilon and target probabilities for this epoch.
    class_eps: Vec<f64>,
    target_probs: Option<Vec<f64>>,
}

/// The batches of epoch `epoch` over `len` training images: a shuffle fixed by seed and epoch.
pub fn batch_order(spec: &RunSpec, epoch: usize, len: usize) -> Vec<Vec<usize>> {
    let mut rng = Rng::derive(spec.seed, &[epoch as u64, STREAM_ORDER]);
    batch_indices(len, spec.train.batch_size, Some(&mut rng))
}

impl EpochStart {
    /// Start epoch `epoch` of the session (continuing its saved partial epoch when resuming).
    pub fn begin(s: &mut Session, epoch: usize) -> Result<Self, TrainError> {
        let spec = &s.spec;
        let resuming = epoch == s.state.epochs_done && s.state.batches_done > 0;
        if !resuming {
            // Validation passes of the method (random starts) are seeded so a resumed run redoes
            // them identically.
            seed_torch(spec.seed, &[epoch as u64, STREAM_PREPARE]);
            s.method.prepare_epoch(&EpochCtx {
                epoch,
                model: &s.model,
                val: &s.splits.val,
                batch_size: spec.eval_batch(s.model.device().is_cuda()),
            })?;
        }
        s.method.begin_epoch(epoch, s.state.prev_train.as_ref());
        let batches = batch_order(spec, epoch, s.splits.train.len());
        let (first, partial) = if resuming {
            (
                s.state.batches_done.min(batches.len()),
                s.state.partial.take(),
            )
        } else {
            (0, None)
        };
        Ok(EpochStart {
            first,
            tally: EpochTally::resume(partial, spec.num_classes(), spec.train.lr),
            class_eps: s.method.class_eps().to_vec(),
            target_probs: s.method.target_probs().map(<[f64]>::to_vec),
            batches,
        })
    }

    /// The images of batch `b`: its share of the shuffled order, or as many as CFOL's class
    /// sampler draws.
    pub fn images(&self, s: &Session, epoch: usize, b: usize) -> Vec<usize> {
        match &s.sampler {
            Some(c) => c.batch(s.spec.seed, epoch, b, self.batches[b].len()),
            None => self.batches[b].clone(),
        }
    }

    /// The epoch's record, after `secs_here` seconds of training in this process. The targets
    /// drawn are recorded when the method draws targets (`targeted`).
    pub fn record(
        self,
        (epoch, epochs): (usize, usize),
        secs_here: f64,
        targeted: bool,
        ev: EpochEvals,
    ) -> EpochRecord {
        let t = self.tally;
        EpochRecord {
            epoch,
            epochs,
            lr: t.lr,
            train_loss: t.mean_loss(),
            train_secs: t.secs_before + secs_here,
            eval_secs: ev.secs,
            images_per_sec: t.images_per_sec(secs_here),
            class_eps: self.class_eps,
            target_probs: self.target_probs,
            target_counts: targeted.then_some(t.target_counts),
            evals: ev.evals,
            method_state: ev.method_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_order_is_fixed_by_seed_and_epoch_and_covers_every_image() {
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        spec.train.batch_size = 4;
        let a = batch_order(&spec, 3, 10);
        assert_eq!(
            a,
            batch_order(&spec, 3, 10),
            "a resumed epoch sees the same order"
        );
        assert_ne!(a, batch_order(&spec, 4, 10));
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = a.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
