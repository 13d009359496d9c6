//! Page helpers: the `HtmlTemplate` wrapper (askama 0.14 has no axum integration), number
//! formatting, and the run-row view shared by the runs and compare pages.

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use fairtat_core::runs::provenance::Provenance;
use fairtat_core::runs::summary::{Headline, RunSummary};

/// Render an askama template as an HTML response; a render error is a logged 500.
pub struct HtmlTemplate<T>(pub T);

impl<T: Template> IntoResponse for HtmlTemplate<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(html) => Html(html).into_response(),
            Err(err) => ApiError::internal(anyhow::anyhow!("template: {err}")).into_response(),
        }
    }
}

/// `0.8123` -> `81.23`; missing -> `–`.
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.2}", 100.0 * x),
        _ => "–".into(),
    }
}

/// Seconds as `1h 02m`, `3m 05s`, `42s`.
fn duration(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "–".into();
    };
    let s = s.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s / 60 % 60),
    }
}

fn worst_label(dataset: &str) -> &'static str {
    if dataset == "cifar100" {
        "worst-10%"
    } else {
        "worst"
    }
}

/// One run as the tables show it (display strings only; the template escapes them).
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub method: String,
    pub dataset: String,
    pub arch: String,
    pub tags: String,
    pub progress: String,
    pub progress_pct: u32,
    pub epochs: String,
    /// `2 of 3 epochs done` (epochs themselves are numbered from 0 everywhere).
    pub epochs_text: String,
    pub eta: String,
    pub clean_overall: String,
    pub clean_worst: String,
    pub robust_overall: String,
    pub robust_worst: String,
    pub worst_label: String,
    pub message: String,
    /// Which checkpoint the test figures come from: the live model at the latest evaluated
    /// epoch, i.e. `last (epoch 7)`; `–` before any evaluation.
    pub checkpoint: String,
    /// The runs page's hyper-parameter columns (`run_cols`), in the order asked for.
    pub extra: Vec<String>,
}

impl RunRow {
    pub fn of(s: &RunSummary) -> RunRow {
        let worst = |h: &Option<Headline>| pct(h.as_ref().map(|h| h.paper_worst(&s.dataset)));
        RunRow {
            id: s.id.clone(),
            name: s.name.clone(),
            status: s.status.as_str().to_string(),
            method: s.method.clone(),
            dataset: s.dataset.clone(),
            arch: s.arch.clone(),
            tags: s.tags.join(", "),
            progress: format!("{:.0}%", 100.0 * s.progress.clamp(0.0, 1.0)),
            progress_pct: (100.0 * s.progress.clamp(0.0, 1.0)).round() as u32,
            epochs: format!("{}/{}", s.epochs_done, s.epochs_total),
            epochs_text: format!("{} of {} epochs done", s.epochs_done, s.epochs_total),
            eta: if s.status.is_terminal() {
                "–".into()
            } else {
                duration(s.eta_secs)
            },
            clean_overall: pct(s.clean.as_ref().map(|h| h.overall)),
            clean_worst: worst(&s.clean),
            robust_overall: pct(s.robust.as_ref().map(|h| h.overall)),
            robust_worst: worst(&s.robust),
            worst_label: worst_label(&s.dataset).into(),
            message: s.message.clone().unwrap_or_default(),
            checkpoint: s.robust.as_ref().or(s.clean.as_ref()).map_or_else(
                || "–".into(),
                |h| Provenance::last(Some(h.epoch)).to_string(),
            ),
            extra: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(Some(0.81234)), "81.23");
        assert_eq!(pct(Some(f64::NAN)), "–");
        assert_eq!(pct(None), "–");
        assert_eq!(duration(Some(42.0)), "42s");
        assert_eq!(duration(Some(185.0)), "3m 05s");
        assert_eq!(duration(Some(3720.0)), "1h 02m");
        assert_eq!(duration(Some(-1.0)), "–");
    }
}
