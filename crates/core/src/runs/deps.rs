//! Runs that start from another run's checkpoint (`train.init_from_run`, set by grid expansion:
//! FRL fine-tunes the same seed's TRADES run). Whoever starts runs (the CLI grid, the server's
//! executor) asks [`dependency_state`] before starting one; the trainer asks [`find_source`] for
//! the checkpoint. Plain file reads, no tch, no tokio: cheap enough to call on every queue tick
//! (one `config.toml` per run directory, one `events.jsonl`).

use std::path::{Path, PathBuf};

use super::events::{RunEvent, RunStatus};
use super::layout::RunDir;
use super::reader::read_events;
use crate::config::grid::grid_of;
use crate::config::RunSpec;

/// Whether a run may start as far as its source run is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencyState {
    /// Nothing to wait for: no source run, or it finished and left this checkpoint (`None`
    /// when the run needs no source).
    Ready(Option<PathBuf>),
    /// The source run (this id) has not finished yet (queued, running, or resumed).
    Waiting(String),
    /// The source run failed, was cancelled, left no checkpoint, or does not exist: this run
    /// cannot start until the cause is fixed (the message says which).
    Failed(String),
}

/// The run directory `spec` starts from: the directory of `train.init_checkpoint` when that is
/// `<runs>/<id>/checkpoints/<kind>.safetensors`, else the run under `runs_dir` named
/// `train.init_from_run` in the same grid. `None` when the spec names no source run, or none
/// matches.
pub fn find_source(runs_dir: &Path, spec: &RunSpec) -> Option<RunDir> {
    let want = spec.train.init_from_run.trim();
    if want.is_empty() {
        return None;
    }
    let ck = Path::new(spec.train.init_checkpoint.trim());
    if let Some(dir) = ck.parent().and_then(Path::parent) {
        let run = RunDir::new(dir);
        if run_name_and_grid(&run).is_some_and(|(n, _)| n == want) {
            return Some(run);
        }
    }
    let grid = grid_of(&spec.tags);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(RunDir::new)
        .find(|run| run_name_and_grid(run).is_some_and(|(n, g)| n == want && g.as_deref() == grid))
}

/// Where `spec`'s source run stands. Pure file reads (for the executor, before it starts a
/// queued run): no source run -> `Ready(None)`; source finished with `checkpoints/last` ->
/// `Ready(Some(path))`; no final event yet -> `Waiting(id)`; otherwise `Failed(reason)`.
pub fn dependency_state(runs_dir: &Path, spec: &RunSpec) -> DependencyState {
    let want = spec.train.init_from_run.trim();
    if want.is_empty() {
        return DependencyState::Ready(None);
    }
    let Some(src) = find_source(runs_dir, spec) else {
        return DependencyState::Failed(format!(
            "train.init_from_run = {want:?}: no run of that name in this grid under {}",
            runs_dir.display()
        ));
    };
    match last_outcome(&src) {
        None => DependencyState::Waiting(src.id()),
        Some((RunStatus::Finished, _)) => {
            let ck = src.checkpoint(crate::runs::CheckpointKind::Last);
            if ck.is_file() {
                DependencyState::Ready(Some(ck))
            } else {
                DependencyState::Failed(format!(
                    "source run {} finished without {}",
                    src.id(),
                    ck.display()
                ))
            }
        }
        Some((status, message)) => DependencyState::Failed(format!(
            "source run {} is {}{}",
            src.id(),
            status.as_str(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )),
    }
}

/// Point `train.init_checkpoint` of each spec with a `train.init_from_run` at that run's
/// `checkpoints/last.safetensors` (`runs[i]` is the directory chosen for `specs[i]`), as an
/// absolute path, so the saved config says where the run starts from. Whoever creates a grid's
/// run directories calls this before writing their configs; a spec left unlinked still finds
/// its source by name ([`find_source`]).
pub fn link_sources(specs: &mut [RunSpec], runs: &[RunDir]) {
    for i in 0..specs.len() {
        let want = specs[i].train.init_from_run.clone();
        if want.is_empty() || !specs[i].train.init_checkpoint.is_empty() {
            continue;
        }
        if let Some(j) = specs.iter().position(|s| s.name == want) {
            let ck = runs[j].checkpoint(crate::runs::CheckpointKind::Last);
            let ck = std::path::absolute(&ck).unwrap_or(ck);
            specs[i].train.init_checkpoint = ck.display().to_string();
        }
    }
}

/// The status of the last `finished` event, unless the run started again after it; `None`
/// while it has not finished (or never started).
fn last_outcome(run: &RunDir) -> Option<(RunStatus, Option<String>)> {
    let events = read_events(&run.events()).ok()?;
    let mut last = None;
    for line in events {
        match line.event {
            RunEvent::Started { .. } => last = None,
            RunEvent::Finished {
                status, message, ..
            } => last = Some((status, message)),
            _ => {}
        }
    }
    last
}

/// `name` and the `grid:` tag from a run directory's `config.toml`, read as plain TOML (no
/// validation: a run of an older schema still has a name).
fn run_name_and_grid(run: &RunDir) -> Option<(String, Option<String>)> {
    let text = super::safe_fs::read_text(run, "config.toml", super::safe_fs::TEXT_CAP).ok()?;
    let table: toml::Table = text.parse().ok()?;
    let name = table.get("name")?.as_str()?.to_string();
    let tags: Vec<String> = table
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some((name, grid_of(&tags).map(str::to_string)))
}
