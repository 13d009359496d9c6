//! Process helpers of the executor: GPU detection, spawning, signals, and the final event the
//! server writes for a run whose trainer is not running.

use std::process::Stdio;

use super::error::ApiError;
use crate::runs::lock::RunLock;
use crate::runs::writer::EventWriter;
use crate::runs::{RunDir, RunEvent, RunStatus};

/// GPUs visible to `nvidia-smi -L` (0 without a driver).
pub fn detect_gpus() -> usize {
    std::process::Command::new("nvidia-smi")
        .arg("-L")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("GPU "))
                .count()
        })
        .unwrap_or(0)
}

/// What the follower shows for a child that exited without a final event.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    format!("trainer exited ({status}) without a final event; see train.log")
}

/// Spawn, retrying briefly on ETXTBSY (an executable just written by a test or an installer
/// can still be open for writing in a concurrently forked process).
pub fn spawn_retrying(cmd: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

pub fn signal(pid: u32, sig: &str) -> Result<(), ApiError> {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ApiError::Conflict(format!("process {pid} is gone")))
    }
}

/// Append the final line of a run whose trainer is not running (never started, or gone),
/// holding the run's lock meanwhile: never beside a live trainer.
pub fn append_finished(dir: &RunDir, status: RunStatus, epochs_done: usize, message: String) {
    let _lock = match RunLock::acquire(dir, "server: final event") {
        Ok(l) => l,
        Err(err) => {
            tracing::warn!(run = %dir.id(), cause = %err, "not writing a final event");
            return;
        }
    };
    let res = EventWriter::open(dir).and_then(|mut w| {
        w.append(&RunEvent::Finished {
            status,
            epochs_done,
            message: Some(message),
        })
    });
    if let Err(err) = res {
        tracing::error!(run = %dir.id(), cause = %err, "cannot write the final event");
    }
}
