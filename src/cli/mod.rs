//! Command-line interface: flag definitions (clap) and the commands behind them. `main.rs` only
//! parses, sets up tracing and maps errors to exit codes.

mod data;
mod download;
mod eval;
mod train;
// `serve` and its executor options belong to the server crate, which `fairtat-dashboard` is
// built from without libtorch; the shared exit-code type and tracing set-up live there too.
pub use fairtat_server::cli::{executor, init_tracing, serve, Failure, ServeArgs};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, DatasetKind, DeviceSpec, EvalBatch, Precision};

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

// Parsed once per process; boxing the larger argument structs would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train from a config file (or continue a run) into a run directory.
    Train(TrainArgs),
    /// Evaluate a checkpoint clean and under attack, with class-wise metrics.
    Eval(EvalArgs),
    /// Start the dashboard.
    Serve(ServeArgs),
    /// Download the data sets that do not ship with fairtat (CIFAR-10, CIFAR-100, CIFAR-10-C).
    Data(data::DataArgs),
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
    #[arg(long, value_parser = parse_device)]
    pub device: Option<DeviceSpec>,
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
    /// A number, or auto: 256 on the CPU, on a GPU the largest batch up to 1024 the memory
    /// model fits (default: the run's `eval.batch_size` with --run-dir, else auto).
    #[arg(long, value_parser = parse_batch)]
    pub batch_size: Option<EvalBatch>,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// fp32 or bf16 (default: the run's `train.precision` with --run-dir, else fp32).
    #[arg(long, value_parser = parse_precision)]
    pub precision: Option<Precision>,
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

pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Train(a) => train::cmd_train(a),
        Command::Eval(a) => eval::cmd_eval(a),
        Command::Serve(a) => serve::cmd_serve(a),
        Command::Data(a) => data::cmd_data(a),
        Command::Check { config, set } => {
            if let Some(specs) = train::grid_specs(&config, &set)? {
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

/// `--device`: the error names the allowed forms.
fn parse_device(text: &str) -> Result<DeviceSpec, String> {
    DeviceSpec::parse_for("--device", text).map_err(|e| e.to_string())
}

/// `--batch-size`: the error names the allowed values.
fn parse_batch(text: &str) -> Result<EvalBatch, String> {
    EvalBatch::parse_for("--batch-size", text).map_err(|e| e.to_string())
}

/// `--precision`: the error names the allowed values.
fn parse_precision(text: &str) -> Result<Precision, String> {
    Precision::parse(text).ok_or_else(|| {
        format!(
            "{text:?} is not allowed; allowed values: {}",
            Precision::NAMES.join(", ")
        )
    })
}

fn bail_failure(msg: String) -> Result<(), Failure> {
    (|| -> anyhow::Result<()> { bail!(msg) })().map_err(|e| Failure { code: 2, error: e })
}
