//! Downloads: `GET /runs/{id}/files/{*name}` for `checkpoints/*.safetensors`, `reports/*.csv`,
//! evaluation reports (`evals/<evaluation>/*.csv`, `eval.json`, `error.txt`, the job's
//! `eval.log`), `events.jsonl`, `config.toml` and `train.log`, only from inside the run's own
//! directory.
//!
//! Names are checked as text first (no `..`, no absolute paths, no odd characters: axum has
//! already percent-decoded them, so `%2e%2e` arrives as `..`), then opened with
//! `runs::safe_fs`: through real directories only, a regular file with a single link.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::AsyncReadExt;

use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::runs::safe_fs::{self, EntryKind};
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
                // The job's output (a Slurm job's `--output`): what a failure said.
                "eval.log" => Some("log"),
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

/// The files of a run that can be downloaded, in a stable order: regular files reached
/// through real directories (`safe_fs`), so a planted link is never offered.
pub fn list_files(dir: &RunDir) -> Vec<FileEntry> {
    let id = dir.id();
    let mut names: Vec<String> = ["config.toml", "events.jsonl", "train.log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for sub in ["checkpoints", "reports"] {
        names.extend(sorted_names(dir, sub, EntryKind::File));
    }
    names.extend(eval_files(dir));
    names
        .into_iter()
        .filter_map(|n| {
            let bytes = safe_fs::file_len(dir, &n)?;
            Some(FileEntry {
                download_as: download_name(&id, &n)?,
                name: n,
                bytes,
                note: String::new(),
            })
        })
        .collect()
}

/// `<sub>/<name>` for every entry of kind `kind` in directory `sub` of the run, sorted; empty
/// when it cannot be read.
fn sorted_names(dir: &RunDir, sub: &str, kind: EntryKind) -> Vec<String> {
    safe_fs::list_dir(dir, sub)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, k)| *k == kind)
        .map(|(n, _)| format!("{sub}/{n}"))
        .collect()
}

/// The downloadable files of every evaluation directory, by directory then file name.
fn eval_files(dir: &RunDir) -> Vec<String> {
    sorted_names(dir, "evals", EntryKind::Dir)
        .iter()
        .flat_map(|e| sorted_names(dir, e, EntryKind::File))
        .filter(|n| content_label(n).is_some())
        .collect()
}

/// Open the downloadable file `name` of `dir`, or explain why not: a name outside the list is
/// 400, a missing file 404, a link, FIFO, device or hard-linked file 403 (`safe_fs`).
pub fn open(dir: &RunDir, name: &str) -> Result<std::fs::File, ApiError> {
    if content_label(name).is_none() {
        return Err(ApiError::BadRequest(format!(
            "{name:?} is not a downloadable file name (allowed: config.toml, events.jsonl, \
             train.log, checkpoints/*.safetensors, reports/*.csv, evals/<evaluation>/*.csv, \
             evals/<evaluation>/eval.json, evals/<evaluation>/error.txt, \
             evals/<evaluation>/eval.log)"
        )));
    }
    Ok(safe_fs::open_read(dir, name)?)
}

/// The content type of a download, by extension.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("jsonl" | "log" | "toml" | "txt") => "text/plain; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn download(
    State(st): State<AppState>,
    RunPath((id, name)): RunPath<(RunId, String)>,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let name2 = name.clone();
    let file = tokio::task::spawn_blocking(move || open(&dir, &name2))
        .await
        .map_err(ApiError::internal)??;
    // The length when opened: a log still growing is served as it was then.
    let len = file.metadata()?.len();
    let mut body = tokio::fs::File::from_std(file).take(len);
    let stream = async_stream::stream! {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match body.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => yield Ok::<_, std::io::Error>(Bytes::copy_from_slice(&buf[..n])),
                Err(e) => {
                    yield Err(e);
                    break;
                }
            }
        }
    };
    let save_as = download_name(id.as_str(), &name).unwrap_or_else(|| format!("{id}.bin"));
    let mut resp = attachment(Body::from_stream(stream), content_type(&name), &save_as);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(resp)
}

/// `body` as a download of type `mime` saved as `file` (every download of the dashboard).
pub fn attachment(body: impl IntoResponse, mime: &'static str, file: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
