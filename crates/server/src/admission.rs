//! What is checked when runs are queued, beyond the config itself: the device must exist on this
//! machine (a `cuda:7` run on a one-GPU host would wait forever), and the queue has a cap
//! (`--max-queued`), since every queued run costs work on each pump of the executor.

use super::error::ApiError;
use super::scan;
use super::state::AppState;
use fairtat_core::config::{ConfigError, RunSpec};
use fairtat_core::runs::{RunDir, RunId};

/// The devices runs can use here: `cpu`, `cuda:0` ... `cuda:{gpus-1}`.
pub fn devices(gpus: usize) -> Vec<String> {
    std::iter::once("cpu".to_string())
        .chain((0..gpus).map(|g| format!("cuda:{g}")))
        .collect()
}

/// `device` (already syntax-checked: `auto`, `cpu` or `cuda:N`) names a device present here.
pub fn check_device(device: &str, gpus: usize) -> Result<(), ApiError> {
    let Some(n) = device.strip_prefix("cuda:") else {
        return Ok(());
    };
    if n.parse::<usize>().is_ok_and(|n| n < gpus) {
        return Ok(());
    }
    let mut allowed = vec!["auto".to_string()];
    allowed.extend(devices(gpus));
    Err(ApiError::Invalid(ConfigError::invalid(
        "device",
        format!(
            "{device:?} is not present on this machine ({gpus} GPU(s) found); allowed: {}",
            allowed.join(", ")
        ),
    )))
}

/// Adding `adding` runs to a queue of `queued` stays within `max`.
pub fn check_queue(queued: usize, adding: usize, max: usize) -> Result<(), ApiError> {
    if queued.saturating_add(adding) <= max {
        return Ok(());
    }
    Err(ApiError::TooMany(format!(
        "the queue is full: {queued} runs queued, {adding} more would exceed the limit of {max} \
         (fairtat serve --max-queued N); cancel queued runs or wait"
    )))
}

/// Under Slurm the nodes' GPUs count: a job sees the GPU it was given as `cuda:0`.
pub fn check_scheduled_device(device: &str) -> Result<(), ApiError> {
    if device.strip_prefix("cuda:").is_none_or(|n| n == "0") {
        return Ok(());
    }
    Err(ApiError::Invalid(ConfigError::invalid(
        "device",
        format!(
            "{device:?}: under --executor slurm a job sees the GPU Slurm gives it as cuda:0;              allowed: auto, cpu, cuda:0"
        ),
    )))
}

/// The device check of this server's executor.
pub fn check_device_here(st: &AppState, device: &str) -> Result<(), ApiError> {
    if st.scheduler().is_some() {
        check_scheduled_device(device)
    } else {
        check_device(device, st.jobs().gpus())
    }
}

/// Both checks for runs about to be queued.
pub fn admit(st: &AppState, specs: &[RunSpec]) -> Result<(), ApiError> {
    let queued = st.jobs().lock().waiting_len();
    for spec in specs {
        check_device_here(st, &spec.device)?;
        check_lr(spec)?;
        // Under a scheduler the data lives on the nodes, which this server may not see.
        if st.scheduler().is_none() {
            check_data(spec)?;
        }
    }
    check_queue(queued, specs.len(), st.guard().max_queued)
}

/// The dataset's files are in `data.dir`: a run without them could only fail at once.
pub fn check_data(spec: &RunSpec) -> Result<(), ApiError> {
    let (kind, dir) = (spec.data.dataset, &spec.data.dir);
    let missing = fairtat_core::datafiles::missing_files(kind, dir);
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = fairtat_core::datafiles::expected_files(kind)
        .into_iter()
        .map(|names| names.join(" or "))
        .collect();
    Err(ApiError::Invalid(ConfigError::invalid(
        "data.dir",
        format!(
            "{} has no {} data on this machine: missing {}. The {} files expected there are: \
             {}. Put them in that directory or set data.dir to where they are (README: Datasets)",
            dir.display(),
            kind.as_str(),
            missing.join(", "),
            kind.as_str(),
            all.join("; ")
        ),
    )))
}

/// A run queued from the dashboard or the API learns something: `train.lr` must be positive.
/// (`fairtat train --set train.lr=0` stays possible for experiments that freeze the weights.)
pub fn check_lr(spec: &RunSpec) -> Result<(), ApiError> {
    if spec.train.lr > 0.0 {
        return Ok(());
    }
    Err(ApiError::Invalid(ConfigError::invalid(
        "train.lr",
        format!(
            "{} would never change the weights; allowed: a learning rate > 0 (the paper uses 0.1)",
            spec.train.lr
        ),
    )))
}

/// A resume is possible (the run ended and left a checkpoint state), its device is present and
/// it fits in the queue.
pub fn check_resume(st: &AppState, dir: &RunDir, id: &RunId) -> Result<(), ApiError> {
    let Some(summary) = st.index().get(id)? else {
        return Err(ApiError::NotFound(format!("run {id}")));
    };
    if scan::resumable(&summary) && !scan::can_resume(dir, &summary) {
        return Err(ApiError::Conflict(format!(
            "run {id} has no checkpoint to resume from (it ended before its first checkpoint); \
             start it again instead"
        )));
    }
    let queued = st.jobs().lock().waiting_len();
    if let Some(spec) = scan::read_spec(dir) {
        check_device_here(st, &spec.device)?;
    }
    check_queue(queued, 1, st.guard().max_queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_queue_limits() {
        assert!(check_device("auto", 0).is_ok() && check_device("cpu", 0).is_ok());
        assert!(check_device("cuda:0", 1).is_ok());
        let e = check_device("cuda:7", 1).unwrap_err();
        assert_eq!(e.field(), Some("device"));
        let msg = e.to_string();
        assert!(
            msg.contains("cuda:7") && msg.contains("cpu, cuda:0"),
            "{msg}"
        );
        assert!(check_queue(499, 1, 500).is_ok());
        let e = check_queue(500, 1, 500).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(check_queue(usize::MAX, 2, 500).is_err());
    }
}
