//! Chart craft: epoch axes have integer ticks only (no "-5.55e-17" or "0.5" under an epoch
//! axis), probability axes stay within [0, 1], difference heatmaps use a diverging scale centred
//! on 0, legends sit outside the plot, and every point, bar and cell has a hover title.

use fairtat::charts::{
    bar_chart_with, diverging, fmt_int_tick, heatmap_with, int_axis, line_chart, BarAxes,
    ColorScale, HeatmapAxes, Scale, Series,
};

/// The text of every `<text>` element.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Tick labels: the texts that are numbers.
fn numbers(svg: &str) -> Vec<f64> {
    texts(svg).iter().filter_map(|t| t.parse().ok()).collect()
}

fn hover_titles(svg: &str) -> Vec<String> {
    svg.split("<title>")
        .skip(1)
        .filter_map(|t| Some(t[..t.find("</title>")?].to_string()))
        .collect()
}

fn epochs_chart(epochs: &[usize], ys: &[f64]) -> String {
    let pts = epochs
        .iter()
        .zip(ys)
        .map(|(e, y)| (*e as f64, *y))
        .collect();
    line_chart(
        "accuracy",
        "epoch",
        "accuracy",
        &[Series::new("robust worst", pts)],
        Some((0.0, 1.0)),
    )
}

#[test]
fn epoch_axes_carry_integer_ticks_only() {
    for epochs in [
        vec![7],
        vec![3, 4],
        vec![2, 3, 4, 5],
        (0..200).collect::<Vec<_>>(),
    ] {
        let ys: Vec<f64> = epochs.iter().map(|e| (*e % 10) as f64 / 10.0).collect();
        let svg = epochs_chart(&epochs, &ys);
        for t in texts(&svg) {
            assert!(
                !t.contains("e-") && !t.contains("e+"),
                "tick {t:?} with an exponent for epochs {epochs:?}"
            );
        }
        let n = numbers(&svg);
        // Accuracy ticks lie in [0, 1]; everything above 1 is an epoch tick: an integer.
        let epoch_ticks: Vec<f64> = n.iter().copied().filter(|v| *v > 1.0).collect();
        assert!(
            !epoch_ticks.is_empty(),
            "no epoch tick for {epochs:?}: {n:?}"
        );
        for v in &epoch_ticks {
            assert_eq!(v.fract(), 0.0, "fractional epoch tick {v} for {epochs:?}");
            let (lo, hi) = (epochs[0] as f64, *epochs.last().unwrap() as f64);
            assert!(
                (lo..=hi).contains(v),
                "tick {v} outside the epochs {lo}..{hi}"
            );
        }
        assert!(n.iter().all(|v| *v >= 0.0), "negative tick in {n:?}");
    }
    // The single-epoch chart labels exactly that epoch.
    assert!(numbers(&epochs_chart(&[7], &[0.5])).contains(&7.0));
}

#[test]
fn int_axis_and_tick_labels() {
    assert_eq!(fmt_int_tick(-5.55e-17), "0");
    assert_eq!(fmt_int_tick(3.0), "3");
    assert_eq!(fmt_int_tick(0.5), "");
    assert_eq!(fmt_int_tick(f64::NAN), "");
    let ((lo, hi), ticks) = int_axis([4.0]);
    assert!(lo < 4.0 && hi > 4.0 && ticks == 1);
    let ((lo, hi), ticks) = int_axis((0..200).map(f64::from));
    assert!(lo <= 0.0 && hi >= 199.0 && ticks == 10);
    assert_eq!(int_axis([0.0, 1.0, 2.0]).1, 3);
}

#[test]
fn probability_axes_stay_within_zero_and_one() {
    // Values a little outside [0, 1] (a bug upstream, or noise) do not stretch the axis.
    let s = Series::new("p", vec![(0.0, -0.2), (1.0, 0.5), (2.0, 1.3)]);
    let svg = line_chart("targets", "epoch", "probability", &[s], Some((0.0, 1.0)));
    let n = numbers(&svg);
    let y: Vec<f64> = n.iter().copied().filter(|v| v.fract() != 0.0).collect();
    assert!(!y.is_empty(), "no fractional y tick in {n:?}");
    assert!(n.iter().all(|v| (0.0..=2.0).contains(v)), "ticks {n:?}");
    assert!(y.iter().all(|v| (0.0..=1.0).contains(v)), "y ticks {y:?}");
}

#[test]
fn difference_scale_is_centred_on_zero() {
    let s = ColorScale::new(Scale::Diverging, [-2.0, 0.5, 5.0]).unwrap();
    assert_eq!((s.lo, s.hi), (-5.0, 5.0));
    assert_eq!(s.color(0.0), plotters::style::RGBColor(255, 255, 255));
    assert_eq!(diverging(0.0), plotters::style::RGBColor(255, 255, 255));
    // Opposite signs get opposite hues: blue below 0, red above.
    let (neg, pos) = (s.color(-3.0), s.color(3.0));
    assert!(neg.2 > neg.0 && pos.0 > pos.2, "{neg:?} {pos:?}");
    // An all-zero difference renders white cells, not the middle of a sequential scale.
    let zero = vec![vec![0.0; 3]; 3];
    let names: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
    let axes = HeatmapAxes {
        x: "predicted class",
        y: "true class",
        scale: Scale::Diverging,
    };
    let svg = heatmap_with("diff", &names, &names, &zero, axes).to_uppercase();
    assert!(svg.matches("FILL=\"#FFFFFF\"").count() >= 9, "white cells");
    assert!(
        !svg.contains("#21918C"),
        "viridis middle (teal) used for a zero difference"
    );
    assert!(
        svg.contains("PREDICTED CLASS") && svg.contains("TRUE CLASS"),
        "axis titles"
    );
    // The colour bar names 0 in the middle and symmetric ends.
    let svg = heatmap_with("diff", &names, &names, &[vec![-2.0, 1.0]], axes);
    let n = numbers(&svg);
    assert!(
        n.contains(&2.0) && n.contains(&-2.0) && n.contains(&0.0),
        "{n:?}"
    );
}

#[test]
fn points_bars_and_cells_have_hover_titles() {
    let svg = epochs_chart(&[0, 1, 2], &[0.1, 0.2, 0.3]);
    let t = hover_titles(&svg);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[2].contains("robust worst") && t[2].contains("epoch 2") && t[2].contains("0.3"));

    let labels = vec!["cat".to_string(), "dog".to_string()];
    let axes = BarAxes {
        x: "class",
        y: "C_FPS",
        y_range: Some((0.0, 0.8)),
        ..Default::default()
    };
    let svg = bar_chart_with("C_FPS", &labels, &[0.25, -0.5], axes);
    let t = hover_titles(&svg);
    assert_eq!(t, vec!["cat: 0.25".to_string(), "dog: -0.5".to_string()]);
    // A highlighted bar says its rank and what it is.
    let hi = BarAxes {
        highlight: &[1],
        highlight_note: "top false-positive sink",
        ..axes
    };
    let t = hover_titles(&bar_chart_with("C_FPS", &labels, &[0.25, 0.5], hi));
    assert_eq!(t[1], "dog: 0.5 (top false-positive sink #1)");
    // The fixed range holds: the top tick is 0.8 even though the largest value is 0.25.
    assert!(numbers(&svg).iter().any(|v| (*v - 0.8).abs() < 1e-9));

    let axes = HeatmapAxes {
        x: "epoch",
        y: "class",
        scale: Scale::Fixed(0.0, 1.0),
    };
    let svg = heatmap_with(
        "acc",
        &labels,
        &["0".into(), "1".into()],
        &[vec![0.5, 1.0], vec![0.0, f64::NAN]],
        axes,
    );
    let t = hover_titles(&svg);
    assert_eq!(t.len(), 4);
    assert!(t.contains(&"class: cat, epoch: 1: 1".to_string()), "{t:?}");
    assert!(
        t.contains(&"class: dog, epoch: 1: missing".to_string()),
        "{t:?}"
    );
}

#[test]
fn the_legend_sits_right_of_the_plot() {
    let s: Vec<Series> = (0..3)
        .map(|i| Series::new(format!("series {i}"), vec![(0.0, 0.1), (9.0, 0.9)]))
        .collect();
    let svg = line_chart("acc", "epoch", "accuracy", &s, Some((0.0, 1.0)));
    // The x of the legend's texts is right of the last epoch's point.
    let last_point_x = svg
        .split("<circle")
        .filter_map(|c| {
            c.split("cx=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .fold(0.0_f64, f64::max);
    for chunk in svg.split("<text").skip(1) {
        if chunk.contains("series 1") {
            let x: f64 = chunk
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                x > last_point_x,
                "legend at x={x}, last point at {last_point_x}"
            );
        }
    }
}

#[test]
fn value_axes_label_float_noise_as_zero() {
    // An all-zero difference (two runs alike) fits -0.4..0.4, whose middle tick is a float sum.
    let labels = vec!["cat".to_string(), "dog".to_string()];
    let axes = BarAxes {
        x: "class",
        y: "difference",
        ..Default::default()
    };
    let svg = bar_chart_with("a minus b", &labels, &[0.0, 0.0], axes);
    let t = texts(&svg);
    assert!(!t.iter().any(|s| s.contains("e-")), "{t:?}");
    assert!(t.iter().any(|s| s == "0"), "a 0 tick: {t:?}");
}
