//! Start-up: rebuild the index from the run directories, adopt the processes that still own
//! their runs, re-queue what has a queue marker, and keep picking up runs started from a shell.

use std::time::Duration;

use super::adopt;
use crate::scan;
use crate::state::AppState;
use crate::ServeOptions;

/// How often the runs directory is rescanned for runs started outside the server.
const RESCAN_EVERY: Duration = Duration::from_secs(3);

/// Open the index, rebuild it from the run directories, re-queue queued jobs, follow processes
/// that still hold their run's lock, mark the other unfinished runs interrupted, and start what
/// fits. Must be called inside a tokio runtime.
pub async fn start(opts: ServeOptions) -> anyhow::Result<AppState> {
    let state = AppState::new(&opts)?;
    let runs_dir = opts.runs_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        scan::run_dirs(&runs_dir)
            .iter()
            .map(scan::load)
            .collect::<Vec<_>>()
    })
    .await?;
    let present: std::collections::HashSet<String> =
        loaded.iter().map(|l| l.summary.id.clone()).collect();
    for id in state.index().ids()? {
        if !present.contains(&id) {
            state.index().remove(&id)?;
        }
    }
    for l in &loaded {
        state.index().set_meta(&l.summary.id, &l.meta)?;
        state.index().upsert(&l.summary)?;
    }
    tracing::info!(runs = loaded.len(), "index rebuilt from run directories");
    super::backend(&state).restore(&state, loaded).await;
    spawn_rescan(&state);
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
            let known: std::collections::HashSet<String> = state
                .index()
                .ids()
                .unwrap_or_default()
                .into_iter()
                .collect();
            let runs_dir = state.runs_dir().to_path_buf();
            let found = tokio::task::spawn_blocking(move || {
                scan::run_dirs(&runs_dir)
                    .into_iter()
                    .filter(|d| !known.contains(&d.id()))
                    // Directories the server is creating right now have no events yet.
                    .filter(|d| d.events().exists() || d.lock_file().exists())
                    .map(|d| scan::load(&d))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for l in found {
                let Some(run) = l.dir.run_id() else { continue };
                if state.jobs().lock().active(&run) {
                    continue;
                }
                tracing::info!(run = %run, "found a run started outside the server");
                if let Err(e) = state.index().set_meta(&l.summary.id, &l.meta) {
                    tracing::warn!(cause = %e, run = %run, "index update failed");
                }
                state.index_summary(&l.summary);
                if let Some(owner) = &l.owner {
                    adopt(&state, &l.dir, &run, owner, l.summary.clone());
                }
            }
        }
    });
}
