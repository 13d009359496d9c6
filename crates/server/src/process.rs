//! Process helpers of the executor: GPU detection, spawning, signals, and the final event the
//! server writes for a run whose trainer is not running.

use std::path::Path;
use std::process::Stdio;

use super::error::ApiError;
use fairtat_core::runs::lock::RunLock;
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::writer::EventWriter;
use fairtat_core::runs::{RunDir, RunEvent, RunStatus};

/// The memory (MiB) of each GPU `nvidia-smi` lists, in index order; empty without a driver.
/// A GPU whose memory the driver does not report (`[N/A]`) counts with `None`.
pub fn detect_gpus() -> Vec<Option<u64>> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_gpu_memory(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

fn parse_gpu_memory(text: &str) -> Vec<Option<u64>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().ok())
        .collect()
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

/// The last `n` lines of the log `rel` of a run (at most its last 64 KiB are read, through
/// `safe_fs`); a log the server refuses to read (a link, a FIFO) shows why instead.
pub fn log_tail(dir: &RunDir, rel: &Path, n: usize) -> String {
    let buf = match safe_fs::read_tail(dir, rel, 64 * 1024) {
        Ok(b) => b,
        Err(e) if e.is_missing() => return String::new(),
        Err(e) => return format!("[not shown: {e}]"),
    };
    last_lines(&buf, n)
}

/// The last `n` lines of `buf` (lossy UTF-8), for log tails.
pub fn last_lines(buf: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Lines of `train.log` quoted in the failure of a trainer that died without a final event.
const FAILURE_LOG_LINES: usize = 10;

/// Why our own trainer child ended without a final event: the signal that killed it (SIGKILL
/// from the OOM killer or a user) or its exit status, and the end of its log. The run is then
/// `failed` (the server saw it die), not `interrupted` (vanished while no server watched).
pub fn exit_description(status: std::process::ExitStatus, dir: &RunDir, log: &Path) -> String {
    #[cfg(unix)]
    let how = {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(sig) => format!("was killed by signal {sig} ({})", signal_name(sig)),
            None => format!("exited ({status})"),
        }
    };
    #[cfg(not(unix))]
    let how = format!("exited ({status})");
    let tail = log_tail(dir, log, FAILURE_LOG_LINES);
    if tail.trim().is_empty() {
        format!("the trainer {how} without a final event; train.log is empty")
    } else {
        format!("the trainer {how} without a final event; end of train.log:\n{tail}")
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Append the final line of a run whose trainer is not running (never started, or gone),
/// holding the run's lock meanwhile: never beside a live trainer.
pub fn append_finished(dir: &RunDir, status: RunStatus, epochs_done: usize, message: String) {
    write_final(dir, status, epochs_done, message, false)
}

/// [`append_finished`] for a trainer that ended without its final line, unless the log ends
/// with one after all (the trainer wrote it just before exiting, or another process already
/// recorded the end): a run's end is never contradicted by a second final line.
pub fn append_missing_final(dir: &RunDir, status: RunStatus, epochs_done: usize, message: String) {
    write_final(dir, status, epochs_done, message, true)
}

fn write_final(
    dir: &RunDir,
    status: RunStatus,
    epochs_done: usize,
    message: String,
    only_if_missing: bool,
) {
    let _lock = match RunLock::acquire(dir, "server: final event") {
        Ok(l) => l,
        Err(err) => {
            tracing::warn!(run = %dir.id(), cause = %err, "not writing a final event");
            return;
        }
    };
    let res = EventWriter::open(dir).and_then(|mut w| {
        if only_if_missing && w.ends_finished() {
            tracing::warn!(run = %dir.id(), "the run already ended; not writing a second final event");
            return Ok(0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::runs::reader::read_events;

    #[test]
    fn gpu_memory_is_read_per_line() {
        let gpus = parse_gpu_memory("81559\n[N/A]\n 143771 \n\n");
        assert_eq!(gpus, [Some(81_559), None, Some(143_771)]);
    }

    fn finals(dir: &RunDir) -> Vec<RunStatus> {
        read_events(&dir.events())
            .unwrap()
            .into_iter()
            .filter_map(|l| match l.event {
                RunEvent::Finished { status, .. } => Some(status),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_missing_final_line_is_never_written_after_a_final_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let log = |w: &mut EventWriter| {
            w.append(&RunEvent::Log {
                level: "info".into(),
                message: "epoch".into(),
            })
            .unwrap();
        };
        let mut w = EventWriter::open(&dir).unwrap();
        log(&mut w);
        drop(w);
        // No final line yet: the trainer died without one, so it is written.
        append_missing_final(&dir, RunStatus::Failed, 1, "killed".into());
        assert_eq!(finals(&dir), [RunStatus::Failed]);
        // It already ended: a second end is not recorded...
        append_missing_final(&dir, RunStatus::Cancelled, 1, "late".into());
        assert_eq!(finals(&dir), [RunStatus::Failed]);
        // ...while a new attempt's end (a resume that could not start) is.
        append_finished(&dir, RunStatus::Failed, 1, "cannot start".into());
        assert_eq!(finals(&dir), [RunStatus::Failed, RunStatus::Failed]);
        // A resumed attempt that logged again and then died gets its own final line.
        let mut w = EventWriter::open(&dir).unwrap();
        log(&mut w);
        drop(w);
        append_missing_final(&dir, RunStatus::Cancelled, 2, "killed".into());
        assert_eq!(finals(&dir).len(), 3);
    }
}
