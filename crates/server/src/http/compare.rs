//! The compare page: the paper's Table 1 layout (clean and robust accuracy, overall and worst;
//! worst-10% for 100 classes) for chosen runs, mean ± std over seeds, Tables 2-4 from the runs'
//! evaluations, per-class tables and the per-class difference of two groups (diverging bars),
//! overlaid curves, and CSV / Markdown / LaTeX exports of every table. Runs are
//! chosen with repeated `ids=` query parameters (the runs page checkboxes) or `grid=<id>`;
//! `base=<group>` picks the group DAFA's rho is measured against. Every table names the
//! checkpoint its numbers come from and what chose it.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;

use super::charts::svg_response;
use super::compare_charts::{epoch_range, group_chart, is_more, more_charts, CHARTS};
use super::compare_classes::{
    checkpoint_label, class_acc, groups as class_groups, per_class_tables, GroupClassAcc,
};
use super::compare_delta::{delta_caption, delta_chart, delta_pair, delta_table};
use super::compare_evals::{
    corruption_tables, eval_reports, mix_note, robust_tables, CorruptionTable, RobustTable,
    RunReports,
};
use super::compare_export::{csv, export_tables, groups_shown, latex, markdown, ExportTable};
use super::compare_query::{grid_ids, ids, summaries};
use super::compare_rho::{base_group, encode, fill_rho, query_value};
use super::compare_tables::{seed_groups, GroupRow};
use super::compare_tidy::tidy_csv;
use super::files::attachment;
use super::views::{HtmlTemplate, RunRow};
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/compare", get(page))
        .route("/compare.csv", export(&CSV))
        .route("/compare.long.csv", export(&LONG_CSV))
        .route("/compare.md", export(&MARKDOWN))
        .route("/compare.tex", export(&LATEX))
        .route("/compare/charts/{file}", get(chart))
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    rows: Vec<RunRow>,
    any_cifar100: bool,
    query: String,
    /// The live model's curves, then the averaged models' and validation's ([`more_charts`]).
    charts: Vec<String>,
    grid: String,
    groups: Vec<GroupRow>,
    show_groups: bool,
    /// The group rho is measured against (index into `groups`, and its name for the forms).
    base: usize,
    base_name: String,
    /// Whether runs that did not finish count in the seed means (`unfinished=1`).
    unfinished: bool,
    /// Table 2s and Tables 3/4, one per suite and checkpoint, and the sentence saying why
    /// when there are several of a kind.
    robust: Vec<RobustTable>,
    robust_mix: String,
    corruption: Vec<CorruptionTable>,
    corruption_mix: String,
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
    /// Every run with its evaluation reports.
    reports: Vec<RunReports>,
    robust: Vec<RobustTable>,
    corruption: Vec<CorruptionTable>,
    /// Per-class accuracy of each seed group (over the runs that count in its means).
    classes: Vec<GroupClassAcc>,
    /// The per-class difference shown (`da=`/`db=` or the default by method).
    delta: Option<(usize, usize)>,
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
        let unfinished = query_value(q, "unfinished").is_some_and(|v| v == "1");
        let mut groups = seed_groups(&sums, unfinished);
        let base = base_group(&groups, q);
        if let Some(b) = base {
            fill_rho(&mut groups, b);
        }
        let classes = load_class_groups(st, &counted(&sums, &groups)).await?;
        Ok(CompareData {
            grid,
            unfinished,
            base,
            robust: robust_tables(&with_reports),
            corruption: corruption_tables(&with_reports),
            reports: with_reports,
            delta: delta_pair(&classes, q),
            classes,
            groups,
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
        let groups = (&self.groups[..], self.base_name());
        let mut tables = export_tables(&self.rows(), groups, &self.robust, &self.corruption);
        tables.extend(per_class_tables(&self.classes));
        if let Some((a, b)) = self.delta_groups() {
            tables.push(delta_table(a, b));
        }
        tables
    }

    /// The two groups of the per-class difference, when there are two.
    fn delta_groups(&self) -> Option<(&GroupClassAcc, &GroupClassAcc)> {
        let (a, b) = self.delta.filter(|(a, b)| a != b)?;
        Some((self.classes.get(a)?, self.classes.get(b)?))
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
    let (da, db) = d.delta.unwrap_or((0, 0));
    let rows = d.rows();
    let (st2, runs) = (st.clone(), counted(&d.sums, &d.groups));
    let more = tokio::task::spawn_blocking(move || more_charts(&st2, &runs))
        .await
        .map_err(ApiError::internal)?;
    let charts = CHARTS.iter().map(|c| c.to_string()).chain(more).collect();
    Ok(HtmlTemplate(ComparePage {
        delta_groups: if da == db {
            vec![]
        } else {
            d.classes.iter().map(|g| g.name.clone()).collect()
        },
        da,
        db,
        delta_caption: d.delta_groups().map_or_else(String::new, |(a, b)| {
            delta_caption(a, b, &d.groups, &checkpoint_label(&d.classes))
        }),
        show_groups: groups_shown(d.groups.len(), rows.len()),
        base: d.base.unwrap_or(0),
        base_name: d.base_name().unwrap_or_default().to_string(),
        unfinished: d.unfinished,
        rows,
        any_cifar100: d.sums.iter().any(|s| s.dataset == "cifar100"),
        query: d.query(),
        charts,
        grid: d.grid,
        groups: d.groups,
        robust_mix: mix_note(
            d.robust
                .iter()
                .map(|t| (&t.label, t.rows.iter().map(|r| r.label.as_str()).collect())),
        ),
        corruption_mix: mix_note(
            d.corruption
                .iter()
                .map(|t| (&t.label, t.cols.iter().map(String::as_str).collect())),
        ),
        robust: d.robust,
        corruption: d.corruption,
    })
    .into_response())
}

/// The runs that count in their group's means (all of them with `unfinished=1`).
fn counted(sums: &[RunSummary], groups: &[GroupRow]) -> Vec<RunSummary> {
    sums.iter()
        .filter(|s| groups.iter().any(|g| g.run_ids.contains(&s.id)))
        .cloned()
        .collect()
}

/// One download of the compare page's data: how it is rendered, its type and its file name.
struct Export {
    render: fn(&CompareData) -> String,
    mime: &'static str,
    file: &'static str,
}

/// Every table the page shows, as CSV / Markdown / LaTeX, and the tidy (long) CSV.
const CSV: Export = Export {
    render: |d| csv(&d.export()),
    mime: "text/csv; charset=utf-8",
    file: "fairtat-compare.csv",
};
const LONG_CSV: Export = Export {
    render: |d| tidy_csv(&d.groups, &d.reports, &d.classes, d.delta),
    mime: "text/csv; charset=utf-8",
    file: "fairtat-compare-long.csv",
};
const MARKDOWN: Export = Export {
    render: |d| markdown(&d.export()),
    mime: "text/markdown; charset=utf-8",
    file: "fairtat-compare.md",
};
const LATEX: Export = Export {
    render: |d| latex(&d.export()),
    mime: "application/x-tex; charset=utf-8",
    file: "fairtat-compare.tex",
};

/// The handler of one export: the runs chosen by the query, rendered and sent as a download.
fn export(e: &'static Export) -> MethodRouter<AppState> {
    get(
        move |State(st): State<AppState>, RawQuery(q): RawQuery| async move {
            let d = CompareData::load(&st, q.as_deref()).await?;
            Ok::<_, ApiError>(attachment((e.render)(&d), e.mime, e.file))
        },
    )
}

async fn chart(
    State(st): State<AppState>,
    Path(file): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".svg")
        .filter(|n| CHARTS.contains(n) || n.starts_with("delta-") || is_more(n))
        .ok_or_else(|| ApiError::NotFound(format!("chart {file:?}")))?
        .to_string();
    if let Some(kind) = name.strip_prefix("delta-") {
        let robust = match kind {
            "robust" => true,
            "clean" => false,
            _ => return Err(ApiError::NotFound(format!("chart {file:?}"))),
        };
        // The page's chart URLs name every run with `ids=` (a grid already expanded) and
        // carry `unfinished=`, so the bars average the runs the page's means do.
        let d = CompareData::load(&st, q.as_deref()).await?;
        let (a, b) = d.delta_groups().ok_or_else(|| {
            ApiError::BadRequest("a per-class difference needs two groups of runs".into())
        })?;
        return Ok(svg_response(delta_chart(a, b, robust)));
    }
    let d = CompareData::load(&st, q.as_deref()).await?;
    let range = epoch_range(q.as_deref());
    let svg =
        tokio::task::spawn_blocking(move || group_chart(&st, (&d.groups, &d.sums), &name, range))
            .await
            .map_err(ApiError::internal)?;
    Ok(svg_response(svg))
}
