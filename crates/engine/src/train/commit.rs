//! Resume points that a kill at any instant leaves consistent.
//!
//! A resume point is several files (`last`, the optimiser, `ema`, `fawa`) plus
//! `checkpoints/state.json`, which refers to them. They are written as one commit:
//! 1. every file goes to `checkpoints/pending-<save_id>/` (the current files stay untouched);
//! 2. `state.json` with that `save_id` replaces the old one by an atomic rename: the commit point;
//! 3. the pending files are renamed over the current ones and the folder removed.
//!
//! [`recover`] (run before a resume reads anything) finishes step 3 for the committed save and
//! deletes a pending folder that was never committed. A kill before step 2 thus resumes from the
//! previous point, after it from the new one; `state.json` is always written last.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::state::ResumeState;
use fairtat_core::runs::RunDir;

/// Test hook: `FAIRTAT_FAILPOINT=<name>@<save_id>` aborts the process at that point of that save,
/// the way a SIGKILL or a power cut would (names: `before-commit`, `after-commit`).
pub fn failpoint(name: &str, save_id: u64) {
    if std::env::var("FAIRTAT_FAILPOINT").is_ok_and(|v| v == format!("{name}@{save_id}")) {
        eprintln!("failpoint {name}@{save_id}: exiting at once");
        // No unwinding, no final event, no cleanup: what a SIGKILL leaves (without a core file).
        std::process::exit(137);
    }
}

/// The folder of the pending files of save `save_id`.
pub fn pending_dir(run: &RunDir, save_id: u64) -> PathBuf {
    run.checkpoints().join(format!("pending-{save_id}"))
}

/// Step 3: move the committed save's files into place.
pub fn publish(run: &RunDir, save_id: u64) -> std::io::Result<()> {
    let dir = pending_dir(run, save_id);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in rd {
        let entry = entry?;
        std::fs::rename(entry.path(), run.checkpoints().join(entry.file_name()))?;
    }
    std::fs::remove_dir(&dir)
}

/// Finish or discard what a killed save left: publish the committed pending folder, delete the
/// others. Returns the committed state (None without `state.json`).
pub fn recover(run: &RunDir) -> std::io::Result<Option<ResumeState>> {
    let state_path = run.resume_state();
    let state = if state_path.exists() {
        Some(ResumeState::load(&state_path)?)
    } else {
        None
    };
    let committed = state.as_ref().and_then(|s| s.save_id);
    let Ok(rd) = std::fs::read_dir(run.checkpoints()) else {
        return Ok(state);
    };
    for entry in rd.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("pending-")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if Some(id) == committed {
            publish(run, id)?;
        } else {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(state)
}

/// Write `path` through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), super::TrainError>,
) -> Result<(), super::TrainError> {
    let tmp = path.with_extension("tmp");
    write(&tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// SHA-256 (hex) of a file, streamed.
fn sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The checksum of every file of a pending save, by file name (recorded in `state.json`).
pub fn checksums(pending: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(pending)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        sums.insert(name, sha256(&entry.path())?);
    }
    Ok(sums)
}

/// Before a resume loads anything: every file the committed save recorded is still the file it
/// wrote. A missing one is left to the loaders (their messages name it).
pub fn verify(run: &RunDir, sums: &BTreeMap<String, String>) -> Result<(), super::TrainError> {
    for (name, want) in sums {
        let path = run.checkpoints().join(name);
        if !path.exists() {
            continue;
        }
        if &sha256(&path)? != want {
            return Err(super::TrainError::Resume(format!(
                "{} differs from the file the last checkpoint wrote (SHA-256 mismatch): it was \
                 damaged or replaced since. Restore it from a copy of the run, or start a new \
                 run from another checkpoint (train.init_checkpoint)",
                path.display()
            )));
        }
    }
    Ok(())
}
