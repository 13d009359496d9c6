//! Bar charts: one value per category, e.g. the C_FPS of every class in one epoch, or the
//! per-class difference between two runs (negative bars in a second colour).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{
    axis_range, category, draw_x_categories, finite, fmt_num, overlay, palette_color, render,
    short, valid_range, with_hovers, Chart, DrawResult, Hover,
};

const W: u32 = 720;
const H: u32 = 400;
/// Categories drawn at most (bounded SVG size); later ones are dropped.
const MAX_BARS: usize = 1000;

/// Axis options of a bar chart.
#[derive(Clone, Copy, Debug, Default)]
pub struct BarAxes<'a> {
    /// Title under the categories, e.g. "class".
    pub x: &'a str,
    /// Title of the value axis.
    pub y: &'a str,
    /// A fixed value range (e.g. the same for every epoch, so a slider compares like with like);
    /// `None` fits the data. The axis always includes 0.
    pub y_range: Option<(f64, f64)>,
    /// Bars drawn in the highlight colour, in rank order (their hover titles say the rank).
    pub highlight: &'a [usize],
    /// What a highlighted bar is, e.g. "top false-positive sink".
    pub highlight_note: &'a str,
}

/// One bar per value, labelled with `labels` (indices where labels are missing). A non-finite
/// value leaves its slot empty. The y axis always includes 0.
pub fn bar_chart(title: &str, labels: &[String], values: &[f64]) -> String {
    bar_chart_with(title, labels, values, BarAxes::default())
}

/// [`bar_chart`] with axis titles and an optional fixed range; each bar carries its category
/// and value as a hover title.
pub fn bar_chart_with(title: &str, labels: &[String], values: &[f64], axes: BarAxes) -> String {
    bar_chart_with_errors(title, labels, values, &[], axes)
}

/// [`bar_chart_with`] with a +- error per bar (e.g. the seeds' standard deviation), drawn as a
/// whisker and named in the hover title; a missing or non-finite error draws none.
pub fn bar_chart_with_errors(
    title: &str,
    labels: &[String],
    values: &[f64],
    errors: &[f64],
    axes: BarAxes,
) -> String {
    let values: Vec<Option<f64>> = values.iter().take(MAX_BARS).map(|v| finite(*v)).collect();
    let n = values.len();
    let (y0, y1) = match valid_range(axes.y_range) {
        Some((lo, hi)) => (lo.min(0.0), hi.max(0.0)),
        None => axis_range(values.iter().flatten().copied().chain([0.0]), 0.08),
    };
    // Drawn clamped to the range; hover titles give the recorded value.
    let raw = values;
    let values: Vec<Option<f64>> = raw.iter().map(|v| v.map(|v| v.clamp(y0, y1))).collect();
    let (x0, x1) = (-0.5, n.max(1) as f64 - 0.5);
    let title = short(title, 120);
    let rotate = n > 12;
    let mut hovers = vec![];
    let mut whiskers = String::new();
    let svg = render(W, H, &title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(if rotate { 110 } else { 48 })
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(short(axes.y, 80))
            .y_labels(8)
            .y_label_formatter(&|y| fmt_num(*y))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        draw_bars(&mut chart, &values, &axes)?;
        hovers = bar_hovers(&chart, &raw, labels, (&axes, errors), (y0, y1));
        whiskers = error_bars(&chart, &raw, errors, (y0, y1));
        let anchors: Vec<(i32, i32)> = (0..n)
            .map(|i| chart.backend_coord(&(i as f64, y0)))
            .collect();
        draw_x_categories(root, &anchors, labels)?;
        if !axes.x.is_empty() {
            let (l, bottom) = chart.backend_coord(&(x0, y0));
            let (r, _) = chart.backend_coord(&(x1, y0));
            let y = bottom + if rotate { 98 } else { 24 };
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(short(axes.x, 60), ((l + r) / 2, y), style))?;
        }
        Ok(())
    });
    with_hovers(overlay(svg, &whiskers), &hovers)
}

/// The error of bar `i`, when it has a finite one.
fn error_at(errors: &[f64], i: usize) -> Option<f64> {
    errors.get(i).copied().filter(|e| e.is_finite() && *e > 0.0)
}

/// A whisker (value +- error, with caps) per bar that has an error, as one SVG path.
fn error_bars(chart: &Chart, raw: &[Option<f64>], errors: &[f64], (y0, y1): (f64, f64)) -> String {
    let mut d = String::new();
    for (i, v) in raw.iter().enumerate() {
        let (Some(v), Some(e)) = (v, error_at(errors, i)) else {
            continue;
        };
        let x = i as f64;
        let (px, top) = chart.backend_coord(&(x, (v + e).clamp(y0, y1)));
        let (_, bottom) = chart.backend_coord(&(x, (v - e).clamp(y0, y1)));
        d += &format!(
            "M{px} {top}V{bottom}M{} {top}h8M{} {bottom}h8",
            px - 4,
            px - 4
        );
    }
    if d.is_empty() {
        return d;
    }
    format!("<path class=\"error-bar\" d=\"{d}\" stroke=\"#333\" stroke-width=\"1.5\" fill=\"none\"/>\n")
}

/// Half the width of a bar, in category units.
const HALF: f64 = 0.4;

/// The bars (highlighted, negative or positive colour) and, for few bars, their values.
fn draw_bars(chart: &mut Chart, values: &[Option<f64>], axes: &BarAxes) -> DrawResult {
    let (pos, neg, hi) = (palette_color(0), palette_color(3), palette_color(1));
    chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
        let x = i as f64;
        v.map(|v| {
            let color = if axes.highlight.contains(&i) {
                hi
            } else if v < 0.0 {
                neg
            } else {
                pos
            };
            Rectangle::new([(x - HALF, 0.0), (x + HALF, v)], color.filled())
        })
    }))?;
    if values.len() <= 12 {
        let style = TextStyle::from(("sans-serif", 11).into_font())
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
            v.map(|v| Text::new(fmt_num(v), (i as f64, v.max(0.0)), style.clone()))
        }))?;
    }
    Ok(())
}

/// A hover title per bar slot (the full height of the plot): category, recorded value and, for
/// a highlighted bar, its rank.
fn bar_hovers(
    chart: &Chart,
    raw: &[Option<f64>],
    labels: &[String],
    (axes, errors): (&BarAxes, &[f64]),
    (y0, y1): (f64, f64),
) -> Vec<Hover> {
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            let (xa, ya) = chart.backend_coord(&(i as f64 - HALF, y1));
            let (xb, yb) = chart.backend_coord(&(i as f64 + HALF, y0));
            let v = v.map_or("missing".into(), fmt_num);
            let mut text = format!("{}: {v}", category(labels, i));
            if let Some(e) = error_at(errors, i) {
                text += &format!(" ± {}", fmt_num(e));
            }
            if let Some(r) = axes.highlight.iter().position(|h| *h == i) {
                text += &format!(" ({} #{})", axes.highlight_note, r + 1);
            }
            Hover {
                x: xa,
                y: ya,
                size: Some((xb - xa, yb - ya)),
                text,
            }
        })
        .collect()
}
