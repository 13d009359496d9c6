//! `fairtat eval`: evaluate a checkpoint, print a class-wise table, write JSON and CSV reports.

use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::{must_exist, parse_dataset, EvalArgs, Failure};
use crate::config::{parse_fraction, ConfigError};
use crate::runs::{reports, EpochRecord, RunDir};
use crate::train::{self, EvalOptions};

pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Failure> {
    must_exist(&a.checkpoint, "checkpoint")?;
    let eps = parse_fraction(&a.eps)
        .filter(|e| (0.0..=1.0).contains(e))
        .ok_or_else(|| {
            ConfigError::invalid(
                "--eps",
                format!("{:?} is not a number in [0, 1] (e.g. 8/255)", a.eps),
            )
        })?;
    let alpha = match &a.alpha {
        Some(s) => parse_fraction(s)
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(|| {
                ConfigError::invalid("--alpha", format!("{s:?} is not a number in [0, 1]"))
            })?,
        None => eps / 4.0,
    };
    let mut attacks = vec!["clean".to_string()];
    attacks.extend(a.attacks.iter().filter(|x| x.as_str() != "clean").cloned());
    let opts = EvalOptions {
        checkpoint: a.checkpoint.clone(),
        dataset: a.dataset.as_deref().map(parse_dataset).transpose()?,
        data_dir: a.data_dir.clone(),
        attacks,
        eps,
        alpha,
        subset: a.subset,
        batch_size: a.batch_size.max(1),
        device: train::device::select(&a.device)?,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} images")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let report = train::eval_checkpoint(&opts, |attack, done, total| {
        bar.set_prefix(attack.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();

    println!(
        "{} ({}, epoch {}) on {} test images of {}, eps {:.5}",
        report.checkpoint,
        report.arch,
        report.epoch + 1,
        report.images,
        report.dataset,
        report.eps
    );
    print!("{:<16}", "class");
    for e in &report.evals {
        print!("{:>10}", e.attack);
    }
    println!();
    for (c, name) in report.class_names.iter().enumerate() {
        print!("{:<16}", name.chars().take(15).collect::<String>());
        for e in &report.evals {
            print!("{:>9.1}%", 100.0 * e.metrics.class_acc[c]);
        }
        println!();
    }
    for (label, f) in [("overall", 0), ("worst class", 1), ("worst 10%", 2)] {
        print!("{label:<16}");
        for e in &report.evals {
            let m = &e.metrics;
            print!("{:>9.1}%", 100.0 * [m.overall, m.worst, m.worst10][f]);
        }
        println!();
    }

    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .checkpoint
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::path::PathBuf::from("evals")
            .join(format!("{}-{stem}", crate::runs::new_run_id("eval")))
    });
    let dir = RunDir::new(&out);
    std::fs::create_dir_all(dir.reports())?;
    std::fs::write(
        out.join("eval.json"),
        serde_json::to_vec_pretty(&report).map_err(anyhow::Error::from)?,
    )?;
    let record = EpochRecord {
        epoch: report.epoch,
        epochs: report.epoch + 1,
        lr: 0.0,
        train_loss: 0.0,
        train_secs: 0.0,
        eval_secs: 0.0,
        images_per_sec: 0.0,
        class_eps: vec![],
        target_probs: None,
        target_counts: None,
        evals: report.evals.clone(),
        method_state: Default::default(),
    };
    reports::write_reports(&dir, &report.class_names, &[record])?;
    println!("reports: {}", out.display());
    Ok(ExitCode::SUCCESS)
}
