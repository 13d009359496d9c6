//! Progress inside the current epoch, folded from the trainer's `progress` lines: batch i of n,
//! the step-level loss (mean since the previous line), the epoch's running mean loss, the
//! throughput and the epoch's ETA, plus the step-loss curve of the epoch so far (bounded). The
//! run page renders it on load; later lines reach the page over SSE as they are.

use serde::Serialize;

use crate::metrics::finite;
use fairtat_core::runs::RunEvent;

/// Points of the step-loss curve kept per epoch; beyond it every other point is dropped, so a
/// long epoch keeps an even, bounded picture.
pub const MAX_POINTS: usize = 400;

/// The latest progress of the run's current epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StepProgress {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// The epoch's running mean loss.
    pub loss: Option<f64>,
    /// Mean loss since the previous progress line (older logs: the running mean).
    pub step_loss: Option<f64>,
    pub images_per_sec: Option<f64>,
    pub epoch_eta_secs: Option<f64>,
    /// `(batch, step loss)` of this epoch, in batch order.
    pub points: Vec<(usize, f64)>,
    /// The epoch's record arrived: its training part (and evaluation) is over.
    pub closed: bool,
}

impl StepProgress {
    /// Fold one event; only `progress` and `epoch` lines change it.
    pub fn apply(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Progress(p) => {
                // A new epoch, or the same one re-done after a resume: a new curve.
                if p.epoch != self.epoch || p.batch < self.batch || self.closed {
                    self.points.clear();
                    self.closed = false;
                }
                self.epoch = p.epoch;
                self.batch = p.batch;
                self.batches = p.batches;
                self.loss = finite(p.loss);
                self.step_loss = p.step_loss.and_then(finite).or(self.loss);
                self.images_per_sec = finite(p.images_per_sec);
                self.epoch_eta_secs = p.epoch_eta_secs.and_then(finite).map(|s| s.max(0.0));
                if let Some(y) = self.step_loss {
                    self.push(p.batch, y);
                }
            }
            RunEvent::Epoch(rec) if rec.epoch == self.epoch => self.closed = true,
            _ => {}
        }
    }

    fn push(&mut self, batch: usize, y: f64) {
        self.points.push((batch, y));
        if self.points.len() > MAX_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
        }
    }

    /// Whether any progress line was folded.
    pub fn seen(&self) -> bool {
        self.batches > 0
    }

    pub fn bytes(&self) -> usize {
        self.points.len() * 16 + 96
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::runs::synthetic::Synth;
    use fairtat_core::runs::ProgressRecord;

    fn progress(epoch: usize, batch: usize, step: Option<f64>) -> RunEvent {
        line(epoch, (batch, 10), (2.0, 500.0), step)
    }

    fn line(
        epoch: usize,
        (batch, batches): (usize, usize),
        (loss, speed): (f64, f64),
        step: Option<f64>,
    ) -> RunEvent {
        RunEvent::Progress(ProgressRecord {
            epoch,
            batch,
            batches,
            loss,
            images_per_sec: speed,
            eta_secs: 60.0,
            step_loss: step,
            epoch_eta_secs: Some(3.0),
        })
    }

    #[test]
    fn folds_the_latest_line_and_the_epoch_curve() {
        let mut s = StepProgress::default();
        assert!(!s.seen());
        s.apply(&progress(0, 1, Some(2.5)));
        s.apply(&progress(0, 5, Some(1.5)));
        assert!(s.seen());
        assert_eq!((s.epoch, s.batch, s.batches), (0, 5, 10));
        assert_eq!((s.loss, s.step_loss), (Some(2.0), Some(1.5)));
        assert_eq!(
            (s.images_per_sec, s.epoch_eta_secs),
            (Some(500.0), Some(3.0))
        );
        assert_eq!(s.points, vec![(1, 2.5), (5, 1.5)]);
        // An older log without a step loss draws the running mean.
        s.apply(&progress(0, 6, None));
        assert_eq!(s.points.last(), Some(&(6, 2.0)));
    }

    #[test]
    fn an_epoch_record_closes_and_the_next_epoch_starts_a_new_curve() {
        let syn = Synth {
            classes: 3,
            epochs: 2,
            progress: 1,
            seed: 1,
        };
        let mut s = StepProgress::default();
        s.apply(&progress(0, 9, Some(1.0)));
        s.apply(&RunEvent::Epoch(Box::new(syn.epoch(0))));
        assert!(s.closed);
        s.apply(&progress(1, 1, Some(0.9)));
        assert!(!s.closed);
        assert_eq!(s.points, vec![(1, 0.9)]);
        // A resume re-doing epoch 1 from an earlier batch starts its curve again.
        s.apply(&progress(1, 4, Some(0.8)));
        s.apply(&progress(1, 2, Some(0.7)));
        assert_eq!(s.points, vec![(2, 0.7)]);
    }

    #[test]
    fn the_curve_stays_bounded_and_ordered() {
        let mut s = StepProgress::default();
        for b in 1..=5000 {
            s.apply(&line(0, (b, 5000), (2.0, 1.0), Some(b as f64)));
        }
        assert!(s.points.len() <= MAX_POINTS && s.points.len() > MAX_POINTS / 4);
        assert!(s.points.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(s.points[0].0, 1);
    }

    #[test]
    fn non_finite_numbers_are_dropped() {
        let mut s = StepProgress::default();
        s.apply(&line(0, (1, 10), (f64::NAN, f64::INFINITY), Some(f64::NAN)));
        assert_eq!((s.loss, s.step_loss, s.images_per_sec), (None, None, None));
        assert!(s.points.is_empty());
        assert!(serde_json::to_string(&s).is_ok());
    }
}
