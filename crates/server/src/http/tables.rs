//! The run page's table for one epoch: the worst classes (robust and clean accuracy, C_FPS of
//! the training set under the training attack, which drives the next epoch's targets, and of the
//! test set under attack, and the classes they are most confused with). The confusion matrices
//! are drawn once, as heatmap charts with values on hover.

use askama::Template;
use serde::Deserialize;

use super::views::pct;
use crate::store::{EpochDetail, RunFold};
use fairtat_core::fairness::ConfusionMatrix;

/// Rows of the worst-class table.
const WORST_ROWS: usize = 5;
#[derive(Deserialize, Default)]
pub struct TablesParams {
    pub epoch: Option<usize>,
}

pub struct WorstRow {
    pub name: String,
    pub robust: String,
    pub clean: String,
    pub cfps: String,
    pub cfps_test: String,
    pub confused: String,
}

#[derive(Template)]
#[template(path = "partials/tables.html")]
struct Tables {
    has_data: bool,
    epoch: usize,
    attack: String,
    worst: Vec<WorstRow>,
}

/// The tables of the epoch `detail` (from the store; `None` when the run has no such epoch).
pub fn tables_html(f: &RunFold, detail: Option<&EpochDetail>) -> String {
    let rec = detail;
    let empty = Tables {
        has_data: false,
        epoch: 0,
        attack: String::new(),
        worst: vec![],
    };
    let Some(rec) = rec else {
        return empty.render().unwrap_or_default();
    };
    let clean = rec.clean.as_ref();
    let robust = rec.robust.as_ref().or(clean);
    let Some(robust) = robust else {
        return empty.render().unwrap_or_default();
    };
    let k = robust.metrics.class_acc.len();
    let names = f.class_names_for(k);
    let cm = ConfusionMatrix::from_rows(&robust.confusion);
    let m = f.metrics();
    let cfps = f
        .row_of(Some(rec.epoch))
        .and_then(|i| m.cfps.get(i))
        .map_or(&[][..], Vec::as_slice);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|a, b| robust.metrics.class_acc[*a].total_cmp(&robust.metrics.class_acc[*b]));
    let worst = order
        .iter()
        .take(WORST_ROWS)
        .map(|&c| WorstRow {
            name: names[c].clone(),
            robust: pct(robust.metrics.class_acc.get(c).copied()),
            clean: pct(clean.and_then(|e| e.metrics.class_acc.get(c).copied())),
            cfps: cfps.get(c).map(|v| format!("{v:.3}")).unwrap_or("–".into()),
            cfps_test: robust
                .metrics
                .cfps
                .get(c)
                .map(|v| format!("{v:.3}"))
                .unwrap_or("–".into()),
            confused: cm
                .as_ref()
                .filter(|m| c < m.classes())
                .map(|m| {
                    let total = m.row_sum(c).max(1) as f64;
                    m.top_confusions(c, 3)
                        .iter()
                        .map(|(p, n)| {
                            let who = names.get(*p).cloned().unwrap_or(p.to_string());
                            format!("{who} ({:.0}%)", 100.0 * *n as f64 / total)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        })
        .collect();
    Tables {
        has_data: true,
        epoch: rec.epoch,
        attack: robust.attack.clone(),
        worst,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">cannot render tables: {e}</p>"))
}
