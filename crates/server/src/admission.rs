//! What is checked when runs are queued, beyond the config itself: the device must exist on this
//! machine (a `cuda:7` run on a one-GPU host would wait forever), and the queue has a cap
//! (`--max-queued`), since every queued run costs work on each pump of the executor.

use std::path::{Component, Path, PathBuf};

use super::error::ApiError;
use super::scan;
use super::state::AppState;
use fairtat_core::config::keys::shorten;
use fairtat_core::config::{ConfigError, DatasetKind, DeviceSpec, RunSpec};
use fairtat_core::runs::{is_valid_run_id, RunDir, RunId};

/// The devices runs can use here: `cpu`, `cuda:0` ... `cuda:{gpus-1}`.
pub fn devices(gpus: usize) -> Vec<String> {
    std::iter::once("cpu".to_string())
        .chain((0..gpus).map(|g| format!("cuda:{g}")))
        .collect()
}

/// `device` names a device present here (a `cuda:7` run on a one-GPU host would wait forever).
pub fn check_device(device: DeviceSpec, gpus: usize) -> Result<(), ApiError> {
    if device.cuda_index().is_none_or(|n| n < gpus) {
        return Ok(());
    }
    let mut allowed = vec!["auto".to_string()];
    allowed.extend(devices(gpus));
    Err(ApiError::Invalid(ConfigError::invalid(
        "device",
        format!(
            "\"{device}\" is not present on this machine ({gpus} GPU(s) found); allowed: {}",
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
pub fn check_scheduled_device(device: DeviceSpec) -> Result<(), ApiError> {
    if device.cuda_index().is_none_or(|n| n == 0) {
        return Ok(());
    }
    Err(ApiError::Invalid(ConfigError::invalid(
        "device",
        format!(
            "\"{device}\": under --executor slurm a job sees the GPU Slurm gives it as cuda:0; \
             allowed: auto, cpu, cuda:0"
        ),
    )))
}

/// Under Slurm, the run's `[slurm]` resources within the server's `--slurm-max-*` limits
/// (the error names the key and the limit).
pub fn check_slurm_limits(st: &AppState, spec: &RunSpec) -> Result<(), ApiError> {
    if let Some(s) = st.scheduler() {
        s.opts.resources(&spec.slurm, spec.device, 0)?;
    }
    Ok(())
}

/// The device check of this server's executor.
pub fn check_device_here(st: &AppState, device: DeviceSpec) -> Result<(), ApiError> {
    if st.scheduler().is_some() {
        check_scheduled_device(device)
    } else {
        check_device(device, st.jobs().gpus())
    }
}

/// Places in the queue taken by runs admitted but not queued yet (their directories are being
/// written); given back when dropped, by which time the runs are in the queue.
#[must_use = "the places are given back when this is dropped: hold it until the runs are queued"]
pub struct Reservation {
    st: AppState,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.st
            .admitting()
            .fetch_sub(self.n, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Every check for runs about to be queued, and their places in the queue: counted and taken
/// under the queue's lock, so concurrent requests cannot together pass the cap.
pub fn admit(st: &AppState, specs: &[RunSpec]) -> Result<Reservation, ApiError> {
    for spec in specs {
        check_device_here(st, spec.device)?;
        check_slurm_limits(st, spec)?;
        check_init_checkpoint(st.runs_dir(), spec)?;
        check_lr(spec)?;
        // Under a scheduler the data lives on the nodes, which this server may not see.
        if st.scheduler().is_none() {
            check_data(spec)?;
        }
    }
    let q = st.jobs().lock();
    let admitting = st.admitting();
    let queued = q.waiting_len() + admitting.load(std::sync::atomic::Ordering::SeqCst);
    check_queue(queued, specs.len(), st.guard().max_queued)?;
    admitting.fetch_add(specs.len(), std::sync::atomic::Ordering::SeqCst);
    drop(q);
    Ok(Reservation {
        st: st.clone(),
        n: specs.len(),
    })
}

/// `train.init_checkpoint` of a run queued here names a checkpoint of a run in this server's
/// runs folder (`<runs>/<id>/checkpoints/<name>.safetensors`), also after following links: the
/// trainer would otherwise open any file the server's user can read. Every refusal reads the
/// same, so the answer tells nothing about files outside. (`fairtat train` on the command line
/// keeps any path: its user names their own files.)
pub fn check_init_checkpoint(runs_dir: &Path, spec: &RunSpec) -> Result<(), ApiError> {
    let raw = spec.train.init_checkpoint.trim();
    if raw.is_empty() || inside_runs(runs_dir, Path::new(raw)) {
        return Ok(());
    }
    Err(ApiError::Invalid(ConfigError::invalid(
        "train.init_checkpoint",
        format!(
            "{:?} is not a checkpoint of a run in this server's runs folder; allowed: \
             <runs folder>/<run id>/checkpoints/<name>.safetensors (e.g. a finished run's \
             last.safetensors), or train.init_from in a grid",
            shorten(raw)
        ),
    )))
}

fn inside_runs(runs_dir: &Path, path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let roots: Vec<PathBuf> = [
        std::path::absolute(runs_dir).ok(),
        runs_dir.canonicalize().ok(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let shaped = roots.iter().any(|root| {
        let Ok(rel) = abs.strip_prefix(root) else {
            return false;
        };
        let parts: Vec<Component> = rel.components().collect();
        matches!(parts.as_slice(), [Component::Normal(id), Component::Normal(c), Component::Normal(f)]
            if is_valid_run_id(&id.to_string_lossy())
                && *c == "checkpoints"
                && f.to_string_lossy().ends_with(".safetensors"))
    });
    // A link planted inside the folder may point anywhere: the file itself must be inside too.
    let resolved_inside = match (abs.canonicalize(), runs_dir.canonicalize()) {
        (Ok(real), Ok(root)) => real.starts_with(root),
        // Not there yet (a source run still training): the shape is what can be checked.
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    };
    shaped && resolved_inside
}

/// The README section the missing-data message points to (a test checks that it exists).
pub const DATA_README_SECTION: &str = "Data sets (data.dir)";

/// The dataset's files are in `data.dir`: a run without them could only fail at once. The
/// message names each missing file once (with its other accepted name, if any).
pub fn check_data(spec: &RunSpec) -> Result<(), ApiError> {
    let (kind, dir) = (spec.data.dataset, &spec.data.dir);
    let missing = fairtat_core::datafiles::missing_files(kind, dir);
    if missing.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = fairtat_core::datafiles::expected_files(kind)
        .into_iter()
        .filter(|names| missing.contains(&names[0]))
        .map(|names| names.join(" or "))
        .collect();
    // CIFAR can be fetched in one command (`fairtat data fetch`), into the presets' data.dir.
    let fetch = match kind {
        DatasetKind::FashionMnist => String::new(),
        _ => format!(
            " `fairtat data fetch {}` downloads them into {}.",
            kind.as_str(),
            kind.default_dir()
        ),
    };
    Err(ApiError::Invalid(ConfigError::invalid(
        "data.dir",
        format!(
            "{} has no {} data on this machine: missing {}. Put the files in that directory or \
             set data.dir to where they are (README: {DATA_README_SECTION}).{fetch}",
            dir.display(),
            kind.as_str(),
            named.join(", "),
        ),
    )))
}

/// The learning rates a run queued from the dashboard or the API may use: above 0 (a run that
/// learns nothing is a mistake there) up to the config's own maximum. `fairtat train --set
/// train.lr=0` stays possible for experiments that freeze the weights.
pub fn lr_rule() -> String {
    let hi = fairtat_core::config::fields::field("train.lr")
        .and_then(|f| f.bounds)
        .map_or(f64::MAX, |(_, hi)| hi);
    format!(
        "allowed here: > 0 and <= {} (0 freezes the weights; only fairtat train accepts it)",
        fairtat_core::config::short_number(hi)
    )
}

/// A run queued from the dashboard or the API learns something: `train.lr` must be positive.
pub fn check_lr(spec: &RunSpec) -> Result<(), ApiError> {
    if spec.train.lr > 0.0 {
        return Ok(());
    }
    Err(ApiError::Invalid(lr_error(&spec.train.lr.to_string())))
}

/// The error for a `train.lr` outside [`lr_rule`] (the config's own range error is replaced by
/// this one on the dashboard, so both say the same range).
pub fn lr_error(value: &str) -> ConfigError {
    ConfigError::invalid(
        "train.lr",
        format!("{value} is out of range; {}", lr_rule()),
    )
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
        check_device_here(st, spec.device)?;
    }
    check_queue(queued, 1, st.guard().max_queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(text: &str) -> DeviceSpec {
        text.parse().unwrap()
    }

    #[test]
    fn devices_and_queue_limits() {
        assert!(check_device(dev("auto"), 0).is_ok() && check_device(dev("cpu"), 0).is_ok());
        assert!(check_device(dev("cuda:0"), 1).is_ok());
        let e = check_device(dev("cuda:7"), 1).unwrap_err();
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

    #[test]
    fn missing_data_names_each_file_once_and_a_readme_section_that_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        spec.data.dir = tmp.path().to_path_buf();
        std::fs::write(tmp.path().join("t10k-labels-idx1-ubyte"), b"").unwrap();
        let msg = check_data(&spec).unwrap_err().to_string();
        for f in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
        ] {
            assert_eq!(msg.matches(&format!("{f}.gz")).count(), 1, "{f}: {msg}");
        }
        assert!(
            !msg.contains("t10k-labels"),
            "a present file is not missing: {msg}"
        );
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .unwrap();
        assert!(msg.contains(DATA_README_SECTION));
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('#')
                    && l.trim_start_matches('#').trim() == DATA_README_SECTION),
            "README has no heading {DATA_README_SECTION:?}"
        );
    }

    #[test]
    fn the_learning_rate_rule_and_its_message_agree() {
        let mut spec = fairtat_core::config::from_toml_str("", &[]).unwrap();
        for (lr, ok) in [(0.0, false), (-1.0, false), (1e-9, true), (10.0, true)] {
            spec.train.lr = lr;
            assert_eq!(check_lr(&spec).is_ok(), ok, "{lr}");
        }
        spec.train.lr = 0.0;
        let msg = check_lr(&spec).unwrap_err().to_string();
        assert!(msg.contains("> 0 and <= 10"), "{msg}");
        let hi = fairtat_core::config::fields::field("train.lr")
            .unwrap()
            .bounds
            .unwrap()
            .1;
        assert_eq!(hi, 10.0, "the message's maximum is the config's");
    }
}
