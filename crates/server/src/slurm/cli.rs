//! Slurm's client commands, run with a time limit, and their machine-readable output parsed:
//! `sbatch --parsable`, `squeue -O` with a `|` separator, `sacct -P`, `scancel`. Parsing is
//! pure (unit-tested on captured output); running is `std::process`, for blocking threads.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{JobId, JobState};

/// Slurm commands give up after this (a controller that does not answer).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "`{0}` was not found on PATH: --executor slurm needs Slurm's client commands (sbatch, \
         squeue, scancel) on the server's host"
    )]
    Missing(&'static str),
    /// The scheduler's own message (e.g. `Batch job submission failed: Invalid partition name
    /// specified`).
    #[error("Slurm refused: {0}")]
    Refused(String),
    #[error("Slurm accounting storage is disabled")]
    NoAccounting,
    #[error("`{command}` did not answer within {secs} s")]
    Timeout { command: &'static str, secs: f64 },
    #[error("`{command}` failed: {cause}")]
    Io {
        command: &'static str,
        cause: std::io::Error,
    },
    #[error("cannot read `{command}` output: {line:?}")]
    Parse { command: &'static str, line: String },
}

/// What `squeue` reports of this user's jobs (one line per array task), by job id, with each
/// job's comment (`fairtat:<run id>` for the jobs fairtat submits; empty from `sacct`).
pub type Snapshot = HashMap<JobId, (JobState, String)>;

/// stdout of `program args`, or its stderr as `Refused` when it fails.
fn run(program: &'static str, args: &[String]) -> Result<String, SlurmError> {
    run_for(program, args, COMMAND_TIMEOUT)
}

/// [`run`], giving up after `timeout` (checks a request waits for).
pub(super) fn run_for(
    program: &'static str,
    args: &[String],
    timeout: Duration,
) -> Result<String, SlurmError> {
    let mut child = Command::new(program)
        .args(args)
        // sbatch exports its environment into the job by default: keep the token out of it.
        .env_remove("FAIRTAT_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SlurmError::Missing(program),
            _ => SlurmError::Io {
                command: program,
                cause: e,
            },
        })?;
    // Read both pipes off this thread, so a chatty command cannot fill one and stall.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SlurmError::Timeout {
                    command: program,
                    secs: timeout.as_secs_f64(),
                });
            }
            Err(e) => {
                return Err(SlurmError::Io {
                    command: program,
                    cause: e,
                })
            }
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(refusal(&stderr, &stdout, status.code()))
    }
}

/// The scheduler's message without the `sbatch: error: ` prefixes, one line per message.
fn refusal(stderr: &str, stdout: &str, code: Option<i32>) -> SlurmError {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    if text.contains("accounting storage is disabled") {
        return SlurmError::NoAccounting;
    }
    let msg: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            let l = l.split_once(": error: ").map_or(l, |(_, m)| m);
            l.strip_prefix("error: ").unwrap_or(l)
        })
        .filter(|l| !l.is_empty())
        .collect();
    if msg.is_empty() {
        SlurmError::Refused(format!("exit status {}", code.unwrap_or(-1)))
    } else {
        SlurmError::Refused(msg.join("; "))
    }
}

/// The client commands the executor uses are installed (checked once at start-up).
pub fn check_installed() -> Result<(), SlurmError> {
    for program in ["sbatch", "squeue", "scancel"] {
        run(program, &["--version".into()])?;
    }
    Ok(())
}

/// `sbatch --parsable SCRIPT`: the new job's id (`123`; an array's base id).
pub fn sbatch(script: &Path) -> Result<JobId, SlurmError> {
    let out = run(
        "sbatch",
        &["--parsable".into(), script.display().to_string()],
    )?;
    parse_sbatch(&out)
}

/// `123` or `123;cluster` (federations) from `sbatch --parsable`.
pub fn parse_sbatch(out: &str) -> Result<JobId, SlurmError> {
    let id = out.trim().split(';').next().unwrap_or("").trim();
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        Err(SlurmError::Parse {
            command: "sbatch",
            line: out.trim().to_string(),
        })
    }
}

/// Fields asked of `squeue`, `|`-separated; the free-form comment last.
const SQUEUE_FORMAT: &str = "JobArrayID:|,State:|,Reason:|,NodeList:|,exit_code:|,Comment:|";

/// `squeue` for every job of this user that the controller still holds (pending, running and
/// recently ended), one line per array task.
pub fn squeue() -> Result<Snapshot, SlurmError> {
    let out = run(
        "squeue",
        &[
            "--me".into(),
            "--noheader".into(),
            "--states=all".into(),
            "--array".into(),
            format!("--Format={SQUEUE_FORMAT}"),
        ],
    )?;
    parse_squeue(&out)
}

pub fn parse_squeue(out: &str) -> Result<Snapshot, SlurmError> {
    let mut jobs = Snapshot::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.splitn(6, '|').map(str::trim).collect();
        let bad = || SlurmError::Parse {
            command: "squeue",
            line: line.to_string(),
        };
        if f.len() < 5 {
            return Err(bad());
        }
        let exit: i64 = f[4].parse().map_err(|_| bad())?;
        let comment = f.get(5).map_or("", |c| c.trim_end_matches('|'));
        let comment = if comment == "(null)" { "" } else { comment };
        jobs.insert(
            f[0].to_string(),
            (JobState::parse(f[1], f[2], f[3], exit), comment.to_string()),
        );
    }
    Ok(jobs)
}

/// `sacct` for jobs `squeue` no longer lists (accounting on): their final states.
pub fn sacct(ids: &[JobId]) -> Result<Snapshot, SlurmError> {
    if ids.is_empty() {
        return Ok(Snapshot::new());
    }
    let out = run(
        "sacct",
        &[
            "--noheader".into(),
            "--parsable2".into(),
            "--allocations".into(),
            format!("--jobs={}", ids.join(",")),
            "--format=JobID,State,ExitCode,NodeList,Reason".into(),
        ],
    )?;
    parse_sacct(&out)
}

pub fn parse_sacct(out: &str) -> Result<Snapshot, SlurmError> {
    let mut jobs = Snapshot::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 5 {
            return Err(SlurmError::Parse {
                command: "sacct",
                line: line.to_string(),
            });
        }
        // `code:signal`, as a raw wait status for JobState::parse.
        let (code, sig) = f[2].split_once(':').unwrap_or((f[2], "0"));
        let raw = (code.parse::<i64>().unwrap_or(0) << 8) | sig.parse::<i64>().unwrap_or(0);
        let state = JobState::parse(f[1], f[4], f[3], raw);
        jobs.insert(f[0].to_string(), (state, String::new()));
    }
    Ok(jobs)
}

/// `scancel ID...`: Slurm sends SIGTERM (then SIGKILL after `KillWait`) to each running job
/// and removes each pending one; one call for any number of jobs (a grid cancel). Slurm goes
/// on past an id it refuses and names it in the error (`Kill job error on job id 12_3: ...`).
pub fn scancel(ids: &[JobId]) -> Result<(), SlurmError> {
    if ids.is_empty() {
        return Ok(());
    }
    run("scancel", ids).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_with_array_tasks() {
        let out = "4_1|PENDING|JobArrayTaskLimit||0|(null)|\n\
                   3|RUNNING|None|vm|0|fairtat:abc|\n\
                   8|FAILED|NonZeroExitCode|vm|768|(null)|\n";
        let s = parse_squeue(out).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s["4_1"].0,
            JobState::Pending {
                reason: "JobArrayTaskLimit".into()
            }
        );
        assert_eq!(s["3"].0, JobState::Running { node: "vm".into() });
        assert_eq!(s["3"].1, "fairtat:abc");
        assert_eq!(s["4_1"].1, "");
        assert_eq!(
            s["8"].0,
            JobState::Failed {
                exit_code: 3,
                signal: 0
            }
        );
        assert!(parse_squeue("garbage").is_err());
    }

    #[test]
    fn sacct_and_sbatch_output() {
        let s = parse_sacct(
            "12|TIMEOUT|0:15|node3|TimeLimit\n13|CANCELLED by 0|0:0|None assigned|None\n",
        )
        .unwrap();
        assert_eq!(s["12"].0, JobState::Timeout);
        assert_eq!(s["13"].0, JobState::Cancelled);
        assert_eq!(parse_sbatch("42\n").unwrap(), "42");
        assert_eq!(parse_sbatch("42;alpha\n").unwrap(), "42");
        assert!(parse_sbatch("Submitted batch job 42").is_err());
    }

    #[test]
    fn a_missing_command_is_named() {
        let err = run("fairtat-no-such-slurm-command", &[]).unwrap_err();
        assert!(matches!(err, SlurmError::Missing(_)));
        assert!(err
            .to_string()
            .contains("`fairtat-no-such-slurm-command` was not found on PATH"));
    }

    #[test]
    fn refusals_keep_the_schedulers_words() {
        let e = refusal(
            "sbatch: error: invalid partition specified: nope\n\
             sbatch: error: Batch job submission failed: Invalid partition name specified\n",
            "",
            Some(1),
        );
        assert_eq!(
            e.to_string(),
            "Slurm refused: invalid partition specified: nope; Batch job submission failed: \
             Invalid partition name specified"
        );
        assert!(matches!(
            refusal("Slurm accounting storage is disabled\n", "", Some(1)),
            SlurmError::NoAccounting
        ));
    }
}
