//! The compare page: the paper's Table 1 layout (clean and robust accuracy, overall and worst;
//! worst-10% for 100 classes) for chosen runs, overlaid curves, and CSV / Markdown / LaTeX
//! exports. Runs are chosen with repeated `ids=` query parameters (the runs page checkboxes).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::charts::svg_response;
use super::compare_tables::{
    corruption_table, eval_reports, robust_rows, seed_groups, GroupRow, RobustRow,
};
use super::views::{HtmlTemplate, RunRow};
use crate::charts::{line_chart, Series};
use crate::runs::reports::csv_field;
use crate::runs::summary::RunSummary;
use crate::runs::{is_valid_run_id, RunDir};
use crate::server::error::ApiError;
use crate::server::index::ListQuery;
use crate::server::state::AppState;

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
fn ids(q: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for kv in q.unwrap_or("").split('&') {
        if let Some(v) = kv.strip_prefix("ids=") {
            for id in v.split("%2C").flat_map(|s| s.split(',')) {
                if is_valid_run_id(id) && !out.iter().any(|o| o == id) {
                    out.push(id.to_string());
                }
            }
        }
    }
    out.truncate(MAX_RUNS);
    out
}

fn summaries(st: &AppState, ids: &[String]) -> Result<Vec<RunSummary>, ApiError> {
    let mut v = Vec::new();
    for id in ids {
        if let Some(s) = st.index.get(id)? {
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
    robust: Vec<RobustRow>,
    corruption_cols: Vec<String>,
    corruption_rows: Vec<(String, Vec<String>)>,
}

/// `grid=<id>` of the query: every run tagged `grid:<id>`, oldest first.
fn grid_ids(st: &AppState, q: Option<&str>) -> Result<(String, Vec<String>), ApiError> {
    let Some(gid) = q
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("grid="))
        .filter(|g| is_valid_run_id(g))
    else {
        return Ok((String::new(), vec![]));
    };
    let tag = format!("grid:{gid}");
    let mut runs = st.index.list(&ListQuery {
        tag: Some(tag.clone()),
        ..ListQuery::default()
    })?;
    runs.retain(|s| s.tags.contains(&tag));
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ids: Vec<String> = runs.into_iter().map(|s| s.id).collect();
    ids.truncate(MAX_RUNS * 3);
    Ok((gid.to_string(), ids))
}

const CHARTS: [&str; 4] = [
    "robust_worst",
    "robust_overall",
    "clean_worst",
    "clean_overall",
];

async fn page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let (grid, grid_runs) = grid_ids(&st, q.as_deref())?;
    let mut ids = ids(q.as_deref());
    for g in grid_runs {
        if !ids.contains(&g) {
            ids.push(g);
        }
    }
    let sums = summaries(&st, &ids)?;
    let dirs: Vec<(RunSummary, RunDir)> = sums
        .iter()
        .map(|s| (s.clone(), st.run_dir(&s.id)))
        .collect();
    let with_reports = tokio::task::spawn_blocking(move || {
        dirs.into_iter()
            .map(|(s, d)| (s, eval_reports(&d)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(ApiError::internal)?;
    let (corruption_cols, corruption_rows) = corruption_table(&with_reports);
    Ok(HtmlTemplate(ComparePage {
        grid,
        groups: seed_groups(&sums),
        robust: robust_rows(&with_reports),
        corruption_cols,
        corruption_rows,
        any_cifar100: sums.iter().any(|s| s.dataset == "cifar100"),
        rows: sums.iter().map(RunRow::of).collect(),
        query: ids
            .iter()
            .map(|i| format!("ids={i}"))
            .collect::<Vec<_>>()
            .join("&"),
        charts: CHARTS.to_vec(),
    })
    .into_response())
}

/// Table rows as plain cells: run, method, dataset, model, clean, clean worst, robust, robust worst.
fn table(sums: &[RunSummary]) -> Vec<[String; 8]> {
    sums.iter()
        .map(RunRow::of)
        .map(|r| {
            [
                r.name,
                r.method,
                r.dataset,
                r.arch,
                r.clean_overall,
                r.clean_worst,
                r.robust_overall,
                r.robust_worst,
            ]
        })
        .collect()
}

const HEAD: [&str; 8] = [
    "run",
    "method",
    "dataset",
    "model",
    "clean",
    "clean worst",
    "robust",
    "robust worst",
];

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

async fn export_csv(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let rows = table(&summaries(&st, &ids(q.as_deref()))?);
    let mut out = HEAD.join(",") + "\n";
    for r in rows {
        out += &r
            .iter()
            .map(|c| csv_field(c).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        out.push('\n');
    }
    Ok(download(
        out,
        "text/csv; charset=utf-8",
        "fairtat-compare.csv",
    ))
}

async fn export_md(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let rows = table(&summaries(&st, &ids(q.as_deref()))?);
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n|{}\n", HEAD.join(" | "), "---|".repeat(HEAD.len()));
    for r in rows {
        out += &format!(
            "| {} |\n",
            r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(download(
        out,
        "text/markdown; charset=utf-8",
        "fairtat-compare.md",
    ))
}

/// Escape LaTeX special characters.
fn tex(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                o.push('\\');
                o.push(c);
            }
            '~' => o.push_str("\\textasciitilde{}"),
            '^' => o.push_str("\\textasciicircum{}"),
            '\\' => o.push_str("\\textbackslash{}"),
            '–' => o.push_str("--"),
            _ => o.push(c),
        }
    }
    o
}

async fn export_tex(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let rows = table(&summaries(&st, &ids(q.as_deref()))?);
    let mut out = String::from(
        "\\begin{tabular}{llll|cc|cc}\n\\toprule\n & & & & \\multicolumn{2}{c|}{Clean} & \\multicolumn{2}{c}{Robust} \\\\\nRun & Method & Dataset & Model & Overall & Worst & Overall & Worst \\\\\n\\midrule\n",
    );
    for r in rows {
        out += &format!(
            "{} \\\\\n",
            r.iter().map(|c| tex(c)).collect::<Vec<_>>().join(" & ")
        );
    }
    out += "\\bottomrule\n\\end{tabular}\n";
    Ok(download(
        out,
        "application/x-tex; charset=utf-8",
        "fairtat-compare.tex",
    ))
}

async fn chart(
    State(st): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".svg")
        .filter(|n| CHARTS.contains(n))
        .ok_or_else(|| ApiError::NotFound(format!("chart {file:?}")))?
        .to_string();
    let sums = summaries(&st, &ids(q.as_deref()))?;
    let dirs: Vec<_> = sums
        .iter()
        .map(|s| (s.name.clone(), st.run_dir(&s.id)))
        .collect();
    let svg = tokio::task::spawn_blocking(move || {
        let series: Vec<Series> = dirs
            .iter()
            .map(|(label, dir)| {
                let entry = st.store.run(dir);
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
