//! Line charts: metric curves over epochs (accuracy, worst-class accuracy, loss, lr ...).

use plotters::prelude::*;

use super::common::{
    axis_range, finite, fmt_int_tick, fmt_num, int_axis, palette_color, plot, render, short,
    valid_range, with_hovers, Area, Chart, DrawResult, Hover, PlotAxes,
};
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
/// Hover targets per line chart at most (100 highlighted classes x 200 epochs are thinned).
const LINE_HOVERS: usize = 1000;
/// Width kept right of the plot for the legend, so it never covers the newest points.
const LEGEND_W: u32 = 150;
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

/// Runs of consecutive finite points of one series.
type Segments = Vec<Vec<(f64, f64)>>;

/// The x axis of a set of segments: its range, tick count and whether it counts epochs.
#[derive(Clone, Copy)]
struct XAxis {
    range: (f64, f64),
    ticks: usize,
    /// Epoch axes get integer ticks only (one epoch must not give ticks at -0.4 .. 0.4).
    integer: bool,
}

impl XAxis {
    fn fit(segments: &[Segments]) -> Self {
        let xs = || segments.iter().flatten().flatten().map(|p| p.0);
        let integer = xs().all(|x| x.fract() == 0.0);
        let (range, ticks) = if integer {
            int_axis(xs())
        } else {
            (axis_range(xs(), 0.0), 10)
        };
        XAxis {
            range,
            ticks,
            integer,
        }
    }

    fn fmt(&self, x: &f64) -> String {
        if self.integer {
            fmt_int_tick(*x)
        } else {
            fmt_num(*x)
        }
    }
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
    let segments: Vec<Segments> = series
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
    let x = XAxis::fit(&segments);
    let (x0, x1) = x.range;
    let all_y = segments.iter().flatten().flatten().map(|p| p.1);
    let (y0, y1) = fixed.unwrap_or_else(|| axis_range(all_y, 0.05));
    let title = short(title, 120);
    let legend: Vec<(usize, &Series)> = series
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_faded(*i))
        .collect();
    let legend_w = if legend.is_empty() { 0 } else { LEGEND_W };
    // A chart of all 100 classes in colour is near its size bound already: no hovers there.
    let hover = legend.len() <= MAX_LEGEND;
    let mut hovers = vec![];
    let svg = render(W + legend_w, H, &title, |root| {
        let axes = PlotAxes {
            labels: (x_label, y_label),
            x_ticks: x.ticks,
            x_fmt: &|v| x.fmt(v),
        };
        let mut chart = plot(root, &title, legend_w, ((x0, x1), (y0, y1)), axes)?;
        for (_, segs) in segments.iter().enumerate().filter(|(i, _)| is_faded(*i)) {
            for seg in segs {
                chart.draw_series(LineSeries::new(seg.iter().copied(), FADED.stroke_width(1)))?;
            }
        }
        for (n_shown, &(i, s)) in legend.iter().enumerate() {
            draw_highlighted(&mut chart, n_shown, &segments[i])?;
            if hover {
                hovers.extend(point_hovers(
                    &chart,
                    s,
                    &segments[i],
                    (x_label, x),
                    legend.len(),
                ));
            }
        }
        let (right, top) = chart.backend_coord(&(x1, y1));
        draw_legend(root, right + 14, top, &legend)
    });
    with_hovers(svg, &hovers)
}

/// A highlighted series in palette colour `n_shown`, with a marker per point when it has few.
fn draw_highlighted(chart: &mut Chart, n_shown: usize, segs: &Segments) -> DrawResult {
    let color = palette_color(n_shown);
    for seg in segs {
        chart.draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?;
    }
    let n: usize = segs.iter().map(Vec::len).sum();
    if n <= MARKERS_UP_TO {
        chart.draw_series(
            segs.iter()
                .flatten()
                .map(|&p| Circle::new(p, 3, color.filled())),
        )?;
    }
    Ok(())
}

/// Hover titles on a highlighted series' points, thinned so that all `shown` series together
/// stay within [`LINE_HOVERS`].
fn point_hovers(
    chart: &Chart,
    s: &Series,
    segs: &Segments,
    (x_label, x): (&str, XAxis),
    shown: usize,
) -> Vec<Hover> {
    let n: usize = segs.iter().map(Vec::len).sum();
    let step = (n * shown).div_ceil(LINE_HOVERS).max(1);
    let name = short(x_label, 30);
    segs.iter()
        .flatten()
        .step_by(step)
        .map(|&(px, py)| {
            let (hx, hy) = chart.backend_coord(&(px, py));
            let text = format!("{}: {} {}, {}", s.name, name, x.fmt(&px), fmt_num(py));
            Hover {
                x: hx,
                y: hy,
                size: None,
                text,
            }
        })
        .collect()
}

/// Legend right of the plot at pixel `(x, y)`: a line in each series' colour and its name,
/// the first [`MAX_LEGEND`] series, then how many more there are.
fn draw_legend(root: &Area, x: i32, y: i32, legend: &[(usize, &Series)]) -> DrawResult {
    let font = ("sans-serif", 12).into_font();
    for (n, (_, s)) in legend.iter().enumerate().take(MAX_LEGEND) {
        let y = y + 8 + 18 * n as i32;
        let color = palette_color(n);
        root.draw(&PathElement::new(
            vec![(x, y), (x + 18, y)],
            color.stroke_width(2),
        ))?;
        root.draw(&Text::new(
            short(&s.name, 20),
            (x + 24, y - 7),
            font.clone(),
        ))?;
    }
    if legend.len() > MAX_LEGEND {
        let y = y + 8 + 18 * MAX_LEGEND as i32;
        let more = format!("+{} more", legend.len() - MAX_LEGEND);
        root.draw(&Text::new(
            more,
            (x + 24, y - 7),
            font.color(&RGBColor(120, 120, 120)),
        ))?;
    }
    Ok(())
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
