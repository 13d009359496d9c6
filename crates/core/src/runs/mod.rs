//! The run directory: the durable record of one run (like TensorBoard's logdir).
//!
//! ```text
//! runs/<id>/
//!   config.toml          the resolved, validated config (re-runnable as is)
//!   spec.json            the same, as JSON (what the dashboard reads)
//!   meta.json            the user's edits: display name, tags, notes (never the config)
//!   events.jsonl         append-only; one `EventLine` per line, schema version `v`
//!   lock                 flock-ed by the process that owns the directory (pid, what it does)
//!   train.log            the trainer's stderr (when started by the server)
//!   checkpoints/         last.safetensors, ema.safetensors, best-worst-robust.safetensors, state.json
//!   reports/             epochs.csv, classes.csv, confusion_<split>_<attack>.csv
//!   evals/<suite>-<ckpt>/ eval.json, summary.csv, autoattack.csv, corruptions.csv (evaluations)
//! ```
//! The trainer is the only writer of everything but `evals/`, which belongs to `fairtat eval
//! --run-dir` (one directory per suite and checkpoint, started after training). Everything the server keeps can be rebuilt from these files.
//! No tch, no tokio here.

pub mod deps;
pub mod eval_key;
pub mod eval_names;
pub mod eval_report;
pub mod events;
pub mod layout;
pub mod lock;
pub mod meta;
pub mod provenance;
pub mod reader;
pub mod reports;
mod run_dir;
pub mod safe_fs;
pub mod summary;
pub mod synthetic;
pub mod writer;

pub use events::{
    EpochRecord, EvalRecord, EventLine, EventSink, ProgressRecord, RunEvent, RunStatus,
    SCHEMA_VERSION,
};
pub use layout::{is_valid_run_id, new_run_id, CheckpointKind, RunDir, RunId};
pub use run_dir::{create_run_dir, read_run_config, write_config};

/// The exit status of a resumable stop: `fairtat train` or `fairtat eval` stopped by SIGUSR1
/// (a scheduler's warning before its time limit) after saving what resumes it; EX_TEMPFAIL of
/// BSD's `sysexits.h`. A Slurm batch script requeues its job on it (`--slurm-requeue`).
pub const EXIT_RESUMABLE: u8 = 75;
