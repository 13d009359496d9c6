//! The run page's curves of the evaluations beside the live model's test accuracy: the
//! averaged models (EMA, FAWA) on the test set, with the live model for reference, and the
//! validation split (what FAWA and `best-worst-robust` decide by). A chart is listed only when
//! the run recorded its series, so a method without EMA, FAWA or a validation split shows none.

use crate::metrics::Metrics;
use crate::store::fold::dep;
use crate::store::RunFold;
use fairtat_charts::{line_chart, Series};

/// `(chart name, split its series come from)`, in page order.
pub const CHARTS: [(&str, &str); 2] = [("averaged", "test"), ("validation", "val")];

/// Whether `name` is one of these charts.
pub fn is_chart(name: &str) -> bool {
    CHARTS.iter().any(|(n, _)| *n == name)
}

/// The data series one chart depends on (see [`RunFold::version`]).
pub fn deps(name: &str) -> &'static [&'static str] {
    match name {
        "averaged" => &[dep::MORE, dep::ACCURACY],
        _ => &[dep::MORE],
    }
}

/// The charts this run has data for.
pub fn present(f: &RunFold) -> Vec<String> {
    let more = &f.metrics().more;
    CHARTS
        .iter()
        .filter(|(_, split)| more.keys().any(|k| k.starts_with(&format!("{split} "))))
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The series of `split` in [`Metrics::more`], labelled without the split: `ema robust
/// overall`. Clean before robust, overall before worst, per model.
fn split_series(m: &Metrics, split: &str) -> Vec<Series> {
    let prefix = format!("{split} ");
    let mut keys: Vec<&String> = m.more.keys().filter(|k| k.starts_with(&prefix)).collect();
    let rank = |k: &str| (k.contains(" robust "), k.ends_with(" worst"));
    keys.sort_by(|a, b| {
        let model = |k: &str| {
            k[prefix.len()..]
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string()
        };
        (model(a), rank(a)).cmp(&(model(b), rank(b)))
    });
    keys.into_iter()
        .map(|k| Series::new(&k[prefix.len()..], points(m, &m.more[k])))
        .collect()
}

/// The SVG of chart `name`; `None` for a name this module does not draw.
pub fn render(name: &str, m: &Metrics) -> Option<String> {
    let unit = Some((0.0, 1.0));
    match name {
        "averaged" => {
            let mut series = vec![
                Series::new("live clean overall", points(m, &m.clean_overall)),
                Series::new("live robust overall", points(m, &m.robust_overall)),
            ];
            series.extend(split_series(m, "test"));
            Some(line_chart(
                "Test accuracy of the averaged models (EMA, FAWA) and the live model",
                "epoch",
                "accuracy",
                &series,
                unit,
            ))
        }
        "validation" => Some(line_chart(
            "Validation accuracy (what FAWA and best-worst-robust decide by)",
            "epoch",
            "accuracy",
            &split_series(m, "val"),
            unit,
        )),
        _ => None,
    }
}

/// `(epoch, value)` points, skipping missing values.
pub(super) fn points(m: &Metrics, ys: &[Option<f64>]) -> Vec<(f64, f64)> {
    m.epochs
        .iter()
        .zip(ys)
        .filter_map(|(e, y)| y.map(|y| (*e as f64, y)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fold::fold_all;
    use fairtat_core::runs::synthetic::Synth;
    use fairtat_core::runs::{EventLine, RunEvent};

    fn run(strip: impl Fn(&str, &str) -> bool) -> RunFold {
        let syn = Synth {
            classes: 4,
            epochs: 3,
            progress: 1,
            seed: 7,
        };
        let lines: Vec<EventLine> = (0..3)
            .map(|e| {
                let mut rec = syn.epoch(e);
                rec.evals.retain(|ev| !strip(&ev.split, &ev.model));
                EventLine {
                    v: 1,
                    seq: e as u64,
                    time: 0.0,
                    event: RunEvent::Epoch(Box::new(rec)),
                }
            })
            .collect();
        fold_all(&lines)
    }

    #[test]
    fn ema_and_validation_curves_are_shown_when_recorded() {
        let f = run(|_, _| false);
        assert_eq!(present(&f), vec!["averaged", "validation"]);
        let m = f.metrics();
        assert_eq!(m.more["test ema clean overall"].len(), 3);
        assert!(m.more["val live robust worst"].iter().all(Option::is_some));
        let svg = render("averaged", m).unwrap();
        for label in [
            "live clean overall",
            "ema clean overall",
            "ema robust worst",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
        let svg = render("validation", m).unwrap();
        assert!(svg.contains("live robust overall") && !svg.contains("ema"));
    }

    #[test]
    fn a_run_without_them_shows_none() {
        let f = run(|split, model| split == "val" || model != "live");
        assert!(f.metrics().more.is_empty());
        assert!(present(&f).is_empty());
        let f = run(|split, _| split == "val");
        assert_eq!(present(&f), vec!["averaged"]);
        assert!(render("loss", f.metrics()).is_none());
    }
}
