//! The CLI's view of a run: an indicatif progress bar per epoch (batches, loss, images/s, ETA)
//! and one summary line per finished epoch. Another sink of the same events as `events.jsonl`.

use indicatif::{ProgressBar, ProgressStyle};

use fairtat_core::runs::{EpochRecord, EventSink, RunEvent};

pub struct ProgressSink {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Default for ProgressSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink {
    pub fn new() -> Self {
        ProgressSink {
            bar: None,
            epochs: 0,
        }
    }

    fn bar(&mut self, epoch: usize, batches: usize) -> &ProgressBar {
        let epochs = self.epochs;
        self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(batches as u64);
            b.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(format!("epoch {epoch} of 0-{}", epochs.saturating_sub(1)));
            b
        })
    }
}

/// `1h02m`, `3m05s`, `12s`.
pub fn format_secs(s: f64) -> String {
    let s = if s.is_finite() && s > 0.0 {
        s as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

impl ProgressSink {
    /// Close the epoch's bar before a line is printed under it.
    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl EventSink for ProgressSink {
    fn emit(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Started { spec, .. } => {
                self.epochs = spec
                    .pointer("/train/epochs")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0) as usize;
                eprintln!("{}", started_line(event).unwrap_or_default());
            }
            RunEvent::Progress(p) => {
                let bar = self.bar(p.epoch, p.batches);
                bar.set_position(p.batch as u64);
                bar.set_message(format!(
                    "loss {:.4} | {:.0} img/s | ETA {}",
                    p.loss,
                    p.images_per_sec,
                    format_secs(p.eta_secs)
                ));
            }
            RunEvent::Epoch(r) => {
                self.clear();
                eprintln!("{}", epoch_line(r));
            }
            RunEvent::Log { level, message } => eprintln!("[{level}] {message}"),
            RunEvent::Finished {
                status,
                epochs_done,
                message,
            } => {
                self.clear();
                let msg = message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                eprintln!("{} after {epochs_done} epoch(s){msg}", status.as_str());
            }
            RunEvent::Checkpoint { .. } => {}
        }
    }
}

/// The line a `started` event prints: where the run trains on how much data.
fn started_line(event: &RunEvent) -> Option<String> {
    let RunEvent::Started {
        run_id,
        device,
        train_size,
        val_size,
        test_size,
        start_epoch,
        ..
    } = event
    else {
        return None;
    };
    let from = if *start_epoch > 0 {
        format!(", resuming at epoch {start_epoch}")
    } else {
        String::new()
    };
    Some(format!(
        "run {run_id} on {device}: {train_size} train / {val_size} val / {test_size} test images{from}"
    ))
}

/// The summary line of a finished epoch: loss, learning rate, training and test accuracies,
/// and the time training and evaluation took.
fn epoch_line(r: &EpochRecord) -> String {
    // Epochs are numbered from 0, as on the dashboard and in the CSV reports.
    let mut line = format!(
        "epoch {:>3} ({}/{} done) loss {:.4} lr {:.4}",
        r.epoch,
        r.epoch + 1,
        r.epochs,
        r.train_loss,
        r.lr
    );
    if let Some(t) = r.eval("train", "train-attack", "live") {
        line += &format!(" | train-adv {:.1}%", 100.0 * t.metrics.overall);
    }
    for e in r
        .evals
        .iter()
        .filter(|e| e.split == "test" && e.model == "live")
    {
        line += &format!(
            " | {} {:.1}% (worst {:.1}%)",
            e.attack,
            100.0 * e.metrics.overall,
            100.0 * e.metrics.worst
        );
    }
    line += &format!(
        " [{} + eval {}]",
        format_secs(r.train_secs),
        format_secs(r.eval_secs)
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_line_shows_loss_accuracies_and_times() {
        let r: EpochRecord = serde_json::from_value(serde_json::json!({
            "epoch": 2, "epochs": 10, "lr": 0.1, "train_loss": 1.25, "train_secs": 65.0,
            "eval_secs": 5.0, "images_per_sec": 1.0, "class_eps": [], "target_probs": null,
            "target_counts": null, "evals": [], "method_state": {}
        }))
        .unwrap();
        assert_eq!(
            epoch_line(&r),
            "epoch   2 (3/10 done) loss 1.2500 lr 0.1000 [1m05s + eval 5s]"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_secs(5.2), "5s");
        assert_eq!(format_secs(185.0), "3m05s");
        assert_eq!(format_secs(3720.0), "1h02m");
        assert_eq!(format_secs(f64::NAN), "0s");
    }
}
