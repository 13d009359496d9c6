//! File names inside a run directory, in one place so writer, reader and server agree.

use std::path::{Path, PathBuf};

/// A run directory on disk. Cheap to clone; does no I/O by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

/// Checkpoint kinds the trainer writes.
pub const CHECKPOINT_KINDS: [&str; 3] = ["last", "ema", "best-worst-robust"];

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run id is the directory's name.
    pub fn id(&self) -> String {
        self.root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn config_toml(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn spec_json(&self) -> PathBuf {
        self.root.join("spec.json")
    }

    pub fn events(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }

    pub fn log(&self) -> PathBuf {
        self.root.join("train.log")
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `checkpoints/<kind>.safetensors`.
    pub fn checkpoint(&self, kind: &str) -> PathBuf {
        self.checkpoints().join(format!("{kind}.safetensors"))
    }

    /// Optimiser and loop state needed to resume (`checkpoints/state.json` + `optimizer.safetensors`).
    pub fn resume_state(&self) -> PathBuf {
        self.checkpoints().join("state.json")
    }

    pub fn reports(&self) -> PathBuf {
        self.root.join("reports")
    }

    pub fn report(&self, name: &str) -> PathBuf {
        self.reports().join(name)
    }

    /// Written by the server when it queues a run, removed when the run starts.
    pub fn queued_marker(&self) -> PathBuf {
        self.root.join("queued")
    }

    /// A pid file written by the trainer while it runs.
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("trainer.pid")
    }
}
