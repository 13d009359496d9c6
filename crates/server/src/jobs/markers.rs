//! Durable queue markers, so queued jobs survive a restart: `runs/<id>/queued` (`fresh` or
//! `resume`) for a training job, `runs/<id>/evals/<suite>-<model>/queued` for an evaluation.
//! A cancelled evaluation leaves `cancelled` in its directory. Plain std I/O.

use std::path::PathBuf;

use super::JobKind;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::RunDir;

pub fn eval_dir(dir: &RunDir, key: &EvalKey) -> PathBuf {
    dir.evals().join(key.dir_name())
}

fn marker(dir: &RunDir, kind: &JobKind) -> PathBuf {
    match kind {
        JobKind::Train | JobKind::Resume => dir.queued_marker(),
        JobKind::Evaluate(key) => eval_dir(dir, key).join("queued"),
    }
}

/// Record that `kind` is queued for the run (before it enters the in-memory queue).
pub fn write(dir: &RunDir, kind: &JobKind) -> std::io::Result<()> {
    let text = match kind {
        JobKind::Train => "fresh\n",
        JobKind::Resume => "resume\n",
        JobKind::Evaluate(key) => {
            let d = eval_dir(dir, key);
            std::fs::create_dir_all(&d)?;
            // A new request replaces the outcome of an earlier one of the same key.
            let _ = std::fs::remove_file(d.join("cancelled"));
            let _ = std::fs::remove_file(d.join("error.txt"));
            "queued\n"
        }
    };
    std::fs::write(marker(dir, kind), text)
}

pub fn remove(dir: &RunDir, kind: &JobKind) {
    let _ = std::fs::remove_file(marker(dir, kind));
}

/// The training job queued for a run, if its marker is there.
pub fn read_train(dir: &RunDir) -> Option<JobKind> {
    let text = std::fs::read_to_string(dir.queued_marker()).ok()?;
    Some(if text.trim() == "resume" {
        JobKind::Resume
    } else {
        JobKind::Train
    })
}

/// The evaluations queued for a run, by directory name.
pub fn read_evals(dir: &RunDir) -> Vec<EvalKey> {
    let Ok(rd) = std::fs::read_dir(dir.evals()) else {
        return vec![];
    };
    let mut keys: Vec<EvalKey> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().join("queued").exists())
        .filter_map(|e| EvalKey::from_dir_name(&e.file_name().to_string_lossy()))
        .collect();
    keys.sort();
    keys
}

/// Mark an evaluation cancelled (its page shows it; nothing it measured is removed).
pub fn write_cancelled(dir: &RunDir, key: &EvalKey) {
    let d = eval_dir(dir, key);
    if std::fs::create_dir_all(&d).is_ok() {
        let _ = std::fs::write(d.join("cancelled"), "cancelled by you\n");
    }
}
