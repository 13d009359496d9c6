//! Group curves for the compare page: one colour per group of runs (the seeds of a method), its
//! mean over the seeds as a line and mean ± std as a shaded band. Plotters draws the axes; the
//! groups and the legend are written as SVG groups (`<g class="series" data-series="i">`,
//! `<g class="legend-entry" data-series="i">`) so a few lines of page script can hide a series
//! when its legend entry is clicked, and the plot area carries its data and pixel x range
//! (`data-x0`, `data-x1`, `data-px0`, `data-px1`) so a drag can be turned into an epoch range.

use super::common::{
    axis_range, escape_xml, finite, fmt_int_tick, fmt_num, int_axis, overlay, plot, render, short,
    valid_range, Chart, PlotAxes, PALETTE,
};

const W: u32 = 720;
const H: u32 = 400;
const LEGEND_W: u32 = 190;
/// Points per group at most (bounded SVG size).
const MAX_POINTS: usize = 2000;

/// One group of runs: its mean (and std over its runs) per x, the runs' full names for hover.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub name: String,
    pub runs: Vec<String>,
    /// `(x, mean, std)`; a non-finite std draws no band at that x, a non-finite mean no point.
    pub points: Vec<(f64, f64, f64)>,
}

fn rgb(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("rgb({r},{g},{b})")
}

/// The groups' mean lines and bands, coloured by group, with a clickable legend. `y_range`
/// fixes the y axis; `x_range` keeps only points inside it (a zoom).
pub fn band_chart(
    (title, x_label, y_label): (&str, &str, &str),
    groups: &[Band],
    y_range: Option<(f64, f64)>,
    x_range: Option<(f64, f64)>,
) -> String {
    let keep = |x: f64| x_range.is_none_or(|(a, b)| x >= a && x <= b);
    let groups: Vec<Band> = groups
        .iter()
        .map(|g| Band {
            points: g
                .points
                .iter()
                .filter_map(|p| {
                    Some((
                        finite(p.0)?,
                        finite(p.1)?,
                        finite(p.2.abs()).unwrap_or(f64::NAN),
                    ))
                })
                .filter(|p| keep(p.0))
                .take(MAX_POINTS)
                .collect(),
            ..g.clone()
        })
        .collect();
    let xs = || groups.iter().flat_map(|g| g.points.iter().map(|p| p.0));
    let ((x0, x1), ticks) = int_axis(xs());
    let ys = groups.iter().flat_map(|g| {
        g.points
            .iter()
            .flat_map(|p| [p.1 - p.2.max(0.0), p.1 + p.2.max(0.0)])
    });
    let (y0, y1) =
        valid_range(y_range).unwrap_or_else(|| axis_range(ys.filter(|y| y.is_finite()), 0.05));
    let title = short(title, 120);
    let mut layer = String::new();
    let svg = render(W + LEGEND_W, H, &title, |root| {
        let axes = PlotAxes {
            labels: (x_label, y_label),
            x_ticks: ticks,
            x_fmt: &|v| fmt_int_tick(*v),
        };
        let chart = plot(root, &title, LEGEND_W, ((x0, x1), (y0, y1)), axes)?;
        layer = series_layer(&chart, &groups, (x0, x1), (y0, y1));
        Ok(())
    });
    overlay(svg, &layer)
}

/// The plot-area marker, one `<g class="series">` per group and the legend.
fn series_layer(
    chart: &Chart,
    groups: &[Band],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> String {
    let px = |x: f64, y: f64| chart.backend_coord(&(x, y.clamp(y0, y1)));
    let ((pl, ptop), (pr, pbottom)) = (px(x0, y1), px(x1, y0));
    let mut out = format!(
        "<rect class=\"plot-area\" x=\"{pl}\" y=\"{ptop}\" width=\"{}\" height=\"{}\" fill=\"transparent\" \
         data-x0=\"{x0}\" data-x1=\"{x1}\" data-px0=\"{pl}\" data-px1=\"{pr}\"/>\n",
        (pr - pl).max(1),
        (pbottom - ptop).max(1)
    );
    for (i, g) in groups.iter().enumerate() {
        let color = rgb(i);
        let runs = escape_xml(&format!("{}: {}", g.name, g.runs.join(", ")));
        out += &format!("<g class=\"series\" data-series=\"{i}\"><title>{runs}</title>");
        let band: Vec<&(f64, f64, f64)> = g.points.iter().filter(|p| p.2.is_finite()).collect();
        if band.len() > 1 {
            let upper = band.iter().map(|p| px(p.0, p.1 + p.2));
            let lower = band.iter().rev().map(|p| px(p.0, p.1 - p.2));
            let pts: Vec<String> = upper
                .chain(lower)
                .map(|(x, y)| format!("{x},{y}"))
                .collect();
            out += &format!(
                "<polygon points=\"{}\" fill=\"{color}\" fill-opacity=\"0.2\" stroke=\"none\"/>",
                pts.join(" ")
            );
        }
        let line: Vec<String> = g
            .points
            .iter()
            .map(|p| px(p.0, p.1))
            .map(|(x, y)| format!("{x},{y}"))
            .collect();
        out += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            line.join(" ")
        );
        for p in &g.points {
            let (x, y) = px(p.0, p.1);
            let tip = escape_xml(&format!(
                "{} epoch {}: {} ± {}",
                g.name,
                fmt_int_tick(p.0),
                fmt_num(p.1),
                fmt_num(p.2)
            ));
            out += &format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"><title>{tip}</title></circle>");
        }
        out += "</g>\n";
        let (lx, ly) = (pr + 16, ptop + 18 * i as i32);
        out += &format!(
            "<g class=\"legend-entry\" data-series=\"{i}\" style=\"cursor:pointer\"><title>{runs} (click to hide or show)</title>\
             <rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"12\">{}</text></g>\n",
            ly - 9,
            lx + 20,
            ly,
            escape_xml(&short(&g.name, 26))
        );
    }
    out
}
