//! Progress and the time left, during an epoch: a `progress` event after the first batch this
//! process trains (so a page shows something within seconds of a start), every
//! `train.log_every` batches, after the last, and whenever [`MAX_GAP_SECS`] passed without one
//! (slow batches), with the mean loss so far, the mean loss since the previous event (the
//! step-level curve), this process's throughput and the ETAs of the epoch and of the run
//! (planned once per epoch by [`Eta::plan`], priced at each line from the time per batch).
//! Deciding costs a clock read per batch; the events themselves stay at the rate above.

use std::time::Instant;

/// Longest time without a progress event while batches finish.
pub const MAX_GAP_SECS: f64 = 2.0;

use super::eta::{Eta, EvalSizes};
use super::session::Session;
use super::tally::EpochTally;
use fairtat_core::config::EvalModel;
use fairtat_core::runs::{ProgressRecord, RunEvent};

pub struct ProgressMeter {
    eta: Eta,
    epoch: usize,
    /// The first batch this process trains (non-zero in a resumed epoch).
    first: usize,
    batches: usize,
    log_every: usize,
    t0: Instant,
    /// The tally and time at the previous event (the step loss is the mean since then).
    last: Mark,
}

/// Where the previous progress event left the tally.
#[derive(Clone, Copy, Debug, Default)]
struct Mark {
    loss_sum: f64,
    images: usize,
    secs: f64,
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
            last: Mark::default(),
        }
    }

    /// Seconds of training in this process so far.
    pub fn elapsed(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The progress event due after batch `done` (1-based), if one is.
    pub fn after_batch(&mut self, done: usize, tally: &EpochTally) -> Option<RunEvent> {
        let elapsed = self.elapsed();
        let event = self.event_at(done, tally, elapsed)?;
        self.last = Mark {
            loss_sum: tally.loss_sum,
            images: tally.images,
            secs: elapsed,
        };
        Some(event)
    }

    fn due(&self, done: usize, elapsed: f64) -> bool {
        done.is_multiple_of(self.log_every)
            || done == self.batches
            || done == self.first + 1
            || elapsed - self.last.secs >= MAX_GAP_SECS
    }

    fn event_at(&self, done: usize, tally: &EpochTally, elapsed: f64) -> Option<RunEvent> {
        if !self.due(done, elapsed) {
            return None;
        }
        let per_batch = elapsed / done.saturating_sub(self.first).max(1) as f64;
        let new_images = tally.images.saturating_sub(self.last.images);
        let step_loss = (tally.loss_sum - self.last.loss_sum) / new_images.max(1) as f64;
        let epoch_eta = self.batches.saturating_sub(done) as f64 * per_batch;
        Some(RunEvent::Progress(ProgressRecord {
            epoch: self.epoch,
            batch: done,
            batches: self.batches,
            loss: tally.mean_loss(),
            images_per_sec: tally.images_per_sec(elapsed),
            eta_secs: self.eta.secs((done, self.batches), per_batch),
            step_loss: (new_images > 0 && step_loss.is_finite()).then_some(step_loss),
            epoch_eta_secs: epoch_eta.is_finite().then_some(epoch_eta),
        }))
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

    /// The meter of a one-epoch run with nothing to evaluate: training `first..batches`.
    fn meter(first: usize, batches: usize, log_every: usize) -> ProgressMeter {
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        spec.train.epochs = 1;
        let sizes = EvalSizes {
            val: 0,
            test: 0,
            test_models: 0,
        };
        ProgressMeter::new(
            Eta::plan(&spec, 0, None, sizes),
            0,
            (first, batches),
            log_every,
        )
    }

    #[test]
    fn reports_the_first_batch_every_log_every_batches_and_the_last() {
        // A resumed epoch: this process starts at batch 2 of 5.
        let meter = meter(2, 5, 2);
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
        assert_eq!(
            due,
            vec![3, 4, 5],
            "the first batch here, then every 2nd and the last"
        );
        let Some(RunEvent::Progress(ProgressRecord {
            batch,
            loss,
            images_per_sec,
            eta_secs,
            step_loss,
            epoch_eta_secs,
            ..
        })) = meter.event_at(4, &tally, 1.0)
        else {
            panic!("no progress event");
        };
        assert_eq!((batch, loss, images_per_sec), (4, 0.5, 2.0));
        assert_eq!(step_loss, Some(0.5));
        // Two batches in 1 s: one batch left at 0.5 s, nothing to evaluate.
        assert!((eta_secs - 0.5).abs() < 1e-12, "{eta_secs}");
        assert_eq!(epoch_eta_secs, Some(0.5));
        // A slow batch is reported even off the log_every grid.
        assert!(meter.event_at(3, &tally, MAX_GAP_SECS + 0.1).is_some());
    }

    #[test]
    fn the_step_loss_is_the_mean_since_the_previous_event() {
        let mut meter = meter(0, 4, 2);
        let mut tally = EpochTally::resume(None, 2, 0.1);
        let step = |loss: f64| BatchStep {
            loss,
            labels: vec![0, 1],
            predictions: vec![0, 0],
            targets: None,
            lr: 0.1,
        };
        let mut steps = vec![];
        for (b, loss) in [4.0, 2.0, 1.0, 3.0].into_iter().enumerate() {
            tally.add(&step(loss));
            if let Some(RunEvent::Progress(p)) = meter.after_batch(b + 1, &tally) {
                steps.push(p.step_loss);
            }
        }
        // Events after batches 1, 2 and 4: each step loss covers the batches since the last.
        assert_eq!(steps, vec![Some(4.0), Some(2.0), Some(2.0)]);
    }
}
