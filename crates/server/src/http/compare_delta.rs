//! The per-class difference of two seed groups (e.g. FAIR-TAT minus PGD-AT): which pair the
//! page shows by default, the diverging bar chart with seed error bars, its caption (rho) and
//! its export. The error of a class is the two groups' standard deviations over seeds
//! combined as for a difference of independent means, `sqrt(std_a^2 + std_b^2)`; a group with
//! one seed contributes no spread, and with one seed on both sides there is no bar.

use super::compare_classes::{ClassStats, GroupClassAcc};
use super::compare_export::ExportTable;
use super::compare_rho::rho_cells;
use super::compare_tables::GroupRow;
use fairtat_charts::{bar_chart_with_errors, BarAxes};
use fairtat_core::config::{MethodKey, MethodKind};

/// A `key=<number>` parameter of the query.
fn param(q: Option<&str>, key: &str) -> Option<usize> {
    q.unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The two groups of the per-class difference: `da=`/`db=` of the query, else a group whose
/// method draws FAIR-TAT's targets minus one of a plain baseline (`pgd-at`, `trades`), chosen by
/// the runs' `method.name`, not by their names; else the first two.
pub fn delta_pair(groups: &[GroupClassAcc], q: Option<&str>) -> Option<(usize, usize)> {
    let n = groups.len();
    if n < 2 {
        return None;
    }
    let find = |want: &dyn Fn(MethodKind) -> bool| {
        groups
            .iter()
            .position(|g| MethodKind::parse(&g.method).is_some_and(want))
    };
    let fair_tat = |m: MethodKind| m.def().reads(MethodKey::targets);
    let baseline = |m: MethodKind| matches!(m, MethodKind::PgdAt | MethodKind::Trades);
    let a = param(q, "da")
        .filter(|i| *i < n)
        .or_else(|| find(&fair_tat))
        .unwrap_or(0);
    let b = param(q, "db")
        .filter(|i| *i < n)
        .or_else(|| find(&baseline).filter(|b| *b != a))
        .unwrap_or(if a == 0 { 1 } else { 0 });
    Some((a, b))
}

/// The caption under the per-class difference of `a` minus `b`: rho of `a` with `b` as the
/// base (from the seed-group means, as the seed table computes it) and the checkpoint.
pub fn delta_caption(
    a: &GroupClassAcc,
    b: &GroupClassAcc,
    groups: &[GroupRow],
    checkpoint: &str,
) -> String {
    let means = |g: &GroupClassAcc| groups.iter().find(|r| r.name == g.name).map(|r| r.means);
    let (nat, rob) = match (means(a), means(b)) {
        (Some(ma), Some(mb)) => rho_cells(&ma, &mb),
        _ => ("–".into(), "–".into()),
    };
    format!(
        "rho_rob {rob}, rho_nat {nat} for {} with {} as the base; checkpoint {checkpoint}; \
         error bars: standard deviation over seeds of both groups combined",
        a.name, b.name
    )
}

/// Per class: `a - b` and its combined seed standard deviation (NaN when neither group has
/// two seeds for the class).
pub fn class_delta(a: &ClassStats, b: &ClassStats) -> (Vec<f64>, Vec<f64>) {
    let k = a.mean.len().min(b.mean.len());
    let spread = |s: &ClassStats, c: usize| s.std.get(c).copied().filter(|v| v.is_finite());
    (0..k)
        .map(|c| {
            let err = match (spread(a, c), spread(b, c)) {
                (None, None) => f64::NAN,
                (sa, sb) => sa.unwrap_or(0.0).hypot(sb.unwrap_or(0.0)),
            };
            (a.mean[c] - b.mean[c], err)
        })
        .unzip()
}

fn stats(g: &GroupClassAcc, robust: bool) -> &ClassStats {
    if robust {
        &g.robust
    } else {
        &g.clean
    }
}

/// The per-class difference `a - b` (robust or clean accuracy) as a diverging bar chart with
/// seed error bars.
pub fn delta_chart(a: &GroupClassAcc, b: &GroupClassAcc, robust: bool) -> String {
    let (diff, err) = class_delta(stats(a, robust), stats(b, robust));
    let what = if robust { "robust" } else { "clean" };
    let title = format!("Per-class {what} accuracy: {} minus {}", a.name, b.name);
    let top = diff
        .iter()
        .zip(&err)
        .filter(|(v, _)| v.is_finite())
        .fold(0.0_f64, |m, (v, e)| m.max(v.abs() + e.max(0.0)));
    let y = format!("{what} accuracy difference (± seed std)");
    let axes = BarAxes {
        x: "class",
        y: &y,
        y_range: (top > 0.0).then_some((-top * 1.05, top * 1.05)),
        ..Default::default()
    };
    bar_chart_with_errors(&title, &a.names, &diff, &err, axes)
}

/// "12.30" percentage points, or "–".
fn points(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}", 100.0 * v)
    } else {
        "–".into()
    }
}

/// The export of the difference: a row per class, robust and clean, each with its error.
pub fn delta_table(a: &GroupClassAcc, b: &GroupClassAcc) -> ExportTable {
    let (rd, re) = class_delta(&a.robust, &b.robust);
    let (cd, ce) = class_delta(&a.clean, &b.clean);
    let k = a.names.len().min(rd.len().max(cd.len()));
    let at = |v: &[f64], c: usize| points(v.get(c).copied().unwrap_or(f64::NAN));
    ExportTable {
        title: format!(
            "Per-class difference {} minus {} (percentage points, ± seed std combined)",
            a.name, b.name
        ),
        head: ["class", "robust", "robust std", "clean", "clean std"]
            .map(String::from)
            .to_vec(),
        rows: (0..k)
            .map(|c| {
                vec![
                    a.names[c].clone(),
                    at(&rd, c),
                    at(&re, c),
                    at(&cd, c),
                    at(&ce, c),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::compare_classes::{groups, test_run, test_runs};
    use super::*;

    /// The default difference is chosen by the runs' methods, whatever their names say.
    #[test]
    fn the_default_pair_is_fair_tat_minus_a_baseline_by_method() {
        let with = |name: &str, method: &str| {
            let (mut s, a) = test_run(name, &[0.5, 0.5], &[0.2, 0.2]);
            s.method = method.into();
            (s, a)
        };
        let runs = [
            with("x-pgd-at-like-s0", "trades"),
            with("x-other-s0", "dafa"),
            with("x-mine-s0", "fair-tat-trades"),
        ];
        let g = groups(&runs);
        assert_eq!(delta_pair(&g, None), Some((2, 0)));
        assert_eq!(delta_pair(&g, Some("da=1&db=2")), Some((1, 2)));
        let none = [with("a-s0", "dafa"), with("b-s0", "trix")];
        assert_eq!(delta_pair(&groups(&none), None), Some((0, 1)));
    }

    /// The bars carry the seeds' spread: FAIR-TAT's two seeds differ by 0.2 on both classes
    /// (std 0.1414), PGD-AT has one seed (no spread of its own).
    #[test]
    fn the_difference_has_seed_error_bars_in_the_chart_and_the_export() {
        let runs = test_runs();
        let g = groups(&runs);
        let (d, e) = class_delta(&g[0].robust, &g[1].robust);
        assert!((d[0] + 0.2).abs() < 1e-12 && (d[1] - 0.2).abs() < 1e-12);
        assert!((e[1] - 0.02_f64.sqrt()).abs() < 1e-12, "{e:?}");
        let svg = delta_chart(&g[0], &g[1], true);
        assert!(svg.contains("dog: 0.2 ± 0.1414"), "{svg}");
        assert!(svg.contains("class=\"error-bar\""), "{svg}");
        let t = delta_table(&g[0], &g[1]);
        assert_eq!(
            t.head,
            ["class", "robust", "robust std", "clean", "clean std"]
        );
        assert_eq!(t.rows[1], ["dog", "20.00", "14.14", "-20.00", "14.14"]);
        let single = groups(&runs[1..]);
        let (_, e) = class_delta(&single[0].robust, &single[1].robust);
        assert!(e.iter().all(|v| v.is_nan()), "one seed each: no error bar");
    }
}
