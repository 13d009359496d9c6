//! Start-up under `--executor slurm`: the jobs a previous server submitted are found again
//! from their run directories (`slurm/<job>.job`) and followed; a queued job whose id file is
//! missing (never written, or lost) is found by its comment (`fairtat:<run id>`), or, for a
//! grid's array task, through the array's map (`slurm_arrays`), rather than submitted twice.
//! Queued jobs with none of these are submitted.

use std::collections::{HashMap, HashSet};

use super::slurm::follow_job;
use super::slurm_arrays::{read_maps, tasks_by_run};
use super::slurm_files::{job_file, job_files, read_job_file, write_job_file};
use super::{adopt, pump, push};
use crate::jobs::{markers, Job, JobKind};
use crate::scan::Loaded;
use crate::slurm::{cli, JobId, Snapshot};
use crate::state::AppState;
use fairtat_core::config::DeviceSpec;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

pub async fn restore(st: &AppState, loaded: Vec<Loaded>) {
    // Slurm unreachable: the maps' job ids still say which array task trains which run.
    let snap = match tokio::task::spawn_blocking(cli::squeue).await {
        Ok(Ok(snap)) => Some(snap),
        Ok(Err(err)) => {
            tracing::warn!(cause = %err, "Slurm did not answer at start-up");
            None
        }
        Err(_) => None,
    };
    let found = Found {
        by_comment: by_comment(snap.as_ref()),
        alive: alive(snap.as_ref()),
        tasks: array_tasks(st, &loaded, snap).await,
    };
    for l in loaded {
        restore_run(st, &l, &found);
    }
    pump(st);
}

/// Where the jobs of runs without a job file are: single jobs by their comment
/// (`fairtat:<run id>`), array tasks through the arrays' maps.
struct Found {
    by_comment: HashMap<String, JobId>,
    /// Jobs that Slurm says are pending or running.
    alive: HashSet<JobId>,
    tasks: HashMap<RunId, JobId>,
}

fn live_jobs(snap: Option<&Snapshot>) -> impl Iterator<Item = (&JobId, &String)> {
    snap.into_iter()
        .flatten()
        .filter(|(_, (state, _))| !state.is_terminal())
        .map(|(id, (_, c))| (id, c))
}

fn by_comment(snap: Option<&Snapshot>) -> HashMap<String, JobId> {
    live_jobs(snap)
        .filter_map(|(id, c)| Some((c.strip_prefix("fairtat:")?.to_string(), id.clone())))
        .collect()
}

fn alive(snap: Option<&Snapshot>) -> HashSet<JobId> {
    live_jobs(snap).map(|(id, _)| id.clone()).collect()
}

/// A run whose training job may live in Slurm without its id file: queued for a fresh
/// start, or started (its trainer removed the `queued` marker) without a final line yet.
fn may_have_lost_job(l: &Loaded) -> bool {
    (l.queued == Some(JobKind::Train) || started_unended(l))
        && !job_file(&l.dir, &JobKind::Train).exists()
}

/// Not queued, and the log's last line is not a final one: a trainer started and has not
/// ended (the scan calls it interrupted unless this host sees it hold the run's lock).
fn started_unended(l: &Loaded) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    if l.queued.is_some() || l.summary.status == RunStatus::Finished {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(l.dir.events()) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut tail = Vec::new();
    let read = f
        .seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))
        .and_then(|_| f.read_to_end(&mut tail));
    let text = String::from_utf8_lossy(&tail);
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    read.is_ok() && last.is_some_and(|l| !l.contains(r#""type":"finished""#))
}

/// The array tasks of runs whose fresh training job has no job file; the maps are read only
/// when there is such a run.
async fn array_tasks(
    st: &AppState,
    loaded: &[Loaded],
    snap: Option<Snapshot>,
) -> HashMap<RunId, JobId> {
    if !loaded.iter().any(may_have_lost_job) {
        return HashMap::new();
    }
    let folder = st.runs_dir().join(".slurm");
    tokio::task::spawn_blocking(move || tasks_by_run(&read_maps(&folder), snap.as_ref()))
        .await
        .unwrap_or_default()
}

fn restore_run(st: &AppState, l: &Loaded, found: &Found) {
    let Some(run) = l.dir.run_id() else { return };
    let mut followed: Vec<JobKind> = Vec::new();
    for name in job_files(&l.dir) {
        if let Some((id, kind, seq)) = read_job_file(&l.dir, &name) {
            followed.push(kind);
            follow_job(st, &job(&l.dir, &run, kind), id, seq, true);
        }
    }
    let same = |a: &JobKind, b: &JobKind| a == b || (!is_eval(a) && !is_eval(b));
    let mut queued: Vec<JobKind> = l.queued.into_iter().collect();
    queued.extend(
        markers::read_evals(&l.dir)
            .into_iter()
            .map(JobKind::Evaluate),
    );
    for kind in queued {
        if followed.iter().any(|f| same(f, &kind)) {
            continue;
        }
        if let Some(id) = lost_job(found, &run, &kind) {
            recover(st, l, &run, kind, id);
            followed.push(kind);
            continue;
        }
        push(st, run.clone(), kind);
    }
    if followed.is_empty() && started_unended(l) {
        // A started trainer whose id file is gone: its task still runs somewhere.
        if let Some(id) = running_job(found, &run) {
            recover(st, l, &run, JobKind::Train, id);
            followed.push(JobKind::Train);
        }
    }
    if let (true, Some(owner)) = (followed.is_empty(), &l.owner) {
        // `fairtat train` started from a shell on this host, outside Slurm.
        adopt(st, &l.dir, &run, owner, l.summary.clone());
    }
}

/// Follow job `id`, found without its id file, and write that file again, so the next start
/// finds the job the plain way.
fn recover(st: &AppState, l: &Loaded, run: &RunId, kind: JobKind, id: JobId) {
    let seq = fairtat_core::runs::reader::last_seq(&l.dir.events());
    if let Err(err) = write_job_file(&l.dir, &kind, &id, seq) {
        tracing::warn!(run = %run, cause = %err, "cannot record the Slurm job id");
    }
    tracing::info!(run = %run, job = %id, "found the Slurm job of a run without its id file");
    follow_job(st, &job(&l.dir, run, kind), id, seq, true);
}

/// The live job of a started run: its single job, or its array task while Slurm lists that
/// task as pending or running (an ended task is an earlier job's, not this trainer's).
fn running_job(found: &Found, run: &RunId) -> Option<JobId> {
    let single = found.by_comment.get(run.as_str()).cloned();
    let task = || found.tasks.get(run).filter(|id| found.alive.contains(*id));
    single.or_else(|| task().cloned())
}

/// The job of a queued training job whose id file is missing: a single job by its comment,
/// else (a fresh run only: arrays train fresh runs) the array task its map names.
fn lost_job(found: &Found, run: &RunId, kind: &JobKind) -> Option<JobId> {
    if is_eval(kind) {
        return None;
    }
    let single = found.by_comment.get(run.as_str()).cloned();
    let task = || (*kind == JobKind::Train).then(|| found.tasks.get(run).cloned())?;
    single.or_else(task)
}

fn is_eval(kind: &JobKind) -> bool {
    matches!(kind, JobKind::Evaluate(_))
}

/// A job found again: its device from the run's config (what Slurm was asked for).
fn job(dir: &RunDir, run: &RunId, kind: JobKind) -> Job {
    Job {
        // Slurm places jobs by `--gres`; nothing is packed here.
        gpu_mib: 0,
        run: run.clone(),
        kind,
        device: crate::scan::read_spec(dir).map_or(DeviceSpec::Auto, |s| s.device),
        needs_source: false,
    }
}
