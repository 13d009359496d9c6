//! `fairtat eval`: evaluate a checkpoint (or a run's checkpoint) under attacks and corruptions,
//! print a class-wise table, write JSON and CSV reports (format: `runs::eval_report`).
//!
//! SIGINT, SIGTERM and the scheduler's SIGUSR1 stop the evaluation before its next batch: it
//! leaves `error.txt` saying so and exits 130 (75 after SIGUSR1, resumable: run it again).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{must_exist, parse_dataset, EvalArgs, Failure};
use crate::config::{parse_fraction, ConfigError, RunSpec};
use crate::evaluation::{self, CorruptionSource, EvalOptions, Suite};
use crate::runs::eval_report::{self, EvalProgress, EvalReport};
use crate::runs::lock::RunLock;
use crate::runs::{CheckpointKind, RunDir};
use crate::train;

fn fraction(flag: &str, s: &str) -> Result<f64, ConfigError> {
    parse_fraction(s)
        .filter(|e| (0.0..=1.0).contains(e))
        .ok_or_else(|| {
            ConfigError::invalid(
                flag,
                format!("{s:?} is not a number in [0, 1] (e.g. 8/255)"),
            )
        })
}

pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Failure> {
    let suite = a
        .suite
        .as_deref()
        .map(|s| {
            Suite::parse(s).ok_or_else(|| ConfigError::not_allowed("--suite", s, &Suite::NAMES))
        })
        .transpose()?;
    // Held until the reports are written: the run's owner while this evaluation runs.
    let (checkpoint, run_spec, default_out, _run_lock) = target(&a, suite)?;
    must_exist(&checkpoint, "checkpoint")?;
    // Before any tensor work: the CPUs this process was given (the run's train.threads wins).
    train::threads::configure(run_spec.as_ref().map_or(0, |s| s.train.threads));
    let out = a.out.clone().unwrap_or(default_out);
    let opts = eval_options(&a, suite, checkpoint, run_spec.as_ref())?;
    if let Some(dir) = &a.corruptions_dir {
        must_exist(dir, "--corruptions-dir")?;
    }
    std::fs::create_dir_all(&out)?;
    let _ = std::fs::remove_file(out.join("error.txt"));
    let stop = Arc::new(AtomicBool::new(false));
    let scheduler_stop = super::train::install_signals(&stop)?;
    let result = run_with_progress(&opts, &stop, &out);
    let _ = std::fs::remove_file(out.join("progress.json"));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let failure = stopped(e, scheduler_stop.load(Ordering::SeqCst));
            // Leave the reason where the dashboard looks for it.
            let _ = std::fs::write(out.join("error.txt"), failure.error.to_string());
            return Err(failure);
        }
    };
    print_table(&report);
    eval_report::write(&out, &report)?;
    println!("reports: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The failure of an evaluation; a stop request's says who stopped it and exits 130 (75 after
/// the scheduler's SIGUSR1: the job may be run again).
fn stopped(e: train::TrainError, scheduler: bool) -> Failure {
    if !matches!(e, train::TrainError::Stopped) {
        return e.into();
    }
    let (who, code) = if scheduler {
        (
            "the scheduler's time-limit warning (SIGUSR1)",
            fairtat_core::runs::EXIT_RESUMABLE,
        )
    } else {
        ("SIGINT/SIGTERM (Cancel, Ctrl-C, kill or scancel)", 130)
    };
    Failure {
        code,
        error: anyhow::anyhow!("evaluation stopped by {who} before it finished; run it again"),
    }
}

/// What to evaluate: the checkpoint, the run's config (defaults, when a run directory is
/// evaluated), where the reports go by default, and the run's lock.
fn target(
    a: &EvalArgs,
    suite: Option<Suite>,
) -> Result<(PathBuf, Option<RunSpec>, PathBuf, Option<RunLock>), Failure> {
    let Some(dir) = &a.run_dir else {
        let ckpt = a.checkpoint.clone().unwrap_or_default();
        let stem = ckpt
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out =
            PathBuf::from("evals").join(format!("{}-{stem}", crate::runs::new_run_id("eval")));
        return Ok((ckpt, None, out, None));
    };
    let run = RunDir::new(dir);
    let kind = CheckpointKind::parse(&a.model)
        .ok_or_else(|| ConfigError::not_allowed("--model", &a.model, &CheckpointKind::NAMES))?;
    let spec = crate::runs::read_run_config(&run, &[])?;
    let label = suite.map(|s| s.as_str()).unwrap_or("custom");
    // The run's owner while this evaluation runs: no trainer may resume it meanwhile.
    let what = format!("eval {label}-{kind}");
    let lock = RunLock::acquire(&run, &what).map_err(anyhow::Error::from)?;
    let out = run.evals().join(format!("{label}-{kind}"));
    // Running now (and owning the run): a restarted dashboard adopts it through the lock
    // instead of queueing it again.
    let _ = std::fs::remove_file(out.join("queued"));
    Ok((run.checkpoint(kind), Some(spec), out, Some(lock)))
}

/// The evaluation the flags ask for; what they leave open comes from the run's config when a
/// run directory is evaluated, else from the defaults (eps 8/255, step eps/4, PGD-20).
fn eval_options(
    a: &EvalArgs,
    suite: Option<Suite>,
    checkpoint: PathBuf,
    run_spec: Option<&RunSpec>,
) -> Result<EvalOptions, Failure> {
    let eps = match (&a.eps, run_spec) {
        (Some(s), _) => fraction("--eps", s)?,
        (None, Some(spec)) => spec.eval.eps,
        (None, None) => 8.0 / 255.0,
    };
    let alpha = match &a.alpha {
        Some(s) => fraction("--alpha", s)?,
        None => eps / 4.0,
    };
    let mut attacks = a.attacks.clone();
    if attacks.is_empty() && suite.is_none() {
        attacks.push("pgd-20".into());
    }
    let dataset = match (&a.dataset, run_spec) {
        (Some(d), _) => Some(parse_dataset(d)?),
        (None, Some(spec)) => Some(spec.data.dataset),
        (None, None) => None,
    };
    Ok(EvalOptions {
        checkpoint,
        dataset,
        data_dir: a
            .data_dir
            .clone()
            .or_else(|| run_spec.map(|s| s.data.dir.clone())),
        attacks,
        suite,
        eps,
        alpha,
        subset: a
            .subset
            .or_else(|| run_spec.map(|s| s.data.test_subset))
            .unwrap_or(0),
        batch_size: a
            .batch_size
            .or_else(|| run_spec.map(|s| s.eval.batch_size))
            .unwrap_or_default(),
        device: train::device::select(a.device)?,
        precision: a
            .precision
            .or_else(|| run_spec.map(|s| s.train.precision))
            .unwrap_or_default(),
        seed: a.seed,
        corruptions: a
            .corruptions_dir
            .clone()
            .map(|dir| CorruptionSource::Files { dir }),
        corruption_names: a.corruptions.clone(),
        severities: a.severities.clone(),
    })
}

/// Evaluate with a terminal progress bar and `progress.json` (at most once a second).
fn run_with_progress(
    opts: &EvalOptions,
    stop: &AtomicBool,
    out: &std::path::Path,
) -> Result<EvalReport, train::TrainError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut last_write: Option<Instant> = None;
    let report = evaluation::eval_checkpoint(opts, stop, |stage, done, total| {
        bar.set_prefix(stage.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if last_write.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_write = Some(Instant::now());
            let p = EvalProgress {
                stage: stage.to_string(),
                done,
                total,
                updated_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            };
            if let Ok(json) = serde_json::to_string(&p) {
                let _ = crate::runs::reports::write_atomic(&out.join("progress.json"), &json);
            }
        }
    });
    bar.finish_and_clear();
    report
}

fn print_table(report: &EvalReport) {
    println!(
        "{} ({}, epoch {}) on {} test images of {}, eps {:.5}, batches of {}, {:.1} s",
        report.checkpoint,
        report.arch,
        report.epoch + 1,
        report.images,
        report.dataset,
        report.eps,
        report.batch_size,
        report.seconds
    );
    print!("{:<16}", "class");
    for e in &report.evals {
        print!("{:>14}", e.attack);
    }
    println!();
    for (c, name) in report.class_names.iter().enumerate() {
        print!("{:<16}", name.chars().take(15).collect::<String>());
        for e in &report.evals {
            print!(
                "{:>13.1}%",
                100.0 * e.metrics.class_acc.get(c).copied().unwrap_or(0.0)
            );
        }
        println!();
    }
    for (label, f) in [("overall", 0), ("worst class", 1), ("worst 10%", 2)] {
        print!("{label:<16}");
        for e in &report.evals {
            let m = &e.metrics;
            print!("{:>13.1}%", 100.0 * [m.overall, m.worst, m.worst10][f]);
        }
        println!();
    }
    if !report.autoattack.is_empty() {
        println!("\nAutoAttack stages (robust accuracy after each):");
        for s in &report.autoattack {
            println!(
                "  {:<10} broke {:>6}  overall {:>5.1}%  worst {:>5.1}%  ({:.1} s)",
                s.stage,
                s.broken,
                100.0 * s.metrics.overall,
                100.0 * s.metrics.worst,
                s.seconds
            );
        }
    }
    if !report.corruption_summary.is_empty() {
        println!("\nCorruptions (all severities pooled):");
        println!(
            "  {:<20} {:>8} {:>12}",
            "corruption", "overall", "worst class"
        );
        for c in &report.corruption_summary {
            println!(
                "  {:<20} {:>7.1}% {:>11.1}%",
                c.corruption,
                100.0 * c.overall,
                100.0 * c.worst
            );
        }
    }
}
