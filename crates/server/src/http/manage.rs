//! Run management: delete a run with its files, and edit its display name, tags and notes.
//!
//! Edits go to the run's `meta.json` (written atomically; `config.toml` keeps the recorded
//! training config) and from there into the index, so they survive a restart and a lost index.
//! A delete removes the directory, the index rows and the in-memory metrics, so nothing the
//! server keeps outlives the files it was rebuilt from. A run with a job queued or running, or
//! whose directory a process still locks, is refused with 409.

use askama::Template;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::runs::lock;
use fairtat_core::runs::meta::{check_name, check_notes, parse_tags, RunMeta};
use fairtat_core::runs::{RunId, RunStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/delete", post(delete_form))
        .route("/runs/{id}/meta", post(meta_form))
}

/// Delete run `id`: refused (409) while it has a job, is queued or running, or a process holds
/// its lock (a `fairtat train` from a shell).
pub async fn delete_run(st: &AppState, id: &RunId) -> Result<(), ApiError> {
    let dir = run_dir(st, id)?;
    let status = st.index().get(id)?.map(|s| s.status);
    if st.is_active(id) || matches!(status, Some(RunStatus::Queued | RunStatus::Running)) {
        return Err(ApiError::Conflict(format!(
            "run {id} is {}; cancel it and wait until it has ended before deleting it",
            status.map_or("active", |s| s.as_str())
        )));
    }
    let id2 = id.clone();
    tokio::task::spawn_blocking(move || {
        if let Some(owner) = lock::probe(&dir) {
            return Err(ApiError::Conflict(format!(
                "run {id2} is in use by process {} ({}); delete it when that has ended",
                owner.pid, owner.what
            )));
        }
        std::fs::remove_dir_all(dir.root()).map_err(ApiError::from)
    })
    .await
    .map_err(ApiError::internal)??;
    st.index().remove(id.as_str())?;
    st.store().remove(id.as_str());
    tracing::info!(run = %id, "run deleted");
    Ok(())
}

/// `DELETE /api/runs/{id}`.
pub async fn delete_api(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Json<Value>, ApiError> {
    delete_run(&st, &id).await?;
    Ok(Json(json!({ "deleted": id })))
}

#[derive(Deserialize)]
struct DeleteForm {
    /// The form's "yes, delete its files" box.
    #[serde(default)]
    confirm: String,
}

/// `POST /runs/{id}/delete` (`confirm=yes`): delete, then back to the runs list.
async fn delete_form(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Form(f): Form<DeleteForm>,
) -> Result<Redirect, ApiError> {
    if f.confirm != "yes" {
        return Err(ApiError::BadRequest(
            "confirm: tick \"delete its files\" to delete the run; allowed: yes".into(),
        ));
    }
    delete_run(&st, &id).await?;
    Ok(Redirect::to("/"))
}

/// The edits a request makes; `None` leaves a field as it is.
#[derive(Debug, Default, Deserialize)]
pub struct MetaEdit {
    pub name: Option<String>,
    /// A list, or comma-separated text.
    pub tags: Option<Value>,
    pub notes: Option<String>,
}

impl MetaEdit {
    /// `meta` with these edits, each checked (errors name the field and its rule).
    fn apply(&self, mut meta: RunMeta) -> Result<RunMeta, ApiError> {
        if let Some(n) = &self.name {
            meta.name = Some(check_name(n)?);
        }
        if let Some(t) = &self.tags {
            let text = match t {
                Value::String(s) => s.clone(),
                Value::Array(a) if a.iter().all(Value::is_string) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(ApiError::BadRequest(
                        "tags: give a list of strings or comma-separated text".into(),
                    ))
                }
            };
            meta.tags = Some(parse_tags(&text)?);
        }
        if let Some(n) = &self.notes {
            meta.notes = check_notes(n)?;
        }
        Ok(meta)
    }
}

/// Apply `edit` to run `id`: `meta.json` first (the durable record), then the index and the
/// pages following the run.
pub async fn edit_run(st: &AppState, id: &RunId, edit: MetaEdit) -> Result<RunMeta, ApiError> {
    let dir = run_dir(st, id)?;
    let meta = tokio::task::spawn_blocking(move || {
        let meta = edit.apply(RunMeta::read(&dir))?;
        meta.write(&dir)?;
        Ok::<_, ApiError>(meta)
    })
    .await
    .map_err(ApiError::internal)??;
    st.index().set_meta(id.as_str(), &meta)?;
    if let Some(s) = st.index().get(id)? {
        st.hub().status(&s);
    }
    Ok(meta)
}

/// `PATCH /api/runs/{id}` with `{"name": ..., "tags": [...], "notes": ...}` (any subset).
pub async fn patch_api(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Json(edit): Json<MetaEdit>,
) -> Result<Json<Value>, ApiError> {
    let meta = edit_run(&st, &id, edit).await?;
    let summary = st.index().get(&id)?;
    Ok(Json(json!({ "meta": meta, "summary": summary })))
}

/// `POST /runs/{id}/meta`: the run page's form (name, tags, notes).
async fn meta_form(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Form(f): Form<Vec<(String, String)>>,
) -> Result<Redirect, ApiError> {
    let field = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let edit = MetaEdit {
        name: field("name"),
        tags: field("tags").map(Value::String),
        notes: field("notes"),
    };
    edit_run(&st, &id, edit).await?;
    Ok(Redirect::to(&format!("/runs/{id}#manage")))
}

#[derive(Template)]
#[template(path = "partials/manage.html")]
struct Panel<'a> {
    id: &'a str,
    name: &'a str,
    tags: String,
    notes: &'a str,
    /// Delete is offered only to a run that has ended.
    deletable: bool,
}

/// The run page's "Manage" block: rename, tags, notes, delete.
pub fn panel_html(
    id: &str,
    name: &str,
    tags: &[String],
    status: RunStatus,
    meta: &RunMeta,
) -> String {
    Panel {
        id,
        name,
        tags: tags.join(", "),
        notes: &meta.notes,
        deletable: status.is_terminal(),
    }
    .render()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_checked_and_leave_other_fields() {
        let base = RunMeta {
            name: Some("old".into()),
            tags: None,
            notes: "keep".into(),
        };
        let edit = MetaEdit {
            tags: Some(json!(["a", "b", "a"])),
            ..Default::default()
        };
        let m = edit.apply(base.clone()).unwrap();
        assert_eq!(m.name.as_deref(), Some("old"));
        assert_eq!(m.tags, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(m.notes, "keep");
        let empty = MetaEdit {
            name: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(empty.apply(base.clone()).unwrap_err().field(), Some("name"));
        let bad = MetaEdit {
            tags: Some(json!([1, 2])),
            ..Default::default()
        };
        assert!(bad.apply(base).is_err());
    }
}
