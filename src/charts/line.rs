//! Line charts: metric curves over epochs (accuracy, worst-class accuracy, loss, lr ...).

use plotters::prelude::*;

use super::common::{axis_range, finite, fmt_num, palette_color, render, short, valid_range};
use super::Series;

const W: u32 = 720;
const H: u32 = 400;
/// Points kept per series; longer series are thinned evenly (bounded SVG size).
const MAX_POINTS: usize = 2000;
/// Series with at most this many points also get a marker per point (a single point is
/// otherwise invisible).
const MARKERS_UP_TO: usize = 40;

/// Points kept per faded series (a thin grey background line needs few).
const FADED_POINTS: usize = 100;
/// Legend entries at most (100 classes would cover the plot).
const MAX_LEGEND: usize = 12;
const FADED: RGBColor = RGBColor(205, 205, 205);

/// Lines of `series` in palette order, with a legend. `y_range` fixes the y axis (values
/// outside are clamped to it); `None` fits the data. Non-finite points break the line.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    y_range: Option<(f64, f64)>,
) -> String {
    line_chart_faded(title, x_label, y_label, series, &[], y_range)
}

/// [`line_chart`] where `faded[i]` draws series `i` as a thin grey line without a legend entry,
/// under the others (100 per-class curves with the worst few highlighted). The highlighted
/// series get the palette colours in order.
pub fn line_chart_faded(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    faded: &[bool],
    y_range: Option<(f64, f64)>,
) -> String {
    let fixed = valid_range(y_range);
    let is_faded = |i: usize| faded.get(i).copied().unwrap_or(false);
    // Each series as runs of consecutive finite points.
    let segments: Vec<Vec<Vec<(f64, f64)>>> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let cap = if is_faded(i) {
                FADED_POINTS
            } else {
                MAX_POINTS
            };
            finite_segments(&s.points, fixed, cap)
        })
        .collect();
    let all = || segments.iter().flatten().flatten();
    let (x0, x1) = axis_range(all().map(|p| p.0), 0.0);
    let (y0, y1) = fixed.unwrap_or_else(|| axis_range(all().map(|p| p.1), 0.05));
    let title = short(title, 120);
    render(W, H, &title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(short(x_label, 80))
            .y_desc(short(y_label, 80))
            .x_labels(10)
            .y_labels(8)
            .x_label_formatter(&|x| fmt_num(*x))
            .y_label_formatter(&|y| fmt_num(*y))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (_, segs) in segments.iter().enumerate().filter(|(i, _)| is_faded(*i)) {
            for seg in segs {
                chart.draw_series(LineSeries::new(seg.iter().copied(), FADED.stroke_width(1)))?;
            }
        }
        let shown = series
            .iter()
            .zip(&segments)
            .enumerate()
            .filter(|(i, _)| !is_faded(*i));
        for (n_shown, (_, (s, segs))) in shown.enumerate() {
            let i = n_shown;
            let color = palette_color(i);
            let style = color.stroke_width(2);
            let n: usize = segs.iter().map(Vec::len).sum();
            // Label (legend) exactly once per series, even when it has no drawable point.
            let first = segs.first().map(Vec::as_slice).unwrap_or(&[]);
            let drawn = chart.draw_series(LineSeries::new(first.iter().copied(), style))?;
            if i < MAX_LEGEND {
                drawn.label(short(&s.name, 40)).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
            for seg in segs.iter().skip(1) {
                chart.draw_series(LineSeries::new(seg.iter().copied(), style))?;
            }
            if n <= MARKERS_UP_TO {
                chart.draw_series(
                    segs.iter()
                        .flatten()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )?;
            }
        }
        if (0..series.len()).any(|i| !is_faded(i)) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        Ok(())
    })
}

/// Split `points` at non-finite values, clamp to the fixed range if any, and thin long series.
fn finite_segments(
    points: &[(f64, f64)],
    fixed: Option<(f64, f64)>,
    cap: usize,
) -> Vec<Vec<(f64, f64)>> {
    let step = points.len().div_ceil(cap).max(1);
    let mut segs = vec![];
    let mut cur = vec![];
    for &(x, y) in points.iter().step_by(step) {
        match (finite(x), finite(y)) {
            (Some(x), Some(y)) => {
                let y = fixed.map_or(y, |(lo, hi)| y.clamp(lo, hi));
                cur.push((x, y));
            }
            _ if !cur.is_empty() => segs.push(std::mem::take(&mut cur)),
            _ => {}
        }
    }
    if !cur.is_empty() {
        segs.push(cur);
    }
    segs
}
