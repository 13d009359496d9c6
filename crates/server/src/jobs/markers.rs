//! Durable queue markers, so queued jobs survive a restart: `runs/<id>/queued` (`fresh` or
//! `resume`) for a training job, `runs/<id>/evals/<suite>-<model>/queued` for an evaluation.
//! A cancelled evaluation leaves `cancelled` in its directory. Through `runs::safe_fs`: a
//! linked `evals/<x>` never receives a marker outside the runs folder.

use std::path::{Path, PathBuf};

use super::JobKind;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::safe_fs::{self, EntryKind, Refusal};
use fairtat_core::runs::RunDir;

/// What is read of a marker (a word).
const MARKER_CAP: u64 = 4096;

pub fn eval_dir(dir: &RunDir, key: &EvalKey) -> PathBuf {
    dir.root().join(eval_rel(key))
}

/// The evaluation's directory relative to the run directory (`evals/<suite>-<model>`), as
/// `safe_fs` takes it.
pub fn eval_rel(key: &EvalKey) -> PathBuf {
    Path::new("evals").join(key.dir_name())
}

/// The marker of `kind`, relative to the run directory.
fn marker(kind: &JobKind) -> PathBuf {
    match kind {
        JobKind::Train | JobKind::Resume => PathBuf::from("queued"),
        JobKind::Evaluate(key) => eval_rel(key).join("queued"),
    }
}

/// Record that `kind` is queued for the run (before it enters the in-memory queue).
pub fn write(dir: &RunDir, kind: &JobKind) -> Result<(), Refusal> {
    let text = match kind {
        JobKind::Train => "fresh\n",
        JobKind::Resume => "resume\n",
        JobKind::Evaluate(key) => {
            let d = eval_rel(key);
            safe_fs::create_dir_all(dir, &d)?;
            // A new request replaces the outcome of an earlier one of the same key.
            safe_fs::remove_file(dir, d.join("cancelled"))?;
            safe_fs::remove_file(dir, d.join("error.txt"))?;
            "queued\n"
        }
    };
    safe_fs::write(dir, marker(kind), text.as_bytes())
}

pub fn remove(dir: &RunDir, kind: &JobKind) {
    let _ = safe_fs::remove_file(dir, marker(kind));
}

/// The training job queued for a run, if its marker is there.
pub fn read_train(dir: &RunDir) -> Option<JobKind> {
    let text = safe_fs::read_text(dir, "queued", MARKER_CAP).ok()?;
    Some(if text.trim() == "resume" {
        JobKind::Resume
    } else {
        JobKind::Train
    })
}

/// The evaluations queued for a run, by directory name.
pub fn read_evals(dir: &RunDir) -> Vec<EvalKey> {
    let Ok(entries) = safe_fs::list_dir(dir, "evals") else {
        return vec![];
    };
    let mut keys: Vec<EvalKey> = entries
        .into_iter()
        .filter(|(n, k)| *k == EntryKind::Dir && safe_fs::is_file(dir, format!("evals/{n}/queued")))
        .filter_map(|(n, _)| EvalKey::from_dir_name(&n))
        .collect();
    keys.sort();
    keys
}

/// Mark an evaluation cancelled (its page shows it; nothing it measured is removed).
pub fn write_cancelled(dir: &RunDir, key: &EvalKey) {
    let d = eval_rel(key);
    if safe_fs::create_dir_all(dir, &d).is_ok() {
        let _ = safe_fs::write(dir, d.join("cancelled"), b"cancelled by you\n");
    }
}
