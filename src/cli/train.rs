//! `fairtat train`: a config file, a grid of configs, a prepared run directory or a resume; signal
//! handling, the JSONL writer and the progress bar; every run's event log ends with `finished`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use super::{Failure, TrainArgs};
use crate::config::{self, ConfigError, RunSpec};
use crate::runs::lock::RunLock;
use crate::runs::writer::EventWriter;
use crate::runs::{new_run_id, EventSink, RunDir, RunEvent, RunStatus};
use crate::train::{self, Outcome, ProgressSink, TrainOptions};

pub(super) fn cmd_train(a: TrainArgs) -> Result<ExitCode, Failure> {
    let mut sets = a.set.clone();
    if let Some(seed) = a.seed {
        sets.push(format!("seed={seed}"));
    }
    if let Some(d) = &a.device {
        sets.push(format!("device=\"{d}\""));
    }
    let (spec, run, resume, created, lock) = if let Some(dir) = &a.resume {
        let run = RunDir::new(dir);
        let lock = lock_existing(&run)?;
        (load_run_config(&run, &sets)?, run, true, false, lock)
    } else if let Some(dir) = &a.run_dir {
        let run = RunDir::new(dir);
        let lock = lock_existing(&run)?;
        if run.resume_state().exists() {
            return Err(anyhow::anyhow!(
                "{} already has checkpoints; continue it with --resume",
                dir.display()
            )
            .into());
        }
        (load_run_config(&run, &sets)?, run, false, false, lock)
    } else if let Some(cfg) = &a.config {
        if let Some(specs) = grid_specs(cfg, &sets)? {
            return train_grid(&specs, &a.out);
        }
        // Validate completely before creating anything: a config error leaves no run behind.
        let spec = config::load(cfg, &sets)?;
        let run = crate::runs::create_run_dir(&a.out, &spec)
            .with_context(|| format!("creating a run directory in {}", a.out.display()))?;
        let lock = RunLock::acquire(&run, "train").map_err(anyhow::Error::from)?;
        (spec, run, false, true, lock)
    } else {
        return Err(anyhow::anyhow!("give --config FILE, --run-dir DIR or --resume DIR").into());
    };
    train_in(&spec, &run, resume, created, lock)
}

/// Lock a run directory given on the command line before reading or writing anything in it.
fn lock_existing(run: &RunDir) -> Result<RunLock, Failure> {
    if !run.config_toml().exists() {
        return Err(anyhow::anyhow!(
            "{} is not a run directory (no config.toml)",
            run.root().display()
        )
        .into());
    }
    Ok(RunLock::acquire(run, "train").map_err(anyhow::Error::from)?)
}

/// The runs of a grid config (`[grid]` table), or `None` for a plain config.
pub(super) fn grid_specs(cfg: &Path, sets: &[String]) -> Result<Option<Vec<RunSpec>>, Failure> {
    let text = std::fs::read_to_string(cfg).map_err(|e| ConfigError::Io {
        path: cfg.display().to_string(),
        message: e.to_string(),
    })?;
    let stem = cfg
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "grid".into());
    // `preset` axes name configs relative to the grid file's directory (e.g. configs/).
    let dir = cfg.parent().unwrap_or(Path::new("."));
    let loader = config::grid::presets_in(dir);
    Ok(config::grid::expand_with(
        &text,
        sets,
        &new_run_id(&stem),
        &loader,
    )?)
}

/// Train every run of a grid one after the other (the CLI's queue), each run after the run it
/// starts from (`train.init_from`, e.g. FRL after its seed's TRADES run); a signal or a failed
/// run stops the grid. Run ids are drawn first, so a run that starts from another records that
/// run's checkpoint path in its config.
fn train_grid(specs: &[RunSpec], out: &Path) -> Result<ExitCode, Failure> {
    let order = config::grid_init::dependency_order(specs)?;
    let mut specs: Vec<RunSpec> = order.iter().map(|&i| specs[i].clone()).collect();
    let runs: Vec<RunDir> = specs
        .iter()
        .map(|s| RunDir::new(out.join(new_run_id(&s.name))))
        .collect();
    crate::runs::deps::link_sources(&mut specs, &runs);
    eprintln!("grid: {} runs", specs.len());
    let mut code = ExitCode::SUCCESS;
    for (i, (spec, run)) in specs.iter().zip(&runs).enumerate() {
        eprintln!("grid run {}/{}: {}", i + 1, specs.len(), spec.name);
        // The paths were fixed above so that rows can name their sources' checkpoints.
        std::fs::create_dir_all(run.root())
            .with_context(|| format!("creating {}", run.root().display()))?;
        crate::runs::write_config(run, spec)?;
        let lock = RunLock::acquire(run, "train").map_err(anyhow::Error::from)?;
        code = train_in(spec, run, false, true, lock)?;
        if code != ExitCode::SUCCESS {
            eprintln!("grid stopped after run {}", i + 1);
            break;
        }
    }
    Ok(code)
}

/// The config of an existing run directory; a validation failure there (a hand-edited config)
/// is also recorded as a `finished: failed` event.
fn load_run_config(run: &RunDir, sets: &[String]) -> Result<RunSpec, Failure> {
    crate::runs::read_run_config(run, sets).map_err(|e| {
        // Record why in the run itself, so the dashboard shows it.
        if let Ok(mut w) = EventWriter::open(run) {
            let _ = w.append(&RunEvent::Finished {
                status: RunStatus::Failed,
                epochs_done: read_epochs_done(run),
                message: Some(e.to_string()),
            });
        }
        e.into()
    })
}

/// Run the trainer with signal handling, the JSONL writer and the progress bar; always end the
/// event log with a `finished` event.
fn train_in(
    spec: &RunSpec,
    run: &RunDir,
    resume: bool,
    created: bool,
    // Held until this function returns: no second process can write this run meanwhile.
    _lock: RunLock,
) -> Result<ExitCode, Failure> {
    // Before any tensor work: libtorch sizes its pools once.
    train::threads::configure(spec.train.threads);
    let device = train::device::select(spec.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    let scheduler_stop = install_signals(&stop)?;
    let _ = std::fs::remove_file(run.queued_marker());
    let _ = std::fs::remove_file(run.cancel_marker());
    let writer =
        EventWriter::open(run).with_context(|| format!("opening {}", run.events().display()))?;
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(writer), Box::new(ProgressSink::new())];
    let opts = TrainOptions {
        device,
        stop,
        resume,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train::train(spec, run, &opts, &mut sinks)
    }));
    let ending = Ending::of(result, run, scheduler_stop.load(Ordering::SeqCst));
    finish(ending, run, created, &mut sinks)
}

/// SIGINT and SIGTERM set `stop` (a second one exits at once); SIGUSR1, a scheduler's warning
/// before its time limit (Slurm `--signal=B:USR1@N`), stops the same way but as an interruption
/// to resume, not a cancel: the flag returned says that it came.
pub(super) fn install_signals(stop: &Arc<AtomicBool>) -> Result<Arc<AtomicBool>, Failure> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let scheduler_stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGUSR1, scheduler_stop.clone())?;
    signal_hook::flag::register(SIGUSR1, stop.clone())?;
    Ok(scheduler_stop)
}

/// How a run ended: what its `finished` event says and the process's exit status.
struct Ending {
    status: RunStatus,
    epochs_done: usize,
    message: Option<String>,
    code: u8,
}

impl Ending {
    /// The ending of the trainer's `result`; `interrupted` when the scheduler's SIGUSR1 stopped it.
    fn of(
        result: std::thread::Result<Result<Outcome, train::TrainError>>,
        run: &RunDir,
        interrupted: bool,
    ) -> Ending {
        let (status, epochs_done, message, code) = match result {
            Ok(Ok(Outcome::Finished { epochs_done })) => {
                (RunStatus::Finished, epochs_done, None, 0)
            }
            Ok(Ok(Outcome::Cancelled { epochs_done })) if interrupted => (
                RunStatus::Interrupted,
                epochs_done,
                Some(format!(
                    "stopped for the scheduler's time limit (SIGUSR1) after {epochs_done} finished epoch(s); \
                     resume continues from the last checkpoint"
                )),
                fairtat_core::runs::EXIT_RESUMABLE,
            ),
            Ok(Ok(Outcome::Cancelled { epochs_done })) => (
                RunStatus::Cancelled,
                epochs_done,
                Some(cancel_message(run, epochs_done)),
                130,
            ),
            Ok(Err(e)) => {
                let code = if matches!(e, train::TrainError::Data(_)) { 2 } else { 1 };
                (RunStatus::Failed, 0, Some(e.to_string()), code)
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                let message = format!("internal error: {}", msg.unwrap_or_default());
                (RunStatus::Failed, 0, Some(message), 1)
            }
        };
        Ending {
            status,
            epochs_done,
            message,
            code,
        }
    }
}

/// Record the ending as the run's `finished` event (a failed run that this command created and
/// that recorded nothing yet is removed instead) and turn it into the exit status.
fn finish(
    end: Ending,
    run: &RunDir,
    created: bool,
    sinks: &mut Vec<Box<dyn EventSink>>,
) -> Result<ExitCode, Failure> {
    let failed = end.status == RunStatus::Failed;
    let failure = |message: Option<String>| Failure {
        code: end.code,
        error: anyhow::anyhow!("{}", message.unwrap_or_default()),
    };
    if failed && created && !run.checkpoints().exists() {
        // Nothing was recorded yet: leave no half-made run behind.
        let _ = std::fs::remove_dir_all(run.root());
        return Err(failure(end.message));
    }
    let epochs_done = if failed {
        read_epochs_done(run)
    } else {
        end.epochs_done
    };
    sinks.emit(&RunEvent::Finished {
        status: end.status,
        epochs_done,
        message: end.message.clone(),
    });
    eprintln!("run directory: {}", run.root().display());
    if failed {
        return Err(failure(end.message));
    }
    Ok(ExitCode::from(end.code))
}

fn read_epochs_done(run: &RunDir) -> usize {
    train::ResumeState::load(&run.resume_state())
        .map(|s| s.epochs_done)
        .unwrap_or(0)
}

/// Who stopped the run: the dashboard's Cancel leaves a marker just before its SIGTERM.
fn cancel_message(run: &RunDir, epochs_done: usize) -> String {
    let who = if run.cancel_marker().exists() {
        "cancelled by you (Cancel on the dashboard or the API)"
    } else {
        "stopped by SIGINT/SIGTERM (Ctrl-C, kill or scancel outside the dashboard)"
    };
    format!(
        "{who} after {epochs_done} finished epoch(s); Resume continues from the last checkpoint"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_has_its_status_message_and_exit_code() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("run"));
        let end = |r, interrupted| Ending::of(r, &run, interrupted);
        let e = end(Ok(Ok(Outcome::Finished { epochs_done: 3 })), false);
        assert_eq!(
            (e.status, e.epochs_done, e.code),
            (RunStatus::Finished, 3, 0)
        );
        assert!(e.message.is_none());
        let e = end(Ok(Ok(Outcome::Cancelled { epochs_done: 1 })), true);
        assert_eq!(
            (e.status, e.code),
            (RunStatus::Interrupted, fairtat_core::runs::EXIT_RESUMABLE)
        );
        let e = end(Ok(Ok(Outcome::Cancelled { epochs_done: 1 })), false);
        assert_eq!((e.status, e.code), (RunStatus::Cancelled, 130));
        assert!(e.message.unwrap().contains("SIGINT/SIGTERM"));
        let e = end(Ok(Err(train::TrainError::Invalid("bad".into()))), false);
        assert_eq!((e.status, e.code), (RunStatus::Failed, 1));
        assert_eq!(e.message.as_deref(), Some("bad"));
        let e = end(Err(Box::new("boom")), false);
        assert_eq!(e.message.as_deref(), Some("internal error: boom"));
    }
}
