//! `fairtat serve`: the dashboard. The server never touches tensors, so it runs as its own
//! small program, `fairtat-dashboard`, which does not load libtorch (about 350 MB of memory
//! mapped and touched at start-up): `fairtat serve` replaces itself with it when it is installed
//! next to `fairtat`, and serves in-process otherwise. Either way the trainer it starts is
//! `fairtat` (`train --run-dir`).

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::Args;

use crate::listen::Limits;

use super::Failure;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    #[arg(long, default_value = "configs")]
    pub configs: PathBuf,
    /// No longer accepted (argv shows in `ps`): use FAIRTAT_TOKEN or --token-file.
    #[arg(long, hide = true)]
    pub token: Option<String>,
    /// File whose first line is the token (else FAIRTAT_TOKEN). Required off loopback, at
    /// least 16 characters there.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A host name requests may use besides the bound address (behind a proxy); repeatable.
    #[arg(long = "public-host", value_name = "NAME")]
    pub public_hosts: Vec<String>,
    /// Most runs waiting in the queue; creating more is refused with 429.
    #[arg(long, default_value_t = crate::DEFAULT_MAX_QUEUED)]
    pub max_queued: usize,
    /// Concurrent runs on the CPU.
    #[arg(long, default_value_t = 1)]
    pub max_cpu_runs: usize,
    /// Jobs sharing one GPU. Default: as many as their memory estimates fit in 90% of the
    /// GPU's memory (architecture, batch sizes and image size), at most 8.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub runs_per_gpu: Option<u32>,
    /// The program started as `<trainer> train --run-dir DIR` (default: `fairtat` itself).
    #[arg(long, value_name = "PATH")]
    pub trainer: Option<PathBuf>,
    #[command(flatten)]
    pub executor: super::executor::ExecutorArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Connection limits and timeouts (`crate::listen`); the defaults suit the common
/// `ulimit -n` of 1024.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Most open connections; more wait until one closes.
    #[arg(long, default_value_t = Limits::default().max_connections as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Most open connections from one client address; more are closed at once.
    #[arg(long, default_value_t = Limits::default().max_per_client as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_client: u32,
    /// Most open event streams (live pages); more are answered 503 with Retry-After.
    #[arg(long, default_value_t = Limits::default().max_streams as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_streams: u32,
    /// Seconds a client has to send a request's headers (also how long an idle connection
    /// stays open).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().body_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections as usize,
            max_per_client: self.max_connections_per_client as usize,
            max_streams: self.max_streams as usize,
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
        }
    }
}

/// Serve the dashboard in this process until Ctrl-C or SIGTERM.
pub fn serve_here(a: ServeArgs) -> Result<ExitCode, Failure> {
    if a.token.is_some() {
        return Err(Failure {
            code: 2,
            error: anyhow::anyhow!(
                "--token is no longer accepted (the command line shows in `ps`); set \
                 FAIRTAT_TOKEN or pass --token-file FILE"
            ),
        });
    }
    let slurm = a.executor.resolve()?;
    if slurm.is_some() {
        crate::slurm::cli::check_installed().map_err(|e| {
            anyhow::anyhow!(
                "--executor slurm: Slurm's commands do not work on this host ({e}); they need \
                 the cluster's slurm.conf (/etc/slurm/slurm.conf or SLURM_CONF)"
            )
        })?;
    }
    if let Some(opts) = &slurm {
        crate::slurm::checks::check_site(opts)
            .map_err(|e| anyhow::anyhow!("--executor slurm: {e}"))?;
    }
    crate::run_serve(crate::ServeOptions {
        addr: a.addr,
        runs_dir: a.runs,
        configs_dir: a.configs,
        token: crate::read_token(a.token_file.as_deref())?,
        public_hosts: a.public_hosts,
        max_queued: a.max_queued,
        max_cpu_runs: a.max_cpu_runs.max(1),
        runs_per_gpu: a.runs_per_gpu.map(|n| n as usize),
        trainer: a.trainer,
        poll_ms: 100,
        slurm,
        limits: a.limits.limits(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `fairtat serve`: become `fairtat-dashboard` (same arguments, this program as the trainer)
/// when it is installed beside this one; otherwise serve here.
pub fn cmd_serve(a: ServeArgs) -> Result<ExitCode, Failure> {
    #[cfg(unix)]
    if std::env::var_os("FAIRTAT_SERVE_IN_PROCESS").is_none() {
        if let Ok(me) = std::env::current_exe() {
            let dashboard = me.with_file_name("fairtat-dashboard");
            if dashboard.is_file() {
                use std::os::unix::process::CommandExt;
                let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
                if a.trainer.is_none() {
                    args.push("--trainer".into());
                    args.push(me.clone().into());
                }
                let mut cmd = std::process::Command::new(&dashboard);
                cmd.args(args);
                if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                    // Two malloc arenas instead of one per thread: the folds of large logs run
                    // on blocking threads, and per-thread arenas keep their peaks resident
                    // (165 -> 157 MB with ten paper-scale runs viewed; BENCHMARKS.md).
                    cmd.env("MALLOC_ARENA_MAX", "2");
                }
                // exec only returns on failure; then serve here.
                let err = cmd.exec();
                tracing::warn!(cause = %err, path = %dashboard.display(), "cannot start the dashboard program; serving in-process");
            }
        }
    }
    serve_here(a)
}
