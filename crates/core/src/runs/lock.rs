//! Run ownership: the one process that may write a run directory holds an exclusive `flock` on
//! `runs/<id>/lock` for its whole life (a trainer, or an evaluation job).
//!
//! The lock file also says who holds it (`pid` and what it does), so the server can adopt the
//! process after a restart. The kernel drops the lock when the process dies, however it dies:
//! a pid read from the file counts only while the lock is held, so a pid that another program
//! reused after a reboot is never adopted or signalled. The file itself is never deleted
//! (deleting a locked file lets a second process lock a new file of the same name).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::RunDir;

/// Who holds a run's lock, as written in the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOwner {
    pub pid: u32,
    /// `train` or `eval <suite>-<model>`.
    pub what: String,
}

impl LockOwner {
    fn parse(text: &str) -> Option<LockOwner> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let what = lines.next().unwrap_or("").trim().to_string();
        Some(LockOwner { pid, what })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{dir} is in use by another process (pid {pid}, {what}); wait for it to end or cancel it \
         (two processes must never write one run directory)"
    )]
    Held { dir: String, pid: u32, what: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Held for as long as the value lives; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// How long `acquire` retries: the server's `probe` holds a shared lock for a few microseconds.
const ACQUIRE_PATIENCE: Duration = Duration::from_millis(1500);

impl RunLock {
    /// Take the run's lock for this process, recording `what` it does. Refused with
    /// [`LockError::Held`] while another process holds it.
    pub fn acquire(dir: &RunDir, what: &str) -> Result<RunLock, LockError> {
        let path = dir.lock_file();
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < ACQUIRE_PATIENCE => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    let owner = read_owner(&path).unwrap_or(LockOwner {
                        pid: 0,
                        what: "unknown".into(),
                    });
                    return Err(LockError::Held {
                        dir: dir.root().display().to_string(),
                        pid: owner.pid,
                        what: owner.what,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}\n{what}\n", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

fn read_owner(path: &Path) -> Option<LockOwner> {
    let mut text = String::new();
    // Capped and never blocking: a planted FIFO or huge file as `lock` holds up no scan.
    super::safe_fs::open_regular(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    LockOwner::parse(&text)
}

/// The process holding the run's lock right now, if any. Takes a shared lock for an instant to
/// find out, which never blocks the holder (and `acquire` waits out the instant).
pub fn probe(dir: &RunDir) -> Option<LockOwner> {
    let path = dir.lock_file();
    let file = super::safe_fs::open_regular(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(read_owner(&path).unwrap_or(LockOwner {
            pid: 0,
            what: "unknown".into(),
        })),
        Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_lines_parse() {
        assert_eq!(
            LockOwner::parse("42\neval quick-last\n"),
            Some(LockOwner {
                pid: 42,
                what: "eval quick-last".into()
            })
        );
        assert_eq!(LockOwner::parse("x\n"), None);
    }

    #[test]
    fn a_held_lock_is_probed_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        assert_eq!(probe(&dir), None, "no lock file: nobody holds it");
        let lock = RunLock::acquire(&dir, "train").unwrap();
        let owner = probe(&dir).expect("held");
        assert_eq!(owner.pid, std::process::id());
        assert_eq!(owner.what, "train");
        drop(lock);
        assert_eq!(probe(&dir), None, "dropped: released");
        // The file stays (with the last owner's text) but does not count without the lock.
        assert!(dir.lock_file().exists());
    }
}
