//! Batch scripts: what `sbatch` runs. Each script is written into the run directory
//! (`slurm/<job>.sh`) before submission, so a user can read it, and resubmit it by hand, and a
//! scheduler that requeues the job (preemption) runs the same file again.
//!
//! Without `--slurm-requeue` the trainer is `exec`ed, so it is the batch shell:
//! `--signal=B:USR1@N` and `scancel` reach it directly (SIGUSR1: checkpoint and stop resumably;
//! SIGTERM: cancel). With it, the script stays as the trainer's parent ([`requeue_launch`]): it
//! passes the warning on and, after a resumable stop (exit 75), asks Slurm to requeue the job
//! (`scontrol requeue`), so the same job id runs again and Slurm's accounting says `REQUEUED`
//! where it said `FAILED 75` (issue 21). A job that Slurm restarts (`SLURM_RESTART_COUNT > 0`)
//! resumes from its checkpoint instead of starting over; an evaluation simply runs again.

use std::path::{Path, PathBuf};

use super::{Resources, SlurmOptions};
use fairtat_core::runs::EXIT_RESUMABLE;

/// What a job runs.
#[derive(Clone, Debug)]
pub enum Task {
    /// `train --run-dir DIR` (or `--resume` after a requeue).
    Train(PathBuf),
    /// `train --resume DIR`.
    Resume(PathBuf),
    /// `eval --run-dir DIR --suite S --model M --device D`.
    Eval {
        dir: PathBuf,
        suite: String,
        model: String,
    },
    /// A job array: task `i` trains `dirs[i]` (`SLURM_ARRAY_TASK_ID`).
    Array(Vec<PathBuf>),
}

/// One job to submit: the script's `#SBATCH` lines and body.
#[derive(Clone, Debug)]
pub struct Script {
    pub task: Task,
    /// `--job-name` (`fairtat-<kind>-<run id>`; cleaned of characters Slurm or shells mind).
    pub name: String,
    /// `--comment`: `fairtat:<run id>`, so a restarted server finds the job of a run.
    pub comment: String,
    /// `--output`: the run's `train.log`, the evaluation's `eval.log`; for arrays a pattern.
    pub output: PathBuf,
    /// What the job asks of Slurm (its run's `[slurm]` over the server's defaults); with a
    /// gres, an evaluation runs on the GPU the job gets.
    pub res: Resources,
}

/// `'text'` for the shell (single quotes; embedded ones closed and escaped).
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn q(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

/// A value for an `#SBATCH` line: sbatch reads these lines itself, not a shell, and splits
/// them at blanks outside double quotes, `\` escapes the next character and an unescaped `#`
/// starts a comment.
pub fn directive_value(text: &str) -> String {
    let escaped = (text.replace('\\', r"\\").replace('"', r#"\""#)).replace('#', r"\#");
    format!("\"{escaped}\"")
}

/// `--output`'s value: `%` is Slurm's pattern character, so every `%` of the path is doubled,
/// except in an array's file name, whose `%A_%a` are meant.
fn output_pattern(output: &Path, array: bool) -> String {
    let esc = |p: &Path| p.to_string_lossy().replace('%', "%%");
    let (Some(dir), Some(file), true) = (output.parent(), output.file_name(), array) else {
        return esc(output);
    };
    format!(
        "{}/{}",
        esc(dir).trim_end_matches('/'),
        file.to_string_lossy()
    )
}

/// A job name Slurm and `squeue` print cleanly: letters, digits, `.`, `_`, `-`; at most 64.
pub fn job_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "fairtat".into()
    } else {
        clean
    }
}

impl Script {
    /// The full batch script for `trainer` (a path the compute nodes can run).
    pub fn render(&self, opts: &SlurmOptions, trainer: &Path) -> String {
        let mut s = String::from("#!/bin/bash\n");
        s.push_str(
            "# Written by fairtat serve --executor slurm; `sbatch <this file>` resubmits it.\n",
        );
        let mut directive = |line: String| {
            s.push_str("#SBATCH ");
            s.push_str(&line);
            s.push('\n');
        };
        directive(format!("--job-name={}", job_name(&self.name)));
        // The comment is `fairtat:<run id>` (ids are validated): nothing to quote.
        directive(format!("--comment={}", self.comment));
        let array = matches!(self.task, Task::Array(_));
        let output = output_pattern(&self.output, array);
        directive(format!("--output={}", directive_value(&output)));
        directive("--open-mode=append".into());
        if let Task::Array(dirs) = &self.task {
            let limit = match opts.array_limit {
                0 => String::new(),
                m => format!("%{m}"),
            };
            directive(format!("--array=0-{}{limit}", dirs.len().saturating_sub(1)));
        }
        for a in opts.directives(&self.res) {
            directive(a);
        }
        // How the trainer starts: `exec`, or the requeueing parent's `fairtat_run`.
        let launch = if opts.requeue {
            s.push_str(&requeue_launch(opts.max_requeues));
            "fairtat_run"
        } else {
            "exec"
        };
        let t = format!("{launch} {}", q(trainer));
        match &self.task {
            Task::Train(dir) => s.push_str(&train_body(&t, &q(dir))),
            Task::Resume(dir) => {
                s.push_str(&format!("{t} train --resume {}\n", q(dir)));
            }
            Task::Eval { dir, suite, model } => {
                let device = if self.res.gpu { "cuda:0" } else { "cpu" };
                s.push_str(&format!(
                    "{t} eval --run-dir {} --suite {} --model {} --device {device}\n",
                    q(dir),
                    quote(suite),
                    quote(model)
                ));
            }
            Task::Array(dirs) => {
                s.push_str("dirs=(\n");
                for d in dirs {
                    s.push_str(&format!("  {}\n", q(d)));
                }
                s.push_str(")\ndir=\"${dirs[$SLURM_ARRAY_TASK_ID]}\"\n");
                // The task's run, for whoever inspects the job (the map in `.slurm` says it too).
                s.push_str("export FAIRTAT_RUN_ID=\"${dir##*/}\"\n");
                s.push_str("exec >>\"$dir/train.log\" 2>&1\n");
                s.push_str(&train_body(&t, "\"$dir\""));
            }
        }
        s
    }
}

/// Fresh training, or a resume when Slurm runs the job again after a requeue. `trainer` is
/// the launch word and the quoted program (`exec '/opt/fairtat'`).
fn train_body(trainer: &str, dir: &str) -> String {
    format!(
        "if [ \"${{SLURM_RESTART_COUNT:-0}}\" -gt 0 ] && [ -f {dir}/checkpoints/state.json ]; then\n  \
         {trainer} train --resume {dir}\nfi\n{trainer} train --run-dir {dir}\n"
    )
}

/// The script's part with `--slurm-requeue`: `fairtat_run CMD...` runs the trainer as a child
/// and ends the script.
/// - SIGUSR1 (`--signal=B:USR1@N` reaches the batch shell only) is passed on to the trainer.
/// - SIGTERM and SIGINT are not: `scancel` and the time limit signal every process of the job,
///   the trainer too, and a second SIGTERM would make it exit before its final line. The shell
///   outlives them only to report the trainer's status (a batch shell that dies first takes the
///   job, and the trainer's checkpoint, down with it).
/// - `wait` returns early when a trapped signal arrives, so it is repeated while the trainer
///   lives.
/// - After exit 75, while `SLURM_RESTART_COUNT` is under `max`, `scontrol requeue` puts the job
///   back in the queue under its id; a cluster that refuses it leaves exit 75, and the server
///   resubmits the run instead.
pub fn requeue_launch(max: usize) -> String {
    format!(
        r#"trap 'kill -USR1 "$pid" 2>/dev/null' USR1
trap ':' TERM INT
fairtat_run() {{
  "$@" &
  pid=$!
  wait "$pid"; rc=$?
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
  if [ "$rc" -eq {EXIT_RESUMABLE} ] && [ "${{SLURM_RESTART_COUNT:-0}}" -lt {max} ]; then
    # Said first: a requeue that succeeds ends this script at once.
    echo "fairtat: stopped resumably; asking Slurm to requeue job $SLURM_JOB_ID (restart $(( ${{SLURM_RESTART_COUNT:-0}} + 1 )) of {max})"
    scontrol requeue "$SLURM_JOB_ID" && exit 0
    echo "fairtat: Slurm did not requeue the job; exit {EXIT_RESUMABLE} leaves the resubmission to the server"
  fi
  exit "$rc"
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::config::DeviceSpec;

    fn opts() -> SlurmOptions {
        SlurmOptions {
            partition: "gpu".into(),
            gres: "gpu:1".into(),
            time: "1-00:00:00".into(),
            extra: vec!["--qos=high".into()],
            array_limit: 4,
            ..SlurmOptions::new()
        }
    }

    #[test]
    fn train_script_has_directives_and_resume_on_requeue() {
        let s = Script {
            task: Task::Train("/runs/a b".into()),
            name: "fair tat/1".into(),
            comment: "fairtat:r1".into(),
            output: "/runs/a b/train.log".into(),
            res: opts()
                .resources(&Default::default(), DeviceSpec::Cuda(0), 0)
                .unwrap(),
        }
        .render(&opts(), Path::new("/opt/fairtat"));
        for line in [
            "#SBATCH --job-name=fair_tat_1",
            "#SBATCH --comment=fairtat:r1",
            "#SBATCH --output=\"/runs/a b/train.log\"",
            "#SBATCH --partition=\"gpu\"",
            "#SBATCH --gres=\"gpu:1\"",
            "#SBATCH --time=\"1-00:00:00\"",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --qos=high",
            "exec '/opt/fairtat' train --run-dir '/runs/a b'",
            "exec '/opt/fairtat' train --resume '/runs/a b'",
        ] {
            assert!(s.contains(line), "{line} missing from\n{s}");
        }
        assert!(!s.contains("--array"));
    }

    #[test]
    fn cpu_runs_get_no_gres_and_arrays_a_limit() {
        let s = Script {
            task: Task::Array(vec!["/r/x".into(), "/r/y".into(), "/r/z".into()]),
            name: "grid".into(),
            comment: "fairtat-array:x".into(),
            output: "/r/.slurm/grid-%A_%a.out".into(),
            res: opts()
                .resources(&Default::default(), DeviceSpec::Cpu, 0)
                .unwrap(),
        }
        .render(&opts(), Path::new("/bin/fairtat"));
        assert!(s.contains("#SBATCH --array=0-2%4"), "{s}");
        assert!(!s.contains("--gres"));
        assert!(s.contains("  '/r/y'\n"));
        assert!(s.contains("dir=\"${dirs[$SLURM_ARRAY_TASK_ID]}\""));
        assert!(s.contains("export FAIRTAT_RUN_ID=\"${dir##*/}\"\n"), "{s}");
    }

    #[test]
    fn paths_with_blanks_and_percent_signs_are_quoted_and_escaped() {
        let dir = PathBuf::from("/my runs/100% \"x\"/r1");
        let s = Script {
            task: Task::Train(dir.clone()),
            name: "r1".into(),
            comment: "fairtat:r1".into(),
            output: dir.join("train.log"),
            res: Resources::default(),
        }
        .render(&opts(), Path::new("/opt/fair tat"));
        let want = r#"#SBATCH --output="/my runs/100%% \"x\"/r1/train.log""#;
        assert!(s.contains(want), "{want} missing from\n{s}");
        assert!(s.contains(r#"exec '/opt/fair tat' train --run-dir '/my runs/100% "x"/r1'"#));
        let array = output_pattern(Path::new("/r%/.slurm/grid-%A_%a.out"), true);
        assert_eq!(array, "/r%%/.slurm/grid-%A_%a.out");
    }

    #[test]
    fn with_requeue_the_script_stays_the_trainers_parent() {
        let o = SlurmOptions {
            requeue: true,
            max_requeues: 3,
            ..opts()
        };
        let s = Script {
            task: Task::Train("/runs/r1".into()),
            name: "r1".into(),
            comment: "fairtat:r1".into(),
            output: "/runs/r1/train.log".into(),
            res: o
                .resources(&Default::default(), DeviceSpec::Cpu, 0)
                .unwrap(),
        }
        .render(&o, Path::new("/opt/fairtat"));
        assert!(s.contains("#SBATCH --requeue\n"), "{s}");
        assert!(!s.contains("exec '/opt"), "{s}");
        assert!(s.contains("fairtat_run '/opt/fairtat' train --run-dir '/runs/r1'\n"));
        assert!(s.contains("fairtat_run '/opt/fairtat' train --resume '/runs/r1'\n"));
        assert!(s.contains("-lt 3 ]"), "{s}");
    }

    /// The launch part under a real bash: a fake trainer and a fake `scontrol` that logs.
    fn launch(trainer_body: &str, restarts: u32, signal: Option<&str>) -> (i32, String) {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let exe = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = d.join(name);
            std::fs::write(&p, format!("#!/bin/bash\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        exe(
            "scontrol",
            &format!("echo \"$@\" >> {}/scontrol.log", d.display()),
        );
        exe("trainer", trainer_body);
        let script = format!("{}fairtat_run {}/trainer\n", requeue_launch(2), d.display());
        std::fs::write(d.join("job.sh"), script).unwrap();
        let path = format!("{}:{}", d.display(), std::env::var("PATH").unwrap());
        let mut child = std::process::Command::new("bash")
            .arg(d.join("job.sh"))
            .current_dir(d)
            .env("PATH", path)
            .env("SLURM_JOB_ID", "41")
            .env("SLURM_RESTART_COUNT", restarts.to_string())
            .spawn()
            .unwrap();
        if let Some(sig) = signal {
            // The trainer has set its traps (it writes `ready`), then the batch shell is signalled.
            let t0 = std::time::Instant::now();
            while !d.join("ready").exists() {
                assert!(
                    t0.elapsed().as_secs() < 10,
                    "the fake trainer did not start"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let pid = child.id().to_string();
            let ok = std::process::Command::new("kill")
                .args([sig, &pid])
                .status();
            assert!(ok.unwrap().success());
        }
        let code = child.wait().unwrap().code().unwrap_or(-1);
        let log = std::fs::read_to_string(d.join("scontrol.log")).unwrap_or_default();
        (code, log)
    }

    /// Waits for SIGUSR1 (exit 75) or SIGTERM (exit 130), like the trainer.
    const SIGNALLED: &str = "trap 'exit 75' USR1\ntrap 'exit 130' TERM\ntouch ready\n\
                             for i in $(seq 30); do sleep 0.1; done\nexit 0";

    #[test]
    fn a_resumable_stop_requeues_the_job_through_slurm() {
        assert_eq!(launch("exit 75", 0, None), (0, "requeue 41\n".into()));
        // The warning reaches the batch shell only: it is passed on, and the job requeued.
        assert_eq!(
            launch(SIGNALLED, 1, Some("-USR1")),
            (0, "requeue 41\n".into())
        );
        // As often as `max_requeues` allows; then the stop stays exit 75 (the server's turn).
        assert_eq!(launch("exit 75", 2, None), (75, String::new()));
    }

    #[test]
    fn other_endings_keep_their_status_and_sigterm_is_not_sent_twice() {
        assert_eq!(launch("exit 0", 0, None), (0, String::new()));
        assert_eq!(launch("exit 2", 0, None), (2, String::new()));
        // scancel signals the shell and the trainer; the shell outlives the signal and reports
        // the trainer's status. Here only the shell gets it: the trainer is left to finish.
        assert_eq!(launch(SIGNALLED, 0, Some("-TERM")), (0, String::new()));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
