//! Reading run directories from the server's side: the summary of a run, plus what only the
//! server can decide (queued, running in a live process, or interrupted).
//!
//! Plain std I/O; callers on the async runtime use `spawn_blocking` for whole-directory scans.

use std::path::Path;

use super::jobs::{markers, JobKind};
use fairtat_core::config::gpu_memory::{self, Work};
use fairtat_core::config::{ConfigError, DeviceSpec, RunSpec};
use fairtat_core::runs::lock::{self, LockOwner};
use fairtat_core::runs::meta::RunMeta;
use fairtat_core::runs::reader::Tailer;
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{is_valid_run_id, EventLine, RunDir, RunStatus};

/// A run as found on disk.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub dir: RunDir,
    pub summary: RunSummary,
    /// The training job its `queued` marker asks for (the status is then `Queued`).
    pub queued: Option<JobKind>,
    /// The process holding the run's lock right now (a trainer or an evaluation).
    pub owner: Option<LockOwner>,
    /// The user's edits (`meta.json`), already applied to `summary`.
    pub meta: RunMeta,
}

/// Every directory under `runs_dir` whose name is a valid run id, sorted by id (oldest first,
/// since ids start with a timestamp).
pub fn run_dirs(runs_dir: &Path) -> Vec<RunDir> {
    let mut out: Vec<RunDir> = match std::fs::read_dir(runs_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter(|e| is_valid_run_id(&e.file_name().to_string_lossy()))
            .map(|e| RunDir::new(e.path()))
            .filter(|d| d.config_toml().exists() || d.events().exists())
            .collect(),
        Err(_) => vec![],
    };
    out.sort_by_key(|d| d.id());
    out
}

/// All readable event lines; a corrupt line is logged and skipped rather than hiding the run.
pub fn read_all_events(dir: &RunDir) -> Vec<EventLine> {
    let mut tailer = Tailer::new(dir.events());
    let mut out = Vec::new();
    // Each error skips one line, so this terminates; the bound guards against a pathological file.
    for _ in 0..10_000 {
        match tailer.poll() {
            Ok(v) if v.is_empty() => break,
            Ok(v) => out.extend(v),
            Err(err) => tracing::warn!(run = %dir.id(), cause = %err, "skipping an event line"),
        }
    }
    out
}

/// The validated spec of the run directory: its `config.toml`, as the trainer reads it.
pub fn read_spec(dir: &RunDir) -> Option<RunSpec> {
    read_spec_with(dir, &[]).ok()
}

/// The run's spec with `sets` (`key=value`, as `--set` takes them) applied, each value checked
/// as the config's own key; why not, when the config cannot be read or a value is refused.
pub fn read_spec_with(dir: &RunDir, sets: &[String]) -> Result<RunSpec, ConfigError> {
    let text = safe_fs::read_text(dir, "config.toml", safe_fs::TEXT_CAP)
        .map_err(|e| ConfigError::invalid("config.toml", e.to_string()))?;
    fairtat_core::config::from_toml_str(&text, sets)
}

/// What a job on this run asks of the executor, from the run's config: its device and the GPU
/// memory it is expected to hold (`auto` and 0 when the config cannot be read: it then counts
/// as one job, unpacked).
pub fn job_needs(dir: &RunDir, work: Work) -> (DeviceSpec, u64) {
    read_spec(dir).map_or((DeviceSpec::Auto, 0), |s| {
        (s.device, gpu_memory::estimate_mib(&s, work))
    })
}

/// A summary for a run that has not started yet: what its spec says.
pub fn summary_from_spec(dir: &RunDir, spec: &RunSpec) -> RunSummary {
    let mut s = RunSummary::empty(dir);
    fill_from_spec(&mut s, spec);
    s
}

/// Fill what a `started` line would say (a trainer that wrote no spec leaves these empty).
pub fn fill_from_spec(s: &mut RunSummary, spec: &RunSpec) {
    s.name = spec.name.clone();
    s.method = spec.method.name.as_str().to_string();
    s.dataset = spec.data.dataset.as_str().to_string();
    s.arch = spec.model.arch.as_str().to_string();
    s.tags = spec.tags.clone();
    s.epochs_total = spec.train.epochs;
}

/// Fold every readable line into a summary, a bounded chunk at a time (a 48 MB log is never
/// held in memory at once); a corrupt line is logged and skipped.
fn summary_from_log(dir: &RunDir) -> RunSummary {
    let mut summary = RunSummary::empty(dir);
    let mut tailer = Tailer::new(dir.events());
    for _ in 0..1_000_000 {
        let before = tailer.offset();
        match tailer.poll() {
            Ok(v) => v.iter().for_each(|l| summary.apply(l)),
            Err(err) => tracing::warn!(run = %dir.id(), cause = %err, "skipping an event line"),
        }
        if tailer.offset() == before {
            break;
        }
    }
    summary
}

/// Load one run: events folded into a summary, then the server-side status.
pub fn load(dir: &RunDir) -> Loaded {
    let mut summary = summary_from_log(dir);
    if summary.method.is_empty() {
        if let Some(spec) = read_spec(dir) {
            fill_from_spec(&mut summary, &spec);
        }
    }
    let queued = markers::read_train(dir);
    let owner = lock::probe(dir);
    if queued.is_some() {
        summary.status = RunStatus::Queued;
    } else if !summary.status.is_terminal() && owner.as_ref().is_none_or(|o| o.what != "train") {
        mark_interrupted(&mut summary, None);
    }
    let meta = RunMeta::read(dir);
    meta.apply(&mut summary);
    Loaded {
        dir: dir.clone(),
        summary,
        queued,
        owner,
        meta,
    }
}

/// The trainer is gone without a `Finished` line.
pub fn mark_interrupted(summary: &mut RunSummary, detail: Option<String>) {
    summary.status = RunStatus::Interrupted;
    summary.eta_secs = None;
    summary.message = Some(detail.unwrap_or_else(|| {
        "the trainer process is gone without a final event; resume continues from the last checkpoint"
            .to_string()
    }));
}

/// Whether a run in this state can be resumed from its last checkpoint.
pub fn resumable(s: &RunSummary) -> bool {
    matches!(
        s.status,
        RunStatus::Interrupted | RunStatus::Failed | RunStatus::Cancelled
    )
}

/// Whether `fairtat train --resume` would work: a resumable state and the checkpoint state file
/// the trainer restores from (a run that failed before its first checkpoint has none).
pub fn can_resume(dir: &RunDir, s: &RunSummary) -> bool {
    resumable(s) && dir.resume_state().exists()
}
