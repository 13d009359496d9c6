//! `--executor slurm`: jobs leave the queue as `sbatch` submissions instead of child processes.
//! Each job's batch script and id live in its run directory (`slurm/<job>.sh`,
//! `slurm/<job>.job`; `slurm/history.log` keeps every submission and end), so a restarted
//! server finds its jobs again (`slurm_boot`). The scheduler's state comes from the poller
//! (`slurm_poll`); a run's progress comes from `events.jsonl` as with local jobs.
//!
//! Submission runs on a blocking thread (`sbatch` talks to the controller). Fresh training
//! jobs taken from the queue together become one job array (a grid), with the configured
//! concurrency limit.

use std::sync::Arc;

use tokio::sync::watch;

use super::slurm_arrays::{task_note, write_map, ArrayMap};
use super::slurm_files::{
    forget_ended_arrays, history, job_file, job_label, job_name, read_job_file, slurm_dir,
    write_job_file,
};
use super::{follow, history_seq, job_ended, record_failure};
use crate::follower::Liveness;
use crate::jobs::scheduler::{Ended, Scheduler};
use crate::jobs::{eval_slurm, markers, Job, JobKind};
use crate::process::append_finished;
use crate::slurm::script::{Script, Task};
use crate::slurm::{cli, JobId, Resources, SlurmError};
use crate::state::AppState;
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

pub(super) fn sched(st: &AppState) -> &Arc<Scheduler> {
    st.scheduler().expect("the Slurm executor has a scheduler")
}

/// What `job` asks of Slurm: its run's `[slurm]` (with an evaluation's own settings over it)
/// over the server's defaults (a run whose config cannot be read gets the defaults; a limit
/// lowered since it was queued refuses it).
fn resources(st: &AppState, job: &Job) -> Result<Resources, SlurmError> {
    let dir = st.run_dir(&job.run);
    let sets = match &job.kind {
        JobKind::Evaluate(key) => eval_slurm::read(&dir, key),
        _ => Vec::new(),
    };
    let spec = crate::scan::read_spec_with(&dir, &sets)
        .map(|s| s.slurm)
        .unwrap_or_default();
    sched(st)
        .opts
        .resources(&spec, job.device, job.gpu_mib)
        .map_err(|e| SlurmError::Refused(e.to_string()))
}

/// Submit the jobs the pump took, on a blocking thread (`sbatch` talks to the controller).
pub(super) fn submit_batch(st: &AppState, batch: Vec<Job>) {
    let (fresh, other): (Vec<Job>, Vec<Job>) =
        batch.into_iter().partition(|j| j.kind == JobKind::Train);
    // Fresh runs that ask the same of Slurm become one array (its options are the job's).
    let mut groups: Vec<(Resources, Vec<Job>)> = Vec::new();
    for job in fresh {
        match resources(st, &job) {
            Err(err) => refused(st, &job, &err),
            Ok(r) => match groups.iter_mut().find(|(g, _)| *g == r) {
                Some((_, jobs)) => jobs.push(job),
                None => groups.push((r, vec![job])),
            },
        }
    }
    for (res, group) in groups {
        match group.len() {
            1 => submit_one(st, &group[0]),
            _ => submit_array(st, &group, res),
        }
    }
    for job in &other {
        submit_one(st, job);
    }
}

fn script_for(st: &AppState, job: &Job) -> Result<Script, SlurmError> {
    let res = resources(st, job)?;
    let dir = st.run_dir(&job.run);
    let (task, output) = match &job.kind {
        JobKind::Train => (Task::Train(dir.root().to_path_buf()), dir.log()),
        JobKind::Resume => (Task::Resume(dir.root().to_path_buf()), dir.log()),
        JobKind::Evaluate(key) => {
            let out = markers::eval_dir(&dir, key);
            safe_fs::create_dir_all(&dir, markers::eval_rel(key)).map_err(|e| SlurmError::Io {
                command: "sbatch",
                cause: e.into(),
            })?;
            let task = Task::Eval {
                dir: dir.root().to_path_buf(),
                suite: key.suite.as_str().to_string(),
                model: key.model.as_str().to_string(),
            };
            (task, out.join("eval.log"))
        }
    };
    Ok(Script {
        task,
        name: job_name(&job.kind, &job.run.to_string()),
        comment: format!("fairtat:{}", job.run),
        output,
        res,
    })
}

/// Write the script and submit it; the scheduler's refusal fails the job with its message.
fn submit_one(st: &AppState, job: &Job) {
    let dir = st.run_dir(&job.run);
    let label = job_label(&job.kind);
    let script_path = slurm_dir(&dir).join(format!("{label}.sh"));
    let result = script_for(st, job).and_then(|s| {
        let text = s.render(&sched(st).opts, st.trainer());
        safe_fs::create_dir_all(&dir, "slurm")
            .and_then(|_| safe_fs::write(&dir, format!("slurm/{label}.sh"), text.as_bytes()))
            .map_err(|e| SlurmError::Io {
                command: "sbatch",
                cause: e.into(),
            })?;
        cli::sbatch(&script_path)
    });
    match result {
        Ok(id) => submitted(st, job, id, ""),
        Err(err) => refused(st, job, &err),
    }
}

/// A grid's fresh runs as one job array: task `i` trains `jobs[i]`. The index-to-run map is
/// written before `sbatch` and completed with the job id after it (`slurm_arrays`).
fn submit_array(st: &AppState, jobs: &[Job], res: Resources) {
    let folder = st.runs_dir().join(".slurm");
    let first = &jobs[0].run;
    let mut map = ArrayMap {
        key: first.to_string(),
        job: None,
        runs: jobs.iter().map(|j| j.run.clone()).collect(),
    };
    let script = Script {
        task: Task::Array(
            jobs.iter()
                .map(|j| st.run_dir(&j.run).root().to_path_buf())
                .collect(),
        ),
        name: format!("fairtat-grid-{}", jobs.len()),
        comment: map.comment(),
        output: folder.join(format!("grid-{first}-%a.out")),
        res,
    };
    let path = folder.join(format!("grid-{first}.sh"));
    let io = |e| SlurmError::Io {
        command: "sbatch",
        cause: e,
    };
    let result = write_map(&folder, &map)
        .and_then(|_| std::fs::write(&path, script.render(&sched(st).opts, st.trainer())))
        .map_err(io)
        .and_then(|_| cli::sbatch(&path));
    match result {
        Ok(base) => {
            map.job = Some(base.clone());
            if let Err(err) = write_map(&folder, &map) {
                // The comment still names the map: a restart finds the tasks through squeue.
                tracing::error!(job = %base, cause = %err, "cannot record the array's job id");
            }
            for (i, job) in jobs.iter().enumerate() {
                let note = task_note(i, &map.key);
                submitted(st, job, format!("{base}_{i}"), &note);
            }
        }
        Err(err) => jobs.iter().for_each(|j| refused(st, j, &err)),
    }
}

fn refused(st: &AppState, job: &Job, err: &SlurmError) {
    tracing::error!(run = %job.run, cause = %err, "sbatch failed");
    record_failure(st, job, &format!("sbatch: {err}"));
    job_ended(st, &job.run);
}

/// Record job `id` in the run directory, follow it, and say so in the index; `note` ends the
/// history line (an array task's index and array).
fn submitted(st: &AppState, job: &Job, id: JobId, note: &str) {
    let dir = st.run_dir(&job.run);
    let seq = history_seq(&dir, &job.kind);
    if let Err(err) = write_job_file(&dir, &job.kind, &id, seq) {
        tracing::error!(run = %job.run, cause = %err, "cannot record the Slurm job id");
    }
    let line = format!("submitted {} job {id} {note}", job.kind.label());
    history(&dir, line.trim_end());
    tracing::info!(run = %job.run, job = %id, kind = %job.kind.label(), "submitted to Slurm");
    follow_job(st, job, id, seq, false);
}

/// Track job `id` and start its watcher (a submission, or a job found again at start-up).
pub fn follow_job(st: &AppState, job: &Job, id: JobId, seq: Option<u64>, adopted: bool) {
    let rx = sched(st).track(&job.run, id.clone(), job.kind);
    st.jobs().lock().start_scheduled(job.clone());
    if !matches!(job.kind, JobKind::Evaluate(_)) {
        super::say(
            st,
            &job.run,
            RunStatus::Queued,
            format!("Slurm job {id}: submitted"),
            adopted,
        );
    }
    let (st, job) = (st.clone(), job.clone());
    let handle = tokio::runtime::Handle::current();
    handle.spawn(async move {
        match job.kind {
            JobKind::Evaluate(_) => watch_eval(&st, &job, rx).await,
            _ => watch_train(&st, &job, rx, seq).await,
        }
    });
}

async fn watch_train(
    st: &AppState,
    job: &Job,
    rx: watch::Receiver<Option<Ended>>,
    mut seq: Option<u64>,
) {
    let dir = st.run_dir(&job.run);
    let end = loop {
        if !follow(st, dir.clone(), Liveness::Scheduler(rx.clone()), seq).await {
            return; // shutdown: the job goes on; the next server finds it again
        }
        // The run's final line. Slurm's verdict may come a poll later, or Slurm runs the job
        // again (requeue): then its trainer starts anew and is followed again.
        match end_or_restart(st, &job.run, &dir, rx.clone()).await {
            Next::Ended(end) => break Some(end),
            Next::Done => break None,
            Next::Restarted(last) => {
                let line = "started again under the same job id (requeued by Slurm)";
                let d = dir.clone();
                let _ = tokio::task::spawn_blocking(move || history(&d, line)).await;
                seq = Some(last);
            }
            Next::Shutdown => return,
        }
    };
    let st2 = st.clone();
    let job2 = job.clone();
    let _ = tokio::task::spawn_blocking(move || {
        settle_train(&st2, &job2, end);
        job_ended(&st2, &job2.run);
        super::slurm_poll::maybe_requeue(&st2, &job2.run);
    })
    .await;
}

enum Next {
    Ended(Ended),
    /// The run finished or failed: the job only exits now (the poller still records how).
    Done,
    /// A new `started` line after the one-time final line (seq of that final line).
    Restarted(u64),
    Shutdown,
}

async fn end_or_restart(
    st: &AppState,
    run: &RunId,
    dir: &RunDir,
    mut rx: watch::Receiver<Option<Ended>>,
) -> Next {
    let last = fairtat_core::runs::reader::last_seq(&dir.events()).unwrap_or(0);
    // A finished or failed run is done (a Slurm requeue kills the trainer, which then ends
    // `cancelled`); a cancelled or interrupted one waits for Slurm's word: time limit, requeue.
    sched(st).wake.notify_one();
    let status = st.index().get(run).ok().flatten().map(|s| s.status);
    if matches!(status, Some(RunStatus::Finished | RunStatus::Failed)) {
        return Next::Done;
    }
    loop {
        if let Some(e) = rx.borrow().clone() {
            return Next::Ended(e);
        }
        let now = fairtat_core::runs::reader::last_seq(&dir.events()).unwrap_or(0);
        if now > last {
            return Next::Restarted(last);
        }
        tokio::select! {
            _ = st.shutdown_token().cancelled() => return Next::Shutdown,
            _ = tokio::time::sleep(st.poll() * 5) => {}
            r = rx.changed() => if r.is_err() {
                return rx.borrow().clone().map_or(Next::Shutdown, Next::Ended);
            },
        }
    }
}

/// After a training job: a trainer that Slurm stopped with SIGTERM at its time limit (no
/// warning signal) wrote `cancelled`; the run is interrupted, not cancelled by its user.
fn settle_train(st: &AppState, job: &Job, end: Option<Ended>) {
    let dir = st.run_dir(&job.run);
    let user_cancel = st
        .jobs()
        .lock()
        .running(&job.run)
        .is_some_and(|r| r.cancel_requested);
    if let Some(end) = &end {
        let summary = st.refresh(&job.run);
        let cancelled = summary
            .as_ref()
            .is_some_and(|s| s.status == RunStatus::Cancelled);
        if end.state.resumable() && cancelled && !user_cancel {
            let done = summary.map_or(0, |s| s.epochs_done);
            append_finished(
                &dir,
                RunStatus::Interrupted,
                done,
                format!("{}; resume continues from the last checkpoint", end.why),
            );
        }
    }
    markers::remove(&dir, &job.kind);
    let task = read_job_file(&dir, "train.job").is_some_and(|(id, _, _)| id.contains('_'));
    let _ = std::fs::remove_file(job_file(&dir, &job.kind));
    st.refresh(&job.run);
    if task {
        forget_ended_arrays(st);
    }
}

async fn watch_eval(st: &AppState, job: &Job, mut rx: watch::Receiver<Option<Ended>>) {
    let end = loop {
        if let Some(e) = rx.borrow().clone() {
            break e;
        }
        tokio::select! {
            _ = st.shutdown_token().cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    };
    let (st2, job2) = (st.clone(), job.clone());
    let _ = tokio::task::spawn_blocking(move || {
        let dir = st2.run_dir(&job2.run);
        if let JobKind::Evaluate(key) = &job2.kind {
            let out = markers::eval_rel(key);
            let has = |f: &str| safe_fs::is_file(&dir, out.join(f));
            if !has("eval.json") && !has("error.txt") && !has("cancelled") {
                let _ = safe_fs::write(
                    &dir,
                    out.join("error.txt"),
                    format!("{}\n", end.why).as_bytes(),
                );
            }
        }
        markers::remove(&dir, &job2.kind);
        let _ = std::fs::remove_file(job_file(&dir, &job2.kind));
    })
    .await;
    tracing::info!(run = %job.run, "Slurm evaluation ended");
    let (st2, job2) = (st.clone(), job.clone());
    let _ = tokio::task::spawn_blocking(move || {
        job_ended(&st2, &job2.run);
        if let JobKind::Evaluate(key) = job2.kind {
            super::slurm_poll::maybe_rerun_eval(&st2, &job2.run, key, &end.state);
        }
    })
    .await;
    if let Ok(Some(summary)) = st.index().get(&job.run) {
        st.hub().status(&summary);
    }
}
