//! Progress and the time left, during an epoch: a `progress` event every `train.log_every`
//! batches and after the last, with the mean loss so far, this process's throughput and the
//! ETA (planned once per epoch by [`Eta::plan`], priced at each line from the time per batch).

use std::time::Instant;

use super::eta::{Eta, EvalSizes};
use super::session::Session;
use super::tally::EpochTally;
use fairtat_core::config::EvalModel;
use fairtat_core::runs::RunEvent;

pub struct ProgressMeter {
    eta: Eta,
    epoch: usize,
    /// The first batch this process trains (non-zero in a resumed epoch).
    first: usize,
    batches: usize,
    log_every: usize,
    t0: Instant,
}

impl ProgressMeter {
    /// The meter of epoch `epoch` of a session, whose training starts now at batch `first` of
    /// `batches`.
    pub fn start(s: &Session, epoch: usize, (first, batches): (usize, usize)) -> Self {
        let eta = Eta::plan(&s.spec, epoch, s.records.last(), eval_sizes(s));
        ProgressMeter::new(eta, epoch, (first, batches), s.spec.train.log_every)
    }

    pub fn new(eta: Eta, epoch: usize, (first, batches): (usize, usize), log_every: usize) -> Self {
        ProgressMeter {
            eta,
            epoch,
            first,
            batches,
            log_every: log_every.max(1),
            t0: Instant::now(),
        }
    }

    /// Seconds of training in this process so far.
    pub fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The progress event due after batch `done` (1-based), if one is.
    pub fn after_batch(&self, done: usize, tally: &EpochTally) -> Option<RunEvent> {
        self.event_at(done, tally, self.elapsed())
    }

    fn event_at(&self, done: usize, tally: &EpochTally, elapsed: f64) -> Option<RunEvent> {
        if !done.is_multiple_of(self.log_every) && done != self.batches {
            return None;
        }
        let per_batch = elapsed / done.saturating_sub(self.first).max(1) as f64;
        Some(RunEvent::Progress {
            epoch: self.epoch,
            batch: done,
            batches: self.batches,
            loss: tally.mean_loss(),
            images_per_sec: tally.images_per_sec(elapsed),
            eta_secs: self.eta.secs((done, self.batches), per_batch),
        })
    }
}

/// The evaluation sizes the ETA needs: validation and test images, test-evaluated models.
fn eval_sizes(s: &Session) -> EvalSizes {
    let wanted = |m: EvalModel| s.spec.eval.models.contains(&m);
    let test_models = usize::from(wanted(EvalModel::Live))
        + usize::from(s.ema.is_some() && wanted(EvalModel::Ema))
        // FAWA is evaluated once it has absorbed an epoch (it may start late).
        + usize::from(s.fawa.is_some() && s.state.fawa_initialized && wanted(EvalModel::Fawa));
    EvalSizes {
        val: s.splits.val.len(),
        test: s.splits.test.len(),
        test_models,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::step::BatchStep;

    #[test]
    fn reports_every_log_every_batches_and_after_the_last() {
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        spec.train.epochs = 1;
        let sizes = EvalSizes {
            val: 0,
            test: 0,
            test_models: 0,
        };
        // A resumed epoch: this process starts at batch 2 of 5.
        let meter = ProgressMeter::new(Eta::plan(&spec, 0, None, sizes), 0, (2, 5), 2);
        let mut tally = EpochTally::resume(None, 2, 0.1);
        tally.add(&BatchStep {
            loss: 0.5,
            labels: vec![0, 1],
            predictions: vec![0, 0],
            targets: None,
            lr: 0.1,
        });
        let due: Vec<usize> = (3..=5)
            .filter(|&b| meter.event_at(b, &tally, 1.0).is_some())
            .collect();
        assert_eq!(due, vec![4, 5]);
        let Some(RunEvent::Progress {
            batch,
            loss,
            images_per_sec,
            eta_secs,
            ..
        }) = meter.event_at(4, &tally, 1.0)
        else {
            panic!("no progress event");
        };
        assert_eq!((batch, loss, images_per_sec), (4, 0.5, 2.0));
        // Two batches in 1 s: one batch left at 0.5 s, nothing to evaluate.
        assert!((eta_secs - 0.5).abs() < 1e-12, "{eta_secs}");
    }
}
