//! Command-line interface: flag definitions (clap) and the commands behind them. `main.rs` only
//! parses, sets up tracing and maps errors to exit codes.

mod eval;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, DatasetKind, RunSpec};
use crate::runs::writer::EventWriter;
use crate::runs::{new_run_id, EventSink, RunDir, RunEvent, RunStatus};
use crate::train::{self, Outcome, ProgressSink, TrainOptions};

#[derive(Parser, Debug)]
#[command(
    name = "fairtat",
    version,
    about = "Robust-fairness adversarial training (FAIR-TAT and baselines) with a live dashboard"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train from a config file (or continue a run) into a run directory.
    Train(TrainArgs),
    /// Evaluate a checkpoint clean and under attack, with class-wise metrics.
    Eval(EvalArgs),
    /// Start the dashboard.
    Serve(ServeArgs),
    /// Validate a config and print the resolved values.
    Check {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Config file (TOML); see configs/ for presets.
    #[arg(long, conflicts_with_all = ["run_dir", "resume"])]
    pub config: Option<PathBuf>,
    /// Override a config value, e.g. --set train.epochs=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Parent directory of new run directories.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// auto, cpu or cuda:N (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the config.toml already in this run directory (what the dashboard starts).
    #[arg(long, conflicts_with = "resume")]
    pub run_dir: Option<PathBuf>,
    /// Continue a run from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint to evaluate (a `.safetensors` file written by `fairtat train`).
    #[arg(long, required_unless_present = "run_dir", conflicts_with = "run_dir")]
    pub checkpoint: Option<PathBuf>,
    /// Evaluate a run's checkpoint (see --model) with the run's dataset, test subset and eps;
    /// results go to RUN_DIR/evals/<suite>-<model>/ (what the dashboard's evaluation job runs).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// With --run-dir: which checkpoint: last, ema, fawa or best-worst-robust.
    #[arg(long, default_value = "last")]
    pub model: String,
    /// standard (clean, PGD-20, AutoAttack, Square-5000), quick (clean, PGD-20, a cheaper
    /// AutoAttack) or corruptions (clean + common corruptions).
    #[arg(long)]
    pub suite: Option<String>,
    /// fashion-mnist, cifar10 or cifar100 (default: the checkpoint's).
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// clean, fgsm, pgd-<k>, apgd-ce, apgd-t, fab-t, square-<queries>, autoattack,
    /// autoattack-quick (repeatable; clean is always included). Default: pgd-20 without --suite.
    #[arg(long = "attack")]
    pub attacks: Vec<String>,
    /// L-inf radius in [0,1] pixel units: a number or a fraction such as 8/255 (default 8/255,
    /// or the run's eval.eps with --run-dir).
    #[arg(long)]
    pub eps: Option<String>,
    /// PGD step size (default eps/4).
    #[arg(long)]
    pub alpha: Option<String>,
    /// Class-balanced test subset size (0 = all; default: the run's with --run-dir).
    #[arg(long)]
    pub subset: Option<usize>,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed of random starts, restarts and procedural corruptions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A CIFAR-10-C / CIFAR-100-C directory (<corruption>.npy + labels.npy); without it the
    /// corruptions suite generates corruptions procedurally from the test set.
    #[arg(long)]
    pub corruptions_dir: Option<PathBuf>,
    /// Corruption name (repeatable; default: all available).
    #[arg(long = "corruption")]
    pub corruptions: Vec<String>,
    /// Severity 1..5 (repeatable; default: all five).
    #[arg(long = "severity")]
    pub severities: Vec<u8>,
    /// Where to write eval.json and CSV reports.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
    /// Required for state-changing requests when bound to a non-loopback address (or FAIRTAT_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// Concurrent runs on the CPU.
    #[arg(long, default_value_t = 1)]
    pub max_cpu_runs: usize,
}

/// Exit codes: 0 done, 1 failure, 2 bad input (config, flags, data), 130 cancelled.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        let error = e.into();
        let code = if error.downcast_ref::<ConfigError>().is_some() {
            2
        } else {
            1
        };
        Failure { code, error }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => eval::cmd_eval(a),
        Command::Serve(a) => {
            crate::server::run_serve(crate::server::ServeOptions {
                addr: a.addr,
                runs_dir: a.runs,
                configs_dir: a.configs,
                token: a
                    .token
                    .or_else(|| std::env::var("FAIRTAT_TOKEN").ok())
                    .filter(|t| !t.is_empty()),
                max_cpu_runs: a.max_cpu_runs.max(1),
                trainer: None,
                poll_ms: 100,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, set } => {
            if let Some(specs) = grid_specs(&config, &set)? {
                println!("# grid: {} runs", specs.len());
                for spec in specs {
                    println!("# --- {}\n{}", spec.name, spec.to_toml());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let spec = config::load(&config, &set)?;
            print!("{}", spec.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_train(a: TrainArgs) -> Result<ExitCode, Failure> {
    let mut sets = a.set.clone();
    if let Some(seed) = a.seed {
        sets.push(format!("seed={seed}"));
    }
    if let Some(d) = &a.device {
        sets.push(format!("device={d:?}"));
    }
    let (spec, run, resume, created) = if let Some(dir) = &a.resume {
        let run = RunDir::new(dir);
        (load_run_config(&run, &sets)?, run, true, false)
    } else if let Some(dir) = &a.run_dir {
        let run = RunDir::new(dir);
        if run.resume_state().exists() {
            return Err(anyhow::anyhow!(
                "{} already has checkpoints; continue it with --resume",
                dir.display()
            )
            .into());
        }
        (load_run_config(&run, &sets)?, run, false, false)
    } else if let Some(cfg) = &a.config {
        if let Some(specs) = grid_specs(cfg, &sets)? {
            return train_grid(&specs, &a.out);
        }
        // Validate completely before creating anything: a config error leaves no run behind.
        let spec = config::load(cfg, &sets)?;
        let run = RunDir::new(a.out.join(new_run_id(&spec.name)));
        std::fs::create_dir_all(run.root())
            .with_context(|| format!("creating {}", run.root().display()))?;
        std::fs::write(run.config_toml(), spec.to_toml())?;
        (spec, run, false, true)
    } else {
        return Err(anyhow::anyhow!("give --config FILE, --run-dir DIR or --resume DIR").into());
    };
    std::fs::write(
        run.spec_json(),
        serde_json::to_vec_pretty(&spec).map_err(anyhow::Error::from)?,
    )?;
    train_in(&spec, &run, resume, created)
}

/// The runs of a grid config (`[grid]` table), or `None` for a plain config.
fn grid_specs(cfg: &Path, sets: &[String]) -> Result<Option<Vec<RunSpec>>, Failure> {
    let text = std::fs::read_to_string(cfg).map_err(|e| ConfigError::Io {
        path: cfg.display().to_string(),
        message: e.to_string(),
    })?;
    let stem = cfg
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "grid".into());
    // `preset` axes name configs relative to the grid file's directory (e.g. configs/).
    let dir = cfg.parent().unwrap_or(Path::new("."));
    let loader = config::grid::presets_in(dir);
    Ok(config::grid::expand_with(&text, sets, &new_run_id(&stem), &loader)?)
}

/// Train every run of a grid one after the other (the CLI's queue); a signal stops the grid.
fn train_grid(specs: &[RunSpec], out: &Path) -> Result<ExitCode, Failure> {
    eprintln!("grid: {} runs", specs.len());
    let mut code = ExitCode::SUCCESS;
    for (i, spec) in specs.iter().enumerate() {
        eprintln!("grid run {}/{}: {}", i + 1, specs.len(), spec.name);
        let run = RunDir::new(out.join(new_run_id(&spec.name)));
        std::fs::create_dir_all(run.root())
            .with_context(|| format!("creating {}", run.root().display()))?;
        std::fs::write(run.config_toml(), spec.to_toml())?;
        std::fs::write(
            run.spec_json(),
            serde_json::to_vec_pretty(spec).map_err(anyhow::Error::from)?,
        )?;
        code = train_in(spec, &run, false, true)?;
        if code != ExitCode::SUCCESS {
            eprintln!("grid stopped after run {}", i + 1);
            break;
        }
    }
    Ok(code)
}

/// The config of an existing run directory; a validation failure there (a hand-edited config)
/// is also recorded as a `finished: failed` event.
fn load_run_config(run: &RunDir, sets: &[String]) -> Result<RunSpec, Failure> {
    if !run.config_toml().exists() {
        return Err(anyhow::anyhow!(
            "{} is not a run directory (no config.toml)",
            run.root().display()
        )
        .into());
    }
    config::load(&run.config_toml(), sets).map_err(|e| {
        // Record why in the run itself, so the dashboard shows it.
        if let Ok(mut w) = EventWriter::open(run) {
            let _ = w.append(&RunEvent::Finished {
                status: RunStatus::Failed,
                epochs_done: read_epochs_done(run),
                message: Some(e.to_string()),
            });
        }
        e.into()
    })
}

/// Run the trainer with signal handling, the JSONL writer and the progress bar; always end the
/// event log with a `finished` event.
fn train_in(
    spec: &RunSpec,
    run: &RunDir,
    resume: bool,
    created: bool,
) -> Result<ExitCode, Failure> {
    if spec.train.threads > 0 {
        tch::set_num_threads(spec.train.threads as i32);
    }
    let device = train::device::select(&spec.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let _ = std::fs::remove_file(run.queued_marker());
    std::fs::write(run.pid_file(), std::process::id().to_string())?;
    let writer =
        EventWriter::open(run).with_context(|| format!("opening {}", run.events().display()))?;
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(writer), Box::new(ProgressSink::new())];
    let opts = TrainOptions {
        device,
        stop,
        resume,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train::train(spec, run, &opts, &mut sinks)
    }));
    let (status, epochs_done, message, code) = match result {
        Ok(Ok(Outcome::Finished { epochs_done })) => (RunStatus::Finished, epochs_done, None, 0),
        Ok(Ok(Outcome::Cancelled { epochs_done })) => (
            RunStatus::Cancelled,
            epochs_done,
            Some("stopped by signal".to_string()),
            130,
        ),
        Ok(Err(e)) => (
            RunStatus::Failed,
            0,
            Some(e.to_string()),
            if matches!(e, train::TrainError::Data(_)) {
                2
            } else {
                1
            },
        ),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            (
                RunStatus::Failed,
                0,
                Some(format!("internal error: {}", msg.unwrap_or_default())),
                1,
            )
        }
    };
    let _ = std::fs::remove_file(run.pid_file());
    if status == RunStatus::Failed && created && !run.checkpoints().exists() {
        // Nothing was recorded yet: leave no half-made run behind.
        let _ = std::fs::remove_dir_all(run.root());
        return Err(Failure {
            code,
            error: anyhow::anyhow!("{}", message.unwrap_or_default()),
        });
    }
    let epochs_done = if status == RunStatus::Failed {
        read_epochs_done(run)
    } else {
        epochs_done
    };
    sinks.emit(&RunEvent::Finished {
        status,
        epochs_done,
        message: message.clone(),
    });
    eprintln!("run directory: {}", run.root().display());
    match status {
        RunStatus::Failed => Err(Failure {
            code,
            error: anyhow::anyhow!("{}", message.unwrap_or_default()),
        }),
        _ => Ok(ExitCode::from(code)),
    }
}

fn read_epochs_done(run: &RunDir) -> usize {
    train::ResumeState::load(&run.resume_state())
        .map(|s| s.epochs_done)
        .unwrap_or(0)
}

/// Parse a dataset name for `--dataset`.
pub(crate) fn parse_dataset(s: &str) -> Result<DatasetKind, Failure> {
    DatasetKind::parse(s)
        .ok_or_else(|| ConfigError::not_allowed("--dataset", s, &DatasetKind::NAMES).into())
}

/// Fail early with a clear message when a path that must exist does not.
pub(crate) fn must_exist(p: &Path, what: &str) -> Result<(), Failure> {
    if !p.exists() {
        bail_failure(format!("{what} {} does not exist", p.display()))?;
    }
    Ok(())
}

fn bail_failure(msg: String) -> Result<(), Failure> {
    (|| -> anyhow::Result<()> { bail!(msg) })().map_err(|e| Failure { code: 2, error: e })
}
