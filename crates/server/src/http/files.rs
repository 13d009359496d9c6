//! Downloads: `GET /runs/{id}/files/{*name}` for `checkpoints/*.safetensors`, `reports/*.csv`,
//! evaluation reports (`evals/<evaluation>/*.csv`, `eval.json`, `error.txt`), `events.jsonl`,
//! `config.toml` and `train.log`, only from inside the run's own directory.
//!
//! Names are checked as text first (no `..`, no absolute paths, no odd characters: axum has
//! already percent-decoded them, so `%2e%2e` arrives as `..`), then the resolved path must stay
//! under the canonical run directory and must not be a symlink.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::ServeFile;

use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::runs::{RunDir, RunId};

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{id}/files/{*name}", get(download))
}

/// One downloadable file of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileEntry {
    /// Path relative to the run directory (what goes in the URL).
    pub name: String,
    /// File name the browser saves it as.
    pub download_as: String,
    pub bytes: u64,
    /// What a checkpoint holds (`epoch 3 · ...`); empty for other files.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Which relative names may be downloaded, and their content label for the saved file name.
fn content_label(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('/').collect();
    let ok_part = |p: &&str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    };
    if !parts.iter().all(ok_part) {
        return None;
    }
    match parts.as_slice() {
        ["events.jsonl"] => Some("events".into()),
        ["config.toml"] => Some("config".into()),
        ["train.log"] => Some("train-log".into()),
        ["checkpoints", f] => f
            .strip_suffix(".safetensors")
            .map(|k| format!("checkpoint-{k}")),
        ["reports", f] => f.strip_suffix(".csv").map(|r| format!("report-{r}")),
        ["evals", e, f] => {
            let stem = match *f {
                "eval.json" => Some("eval"),
                "error.txt" => Some("error"),
                f => f.strip_suffix(".csv"),
            };
            stem.map(|s| format!("eval-{e}-{s}"))
        }
        _ => None,
    }
}

/// `<run id>_<content>.<ext>`, e.g. `20250101-120000-fmnist-ab12_checkpoint-last.safetensors`.
fn download_name(id: &str, name: &str) -> Option<String> {
    let label = content_label(name)?;
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("bin");
    Some(format!("{id}_{label}.{ext}"))
}

/// The files of a run that can be downloaded, in a stable order.
pub fn list_files(dir: &RunDir) -> Vec<FileEntry> {
    let id = dir.id();
    let mut names: Vec<String> = ["config.toml", "events.jsonl", "train.log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for sub in ["checkpoints", "reports"] {
        names.extend(sorted_names(&dir.root().join(sub), sub));
    }
    names.extend(eval_files(dir));
    names
        .into_iter()
        .filter_map(|n| {
            let meta = std::fs::symlink_metadata(dir.root().join(&n)).ok()?;
            if !meta.is_file() {
                return None;
            }
            Some(FileEntry {
                download_as: download_name(&id, &n)?,
                name: n,
                bytes: meta.len(),
                note: String::new(),
            })
        })
        .collect()
}

/// `<prefix>/<name>` for every entry of directory `path`, sorted; empty when it cannot be read.
fn sorted_names(path: &std::path::Path, prefix: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(path) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .map(|e| format!("{prefix}/{}", e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// The downloadable files of every evaluation directory, by directory then file name.
fn eval_files(dir: &RunDir) -> Vec<String> {
    let evals = dir.root().join("evals");
    sorted_names(&evals, "evals")
        .iter()
        .flat_map(|e| sorted_names(&dir.root().join(e), e))
        .filter(|n| content_label(n).is_some())
        .collect()
}

/// Resolve `name` inside `dir`, or explain why not.
pub fn resolve(dir: &RunDir, name: &str) -> Result<std::path::PathBuf, ApiError> {
    if content_label(name).is_none() {
        return Err(ApiError::BadRequest(format!(
            "{name:?} is not a downloadable file name (allowed: config.toml, events.jsonl, \
             train.log, checkpoints/*.safetensors, reports/*.csv, evals/<evaluation>/*.csv, \
             evals/<evaluation>/eval.json, evals/<evaluation>/error.txt)"
        )));
    }
    let path = dir.root().join(name);
    let meta =
        std::fs::symlink_metadata(&path).map_err(|_| ApiError::NotFound(format!("file {name}")))?;
    if !meta.is_file() {
        // Symlinks included: the file must live in the run directory itself.
        return Err(ApiError::NotFound(format!("file {name}")));
    }
    let root = dir.root().canonicalize()?;
    let real = path.canonicalize()?;
    if !real.starts_with(&root) {
        return Err(ApiError::NotFound(format!("file {name}")));
    }
    Ok(real)
}

async fn download(
    State(st): State<AppState>,
    RunPath((id, name)): RunPath<(RunId, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let path = resolve(&dir, &name)?;
    let save_as = download_name(id.as_str(), &name).unwrap_or_else(|| format!("{id}.bin"));
    let mut resp = ServeFile::new(path)
        .try_call(req)
        .await
        .map_err(ApiError::internal)?
        .into_response();
    let disp = format!("attachment; filename=\"{save_as}\"");
    if let Ok(v) = HeaderValue::from_str(&disp) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    if [".jsonl", ".log", ".toml", ".txt"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    Ok(resp)
}
