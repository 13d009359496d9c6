//! Before runs are created under `--executor slurm`: each distinct set of resources they ask
//! ([`crate::slurm::Resources`], the run's `[slurm]` over the server's defaults) is checked
//! with the cluster ([`crate::slurm::checks`]), off the runtime. A refusal that names a key
//! answers 400 with the key, Slurm's own refusal 400 with its words, and a controller that does
//! not answer within a few seconds 503, so nothing is created that could only pend or fail.

use crate::error::ApiError;
use crate::slurm::checks::{self, CheckError};
use crate::state::AppState;
use fairtat_core::config::gpu_memory::{self, Work};
use fairtat_core::config::{ConfigError, RunSpec};

/// The resources of `specs` pass the cluster's checks (nothing to check without Slurm).
pub async fn preflight(st: &AppState, specs: &[RunSpec]) -> Result<(), ApiError> {
    let Some(sched) = st.scheduler().cloned() else {
        return Ok(());
    };
    let res = specs
        .iter()
        .map(|s| {
            let gpu_mib = gpu_memory::estimate_mib(s, Work::Train);
            sched.opts.resources(&s.slurm, s.device, gpu_mib)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = tokio::task::spawn_blocking(move || checks::check(&sched.opts, &res))
        .await
        .map_err(ApiError::internal)?;
    result.map_err(|e| match e {
        CheckError::Unreachable(why) => ApiError::Unavailable(format!(
            "cannot submit to Slurm now: {why}; nothing was created, try again later"
        )),
        CheckError::Key { key, message } => ApiError::Refused(ConfigError::invalid(key, message)),
        refused @ CheckError::Refused(_) => ApiError::BadRequest(refused.to_string()),
    })
}
