//! The command line of each job kind, and its device environment: the job's slot decides
//! `CUDA_VISIBLE_DEVICES` (the child sees its GPU as `cuda:0`, or no GPU on the CPU slot).

use std::path::Path;
use std::process::Stdio;

use crate::jobs::{markers, Job, JobKind, Slot};
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::RunDir;

/// `<trainer> train|eval ...` for `job`, output appended to the run's (or evaluation's) log.
pub fn command(
    trainer: &Path,
    dir: &RunDir,
    job: &Job,
    slot: &Slot,
    gpus: usize,
) -> std::io::Result<tokio::process::Command> {
    let mut cmd = tokio::process::Command::new(trainer);
    // The trainer never talks to the server; a token in its environment would only leak to
    // whatever it runs and to /proc readers of the same user.
    cmd.env_remove("FAIRTAT_TOKEN");
    let log_path = match &job.kind {
        JobKind::Train => {
            cmd.arg("train").arg("--run-dir").arg(dir.root());
            "train.log".into()
        }
        JobKind::Resume => {
            cmd.arg("train").arg("--resume").arg(dir.root());
            "train.log".into()
        }
        JobKind::Evaluate(key) => {
            let out = markers::eval_rel(key);
            safe_fs::create_dir_all(dir, &out)?;
            cmd.arg("eval")
                .arg("--run-dir")
                .arg(dir.root())
                .args(["--suite", key.suite.as_str(), "--model", key.model.as_str()])
                .args([
                    "--device",
                    if slot.cuda.is_some() { "cuda:0" } else { "cpu" },
                ]);
            out.join("eval.log")
        }
    };
    // Through safe_fs: a planted link or FIFO as the log would receive the trainer's output.
    let log = safe_fs::open_append(dir, log_path)?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C on the server does not reach it, a restart adopts it.
        .process_group(0)
        .kill_on_drop(false);
    match slot.cuda {
        Some(g) => {
            cmd.env("CUDA_VISIBLE_DEVICES", g.to_string());
        }
        None if gpus > 0 => {
            cmd.env("CUDA_VISIBLE_DEVICES", "");
        }
        None => {}
    }
    Ok(cmd)
}
