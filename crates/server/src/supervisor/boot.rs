//! Start-up: pick the backend, rebuild the index from the run directories, let the backend
//! find again what a previous server left running and re-queue what has a queue marker, and
//! keep picking up runs started from a shell.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::local::Local;
use super::slurm::Slurm;
use super::{adopt, pump};
use crate::jobs::Executor;
use crate::process::detect_gpus;
use crate::scan;
use crate::state::{AppState, Backend};
use crate::ServeOptions;

/// How often the runs directory is rescanned for runs started outside the server.
const RESCAN_EVERY: Duration = Duration::from_secs(3);

/// Open the index, rebuild it from the run directories, re-queue queued jobs, follow processes
/// that still hold their run's lock, mark the other unfinished runs interrupted, and start what
/// fits. Must be called inside a tokio runtime.
pub async fn start(opts: ServeOptions) -> anyhow::Result<AppState> {
    let state = tokio::task::spawn_blocking(move || open(&opts)).await??;
    spawn_rescan(&state);
    Ok(state)
}

/// The blocking part of [`start`].
fn open(opts: &ServeOptions) -> anyhow::Result<AppState> {
    let (jobs, backend): (Executor, Arc<dyn Backend>) = match &opts.slurm {
        Some(o) => (Executor::scheduled(), Arc::new(Slurm::new(o.clone()))),
        None => {
            let gpus = detect_gpus();
            let jobs = Executor::new(gpus, opts.max_cpu_runs.max(1));
            (jobs, Arc::new(Local::new(gpus)))
        }
    };
    let state = AppState::new(opts, jobs, backend)?;
    let loaded: Vec<_> = scan::run_dirs(&opts.runs_dir)
        .iter()
        .map(scan::load)
        .collect();
    let present: HashSet<&str> = loaded.iter().map(|l| l.summary.id.as_str()).collect();
    for id in state.index().ids()? {
        if !present.contains(id.as_str()) {
            state.index().remove(&id)?;
        }
    }
    for l in &loaded {
        state.index().upsert(&l.summary)?;
    }
    tracing::info!(runs = loaded.len(), "index rebuilt from run directories");
    state.backend().restore(&state, loaded);
    pump(&state);
    Ok(state)
}

/// Every few seconds, pick up run directories that appeared without the server (runs
/// started with `fairtat train` from a shell) and follow them if their trainer is alive.
fn spawn_rescan(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = state.shutdown_token().cancelled() => return,
                _ = tokio::time::sleep(RESCAN_EVERY) => {}
            }
            state.blocking(rescan).await;
        }
    });
}

fn rescan(state: &AppState) {
    let known: HashSet<String> = state.index().ids().unwrap_or_default().into_iter().collect();
    let found = scan::run_dirs(&state.runs_dir())
        .into_iter()
        .filter(|d| !known.contains(&d.id()))
        // Directories the server is creating right now have no events yet.
        .filter(|d| d.events().exists() || d.lock_file().exists())
        .map(|d| scan::load(&d));
    for l in found {
        let Some(run) = l.dir.run_id() else { continue };
        if state.jobs().lock().active(&run) {
            continue;
        }
        tracing::info!(run = %run, "found a run started outside the server");
        state.index_summary(&l.summary);
        if let Some(owner) = &l.owner {
            let device = l.summary.device.clone();
            adopt(state, &l.dir, &run, owner, &device, l.summary.clone());
        }
    }
}
