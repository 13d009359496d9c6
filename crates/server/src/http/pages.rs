//! Server-rendered pages: the runs list (sort, filter, compare checkboxes), the run page (live
//! charts via `app.js`, tables, downloads, config, log tail, cancel/resume), and the tables
//! fragment the run page re-fetches on each epoch.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::api::ListParams;
use super::charts::CHARTS;
use super::files::list_files;
use super::run_cols;
use super::tables::{tables_html, TablesParams};
use super::views::{HtmlTemplate, RunRow};
use super::{indexed_run, run_dir, RunPath};
use crate::error::ApiError;
use crate::index::SORT_KEYS;
use crate::state::AppState;
use fairtat_core::runs::RunId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(runs_page))
        .route("/fragments/run-rows", get(run_rows))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/tables", get(tables_fragment))
        .route("/runs/{id}/cancel", post(cancel_form))
        .route("/runs/{id}/resume", post(resume_form))
}

pub struct Opt {
    pub value: String,
    pub selected: bool,
}

pub fn options(values: Vec<String>, current: Option<&str>) -> Vec<Opt> {
    values
        .into_iter()
        .map(|v| Opt {
            selected: current == Some(v.as_str()),
            value: v,
        })
        .collect()
}

pub struct Filter {
    pub name: &'static str,
    pub options: Vec<Opt>,
}

pub struct Header {
    pub label: &'static str,
    pub href: String,
    pub arrow: &'static str,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    filters: Vec<Filter>,
    tag: String,
    /// The hyper-parameter columns (`?cols=`), as typed back into the picker, and their keys.
    cols: String,
    col_keys: Vec<&'static str>,
    all_keys: Vec<&'static str>,
    sort: String,
    order: String,
    headers: Vec<Header>,
    rows: Vec<RunRow>,
    /// Each GPU's jobs and estimated memory ([`crate::jobs::Executor::gpu_lines`]).
    gpus: Vec<String>,
}

/// Column headers that sort: (label, sort key).
const COLUMNS: [(&str, &str); 10] = [
    ("run", "id"),
    ("status", "status"),
    ("method", "method"),
    ("dataset", "dataset"),
    ("model", "arch"),
    ("clean", "clean_overall"),
    ("clean worst", "clean_worst"),
    ("robust", "robust_overall"),
    ("robust worst", "robust_worst"),
    ("name", "name"),
];

/// The list's rows with their hyper-parameter columns (`?cols=`).
async fn rows_of(
    st: &AppState,
    p: &ListParams,
) -> Result<(Vec<RunRow>, Vec<&'static str>), ApiError> {
    let cols = run_cols::parse_cols(p.cols.as_deref())?;
    let summaries = st.index().list(&p.query())?;
    let extra = run_cols::values(st, &summaries, &cols).await?;
    let rows = summaries
        .iter()
        .zip(extra)
        .map(|(s, extra)| RunRow {
            extra,
            ..RunRow::of(s)
        })
        .collect();
    Ok((rows, cols))
}

async fn runs_page(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (rows, col_keys) = rows_of(&st, &p).await?;
    let sort = p
        .sort
        .clone()
        .filter(|s| SORT_KEYS.contains(&s.as_str()))
        .unwrap_or_default();
    let desc = p.order.as_deref() != Some("asc");
    let keep = |k: &str, v: &Option<String>| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("&{k}={}", enc(v)))
            .unwrap_or_default()
    };
    let f = &p.filter;
    let filters_q: String = f
        .columns()
        .into_iter()
        .chain([("tag", &f.tag), ("cols", &p.cols)])
        .map(|(k, v)| keep(k, v))
        .collect();
    let headers = COLUMNS[..9]
        .iter()
        .map(|(label, key)| {
            let active = sort == *key;
            let next = if active && desc { "asc" } else { "desc" };
            Header {
                label,
                href: format!("/?sort={key}&order={next}{filters_q}"),
                arrow: match (active, desc) {
                    (true, true) => " ▾",
                    (true, false) => " ▴",
                    _ => "",
                },
            }
        })
        .collect();
    let mut filters = Vec::new();
    for (name, cur) in f.columns() {
        filters.push(Filter {
            name,
            options: options(st.index().distinct(name)?, cur.as_deref()),
        });
    }
    Ok(HtmlTemplate(RunsPage {
        filters,
        tag: f.tag.clone().unwrap_or_default(),
        cols: col_keys.join(", "),
        col_keys,
        all_keys: fairtat_core::config::fields::FIELDS
            .iter()
            .map(|f| f.key)
            .collect(),
        sort,
        order: if desc { "desc".into() } else { "asc".into() },
        headers,
        rows,
        gpus: st.jobs().gpu_lines(),
    }))
}

#[derive(Template)]
#[template(path = "partials/run_rows.html")]
struct RunRows {
    rows: Vec<RunRow>,
}

/// The runs table's rows for the same query as the page: the runs list re-fetches them when
/// `/api/events` says a run changed (a new run, a status, an epoch).
async fn run_rows(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (rows, _) = rows_of(&st, &p).await?;
    Ok(HtmlTemplate(RunRows { rows }))
}

/// Percent-encode a query value (ids, statuses and tags are mostly plain already).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct ChartView {
    pub name: String,
    pub slider: bool,
    /// Data version (`?v=` in the URL, compared with `charts.json` after an epoch event).
    pub version: u64,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    row: RunRow,
    last_epoch: usize,
    /// Status, progress, actions and headline numbers (`run_live`, re-fetched live).
    head: String,
    charts: Vec<ChartView>,
    tables: String,
    evals: String,
    /// The download list's items (`run_live`, re-fetched live).
    files: String,
    config: String,
    log_tail: String,
    /// Seq of the last event the page shows; the page's event stream starts after it.
    after: String,
    /// Whether per-class charts need the class selector (more than ten classes).
    many_classes: bool,
    /// The current epoch's progress as JSON (`store::step`), drawn by `run.js`; empty before
    /// the first batch.
    step: String,
    /// Rename, tags, notes and delete (`manage`).
    manage: String,
    /// The run's Slurm submission history, scripts and array-task output (empty off Slurm).
    slurm: crate::supervisor::SlurmView,
}

use super::run_live::{files_html, head_html, note_checkpoints, LOG_LINES};
use crate::process::log_tail as tail;
use fairtat_core::runs::{safe_fs, RunDir};

/// The run's `config.toml` as the page shows it; one the server will not read (a link, a FIFO,
/// a hard link) says why instead.
fn config_text(dir: &RunDir) -> String {
    match safe_fs::read_text(dir, "config.toml", safe_fs::TEXT_CAP) {
        Ok(text) => text,
        Err(e) if e.is_missing() => String::new(),
        Err(e) => format!("# not shown: {e}"),
    }
}

async fn run_page(State(st): State<AppState>, RunPath(id): RunPath) -> Result<Response, ApiError> {
    let (dir, summary) = indexed_run(&st, &id)?;
    let st2 = st.clone();
    let id2 = id.clone();
    let summary2 = summary.clone();
    let (files, config, log_tail, page, slurm) = tokio::task::spawn_blocking(move || {
        let controls = super::controls::for_summary(&st2, &summary2);
        let entry = st2.store().run(&dir);
        let detail = entry.detail(None, &st2.store().stats);
        let f = entry.fold();
        let versions = super::charts::chart_versions(&f, &Default::default());
        let mut files = list_files(&dir);
        let page = PageData {
            tables: tables_html(&f, detail.as_deref()),
            state_charts: super::chart_more::present(&f)
                .into_iter()
                .chain(super::charts::state_charts(&f))
                .collect(),
            versions,
            after: f.last_seq().map(|s| s.to_string()).unwrap_or_default(),
            many_classes: f.metrics().class_names.len() > 10,
            step: if f.step().seen() {
                serde_json::to_string(f.step()).unwrap_or_default()
            } else {
                Default::default()
            },
            evals: super::evals::fragment_with(&st2, &id2, &files, controls.evaluate).0,
            controls,
            meta: fairtat_core::runs::meta::RunMeta::read(&dir),
        };
        note_checkpoints(&mut files, &f);
        drop(f);
        (
            files,
            config_text(&dir),
            tail(&dir, "train.log".as_ref(), LOG_LINES),
            page,
            crate::supervisor::slurm_view(&dir, st2.runs_dir(), &id2),
        )
    })
    .await
    .map_err(ApiError::internal)?;
    let version = |c: &str| page.versions.get(c).copied().unwrap_or(0);
    Ok(HtmlTemplate(RunPage {
        head: head_html(&st, &summary, page.controls),
        last_epoch: summary.epochs_done.saturating_sub(1),
        row: RunRow::of(&summary),
        charts: CHARTS
            .iter()
            .map(|c| ChartView {
                name: c.to_string(),
                slider: *c == "cfps",
                version: version(c),
            })
            .chain(page.state_charts.iter().map(|name| ChartView {
                name: name.clone(),
                slider: false,
                version: version(name),
            }))
            .collect(),
        tables: page.tables,
        evals: page.evals,
        files: files_html(&id, &files),
        config,
        log_tail,
        after: page.after,
        many_classes: page.many_classes,
        step: page.step,
        manage: super::manage::panel_html(
            id.as_str(),
            &summary.name,
            &summary.tags,
            summary.status,
            &page.meta,
        ),
        slurm,
    })
    .into_response())
}

/// What the run page takes from the metrics store.
struct PageData {
    tables: String,
    /// The charts a run has only when it recorded their series (averaged models, validation,
    /// method state), after the fixed ones.
    state_charts: Vec<String>,
    versions: std::collections::BTreeMap<String, u64>,
    after: String,
    many_classes: bool,
    evals: String,
    controls: super::controls::Controls,
    step: String,
    /// The user's edits (`meta.json`) for the Manage block.
    meta: fairtat_core::runs::meta::RunMeta,
}

async fn tables_fragment(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Query(p): Query<TablesParams>,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let html = tokio::task::spawn_blocking(move || {
        let entry = st.store().run(&dir);
        let detail = entry.detail(p.epoch, &st.store().stats);
        let f = entry.fold();
        let detail = detail.filter(|d| p.epoch.is_none_or(|e| e == d.epoch));
        tables_html(&f, detail.as_deref())
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(axum::response::Html(html).into_response())
}

/// The run page's Cancel and Resume buttons: the API's action, then back to the run's page (or
/// the action's error).
fn back_to_run<T>(id: &RunId, action: Result<T, ApiError>) -> Result<Redirect, ApiError> {
    action.map(|_| Redirect::to(&format!("/runs/{id}")))
}

async fn cancel_form(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Redirect, ApiError> {
    back_to_run(&id, super::api::cancel_run(&st, id.clone()).await)
}

async fn resume_form(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Redirect, ApiError> {
    back_to_run(&id, super::api::resume_run(&st, id.clone()).await)
}
