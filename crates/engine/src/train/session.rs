//! Everything one training process holds: data, model, EMA, optimiser, method, loop state; and
//! how it is set up fresh, restored for `--resume`, and written to the run directory.

use std::path::Path;

use tch::Device;

use super::class_sampler::ClassSampler;
use super::metadata::CheckpointInfo;
use super::sgd::Sgd;
use super::state::ResumeState;
use super::TrainError;
use crate::data::{Augment, Splits};
use crate::methods::{self, Method};
use crate::models::{Model, WeightAverage};
use fairtat_core::config::RunSpec;
use fairtat_core::runs::reader::read_events;
use fairtat_core::runs::{CheckpointKind, EpochRecord, RunDir, RunEvent};

/// A weight average of the whole state (weights and BN buffers) plus a model to evaluate it
/// with: the EMA, and FAWA ([`super::fawa`]).
pub struct Ema {
    pub avg: WeightAverage,
    pub model: Model,
}

pub struct Session {
    pub spec: RunSpec,
    pub run: RunDir,
    pub splits: Splits,
    pub augment: Augment,
    pub model: Model,
    pub ema: Option<Ema>,
    /// CFA's fairness-aware weight average, when `train.fawa_decay > 0`.
    pub fawa: Option<Ema>,
    pub opt: Sgd,
    pub method: Box<dyn Method>,
    /// CFOL's class sampler, when `train.class_sampler = "cfol"`.
    pub sampler: Option<ClassSampler>,
    pub state: ResumeState,
    pub records: Vec<EpochRecord>,
    pub info: CheckpointInfo,
}

impl Session {
    pub fn new(
        spec: &RunSpec,
        splits: Splits,
        run: &RunDir,
        device: Device,
        resume: bool,
    ) -> Result<Self, TrainError> {
        if splits.train.is_empty() {
            return Err(TrainError::Invalid(
                "the training split is empty (check data.train_subset and data.val_per_class)"
                    .into(),
            ));
        }
        let k = spec.num_classes();
        if splits.train.num_classes() != k {
            return Err(TrainError::Invalid(format!(
                "dataset has {} classes, expected {k}",
                splits.train.num_classes()
            )));
        }
        let (c, h) = (splits.train.channels, splits.train.height);
        // Initial weights come from torch's generator: seed it so a run is reproducible.
        tch::manual_seed(spec.seed as i64);
        let norm = super::metadata::normalization(spec);
        let new_model = || -> Result<Model, TrainError> {
            let mut m = Model::new(spec.model.arch, c, k, h, norm.clone(), device)?;
            m.set_precision(spec.train.precision);
            Ok(m)
        };
        let mut model = new_model()?;
        if !resume {
            // A resumed run continues from its own `last` checkpoint instead.
            super::init::load_init_checkpoint(spec, run.root(), &mut model, c, h)?;
        }
        let averaged = |on: bool| -> Result<Option<Ema>, TrainError> {
            Ok(if on {
                Some(Ema {
                    avg: WeightAverage::new(&model),
                    model: new_model()?,
                })
            } else {
                None
            })
        };
        let ema = averaged(spec.train.ema_decay > 0.0)?;
        // FAWA selects epochs by their validation accuracy; with no validation split it is off
        // (the loop logs it), never driven by the test set.
        let fawa = averaged(spec.train.fawa_decay > 0.0 && !splits.val.is_empty())?;
        let opt = Sgd::new(
            &model.vs,
            spec.train.lr,
            spec.train.momentum,
            spec.train.weight_decay,
        );
        let info = CheckpointInfo::for_run(spec, c, h, &splits.train.class_names, &run.id());
        let mut s = Session {
            spec: spec.clone(),
            run: run.clone(),
            augment: Augment::from_spec(&spec.data),
            splits,
            model,
            ema,
            fawa,
            opt,
            method: methods::build(spec),
            sampler: None,
            state: ResumeState::default(),
            records: vec![],
            info,
        };
        let labels: Vec<i64> = s.splits.train.labels.iter().map(|&y| y as i64).collect();
        s.sampler = ClassSampler::for_run(spec, &labels);
        if resume {
            s.restore()?;
        }
        Ok(s)
    }

    /// Load weights, optimiser, EMA, FAWA, the method's state, loop state and the epoch records
    /// already on disk.
    fn restore(&mut self) -> Result<(), TrainError> {
        let state_path = self.run.resume_state();
        // Finish (or discard) a save that a kill interrupted before reading anything.
        let Some(state) = super::commit::recover(&self.run)? else {
            return Err(TrainError::Resume(format!(
                "{} has no checkpoint state yet ({} missing)",
                self.run.root().display(),
                state_path.display()
            )));
        };
        self.state = state;
        let last = self.run.checkpoint(CheckpointKind::Last);
        // The epoch first: a whole file from another save says more than its checksum would.
        check_checkpoint_epoch(&last, self.state.checkpoint_epoch)?;
        self.state.check_epochs().map_err(TrainError::Resume)?;
        super::commit::verify(&self.run, &self.state.checksums)?;
        self.model.load(&last)?;
        let opt_path = self.run.checkpoints().join("optimizer.safetensors");
        if opt_path.exists() {
            self.opt.load(&opt_path)?;
        }
        for (avg, kind, initialized) in [
            (
                &mut self.ema,
                CheckpointKind::Ema,
                self.state.ema_initialized,
            ),
            (
                &mut self.fawa,
                CheckpointKind::Fawa,
                self.state.fawa_initialized,
            ),
        ] {
            let p = self.run.checkpoint(kind);
            if let Some(a) = avg.as_mut().filter(|_| initialized && p.exists()) {
                a.model.load(&p)?;
                a.avg = WeightAverage::new(&a.model);
            }
        }
        self.method.restore_state(&self.state.method);
        let k = self.spec.num_classes();
        let saved = self
            .state
            .cfol_log_weights
            .as_ref()
            .filter(|w| w.len() == k);
        if let (Some(c), Some(w)) = (self.sampler.as_mut(), saved) {
            c.w = w.clone();
        }
        let done = self.state.epochs_done;
        if self.run.events().exists() {
            let events =
                read_events(&self.run.events()).map_err(|e| TrainError::Resume(e.to_string()))?;
            for line in events {
                if let RunEvent::Epoch(r) = line.event {
                    // A crash between the epoch event and the state file can leave an epoch
                    // that will be redone; keep the latest record per epoch below `done`.
                    if r.epoch < done {
                        self.records.retain(|x| x.epoch != r.epoch);
                        self.records.push(*r);
                    }
                }
            }
        }
        Ok(())
    }

    fn save_model(
        &self,
        model: &Model,
        kind: CheckpointKind,
        epoch: usize,
        path: &Path,
    ) -> Result<(), TrainError> {
        let mut info = self.info.clone();
        info.epoch = epoch;
        info.kind = kind.as_str().to_string();
        model.save(path, &info.to_metadata())?;
        Ok(())
    }

    /// Write `last`, the optimiser, `ema`, `fawa` and the loop state (with the method's state)
    /// as one commit (`train::commit`): the files go to a pending folder, `state.json` is the
    /// commit point, then the files are moved into place. A kill anywhere resumes consistently.
    pub fn save_resume_point(&mut self, epoch: usize) -> Result<Vec<(String, String)>, TrainError> {
        std::fs::create_dir_all(self.run.checkpoints())?;
        let save_id = self.state.save_id.map_or(1, |n| n + 1);
        let pending = super::commit::pending_dir(&self.run, save_id);
        if pending.exists() {
            std::fs::remove_dir_all(&pending)?;
        }
        std::fs::create_dir_all(&pending)?;
        let file = |kind: CheckpointKind| pending.join(format!("{kind}.safetensors"));
        let mut written = vec![];
        self.save_model(
            &self.model,
            CheckpointKind::Last,
            epoch,
            &file(CheckpointKind::Last),
        )?;
        written.push(CheckpointKind::Last);
        self.opt.save(&pending.join("optimizer.safetensors"))?;
        for (avg, kind, initialized) in [
            (&self.ema, CheckpointKind::Ema, self.state.ema_initialized),
            (
                &self.fawa,
                CheckpointKind::Fawa,
                self.state.fawa_initialized,
            ),
        ] {
            if let Some(a) = avg.as_ref().filter(|_| initialized) {
                self.save_model(&a.model, kind, epoch, &file(kind))?;
                written.push(kind);
            }
        }
        self.state.checksums = super::commit::checksums(&pending)?;
        super::commit::failpoint("before-commit", save_id);
        self.state.save_id = Some(save_id);
        self.state.checkpoint_epoch = Some(epoch);
        let mut state = self.state.clone();
        state.method = self.method.resume_state();
        state.cfol_log_weights = self.sampler.as_ref().map(|c| c.w.clone());
        state.save(&self.run.resume_state())?;
        super::commit::failpoint("after-commit", save_id);
        super::commit::publish(&self.run, save_id)?;
        Ok(written
            .into_iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    format!("checkpoints/{k}.safetensors"),
                )
            })
            .collect())
    }

    /// Save the live model as `best-worst-robust` (atomically: a download never sees half).
    pub fn save_best(&self, epoch: usize) -> Result<(), TrainError> {
        std::fs::create_dir_all(self.run.checkpoints())?;
        let kind = CheckpointKind::BestWorstRobust;
        super::commit::write_atomically(&self.run.checkpoint(kind), |tmp| {
            self.save_model(&self.model, kind, epoch, tmp)
        })
    }
}

/// Resume only from a `last` checkpoint that the committed state refers to.
fn check_checkpoint_epoch(last: &Path, expected: Option<usize>) -> Result<(), TrainError> {
    let Some(expected) = expected else {
        return Ok(()); // a state file written before epochs were stamped into it
    };
    let meta = crate::models::read_metadata(last)
        .map_err(|e| TrainError::Resume(format!("{}: {e}", last.display())))?;
    let found = meta.get("epoch").and_then(|e| e.parse::<usize>().ok());
    if found != Some(expected) {
        return Err(TrainError::Resume(format!(
            "{} holds epoch {} but checkpoints/state.json refers to epoch {expected}; the run \
             directory was changed outside fairtat or copied incompletely",
            last.display(),
            found.map_or("unknown".to_string(), |e| e.to_string())
        )));
    }
    Ok(())
}
