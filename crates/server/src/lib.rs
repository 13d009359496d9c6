//! The dashboard server (`fairtat serve`): job executor and supervisor (queue, child processes), SQLite index,
//! followers that tail `events.jsonl`, and the HTTP layer (pages, JSON API, SSE, downloads).
//!
//! Never touches tensors: no tch, no models/attacks/train/methods/data here.

pub mod admission;
pub mod cli;
pub mod error;
pub mod evals;
pub mod folder_lock;
pub mod follower;
pub mod guard;
pub mod http;
pub mod hub;
pub mod index;
pub mod jobs;
pub mod listen;
pub mod metrics;
pub mod process;
pub mod scan;
pub mod sessions;
pub mod slurm;
pub mod state;
pub mod store;
pub mod supervisor;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

pub use error::ApiError;
pub use http::router;
pub use state::AppState;

/// Everything `fairtat serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Where run directories live (and the index, `.index.sqlite`).
    pub runs_dir: PathBuf,
    /// Preset configs (`*.toml`) offered by the new-run form.
    pub configs_dir: PathBuf,
    /// Required for state-changing requests when set, and for every request off loopback
    /// (from `FAIRTAT_TOKEN` or `--token-file`).
    pub token: Option<String>,
    /// Host names besides the bound address that requests may carry (`--public-host`).
    pub public_hosts: Vec<String>,
    /// Most runs waiting in the queue (`--max-queued`).
    pub max_queued: usize,
    /// Concurrent runs on the CPU.
    pub max_cpu_runs: usize,
    /// Jobs per GPU (`--runs-per-gpu`); `None` packs them by memory estimate.
    pub runs_per_gpu: Option<usize>,
    /// Program started as `<trainer> train --run-dir DIR`; default: this executable.
    pub trainer: Option<PathBuf>,
    /// Poll interval of events followers in ms (capped at 200).
    pub poll_ms: u64,
    /// `--executor slurm`: submit jobs to Slurm instead of starting child processes.
    pub slurm: Option<slurm::SlurmOptions>,
    /// Connection, stream and timeout limits.
    pub limits: listen::Limits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            runs_dir: PathBuf::from("runs"),
            configs_dir: PathBuf::from("configs"),
            token: None,
            public_hosts: Vec::new(),
            max_queued: DEFAULT_MAX_QUEUED,
            max_cpu_runs: 1,
            runs_per_gpu: None,
            trainer: None,
            poll_ms: 200,
            slurm: None,
            limits: listen::Limits::default(),
        }
    }
}

/// Default of `--max-queued`.
pub const DEFAULT_MAX_QUEUED: usize = 500;

/// Refuse a non-loopback address without a token (any request could start runs otherwise), or
/// with one short enough to guess.
pub fn check_bind(addr: &SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && token.is_none_or(str::is_empty) {
        anyhow::bail!(
            "refusing to listen on {addr} without a token: set FAIRTAT_TOKEN or pass \
             --token-file FILE (or bind to 127.0.0.1)"
        );
    }
    http::check_token_strength(addr.ip().is_loopback(), token)
}

/// The token of `fairtat serve`: `--token-file FILE` (first line, trimmed), else the
/// `FAIRTAT_TOKEN` environment variable. Never argv, which every user sees in `ps`.
pub fn read_token(token_file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let t = text.lines().next().unwrap_or("").trim().to_string();
        if t.is_empty() {
            anyhow::bail!("the token file {} is empty", path.display());
        }
        return Ok(Some(t));
    }
    Ok(std::env::var("FAIRTAT_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Serve until Ctrl-C or SIGTERM, then end SSE streams and drain connections. Trainer
/// processes keep running and are adopted by the next start.
pub fn run_serve(mut opts: ServeOptions) -> anyhow::Result<()> {
    if opts.token.is_none() {
        opts.token = std::env::var("FAIRTAT_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
    }
    check_bind(&opts.addr, opts.token.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        // Bind first, so the Host check and the cookie know the real port (`--addr ...:0`).
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .with_context(|| format!("cannot listen on {}", opts.addr))?;
        opts.addr = listener.local_addr()?;
        let state = supervisor::start(opts.clone())
            .await
            .with_context(|| format!("cannot open runs directory {}", opts.runs_dir.display()))?;
        tracing::info!(addr = %listener.local_addr()?, "dashboard listening");
        println!("fairtat dashboard: http://{}", listener.local_addr()?);
        let token = state.shutdown_token().clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            token.cancel();
        });
        let shutdown = state.shutdown_token().clone();
        let limits = opts.limits.clone();
        listen::serve(listener, router(state), limits, shutdown).await;
        Ok(())
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
