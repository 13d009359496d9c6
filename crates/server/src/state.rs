//! Shared server state: the runs folder, the SQLite index, the event hub, the job executor and
//! the shutdown token every long-lived task and SSE stream watches (plus the web settings).
//! Starting, following and adopting processes is `supervisor`'s work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::folder_lock::FolderLock;
use super::guard::Guard;
use super::hub::Hub;
use super::index::{Index, INDEX_FILE};
use super::jobs::scheduler::Scheduler;
use super::jobs::{Devices, Executor};
use super::sessions::Sessions;
use super::store::MetricsStore;
use super::{scan, ServeOptions};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

/// Cheap to clone; every handler gets one. Its parts are reached through methods, so what a
/// handler may touch is this file's decision, not every caller's.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    runs_dir: PathBuf,
    configs_dir: PathBuf,
    token: Option<String>,
    /// Host/origin checks and limits (`server::guard`).
    guard: Guard,
    /// How often followers poll `events.jsonl` (at most every 200 ms).
    poll: Duration,
    /// The program started as `<trainer> train --run-dir DIR`.
    trainer: PathBuf,
    index: Index,
    hub: Hub,
    store: MetricsStore,
    jobs: Executor,
    /// The Slurm jobs of `--executor slurm` (None: jobs are child processes of this server).
    scheduler: Option<Arc<Scheduler>>,
    /// Fires on Ctrl-C / SIGTERM: followers stop, SSE streams end, the server drains.
    shutdown: CancellationToken,
    /// This server's exclusive hold on the runs folder, released on shutdown.
    folder_lock: FolderLock,
    /// Login sessions and wrong-token counts (in memory; see `http::sessions`).
    sessions: Sessions,
    /// Permits for open event streams (`http::streams`).
    streams: Arc<tokio::sync::Semaphore>,
    /// Runs admitted to the queue whose directories are still being written (`admission`).
    admitting: std::sync::atomic::AtomicUsize,
}

impl AppState {
    /// Open the index and set up an idle executor; `supervisor::start` rebuilds the index from
    /// the run directories and adopts what is running.
    pub fn new(opts: &ServeOptions) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&opts.runs_dir)?;
        let folder_lock = FolderLock::acquire(&opts.runs_dir, &opts.addr.to_string())?;
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
                guard: Guard::from_options(opts),
                poll: Duration::from_millis(opts.poll_ms.clamp(10, 200)),
                trainer,
                index,
                hub: Hub::default(),
                store: Default::default(),
                jobs: match opts.slurm {
                    Some(_) => Executor::scheduled(),
                    None => Executor::new(&Devices {
                        gpus,
                        runs_per_gpu: opts.runs_per_gpu,
                        cpu_jobs: opts.max_cpu_runs.max(1),
                    }),
                },
                scheduler: opts.slurm.clone().map(|o| Arc::new(Scheduler::new(o))),
                shutdown: CancellationToken::new(),
                folder_lock,
                sessions: Sessions::default(),
                admitting: Default::default(),
                streams: Arc::new(tokio::sync::Semaphore::new(opts.limits.max_streams.max(1))),
            }),
        })
    }

    pub fn admitting(&self) -> &std::sync::atomic::AtomicUsize {
        &self.inner.admitting
    }

    pub fn streams(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.streams
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn runs_dir(&self) -> &Path {
        &self.inner.runs_dir
    }

    /// Preset configs (`*.toml`) offered by the new-run form and `POST /api/runs`.
    pub fn configs_dir(&self) -> &Path {
        &self.inner.configs_dir
    }

    /// The access token, if one is set (never empty).
    pub fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
    }

    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    pub fn poll(&self) -> Duration {
        self.inner.poll
    }

    pub fn trainer(&self) -> &Path {
        &self.inner.trainer
    }

    pub fn index(&self) -> &Index {
        &self.inner.index
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn store(&self) -> &MetricsStore {
        &self.inner.store
    }

    pub fn jobs(&self) -> &Executor {
        &self.inner.jobs
    }

    pub fn scheduler(&self) -> Option<&Arc<Scheduler>> {
        self.inner.scheduler.as_ref()
    }

    /// The token every long-lived task and stream watches (see [`AppState::shutdown`]).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub fn run_dir(&self, id: &RunId) -> RunDir {
        RunDir::new(self.inner.runs_dir.join(id.as_str()))
    }

    /// The directory of an indexed run: the index holds only runs found under the runs
    /// folder, so a summary's id is a directory name there.
    pub fn summary_dir(&self, summary: &RunSummary) -> RunDir {
        RunDir::new(self.inner.runs_dir.join(&summary.id))
    }

    /// Stop followers and end SSE streams. Trainer processes keep running (they are separate
    /// process groups) and are adopted by the next server start.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.folder_lock.release();
    }

    /// Store a summary in the index. The index is a cache rebuilt from the run directories, so
    /// a failed write is logged rather than failing the caller.
    pub fn index_summary(&self, summary: &RunSummary) {
        if let Err(e) = self.inner.index.upsert(summary) {
            tracing::warn!(cause = %e, run = %summary.id, "index update failed");
        }
    }

    /// Reload one run from disk into the index and tell subscribers.
    pub fn refresh(&self, id: &RunId) -> Option<RunSummary> {
        let mut loaded = scan::load(&self.run_dir(id));
        if self.jobs().lock().running(id).is_some() && !loaded.summary.status.is_terminal() {
            loaded.summary.status = RunStatus::Running;
            loaded.summary.message = None;
        }
        self.index_summary(&loaded.summary);
        self.inner.hub.status(&loaded.summary);
        Some(loaded.summary)
    }

    /// Whether the run has a job waiting or running.
    pub fn is_active(&self, id: &RunId) -> bool {
        self.jobs().lock().active(id)
    }
}
