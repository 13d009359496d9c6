//! Resume points, where the loop writes them: at every epoch end, and when a stop arrives in
//! the middle of an epoch (the partial epoch's counts go into `state.json`). Each written
//! checkpoint is announced with a `checkpoint` event; the files are one commit
//! ([`Session::save_resume_point`], `train::commit`).

use super::session::Session;
use super::state::PartialEpoch;
use super::TrainError;
use fairtat_core::runs::{EventSink, RunEvent};

/// Save a resume point in epoch `epoch` and announce its checkpoints.
pub fn save(s: &mut Session, epoch: usize, sink: &mut dyn EventSink) -> Result<(), TrainError> {
    for (kind, file) in s.save_resume_point(epoch)? {
        sink.emit(&RunEvent::Checkpoint { epoch, kind, file });
    }
    Ok(())
}

/// A stop after batch `done` of `n` (1-based; `done == n`: during the epoch's evaluation, whose
/// progress `s.state.pending_eval` holds): keep the epoch's counts so far, save a resume point
/// and say where the run stopped.
pub fn pause(
    s: &mut Session,
    epoch: usize,
    (done, n): (usize, usize),
    partial: PartialEpoch,
    sink: &mut dyn EventSink,
) -> Result<(), TrainError> {
    s.state.pause_at(done, partial);
    save(s, epoch, sink)?;
    let message = if done < n {
        format!("cancelled in epoch {epoch} after batch {done}/{n}")
    } else {
        format!("cancelled in epoch {epoch} during its evaluation (training kept)")
    };
    sink.emit(&RunEvent::Log {
        level: "info".into(),
        message,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Splits};
    use fairtat_core::runs::events::MemorySink;
    use fairtat_core::runs::RunDir;

    fn session(run: &RunDir, resume: bool) -> Session {
        let sets: Vec<String> = ["model.arch=smallcnn", "train.ema_decay=0.5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let spec = fairtat_core::config::from_toml_str("", &sets).unwrap();
        let splits = Splits {
            train: Dataset::synthetic(10, 2, 1, 16, 16, 1),
            val: Dataset::synthetic(10, 1, 1, 16, 16, 2),
            test: Dataset::synthetic(10, 1, 1, 16, 16, 3),
        };
        Session::new(&spec, splits, run, tch::Device::Cpu, resume).unwrap()
    }

    #[test]
    fn a_pause_saves_the_partial_epoch_and_a_resumed_session_reads_it_back() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("run"));
        std::fs::create_dir_all(run.root()).unwrap();
        let mut s = session(&run, false);
        let partial = PartialEpoch {
            images: 12,
            train_secs: 1.5,
            ..PartialEpoch::default()
        };
        let mut sink = MemorySink::default();
        pause(&mut s, 0, (3, 5), partial, &mut sink).unwrap();
        // The EMA holds no model before its first update: only `last` is announced.
        let said: Vec<String> = sink
            .events
            .iter()
            .map(|e| match e {
                RunEvent::Checkpoint { epoch, kind, file } => format!("{epoch} {kind} {file}"),
                RunEvent::Log { message, .. } => message.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            said,
            vec![
                "0 last checkpoints/last.safetensors",
                "cancelled in epoch 0 after batch 3/5",
            ]
        );
        let back = session(&run, true);
        assert_eq!((back.state.epochs_done, back.state.batches_done), (0, 3));
        assert_eq!(back.state.partial.map(|p| p.images), Some(12));
    }
}
