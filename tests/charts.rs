//! SVG chart renderers: output is a real chart (not the fallback placeholder) carrying the title
//! and series names, and no input (empty, NaN, infinite, huge, 100 classes) makes them panic.

use fairtat::charts::{
    band_chart, bar_chart, bar_chart_with_errors, heatmap, line_chart, palette_color, Band,
    BarAxes, Series, FALLBACK_MARKER, PALETTE,
};
use fairtat::fairness::{ClassMetrics, ConfusionMatrix};
use proptest::prelude::*;

/// Set `FAIRTAT_CHART_DIR` to keep the rendered examples for a look in a browser.
fn keep(name: &str, svg: &str) {
    if let Some(dir) = std::env::var_os("FAIRTAT_CHART_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.svg")), svg);
    }
}

/// A real chart: an SVG document that is not the placeholder.
fn assert_chart(svg: &str) {
    assert!(
        svg.trim_start().starts_with("<svg"),
        "not an svg: {}",
        &svg[..svg.len().min(200)]
    );
    assert!(svg.trim_end().ends_with("</svg>"), "unterminated svg");
    assert!(
        !svg.contains(FALLBACK_MARKER),
        "fallback chart rendered:\n{svg}"
    );
    // Balanced enough: every opened <text> is closed.
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
}

/// A 3-class confusion matrix and its metrics, as the trainer would record them.
fn fixture() -> (ConfusionMatrix, ClassMetrics) {
    let cm = ConfusionMatrix::from_pairs(
        3,
        &[0, 0, 0, 1, 1, 1, 2, 2, 2],
        &[0, 0, 1, 1, 1, 1, 0, 1, 2],
    );
    let m = ClassMetrics::from_confusion(&cm);
    (cm, m)
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class-{i}")).collect()
}

#[test]
fn line_chart_has_title_axes_and_legend() {
    let series = vec![
        Series::new("clean acc", vec![(0.0, 0.5), (1.0, 0.6), (2.0, 0.7)]),
        Series::new(
            "robust <worst>",
            vec![(0.0, 0.1), (1.0, f64::NAN), (2.0, 0.3)],
        ),
    ];
    let svg = line_chart(
        "Accuracy & friends",
        "epoch",
        "accuracy",
        &series,
        Some((0.0, 1.0)),
    );
    keep("line", &svg);
    assert_chart(&svg);
    assert!(
        svg.contains("Accuracy &amp; friends"),
        "title is escaped and present"
    );
    assert!(svg.contains("clean acc"));
    assert!(svg.contains("robust &lt;worst&gt;"));
    assert!(svg.contains("epoch") && svg.contains("accuracy"));
    // Both palette colours are used, and the first two palette entries differ.
    assert_ne!(PALETTE[0], PALETTE[1]);
    for i in 0..2 {
        let c = palette_color(i);
        let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
        assert!(
            svg.to_uppercase().contains(&hex),
            "colour {hex} of series {i} missing"
        );
    }
}

#[test]
fn palette_distinguishes_ten_series() {
    assert_eq!(PALETTE.len(), 10);
    for (i, a) in PALETTE.iter().enumerate() {
        for (j, b) in PALETTE[..i].iter().enumerate() {
            let dist = (a.0 as i32 - b.0 as i32).abs()
                + (a.1 as i32 - b.1 as i32).abs()
                + (a.2 as i32 - b.2 as i32).abs();
            assert!(dist > 60, "palette colours {j} and {i} are too close");
        }
    }
}

#[test]
fn bar_chart_of_cfps_names_classes() {
    let (_, m) = fixture();
    let labels = vec![
        "T-shirt/top".to_string(),
        "Trouser".to_string(),
        "Pull, over".to_string(),
    ];
    let svg = bar_chart("C_FPS epoch 3", &labels, &m.cfps);
    keep("bar", &svg);
    let many: Vec<f64> = (0..100).map(|i| (i % 13) as f64 / 100.0).collect();
    keep(
        "bar100",
        &bar_chart("C_FPS of 100 classes", &names(100), &many),
    );
    assert_chart(&svg);
    assert!(svg.contains("C_FPS epoch 3"));
    for l in &labels {
        assert!(svg.contains(l.as_str()), "label {l} missing");
    }
    // Three bars, drawn as filled rects in the first palette colour.
    let c = palette_color(0);
    let fill = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    let bars = svg
        .to_uppercase()
        .matches(&format!("FILL=\"{fill}\""))
        .count();
    assert!(
        bars >= 2,
        "expected bars (class 2 has C_FPS 0), found {bars}"
    );
}

#[test]
fn heatmap_of_confusion_and_many_classes() {
    let (cm, _) = fixture();
    let rows: Vec<Vec<f64>> = cm
        .rows()
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let svg = heatmap("Confusion test pgd-10", &names(3), &names(3), &rows);
    keep("confusion", &svg);
    assert_chart(&svg);
    assert!(svg.contains("Confusion test pgd-10"));
    assert!(svg.contains("class-2"));
    // 100 classes x 30 epochs renders a real chart, with labels thinned out.
    let big: Vec<Vec<f64>> = (0..100)
        .map(|r| (0..30).map(|c| ((r * c) % 7) as f64 / 7.0).collect())
        .collect();
    let epochs: Vec<String> = (0..30).map(|e| e.to_string()).collect();
    let svg = heatmap("C_FPS by class and epoch", &names(100), &epochs, &big);
    keep("heatmap100", &svg);
    assert_chart(&svg);
    let shown = (0..100)
        .filter(|i| svg.contains(&format!("\nclass-{i}\n</text>")))
        .count();
    assert!(
        (10..=60).contains(&shown),
        "{shown} of 100 row labels shown"
    );
}

#[test]
fn degenerate_inputs_render_real_charts() {
    let empty = line_chart("empty", "x", "y", &[], None);
    assert_chart(&empty);
    let single = line_chart(
        "single",
        "x",
        "y",
        &[Series::new("one", vec![(3.0, 3.0)])],
        None,
    );
    assert_chart(&single);
    assert!(single.contains("<circle"), "a single point gets a marker");
    let all_nan = line_chart(
        "nan",
        "x",
        "y",
        &[Series::new("nan", vec![(f64::NAN, f64::INFINITY)])],
        Some((f64::NAN, 1.0)),
    );
    assert_chart(&all_nan);
    let huge = line_chart(
        "huge",
        "x",
        "y",
        &[Series::new(
            "h",
            vec![(0.0, f64::MAX), (1.0, -f64::MAX), (2.0, 1e300)],
        )],
        None,
    );
    assert_chart(&huge);
    assert_chart(&bar_chart("no bars", &[], &[]));
    assert_chart(&bar_chart(
        "nan bars",
        &names(2),
        &[f64::NAN, f64::NEG_INFINITY],
    ));
    assert_chart(&heatmap("no cells", &[], &[], &[]));
    assert_chart(&heatmap(
        "ragged",
        &names(1),
        &names(5),
        &[vec![], vec![1.0, f64::NAN, 2.0]],
    ));
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -10.0f64..10.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => proptest::num::f64::ANY,
    ]
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![".{0,30}", "[a-z<>&\"', /]{0,12}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn line_chart_never_fails(
        title in label(),
        series in proptest::collection::vec(
            (label(), proptest::collection::vec((any_f64(), any_f64()), 0..30)), 0..13),
        range in proptest::option::of((any_f64(), any_f64())),
    ) {
        let series: Vec<Series> = series.into_iter().map(|(n, p)| Series::new(n, p)).collect();
        let svg = line_chart(&title, "epoch", "value", &series, range);
        assert_chart(&svg);
    }

    #[test]
    fn bar_chart_never_fails(
        title in label(),
        labels in proptest::collection::vec(label(), 0..20),
        values in proptest::collection::vec(any_f64(), 0..120),
    ) {
        assert_chart(&bar_chart(&title, &labels, &values));
    }

    #[test]
    fn band_and_error_bar_charts_never_fail(
        title in label(),
        groups in proptest::collection::vec(
            (label(), proptest::collection::vec((any_f64(), any_f64(), any_f64()), 0..30)), 0..6),
        range in proptest::option::of((any_f64(), any_f64())),
        errors in proptest::collection::vec(any_f64(), 0..20),
    ) {
        let bands: Vec<Band> = groups
            .into_iter()
            .map(|(name, points)| Band { runs: vec![name.clone()], name, points })
            .collect();
        assert_chart(&band_chart((&title, "epoch", "accuracy"), &bands, range, range));
        let labels: Vec<String> = (0..errors.len()).map(|i| i.to_string()).collect();
        let svg = bar_chart_with_errors(&title, &labels, &errors, &errors, BarAxes::default());
        assert_chart(&svg);
    }

    #[test]
    fn heatmap_never_fails(
        title in label(),
        labels in proptest::collection::vec(label(), 0..12),
        values in proptest::collection::vec(proptest::collection::vec(any_f64(), 0..12), 0..12),
    ) {
        assert_chart(&heatmap(&title, &labels, &labels, &values));
    }
}

/// Every run chart of a CIFAR-100-sized run (100 classes, 200 epochs, the seven evaluations
/// per epoch) stays small: heatmaps and confusion matrices as one embedded raster each.
#[test]
fn charts_of_a_100_class_200_epoch_run_stay_small() {
    use fairtat::runs::synthetic::Synth;
    use fairtat::runs::{EventLine, RunEvent};
    use fairtat::server::http::chart_views::{render, ChartQuery, Classes};
    use fairtat::server::store::RunFold;

    let synth = Synth::cifar100();
    let mut fold = RunFold::default();
    let line = |seq: u64, event: RunEvent| EventLine {
        v: 1,
        seq,
        time: 0.0,
        event,
    };
    fold.apply(0, &line(0, synth.started("big")));
    for e in 0..synth.epochs {
        let ev = RunEvent::Epoch(Box::new(synth.epoch(e)));
        fold.apply(e as u64 + 1, &line(e as u64 + 1, ev));
    }
    let detail = fold.last_detail();
    let q = ChartQuery::default();
    for (name, limit) in [
        ("cfps-heatmap", 100_000),
        ("confusion-robust", 100_000),
        ("confusion-clean", 100_000),
        ("confusion-diff", 100_000),
        ("accuracy", 200_000),
        ("loss", 200_000),
        ("class-acc-clean", 200_000),
        ("class-acc-robust", 200_000),
        ("class-eps", 200_000),
        ("targets", 200_000),
        ("cfps", 200_000),
        ("state-lambda", 200_000),
    ] {
        let svg = render(name, &fold, detail.as_deref(), &q);
        keep(&format!("big-{name}"), &svg);
        assert_chart(&svg);
        assert!(svg.len() < limit, "{name}: {} bytes", svg.len());
    }
    let heat = render("cfps-heatmap", &fold, None, &q);
    assert_eq!(
        heat.matches("data:image/png;base64,").count(),
        1,
        "one raster"
    );
    // All 100 classes in colour still fits the bound.
    let all = ChartQuery {
        classes: Some(Classes::All),
        ..ChartQuery::default()
    };
    let svg = render("class-acc-robust", &fold, None, &all);
    assert!(svg.len() < 200_000, "all classes: {} bytes", svg.len());
}

#[test]
fn class_selection_parses_and_names_its_errors() {
    use fairtat::server::http::chart_views::Classes;
    assert_eq!(Classes::parse("all"), Ok(Classes::All));
    assert_eq!(Classes::parse("worst5"), Ok(Classes::Worst(5)));
    assert_eq!(Classes::parse("7,3,7"), Ok(Classes::List(vec![3, 7])));
    for bad in ["", "worst0", "worst999", "best5", "3,x", "-1"] {
        let err = Classes::parse(bad).unwrap_err();
        assert!(
            err.starts_with("classes:") && err.contains("allowed"),
            "{err}"
        );
    }
    assert_eq!(Classes::default_for(10), Classes::All);
    assert_eq!(Classes::default_for(100), Classes::Worst(5));
}

#[test]
fn the_cfps_test_sources_keep_one_scale_over_all_epochs() {
    use fairtat::runs::synthetic::Synth;
    use fairtat::runs::{EventLine, RunEvent};
    use fairtat::server::metrics::{clean_eval, finite_max, metrics, robust_eval};

    let synth = Synth::cifar100();
    let line = |seq: u64, event: RunEvent| EventLine {
        v: 1,
        seq,
        time: 0.0,
        event,
    };
    let records: Vec<_> = (0..20).map(|e| synth.epoch(e)).collect();
    let mut events = vec![line(0, synth.started("r"))];
    for (e, r) in records.iter().enumerate() {
        events.push(line(e as u64 + 1, RunEvent::Epoch(Box::new(r.clone()))));
    }
    let m = metrics(&events);
    let most = |pick: fn(&fairtat::runs::EpochRecord) -> Option<&fairtat::runs::EvalRecord>| {
        records
            .iter()
            .filter_map(|r| pick(r).map(|e| finite_max(&e.metrics.cfps)))
            .fold(0.0, f64::max)
    };
    let (clean, robust) = (most(clean_eval), most(robust_eval));
    assert!(
        clean > 0.0 && robust > 0.0,
        "the fixture records test C_FPS"
    );
    assert_eq!(m.cfps_test_scale(), [clean, robust]);
    // Per epoch the values move; the scale does not.
    let last = records.last().and_then(robust_eval).unwrap();
    assert!(finite_max(&last.metrics.cfps) <= m.cfps_test_scale()[1]);
}
