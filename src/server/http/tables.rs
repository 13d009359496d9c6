//! The run page's tables for one epoch: the worst classes (robust and clean accuracy, C_FPS, the
//! classes they are most confused with) and the confusion matrices (clean, under attack and
//! their difference), colour-scaled, with class names.

use askama::Template;
use serde::Deserialize;

use super::views::pct;
use crate::fairness::ConfusionMatrix;
use crate::server::store::{EpochDetail, RunFold};

/// Rows of the worst-class table.
const WORST_ROWS: usize = 5;
/// Confusion matrices are written out as HTML tables up to this many classes; beyond, the
/// heatmap charts show them (three 100 x 100 tables made the run page 1.5 MB).
const MATRIX_TABLES_UP_TO: usize = 20;

#[derive(Deserialize, Default)]
pub struct TablesParams {
    pub epoch: Option<usize>,
}

pub struct WorstRow {
    pub name: String,
    pub robust: String,
    pub clean: String,
    pub cfps: String,
    pub confused: String,
}

pub struct Cell {
    pub text: String,
    pub color: String,
}

pub struct MatrixRow {
    pub name: String,
    pub cells: Vec<Cell>,
}

pub struct Matrix {
    pub title: String,
    pub rows: Vec<MatrixRow>,
}

#[derive(Template)]
#[template(path = "partials/tables.html")]
struct Tables {
    has_data: bool,
    epoch: usize,
    attack: String,
    class_names: Vec<String>,
    worst: Vec<WorstRow>,
    matrices: Vec<Matrix>,
}

/// Background colour for `v` in [0, 1] (white to blue), or for a signed difference in [-1, 1]
/// (red for negative, blue for positive).
fn shade(v: f64, signed: bool) -> String {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let a = (v.abs() * 0.85).clamp(0.0, 0.85);
    if signed && v < 0.0 {
        format!("rgba(214,39,40,{a:.2})")
    } else {
        format!("rgba(31,119,180,{a:.2})")
    }
}

fn matrix(title: &str, names: &[String], rows: &[Vec<i64>], signed: bool) -> Matrix {
    // Scale by row totals so small classes are as visible as large ones.
    let row_scale = |r: &[i64]| r.iter().map(|v| v.unsigned_abs()).sum::<u64>().max(1) as f64;
    Matrix {
        title: title.to_string(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = row_scale(r);
                MatrixRow {
                    name: names.get(i).cloned().unwrap_or(i.to_string()),
                    cells: r
                        .iter()
                        .map(|v| Cell {
                            text: v.to_string(),
                            color: shade(*v as f64 / s * if signed { 2.0 } else { 1.0 }, signed),
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

/// The tables of the epoch `detail` (from the store; `None` when the run has no such epoch).
pub fn tables_html(f: &RunFold, detail: Option<&EpochDetail>) -> String {
    let rec = detail;
    let empty = Tables {
        has_data: false,
        epoch: 0,
        attack: String::new(),
        class_names: vec![],
        worst: vec![],
        matrices: vec![],
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
    let as_i64 = |rows: &[Vec<u64>]| -> Vec<Vec<i64>> {
        rows.iter()
            .map(|r| r.iter().map(|v| *v as i64).collect())
            .collect()
    };
    let mut matrices = Vec::new();
    let clean = clean.filter(|_| k <= MATRIX_TABLES_UP_TO);
    if let Some(c) = clean {
        matrices.push(matrix(
            "Confusion matrix, clean",
            &names,
            &as_i64(&c.confusion),
            false,
        ));
    }
    if robust.attack != "clean" && k <= MATRIX_TABLES_UP_TO {
        let a = as_i64(&robust.confusion);
        matrices.push(matrix(
            &format!("Confusion matrix, {}", robust.attack),
            &names,
            &a,
            false,
        ));
        if let Some(c) = clean {
            let c = as_i64(&c.confusion);
            let diff: Vec<Vec<i64>> = a
                .iter()
                .zip(&c)
                .map(|(ra, rc)| ra.iter().zip(rc).map(|(x, y)| x - y).collect())
                .collect();
            matrices.push(matrix("Difference: attacked - clean", &names, &diff, true));
        }
    }
    Tables {
        has_data: true,
        epoch: rec.epoch,
        attack: robust.attack.clone(),
        class_names: names,
        worst,
        matrices,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">cannot render tables: {e}</p>"))
}
