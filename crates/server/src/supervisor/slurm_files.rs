//! The Slurm side of a run directory, written by the server only: `slurm/<job>.sh` (the batch
//! script), `slurm/<job>.job` (the id of the job while it lives, with its kind and the run's last
//! event before it) and `slurm/history.log` (every submission, cancel and end, with its time).
//! Through `runs::safe_fs`: a linked `slurm/` or planted file leads nowhere outside.

use std::path::{Path, PathBuf};

use crate::jobs::JobKind;
use crate::slurm::JobId;
use fairtat_core::runs::safe_fs::{self, EntryKind};
use fairtat_core::runs::RunDir;

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
