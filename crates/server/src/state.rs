//! Shared server state: the runs folder, the SQLite index, the event hub, the job executor and
//! the shutdown token every long-lived task and SSE stream watches (plus the web settings).
//! Starting, following and adopting processes is `supervisor`'s work.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::index::{Index, INDEX_FILE};
use super::jobs::scheduler::Scheduler;
use super::jobs::Executor;
use super::{scan, ServeOptions};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunStatus};

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub runs_dir: PathBuf,
    pub configs_dir: PathBuf,
    pub token: Option<String>,
    /// Host/origin checks and limits (`server::guard`).
    pub guard: super::guard::Guard,
    /// How often followers poll `events.jsonl` (at most every 200 ms).
    pub poll: Duration,
    /// The program started as `<trainer> train --run-dir DIR`.
    pub trainer: PathBuf,
    pub index: Index,
    pub hub: Hub,
    pub store: super::store::MetricsStore,
    pub jobs: Executor,
    /// The Slurm jobs of `--executor slurm` (None: jobs are child processes of this server).
    pub scheduler: Option<Arc<Scheduler>>,
    /// Fires on Ctrl-C / SIGTERM: followers stop, SSE streams end, the server drains.
    pub shutdown: CancellationToken,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// Largest request body accepted (configs and forms are a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

impl AppState {
    /// Open the index and set up an idle executor; `supervisor::start` rebuilds the index from
    /// the run directories and adopts what is running.
    pub fn new(opts: &ServeOptions) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&opts.runs_dir)?;
        let index = Index::open(&opts.runs_dir.join(INDEX_FILE))?;
        let trainer = match &opts.trainer {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        let gpus = super::process::detect_gpus();
        Ok(AppState {
            inner: Arc::new(Inner {
                runs_dir: opts.runs_dir.clone(),
                configs_dir: opts.configs_dir.clone(),
                token: opts.token.clone().filter(|t| !t.is_empty()),
                guard: super::guard::Guard::from_options(opts),
                poll: Duration::from_millis(opts.poll_ms.clamp(10, 200)),
                trainer,
                index,
                hub: Hub::default(),
                store: Default::default(),
                jobs: match opts.slurm {
                    Some(_) => Executor::scheduled(),
                    None => Executor::new(gpus, opts.max_cpu_runs.max(1)),
                },
                scheduler: opts.slurm.clone().map(|o| Arc::new(Scheduler::new(o))),
                shutdown: CancellationToken::new(),
            }),
        })
    }

    pub fn run_dir(&self, id: &str) -> RunDir {
        RunDir::new(self.runs_dir.join(id))
    }

    /// Stop followers and end SSE streams. Trainer processes keep running (they are separate
    /// process groups) and are adopted by the next server start.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Reload one run from disk into the index and tell subscribers.
    pub fn refresh(&self, id: &str) -> Option<RunSummary> {
        let mut loaded = scan::load(&self.run_dir(id));
        let running = id
            .parse()
            .ok()
            .is_some_and(|run| self.jobs.lock().running(&run).is_some());
        if running && !loaded.summary.status.is_terminal() {
            loaded.summary.status = RunStatus::Running;
            loaded.summary.message = None;
        }
        let _ = self.index.upsert(&loaded.summary);
        self.hub.status(&loaded.summary);
        Some(loaded.summary)
    }

    /// Whether the run has a job waiting or running.
    pub fn is_active(&self, id: &str) -> bool {
        id.parse()
            .ok()
            .is_some_and(|run| self.jobs.lock().active(&run))
    }
}
