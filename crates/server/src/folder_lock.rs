//! One server per runs folder. Two servers on one folder would both adopt the same trainers,
//! run their own queues past `--max-cpu-runs` and write contradicting final lines, so the
//! server holds an exclusive lock on `<runs>/.server.lock` (an OS file lock, released by the
//! kernel when the process dies, so a crash never leaves a stale lock) and writes its pid and
//! address into the file for the message a second server gives.
//!
//! The lock is per open file, so a second server state in the same process (tests restarting
//! the server) is refused too until [`FolderLock::release`] (called on shutdown).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

/// The lock file's name inside the runs folder.
pub const LOCK_FILE: &str = ".server.lock";

#[derive(Debug)]
pub struct FolderLock {
    file: Mutex<Option<File>>,
}

impl FolderLock {
    /// Lock `runs_dir` for this server (`addr` is what the holder's message names), or explain
    /// who holds it.
    pub fn acquire(runs_dir: &Path, addr: &str) -> anyhow::Result<FolderLock> {
        let path = runs_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.chars().take(200).collect()
                };
                anyhow::bail!(
                    "the runs folder {} is already served by another fairtat server ({holder}); \
                     stop that server or pass another --runs folder",
                    runs_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
        let note = format!("pid {}, http://{addr}\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()));
        if let Err(e) = written {
            // The lock holds without the note; only the second server's message is poorer.
            tracing::warn!(cause = %e, "cannot write the server lock file");
        }
        Ok(FolderLock {
            file: Mutex::new(Some(file)),
        })
    }

    /// Give the folder up (shutdown): a new server may start on it at once.
    pub fn release(&self) {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(f) = file {
            let _ = f.set_len(0);
            let _ = f.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_until_released() {
        let tmp = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(tmp.path(), "127.0.0.1:8080").unwrap();
        let err = FolderLock::acquire(tmp.path(), "127.0.0.1:9090")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already served"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("http://127.0.0.1:8080"), "{err}");
        first.release();
        let second = FolderLock::acquire(tmp.path(), "127.0.0.1:9090").unwrap();
        drop(second);
        // Dropping the holder (the process dying) frees the folder too.
        FolderLock::acquire(tmp.path(), "127.0.0.1:7070").unwrap();
    }
}
