//! The Slurm side of a run directory, written by the server only: `slurm/<job>.sh` (the batch
//! script), `slurm/<job>.job` (the id of the job while it lives, with its kind and the run's last
//! event before it) and `slurm/history.log` (every submission, cancel and end, with its time).

use std::path::PathBuf;

use crate::jobs::JobKind;
use crate::slurm::JobId;
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
    slurm_dir(dir).join(format!("{}.job", job_label(kind)))
}

/// `slurm/<job>.job`: `id=`, `kind=` and `history_seq=` lines, written atomically.
pub fn write_job_file(
    dir: &RunDir,
    kind: &JobKind,
    id: &str,
    seq: Option<u64>,
) -> std::io::Result<()> {
    let path = job_file(dir, kind);
    let seq = seq.map_or(String::new(), |s| s.to_string());
    let text = format!("id={id}\nkind={}\nhistory_seq={seq}\n", kind.label());
    let tmp = path.with_extension("job.tmp");
    std::fs::create_dir_all(slurm_dir(dir))?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// A job file read back: id, kind and the run's last seq before it.
pub fn read_job_file(path: &std::path::Path) -> Option<(JobId, JobKind, Option<u64>)> {
    let text = std::fs::read_to_string(path).ok()?;
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
    let _ = std::fs::create_dir_all(slurm_dir(dir));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(slurm_dir(dir).join("history.log"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}
