//! Chart SVGs of one run, re-fetched by `app.js` when an epoch event arrives:
//! `GET /runs/{id}/charts/{name}.svg` (`?epoch=N` picks the epoch of the C_FPS bar chart and of
//! the confusion heatmaps; default the latest).

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::run_dir;
use crate::charts::{bar_chart, heatmap, line_chart, Series};
use crate::runs::EventLine;
use crate::server::error::ApiError;
use crate::server::metrics::{self, Metrics};
use crate::server::scan;
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{id}/charts/{file}", get(chart))
}

/// Every chart a run page shows, in page order.
pub const CHARTS: [&str; 10] = [
    "accuracy",
    "loss",
    "class-acc-clean",
    "class-acc-robust",
    "cfps",
    "cfps-heatmap",
    "class-eps",
    "targets",
    "confusion-robust",
    "confusion-diff",
];

#[derive(Deserialize, Default)]
pub struct ChartParams {
    pub epoch: Option<usize>,
}

pub fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response()
}

async fn chart(
    State(st): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    Query(p): Query<ChartParams>,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let name = file
        .strip_suffix(".svg")
        .filter(|n| CHARTS.contains(n) || *n == "confusion-clean" || state_key(n).is_some())
        .ok_or_else(|| ApiError::NotFound(format!("chart {file:?}")))?
        .to_string();
    let svg = tokio::task::spawn_blocking(move || {
        let events = scan::read_all_events(&dir);
        render(&name, &events, p.epoch)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(svg_response(svg))
}

/// The method-state key of a `state-<key>` chart name (keys are short identifiers).
pub fn state_key(name: &str) -> Option<&str> {
    name.strip_prefix("state-").filter(|k| {
        !k.is_empty()
            && k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// The `state-<key>` charts a run has, in key order.
pub fn state_charts(events: &[EventLine]) -> Vec<String> {
    let mut keys: Vec<&String> = metrics::epoch_records(events)
        .iter()
        .flat_map(|r| r.method_state.keys())
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| format!("state-{k}"))
        .filter(|n| state_key(n).is_some())
        .collect()
}

/// Lines of one method-state key: one per class when the rows have K entries (class names as
/// labels), one per entry otherwise (`extra` beyond K, e.g. WAT's average expert).
fn state_series(m: &Metrics, key: &str) -> Vec<Series> {
    let Some(rows) = m.method_state.get(key) else {
        return vec![];
    };
    let k = m.class_names.len();
    let mut series = per_class(m, rows);
    for (i, s) in series.iter_mut().enumerate() {
        if i >= k {
            s.name = if i == k {
                "extra".into()
            } else {
                format!("extra {}", i - k)
            };
        }
    }
    if series.len() == 1 {
        series[0].name = key.to_string();
    }
    series
}

/// `(epoch, value)` points, skipping missing values.
fn points(m: &Metrics, ys: &[Option<f64>]) -> Vec<(f64, f64)> {
    m.epochs
        .iter()
        .zip(ys)
        .filter_map(|(e, y)| y.map(|y| (*e as f64, y)))
        .collect()
}

/// One line per class from `[epoch][class]` rows.
fn per_class(m: &Metrics, rows: &[Vec<f64>]) -> Vec<Series> {
    let k = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..k)
        .map(|c| {
            let pts = m
                .epochs
                .iter()
                .zip(rows)
                .filter_map(|(e, r)| r.get(c).map(|v| (*e as f64, *v)))
                .collect();
            Series::new(m.class_names.get(c).cloned().unwrap_or(c.to_string()), pts)
        })
        .collect()
}

/// Index into the epoch rows for `?epoch=N` (default: the latest).
fn epoch_index(m: &Metrics, epoch: Option<usize>) -> Option<usize> {
    match epoch {
        Some(e) => m.epochs.iter().position(|x| *x == e),
        None => m.epochs.len().checked_sub(1),
    }
}

pub fn render(name: &str, events: &[EventLine], epoch: Option<usize>) -> String {
    let m = metrics::metrics(events);
    let epochs_lbl: Vec<String> = m.epochs.iter().map(|e| e.to_string()).collect();
    let unit = Some((0.0, 1.0));
    match name {
        "loss" => line_chart(
            "Training loss",
            "epoch",
            "loss",
            &[Series::new(
                "train loss",
                points(
                    &m,
                    &m.train_loss.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
                ),
            )],
            None,
        ),
        "accuracy" => line_chart(
            "Test accuracy: overall and worst class",
            "epoch",
            "accuracy",
            &[
                Series::new("clean overall", points(&m, &m.clean_overall)),
                Series::new("clean worst", points(&m, &m.clean_worst)),
                Series::new("robust overall", points(&m, &m.robust_overall)),
                Series::new("robust worst", points(&m, &m.robust_worst)),
            ],
            unit,
        ),
        "class-acc-clean" => line_chart(
            "Per-class clean accuracy",
            "epoch",
            "accuracy",
            &per_class(&m, &m.class_acc_clean),
            unit,
        ),
        "class-acc-robust" => line_chart(
            "Per-class robust accuracy",
            "epoch",
            "accuracy",
            &per_class(&m, &m.class_acc_robust),
            unit,
        ),
        "class-eps" => line_chart(
            "Per-class training epsilon (x255)",
            "epoch",
            "epsilon x 255",
            &per_class(&m, &scale(&m.class_eps, 255.0)),
            None,
        ),
        "targets" => line_chart(
            "Target-sampling distribution",
            "epoch",
            "probability",
            &per_class(&m, &m.target_probs),
            None,
        ),
        "cfps" => {
            let i = epoch_index(&m, epoch);
            let vals = i.and_then(|i| m.cfps.get(i)).cloned().unwrap_or_default();
            let title = match i {
                Some(i) => format!("C_FPS per class, epoch {}", m.epochs[i]),
                None => "C_FPS per class (no epoch yet)".into(),
            };
            bar_chart(&title, &m.class_names, &vals)
        }
        "cfps-heatmap" => {
            // Rows = classes, columns = epochs.
            let k = m.class_names.len();
            let rows: Vec<Vec<f64>> = (0..k)
                .map(|c| {
                    m.cfps
                        .iter()
                        .map(|r| r.get(c).copied().unwrap_or(f64::NAN))
                        .collect()
                })
                .collect();
            heatmap("C_FPS, class x epoch", &m.class_names, &epochs_lbl, &rows)
        }
        n if state_key(n).is_some() => {
            let key = state_key(n).unwrap_or_default();
            line_chart(
                &format!("Method state: {key}"),
                "epoch",
                key,
                &state_series(&m, key),
                None,
            )
        }
        _ => confusion_chart(name, events, epoch, &m.class_names),
    }
}

fn scale(rows: &[Vec<f64>], f: f64) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v * f).collect())
        .collect()
}

fn confusion_chart(
    name: &str,
    events: &[EventLine],
    epoch: Option<usize>,
    names: &[String],
) -> String {
    let recs = metrics::epoch_records(events);
    let rec = match epoch {
        Some(e) => recs.iter().find(|r| r.epoch == e),
        None => recs.last(),
    };
    let rows = |robust: bool| -> Vec<Vec<f64>> {
        rec.and_then(|r| {
            if robust {
                metrics::robust_eval(r)
            } else {
                metrics::clean_eval(r)
            }
        })
        .map(|e| {
            e.confusion
                .iter()
                .map(|row| row.iter().map(|v| *v as f64).collect())
                .collect()
        })
        .unwrap_or_default()
    };
    let (title, values) = match name {
        "confusion-clean" => ("Confusion matrix, clean (rows: true class)", rows(false)),
        "confusion-robust" => (
            "Confusion matrix, under attack (rows: true class)",
            rows(true),
        ),
        _ => {
            let (a, c) = (rows(true), rows(false));
            let diff = a
                .iter()
                .zip(&c)
                .map(|(ra, rc)| ra.iter().zip(rc).map(|(x, y)| x - y).collect())
                .collect();
            ("Confusion difference: attacked - clean", diff)
        }
    };
    heatmap(title, names, names, &values)
}
