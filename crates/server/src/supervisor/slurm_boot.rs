//! Start-up under `--executor slurm`: the jobs a previous server submitted are found again
//! from their run directories (`slurm/<job>.job`) and followed; a queued job whose id was never
//! written (the server stopped between `sbatch` and writing it) is found by its comment
//! (`fairtat:<run id>`) rather than submitted twice. Queued jobs with neither are submitted.

use std::collections::HashMap;

use super::slurm::follow_job;
use super::slurm_files::{job_files, read_job_file};
use super::{adopt, device_of, pump, push};
use crate::jobs::{markers, Job, JobKind};
use crate::scan::Loaded;
use crate::slurm::{cli, JobId};
use crate::state::AppState;
use fairtat_core::runs::RunId;

pub async fn restore(st: &AppState, loaded: Vec<Loaded>) {
    // Jobs by comment, for the ids never written; Slurm unreachable: submit nothing twice
    // that it may hold, the poller finds out later.
    let by_comment = match tokio::task::spawn_blocking(cli::squeue).await {
        Ok(Ok(snap)) => snap
            .into_iter()
            .filter(|(_, (state, c))| !state.is_terminal() && c.starts_with("fairtat:"))
            .map(|(id, (_, c))| (c["fairtat:".len()..].to_string(), id))
            .collect::<HashMap<String, JobId>>(),
        Ok(Err(err)) => {
            tracing::warn!(cause = %err, "Slurm did not answer at start-up");
            HashMap::new()
        }
        Err(_) => HashMap::new(),
    };
    for l in loaded {
        restore_run(st, &l, &by_comment);
    }
    pump(st);
}

fn restore_run(st: &AppState, l: &Loaded, by_comment: &HashMap<String, JobId>) {
    let Some(run) = l.dir.run_id() else { return };
    let device = device_of(&l.summary);
    let mut found: Vec<JobKind> = Vec::new();
    for name in job_files(&l.dir) {
        if let Some((id, kind, seq)) = read_job_file(&l.dir, &name) {
            found.push(kind);
            follow_job(st, &job(&run, kind, &device), id, seq, true);
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
        if found.iter().any(|f| same(f, &kind)) {
            continue;
        }
        if let (false, Some(id)) = (is_eval(&kind), by_comment.get(run.as_str())) {
            let seq = fairtat_core::runs::reader::last_seq(&l.dir.events());
            follow_job(st, &job(&run, kind, &device), id.clone(), seq, true);
            continue;
        }
        push(st, run.clone(), kind, &device);
    }
    if let (true, Some(owner)) = (found.is_empty(), &l.owner) {
        // `fairtat train` started from a shell on this host, outside Slurm.
        adopt(st, &l.dir, &run, owner, &device, l.summary.clone());
    }
}

fn is_eval(kind: &JobKind) -> bool {
    matches!(kind, JobKind::Evaluate(_))
}

fn job(run: &RunId, kind: JobKind, device: &str) -> Job {
    Job {
        // Slurm places jobs by `--gres`; nothing is packed here.
        gpu_mib: 0,
        run: run.clone(),
        kind,
        device: device.to_string(),
        needs_source: false,
    }
}
