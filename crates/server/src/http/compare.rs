//! The compare page: the paper's Table 1 layout (clean and robust accuracy, overall and worst;
//! worst-10% for 100 classes) for chosen runs, mean ± std over seeds, Tables 2-4 from the runs'
//! evaluations, per-class tables and the per-class difference of two groups (diverging bars),
//! overlaid curves, and CSV / Markdown / LaTeX exports of every table. Runs are
//! chosen with repeated `ids=` query parameters (the runs page checkboxes) or `grid=<id>`;
//! `base=<group>` picks the group DAFA's rho is measured against. Every table names the
//! checkpoint its numbers come from and what chose it.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::charts::svg_response;
use super::compare_classes::{
    checkpoint_label, class_acc, delta_caption, delta_chart, delta_pair, groups as class_groups,
    per_class_tables, GroupClassAcc,
};
use super::compare_export::{csv, export_tables, groups_shown, latex, markdown, ExportTable};
use super::compare_rho::{base_group, encode, fill_rho, query_value};
use super::compare_tables::{
    corruption_table, eval_reports, robust_rows, seed_groups, GroupRow, RobustRow,
};
use super::views::{HtmlTemplate, RunRow};
use crate::error::ApiError;
use crate::index::ListQuery;
use crate::state::AppState;
use fairtat_charts::{line_chart, Series};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{is_valid_run_id, RunDir, RunId};

/// Runs compared at most (bounded work per request).
const MAX_RUNS: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/compare", get(page))
        .route("/compare.csv", get(export_csv))
        .route("/compare.md", get(export_md))
        .route("/compare.tex", get(export_tex))
        .route("/compare/charts/{file}", get(chart))
}

/// Valid ids from `ids=a&ids=b` (also `ids=a,b`), in order, without duplicates.
fn ids(q: Option<&str>) -> Vec<RunId> {
    let mut out: Vec<RunId> = Vec::new();
    for kv in q.unwrap_or("").split('&') {
        if let Some(v) = kv.strip_prefix("ids=") {
            for id in v.split("%2C").flat_map(|s| s.split(',')) {
                match id.parse::<RunId>() {
                    Ok(id) if !out.contains(&id) => out.push(id),
                    _ => {}
                }
            }
        }
    }
    out.truncate(MAX_RUNS);
    out
}

fn summaries(st: &AppState, ids: &[RunId]) -> Result<Vec<RunSummary>, ApiError> {
    let mut v = Vec::new();
    for id in ids {
        if let Some(s) = st.index().get(id)? {
            v.push(s);
        }
    }
    Ok(v)
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    rows: Vec<RunRow>,
    any_cifar100: bool,
    query: String,
    charts: Vec<&'static str>,
    grid: String,
    groups: Vec<GroupRow>,
    show_groups: bool,
    /// The group rho is measured against (index into `groups`, and its name for the forms).
    base: usize,
    base_name: String,
    /// Whether runs that did not finish count in the seed means (`unfinished=1`).
    unfinished: bool,
    robust: Vec<RobustRow>,
    corruption_cols: Vec<String>,
    corruption_rows: Vec<(String, Vec<String>)>,
    /// Seed groups the per-class difference can be drawn between, and the two chosen.
    delta_groups: Vec<String>,
    da: usize,
    db: usize,
    /// rho of the first chosen group against the second, and the rows' checkpoint.
    delta_caption: String,
}

/// Each seed group's per-class accuracy, from the runs' folded state in the metrics store.
async fn load_class_groups(
    st: &AppState,
    sums: &[RunSummary],
) -> Result<Vec<GroupClassAcc>, ApiError> {
    let (st, sums) = (st.clone(), sums.to_vec());
    tokio::task::spawn_blocking(move || {
        let accs: Vec<_> = sums
            .into_iter()
            .map(|s| {
                let acc = class_acc(&st.store().run(&st.summary_dir(&s)).fold());
                (s, acc)
            })
            .collect();
        class_groups(&accs)
    })
    .await
    .map_err(ApiError::internal)
}

/// `grid=<id>` of the query: every run tagged `grid:<id>`, oldest first.
fn grid_ids(st: &AppState, q: Option<&str>) -> Result<(String, Vec<RunId>), ApiError> {
    let Some(gid) = q
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("grid="))
        .filter(|g| is_valid_run_id(g))
    else {
        return Ok((String::new(), vec![]));
    };
    let tag = format!("grid:{gid}");
    let mut runs = st.index().list(&ListQuery {
        tag: Some(tag.clone()),
        ..ListQuery::default()
    })?;
    runs.retain(|s| s.tags.contains(&tag));
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ids: Vec<RunId> = runs.into_iter().filter_map(|s| s.id.parse().ok()).collect();
    ids.truncate(MAX_RUNS * 3);
    Ok((gid.to_string(), ids))
}

const CHARTS: [&str; 4] = [
    "robust_worst",
    "robust_overall",
    "clean_worst",
    "clean_overall",
];

/// What the page and the exports show: the chosen runs (`ids=` and `grid=`) and their tables.
struct CompareData {
    grid: String,
    ids: Vec<RunId>,
    sums: Vec<RunSummary>,
    groups: Vec<GroupRow>,
    /// The group rho is measured against (`base=` or the first plain baseline).
    base: Option<usize>,
    /// `unfinished=1`: runs that did not finish count in the seed means.
    unfinished: bool,
    robust: Vec<RobustRow>,
    corruption_cols: Vec<String>,
    corruption_rows: Vec<(String, Vec<String>)>,
    /// Per-class accuracy of each seed group (mean over its runs).
    classes: Vec<GroupClassAcc>,
}

impl CompareData {
    async fn load(st: &AppState, q: Option<&str>) -> Result<CompareData, ApiError> {
        let (grid, grid_runs) = grid_ids(st, q)?;
        let mut ids = ids(q);
        for g in grid_runs {
            if !ids.contains(&g) {
                ids.push(g);
            }
        }
        let sums = summaries(st, &ids)?;
        let dirs: Vec<(RunSummary, RunDir)> = sums
            .iter()
            .map(|s| (s.clone(), st.summary_dir(s)))
            .collect();
        let with_reports = tokio::task::spawn_blocking(move || {
            dirs.into_iter()
                .map(|(s, d)| (s, eval_reports(&d)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(ApiError::internal)?;
        let (corruption_cols, corruption_rows) = corruption_table(&with_reports);
        let unfinished = query_value(q, "unfinished").is_some_and(|v| v == "1");
        let mut groups = seed_groups(&sums, unfinished);
        let base = base_group(&groups, q);
        if let Some(b) = base {
            fill_rho(&mut groups, b);
        }
        Ok(CompareData {
            grid,
            unfinished,
            groups,
            base,
            robust: robust_rows(&with_reports),
            corruption_cols,
            corruption_rows,
            classes: load_class_groups(st, &sums).await?,
            ids,
            sums,
        })
    }

    fn rows(&self) -> Vec<RunRow> {
        self.sums.iter().map(RunRow::of).collect()
    }

    fn base_name(&self) -> Option<&str> {
        Some(self.groups.get(self.base?)?.name.as_str())
    }

    fn export(&self) -> Vec<ExportTable> {
        let corruption = (&self.corruption_cols[..], &self.corruption_rows[..]);
        let groups = (&self.groups[..], self.base_name());
        let mut tables = export_tables(&self.rows(), groups, &self.robust, corruption);
        tables.extend(per_class_tables(&self.classes));
        tables
    }

    /// The query of the export links: the page's runs and its base group.
    fn query(&self) -> String {
        let mut parts: Vec<String> = self.ids.iter().map(|i| format!("ids={i}")).collect();
        if let Some(b) = self.base_name() {
            parts.push(format!("base={}", encode(b)));
        }
        if self.unfinished {
            parts.push("unfinished=1".into());
        }
        parts.join("&")
    }
}

async fn page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let d = CompareData::load(&st, q.as_deref()).await?;
    let (da, db) = delta_pair(&d.classes, q.as_deref()).unwrap_or((0, 0));
    let rows = d.rows();
    Ok(HtmlTemplate(ComparePage {
        delta_groups: if da == db {
            vec![]
        } else {
            d.classes.iter().map(|g| g.name.clone()).collect()
        },
        da,
        db,
        delta_caption: match (d.classes.get(da), d.classes.get(db)) {
            (Some(a), Some(b)) if da != db => {
                delta_caption(a, b, &d.groups, &checkpoint_label(&d.classes))
            }
            _ => String::new(),
        },
        show_groups: groups_shown(d.groups.len(), rows.len()),
        base: d.base.unwrap_or(0),
        base_name: d.base_name().unwrap_or_default().to_string(),
        unfinished: d.unfinished,
        rows,
        any_cifar100: d.sums.iter().any(|s| s.dataset == "cifar100"),
        query: d.query(),
        charts: CHARTS.to_vec(),
        grid: d.grid,
        groups: d.groups,
        robust: d.robust,
        corruption_cols: d.corruption_cols,
        corruption_rows: d.corruption_rows,
    })
    .into_response())
}

fn download(body: String, mime: &str, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// One export of every table the page shows, rendered by `render`.
async fn export(
    st: &AppState,
    q: Option<String>,
    render: fn(&[ExportTable]) -> String,
    mime: &str,
    file: &str,
) -> Result<Response, ApiError> {
    let d = CompareData::load(st, q.as_deref()).await?;
    Ok(download(render(&d.export()), mime, file))
}

async fn export_csv(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    export(
        &st,
        q,
        csv,
        "text/csv; charset=utf-8",
        "fairtat-compare.csv",
    )
    .await
}

async fn export_md(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    export(
        &st,
        q,
        markdown,
        "text/markdown; charset=utf-8",
        "fairtat-compare.md",
    )
    .await
}

async fn export_tex(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    export(
        &st,
        q,
        latex,
        "application/x-tex; charset=utf-8",
        "fairtat-compare.tex",
    )
    .await
}

async fn chart(
    State(st): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".svg")
        .filter(|n| CHARTS.contains(n) || n.starts_with("delta-"))
        .ok_or_else(|| ApiError::NotFound(format!("chart {file:?}")))?
        .to_string();
    if let Some(kind) = name.strip_prefix("delta-") {
        let robust = match kind {
            "robust" => true,
            "clean" => false,
            _ => return Err(ApiError::NotFound(format!("chart {file:?}"))),
        };
        // The page's chart URLs name every run with `ids=` (a grid already expanded).
        let groups = load_class_groups(&st, &summaries(&st, &ids(q.as_deref()))?).await?;
        let (a, b) = delta_pair(&groups, q.as_deref()).ok_or_else(|| {
            ApiError::BadRequest("a per-class difference needs two groups of runs".into())
        })?;
        return Ok(svg_response(delta_chart(&groups[a], &groups[b], robust)));
    }
    let sums = summaries(&st, &ids(q.as_deref()))?;
    let dirs: Vec<_> = sums
        .iter()
        .map(|s| (s.name.clone(), st.summary_dir(s)))
        .collect();
    let svg = tokio::task::spawn_blocking(move || {
        let series: Vec<Series> = dirs
            .iter()
            .map(|(label, dir)| {
                let entry = st.store().run(dir);
                let f = entry.fold();
                let m = f.metrics();
                let ys = match name.as_str() {
                    "robust_worst" => &m.robust_worst,
                    "robust_overall" => &m.robust_overall,
                    "clean_worst" => &m.clean_worst,
                    _ => &m.clean_overall,
                };
                let pts = m
                    .epochs
                    .iter()
                    .zip(ys)
                    .filter_map(|(e, y)| y.map(|y| (*e as f64, y)))
                    .collect();
                Series::new(label.clone(), pts)
            })
            .collect();
        line_chart(
            &name.replace('_', " "),
            "epoch",
            "accuracy",
            &series,
            Some((0.0, 1.0)),
        )
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(svg_response(svg))
}
