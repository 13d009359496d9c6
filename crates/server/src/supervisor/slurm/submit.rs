//! Submission: each job's batch script written into its run directory and handed to `sbatch`;
//! fresh training jobs taken together become one job array. Blocking (`sbatch` talks to the
//! controller).

use std::sync::Arc;

use super::files::{history, job_label, slurm_dir, write_job_file};
use super::follow_job;
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{markers, Job, JobKind};
use crate::slurm::script::{Script, Task};
use crate::slurm::{cli, JobId, SlurmError};
use crate::state::AppState;
use crate::supervisor::{job_ended, record_failure};
use fairtat_core::runs::RunDir;

/// Submit the jobs that left the queue together.
pub fn submit_batch(st: &AppState, sched: &Arc<Scheduler>, batch: Vec<Job>) {
    let (fresh, other): (Vec<Job>, Vec<Job>) =
        batch.into_iter().partition(|j| j.kind == JobKind::Train);
    let (gpu, cpu): (Vec<Job>, Vec<Job>) = fresh.into_iter().partition(|j| wants_gpu(sched, j));
    for group in [gpu, cpu] {
        match group.len() {
            0 => {}
            1 => submit_one(st, sched, &group[0]),
            _ => submit_array(st, sched, &group),
        }
    }
    for job in &other {
        submit_one(st, sched, job);
    }
}

/// Whether a job gets the configured gres: runs on `device = "cpu"` never do.
fn wants_gpu(sched: &Scheduler, job: &Job) -> bool {
    !sched.opts.gres.is_empty() && job.device != "cpu"
}

fn io(cause: std::io::Error) -> SlurmError {
    SlurmError::Io {
        command: "sbatch",
        cause,
    }
}

fn script_for(st: &AppState, sched: &Scheduler, job: &Job) -> std::io::Result<Script> {
    let dir = st.run_dir(&job.run);
    let (task, output) = match &job.kind {
        JobKind::Train => (Task::Train(dir.root().to_path_buf()), dir.log()),
        JobKind::Resume => (Task::Resume(dir.root().to_path_buf()), dir.log()),
        JobKind::Evaluate(key) => {
            let out = markers::eval_dir(&dir, key);
            std::fs::create_dir_all(&out)?;
            let task = Task::Eval {
                dir: dir.root().to_path_buf(),
                suite: key.suite.as_str().to_string(),
                model: key.model.as_str().to_string(),
            };
            (task, out.join("eval.log"))
        }
    };
    let name = st
        .index()
        .get(&job.run)
        .ok()
        .flatten()
        .map_or_else(|| job.run.to_string(), |s| s.name);
    Ok(Script {
        task,
        name,
        comment: format!("fairtat:{}", job.run),
        output,
        gpu: wants_gpu(sched, job),
    })
}

/// Write the script and submit it; the scheduler's refusal fails the job with its message.
fn submit_one(st: &AppState, sched: &Arc<Scheduler>, job: &Job) {
    let dir = st.run_dir(&job.run);
    let script_path = slurm_dir(&dir).join(format!("{}.sh", job_label(&job.kind)));
    let result = script_for(st, sched, job).map_err(io).and_then(|s| {
        std::fs::create_dir_all(slurm_dir(&dir))
            .and_then(|_| std::fs::write(&script_path, s.render(&sched.opts, &st.trainer())))
            .map_err(io)?;
        cli::sbatch(&script_path)
    });
    match result {
        Ok(id) => submitted(st, sched, job, id),
        Err(err) => refused(st, job, &err),
    }
}

/// A grid's fresh runs as one job array: task `i` trains `jobs[i]`.
fn submit_array(st: &AppState, sched: &Arc<Scheduler>, jobs: &[Job]) {
    let folder = st.runs_dir().join(".slurm");
    let first = &jobs[0].run;
    let script = Script {
        task: Task::Array(
            jobs.iter()
                .map(|j| st.run_dir(&j.run).root().to_path_buf())
                .collect(),
        ),
        name: format!("fairtat-grid-{}", jobs.len()),
        comment: "fairtat:array".into(),
        output: folder.join(format!("grid-{first}-%a.out")),
        gpu: wants_gpu(sched, &jobs[0]),
    };
    let path = folder.join(format!("grid-{first}.sh"));
    let result = std::fs::create_dir_all(&folder)
        .and_then(|_| std::fs::write(&path, script.render(&sched.opts, &st.trainer())))
        .map_err(io)
        .and_then(|_| cli::sbatch(&path));
    match result {
        Ok(base) => {
            for (i, job) in jobs.iter().enumerate() {
                submitted(st, sched, job, format!("{base}_{i}"));
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

/// Record job `id` in the run directory, follow it, and say so in the index.
fn submitted(st: &AppState, sched: &Arc<Scheduler>, job: &Job, id: JobId) {
    let dir = st.run_dir(&job.run);
    let seq = history_seq(&dir, &job.kind);
    if let Err(err) = write_job_file(&dir, &job.kind, &id, seq) {
        tracing::error!(run = %job.run, cause = %err, "cannot record the Slurm job id");
    }
    history(&dir, &format!("submitted {} job {id}", job.kind.label()));
    tracing::info!(run = %job.run, job = %id, kind = %job.kind.label(), "submitted to Slurm");
    follow_job(st, sched, job, id, seq, false);
}

/// The last line of the run's events before this job (a `finished` up to it is an earlier
/// job's), for training jobs.
fn history_seq(dir: &RunDir, kind: &JobKind) -> Option<u64> {
    match kind {
        JobKind::Evaluate(_) => None,
        _ => fairtat_core::runs::reader::last_seq(&dir.events()),
    }
}
