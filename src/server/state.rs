//! Shared server state: options, the SQLite index, the event hub, the executor's bookkeeping and
//! the shutdown token every long-lived task and SSE stream watches.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::executor::ExecState;
use super::hub::Hub;
use super::index::{Index, INDEX_FILE};
use super::{scan, ServeOptions};
use crate::runs::RunDir;

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub runs_dir: PathBuf,
    pub configs_dir: PathBuf,
    pub token: Option<String>,
    /// How often followers poll `events.jsonl` (at most every 200 ms).
    pub poll: Duration,
    /// The program started as `<trainer> train --run-dir DIR`.
    pub trainer: PathBuf,
    pub index: Index,
    pub hub: Hub,
    pub store: super::store::MetricsStore,
    pub exec: Mutex<ExecState>,
    /// Fires on Ctrl-C / SIGTERM: followers stop, SSE streams end, the server drains.
    pub shutdown: CancellationToken,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// How often the runs directory is rescanned for runs started outside the server.
const RESCAN_EVERY: Duration = Duration::from_secs(3);

/// Largest request body accepted (configs and forms are a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

impl AppState {
    /// Open the index, rebuild it from the run directories, re-queue queued runs, follow runs
    /// whose trainer is still alive, mark the others interrupted, and start what fits.
    /// Must be called inside a tokio runtime.
    pub async fn start(opts: ServeOptions) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&opts.runs_dir)?;
        let index = Index::open(&opts.runs_dir.join(INDEX_FILE))?;
        let trainer = match &opts.trainer {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        let gpus = super::process::detect_gpus();
        let state = AppState {
            inner: Arc::new(Inner {
                runs_dir: opts.runs_dir.clone(),
                configs_dir: opts.configs_dir.clone(),
                token: opts.token.clone().filter(|t| !t.is_empty()),
                poll: Duration::from_millis(opts.poll_ms.clamp(10, 200)),
                trainer,
                index,
                hub: Hub::default(),
                store: Default::default(),
                exec: Mutex::new(ExecState::new(gpus, opts.max_cpu_runs.max(1))),
                shutdown: CancellationToken::new(),
            }),
        };
        let runs_dir = opts.runs_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            scan::run_dirs(&runs_dir)
                .iter()
                .map(scan::load)
                .collect::<Vec<_>>()
        })
        .await?;
        let present: std::collections::HashSet<String> =
            loaded.iter().map(|l| l.summary.id.clone()).collect();
        for id in state.index.ids()? {
            if !present.contains(&id) {
                state.index.remove(&id)?;
            }
        }
        for l in &loaded {
            state.index.upsert(&l.summary)?;
        }
        tracing::info!(runs = loaded.len(), "index rebuilt from run directories");
        for l in loaded {
            if let Some(pid) = l.live_pid {
                state.adopt(l.dir, l.summary, pid);
            } else if let Some(mode) = l.queued {
                state.push_queue(&l.summary.id, mode);
            }
        }
        state.pump();
        state.spawn_rescan();
        Ok(state)
    }

    /// Every few seconds, pick up run directories that appeared without the server (runs
    /// started with `fairtat train` from a shell) and follow them if their trainer is alive.
    fn spawn_rescan(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RESCAN_EVERY) => {}
                }
                let known: std::collections::HashSet<String> =
                    state.index.ids().unwrap_or_default().into_iter().collect();
                let runs_dir = state.runs_dir.clone();
                let found = tokio::task::spawn_blocking(move || {
                    scan::run_dirs(&runs_dir)
                        .into_iter()
                        .filter(|d| !known.contains(&d.id()))
                        // Directories the server is creating right now have no events yet.
                        .filter(|d| d.events().exists() || d.pid_file().exists())
                        .map(|d| scan::load(&d))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                for l in found {
                    if state.mutex_exec().is_active(&l.summary.id) {
                        continue;
                    }
                    tracing::info!(run = %l.summary.id, "found a run started outside the server");
                    let _ = state.index.upsert(&l.summary);
                    if let Some(pid) = l.live_pid {
                        state.adopt(l.dir, l.summary, pid);
                    }
                }
            }
        });
    }

    pub fn run_dir(&self, id: &str) -> RunDir {
        RunDir::new(self.runs_dir.join(id))
    }

    /// Stop followers and end SSE streams. Trainer processes keep running (they are separate
    /// process groups) and are adopted by the next server start.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn mutex_exec(&self) -> std::sync::MutexGuard<'_, ExecState> {
        self.exec.lock().unwrap_or_else(|p| p.into_inner())
    }
}
