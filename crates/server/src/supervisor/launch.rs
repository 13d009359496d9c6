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
    // The slot's GPU is the child's only one, so a run configured for `cuda:1` runs as
    // `cuda:0` there (its config keeps what the user asked; only this process is told).
    let device = if slot.cuda.is_some() { "cuda:0" } else { "cpu" };
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
            cmd.arg("eval").arg("--run-dir").arg(dir.root()).args([
                "--suite",
                key.suite.as_str(),
                "--model",
                key.model.as_str(),
            ]);
            out.join("eval.log")
        }
    };
    cmd.args(["--device", device]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::config::DeviceSpec;
    use fairtat_core::runs::eval_key::EvalKey;
    use std::ffi::OsStr;

    fn launched(kind: JobKind, cuda: Option<usize>) -> (Vec<String>, Option<String>) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("run"));
        std::fs::create_dir_all(dir.root()).unwrap();
        let job = Job {
            run: "run".parse().unwrap(),
            kind,
            device: DeviceSpec::Cuda(1),
            needs_source: false,
            gpu_mib: 0,
        };
        let slot = Slot {
            name: cuda.map_or("cpu".into(), |g| format!("cuda:{g}")),
            cuda,
            capacity: 1,
            running: 0,
            memory_mib: None,
            reserved_mib: 0,
        };
        let cmd = command(Path::new("fairtat"), &dir, &job, &slot, 2).unwrap();
        let std = cmd.as_std();
        let args = std.get_args().map(|a| a.to_string_lossy().into()).collect();
        let visible = std
            .get_envs()
            .find(|(k, _)| *k == OsStr::new("CUDA_VISIBLE_DEVICES"))
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into()));
        (args, visible)
    }

    fn device_arg(args: &[String]) -> &str {
        let i = args.iter().position(|a| a == "--device").expect("--device");
        &args[i + 1]
    }

    #[test]
    fn every_job_sees_its_slots_gpu_as_cuda_0_or_runs_on_the_cpu() {
        let eval = JobKind::Evaluate(EvalKey::from_dir_name("quick-last").unwrap());
        for kind in [JobKind::Train, JobKind::Resume, eval] {
            // A run configured for cuda:1 placed on GPU 1: the child sees that GPU alone.
            let (args, visible) = launched(kind, Some(1));
            assert_eq!(device_arg(&args), "cuda:0", "{args:?}");
            assert_eq!(visible.as_deref(), Some("1"));
            let (args, visible) = launched(kind, None);
            assert_eq!(device_arg(&args), "cpu", "{args:?}");
            assert_eq!(visible.as_deref(), Some(""), "a CPU job sees no GPU");
        }
    }
}
