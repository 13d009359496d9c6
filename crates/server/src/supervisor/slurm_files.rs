//! The Slurm side of a run directory, written by the server only: `slurm/<job>.sh` (the batch
//! script), `slurm/<job>.job` (the id of the job while it lives, with its kind and the run's last
//! event before it) and `slurm/history.log` (every submission, cancel and end, with its time).
//! Through `runs::safe_fs`: a linked `slurm/` or planted file leads nowhere outside.

use std::path::{Path, PathBuf};

use super::slurm_arrays::forget_ended;
use crate::jobs::JobKind;
use crate::slurm::JobId;
use crate::state::AppState;
use fairtat_core::runs::safe_fs::{self, EntryKind};
use fairtat_core::runs::{RunDir, RunId};

/// The file name of a job's script and id in `slurm/`: `train`, `eval-<suite>-<model>`.
pub fn job_label(kind: &JobKind) -> String {
    match kind {
        JobKind::Train | JobKind::Resume => "train".into(),
        JobKind::Evaluate(key) => format!("eval-{}", key.dir_name()),
    }
}

pub fn slurm_dir(dir: &RunDir) -> PathBuf {
    dir.root().join("slurm")
}

pub fn job_file(dir: &RunDir, kind: &JobKind) -> PathBuf {
    dir.root().join(job_rel(kind))
}

/// `slurm/<job>.job`, relative to the run directory.
fn job_rel(kind: &JobKind) -> PathBuf {
    Path::new("slurm").join(format!("{}.job", job_label(kind)))
}

/// The names of the `slurm/*.job` files of a run.
pub fn job_files(dir: &RunDir) -> Vec<String> {
    safe_fs::list_dir(dir, "slurm")
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, k)| *k == EntryKind::File && n.ends_with(".job"))
        .map(|(n, _)| n)
        .collect()
}

/// `slurm/history.log` as text (empty when absent or refused).
pub fn read_history(dir: &RunDir) -> String {
    safe_fs::read_text(dir, "slurm/history.log", safe_fs::TEXT_CAP).unwrap_or_default()
}

/// `slurm/<job>.job`: `id=`, `kind=` and `history_seq=` lines, written atomically.
pub fn write_job_file(
    dir: &RunDir,
    kind: &JobKind,
    id: &str,
    seq: Option<u64>,
) -> std::io::Result<()> {
    let rel = job_rel(kind);
    let seq = seq.map_or(String::new(), |s| s.to_string());
    let text = format!("id={id}\nkind={}\nhistory_seq={seq}\n", kind.label());
    let tmp = rel.with_extension("job.tmp");
    safe_fs::create_dir_all(dir, "slurm")?;
    safe_fs::write(dir, &tmp, text.as_bytes())?;
    std::fs::rename(dir.root().join(tmp), dir.root().join(rel))
}

/// A job file read back: id, kind and the run's last seq before it.
pub fn read_job_file(dir: &RunDir, name: &str) -> Option<(JobId, JobKind, Option<u64>)> {
    let text = safe_fs::read_text(dir, format!("slurm/{name}"), safe_fs::TEXT_CAP).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    let id = field("id").filter(|i| !i.is_empty())?.to_string();
    let kind = match field("kind")? {
        "train" => JobKind::Train,
        "resume" => JobKind::Resume,
        k => JobKind::Evaluate(fairtat_core::runs::eval_key::EvalKey::from_dir_name(
            k.strip_prefix("eval ")?,
        )?),
    };
    let seq = field("history_seq").and_then(|s| s.parse().ok());
    Some((id, kind, seq))
}

/// One line in `slurm/history.log`: every submission, cancel and end, with its time.
pub fn history(dir: &RunDir, what: &str) {
    use std::io::Write;
    let line = format!("{:.0} {what}\n", fairtat_core::runs::writer::unix_now());
    let _ = safe_fs::create_dir_all(dir, "slurm");
    if let Ok(mut f) = safe_fs::open_append(dir, "slurm/history.log") {
        let _ = f.write_all(line.as_bytes());
    }
}

/// What the run page shows of a run's Slurm jobs: the submission history, each batch script,
/// and for a grid's array task the end of its output file (`runs/.slurm/grid-<first>-<i>.out`;
/// single jobs write to `train.log` or the evaluation's `eval.log`, shown elsewhere).
#[derive(Default)]
pub struct SlurmView {
    pub history: String,
    /// `(file name, text)` of each `slurm/*.sh`.
    pub scripts: Vec<(String, String)>,
    /// `(file name, last lines)` of the array task's output.
    pub array_output: Option<(String, String)>,
}

impl SlurmView {
    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.scripts.is_empty() && self.array_output.is_none()
    }
}

/// [`SlurmView`] of `run` (empty for a run that never went to Slurm).
pub fn view(dir: &RunDir, runs_dir: &Path, run: &fairtat_core::runs::RunId) -> SlurmView {
    let mut scripts: Vec<(String, String)> = safe_fs::list_dir(dir, "slurm")
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, k)| *k == EntryKind::File && n.ends_with(".sh"))
        .map(|(n, _)| {
            let text = safe_fs::read_text(dir, Path::new("slurm").join(&n), safe_fs::TEXT_CAP)
                .unwrap_or_else(|e| format!("[not shown: {e}]"));
            (n, text)
        })
        .collect();
    scripts.sort();
    let folder = runs_dir.join(".slurm");
    let history = read_history(dir);
    // The history names the task; runs submitted before it did are found through the maps.
    let task = super::slurm_arrays::task_in_history(&history).or_else(|| {
        super::slurm_arrays::read_maps(&folder)
            .into_iter()
            .find_map(|m| Some((m.runs.iter().position(|r| r == run)?, m.key)))
    });
    let array_output = task.map(|(i, key)| {
        // The array's script is the grid's, in the runs folder's `.slurm/`.
        let script = format!("grid-{key}.sh");
        scripts.push((script.clone(), read_tail_lines(&folder.join(&script), 1000)));
        let name = format!("grid-{key}-{i}.out");
        let text = read_tail_lines(&folder.join(&name), 200);
        (name, text)
    });
    SlurmView {
        history,
        scripts,
        array_output,
    }
}

/// The last `n` lines of a file of the runs folder's `.slurm/` (regular files only; at most
/// the last 64 KiB are read).
fn read_tail_lines(path: &Path, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = safe_fs::open_regular(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.take(64 * 1024).read_to_end(&mut buf);
    crate::process::last_lines(&buf, n)
}

/// `fairtat-<kind>-<run id>`: one prefix for every job of fairtat in `squeue`, and the kind
/// (`train` for training and resumes, `eval` for evaluations) beside the run it works on.
pub fn job_name(kind: &JobKind, run: &str) -> String {
    let kind = match kind {
        JobKind::Train | JobKind::Resume => "train",
        JobKind::Evaluate(_) => "eval",
    };
    format!("fairtat-{kind}-{run}")
}

/// Delete the maps of the job arrays whose tasks are all over (`slurm_arrays::forget_ended`).
pub fn forget_ended_arrays(st: &AppState) {
    let ended = |r: &RunId| {
        let s = st.index().get(r).ok().flatten();
        s.is_some_and(|s| s.status.is_terminal())
    };
    let live = |r: &RunId| read_job_file(&st.run_dir(r), "train.job").map(|(id, _, _)| id);
    for key in forget_ended(&st.runs_dir().join(".slurm"), ended, live) {
        tracing::info!(array = %key, "every task of the job array ended; its map is deleted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_say_fairtat_the_kind_and_the_run() {
        assert_eq!(job_name(&JobKind::Train, "r1"), "fairtat-train-r1");
        assert_eq!(job_name(&JobKind::Resume, "r1"), "fairtat-train-r1");
        let key = fairtat_core::runs::eval_key::EvalKey::from_dir_name("quick-last").unwrap();
        assert_eq!(job_name(&JobKind::Evaluate(key), "r1"), "fairtat-eval-r1");
    }
}
