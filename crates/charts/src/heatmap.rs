//! Heatmaps: class x epoch C_FPS, confusion matrices. Row 0 is drawn at the top.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{
    category, draw_x_categories, draw_y_categories, finite, fmt_num, render, short, with_hovers,
    ColorScale, DrawResult, Hover, Scale,
};

const W: u32 = 760;
/// Rows and columns drawn at most (bounded SVG size); the rest is cut off.
const MAX_CELLS_PER_AXIS: usize = 400;
/// Cells get their value written in them when there are at most this many.
const ANNOTATE_UP_TO: usize = 144;
const MISSING: RGBColor = RGBColor(220, 220, 220);

/// Axis titles and colour scale of a heatmap.
#[derive(Clone, Copy, Debug)]
pub struct HeatmapAxes<'a> {
    /// Title under the x axis (columns), e.g. "predicted class" or "epoch".
    pub x: &'a str,
    /// Title left of the y axis (rows), e.g. "true class".
    pub y: &'a str,
    pub scale: Scale,
}

impl Default for HeatmapAxes<'_> {
    fn default() -> Self {
        HeatmapAxes {
            x: "",
            y: "",
            scale: Scale::Sequential,
        }
    }
}

/// `values[r][c]` coloured on a viridis scale from the smallest to the largest finite value;
/// missing or non-finite cells are grey. Ragged rows are allowed.
pub fn heatmap(
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
) -> String {
    heatmap_with(
        title,
        row_labels,
        col_labels,
        values,
        HeatmapAxes::default(),
    )
}

/// [`heatmap`] with axis titles and a chosen [`Scale`]; every cell carries its row, column and
/// value as a hover title.
pub fn heatmap_with(
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
    axes: HeatmapAxes,
) -> String {
    let rows = values.len().min(MAX_CELLS_PER_AXIS);
    let cols = values
        .iter()
        .take(rows)
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .min(MAX_CELLS_PER_AXIS);
    let cell = |r: usize, c: usize| {
        values
            .get(r)
            .and_then(|row| row.get(c))
            .and_then(|v| finite(*v))
    };
    let all = (0..rows).flat_map(|r| (0..cols).filter_map(move |c| cell(r, c)));
    let scale = ColorScale::new(axes.scale, all);
    let color = move |v: Option<f64>| match (v, scale) {
        (Some(v), Some(s)) => s.color(v),
        _ => MISSING,
    };
    let mut hovers = vec![];
    let title = short(title, 120);
    let h = (140 + rows as u32 * 14).clamp(360, 1000);
    let rotate = cols > 12;
    let annotate = rows * cols <= ANNOTATE_UP_TO;
    // Large matrices: one embedded raster (a pixel per cell) instead of a rect per cell.
    let raster = !annotate;
    let plot_rect = std::cell::Cell::new(None);
    let svg = render(W, h, &title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .margin_right(90)
            .x_label_area_size(if rotate { 110 } else { 50 })
            .y_label_area_size(120)
            .build_cartesian_2d(0.0..cols.max(1) as f64, 0.0..rows.max(1) as f64)?;
        let top = rows as f64;
        if raster {
            let (x0, y0) = chart.backend_coord(&(0.0, rows.max(1) as f64));
            let (x1, y1) = chart.backend_coord(&(cols.max(1) as f64, 0.0));
            plot_rect.set(Some((x0, y0, x1 - x0, y1 - y0)));
        } else {
            chart.draw_series((0..rows).flat_map(|r| {
                (0..cols).map(move |c| {
                    let (x, y) = (c as f64, top - r as f64);
                    Rectangle::new([(x, y), (x + 1.0, y - 1.0)], color(cell(r, c)).filled())
                })
            }))?;
        }
        if annotate {
            let base = TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series((0..rows).flat_map(|r| {
                let base = base.clone();
                (0..cols).filter_map(move |c| {
                    let v = cell(r, c)?;
                    let dark = scale.is_some_and(|s| s.dark_ink(v));
                    let ink: &'static RGBColor = if dark { &BLACK } else { &WHITE };
                    let pos = (c as f64 + 0.5, top - r as f64 - 0.5);
                    Some(Text::new(fmt_num(v), pos, base.clone().color(ink)))
                })
            }))?;
        }
        let x_anchors: Vec<(i32, i32)> = (0..cols)
            .map(|c| chart.backend_coord(&(c as f64 + 0.5, 0.0)))
            .collect();
        let y_anchors: Vec<(i32, i32)> = (0..rows)
            .map(|r| chart.backend_coord(&(0.0, top - r as f64 - 0.5)))
            .collect();
        draw_x_categories(root, &x_anchors, col_labels)?;
        draw_y_categories(root, &y_anchors, row_labels)?;
        let (left, upper) = chart.backend_coord(&(0.0, rows.max(1) as f64));
        let (right, lower) = chart.backend_coord(&(cols.max(1) as f64, 0.0));
        axis_titles(root, axes, (left, upper, right, lower), rotate)?;
        if let Some(s) = scale {
            color_bar(root, right + 16, upper, lower, s)?;
        }
        if rows * cols <= super::common::MAX_HOVERS {
            let (w, h) = (
                (right - left) / cols.max(1) as i32,
                (lower - upper) / rows.max(1) as i32,
            );
            for r in 0..rows {
                for c in 0..cols {
                    let (x, y) = chart.backend_coord(&(c as f64, top - r as f64));
                    let v = cell(r, c).map_or("missing".into(), fmt_num);
                    let (rn, cn) = (category(row_labels, r), category(col_labels, c));
                    let text = format!(
                        "{}: {rn}, {}: {cn}: {v}",
                        or(axes.y, "row"),
                        or(axes.x, "column")
                    );
                    hovers.push(Hover {
                        x,
                        y,
                        size: Some((w, h)),
                        text,
                    });
                }
            }
        }
        Ok(())
    });
    match plot_rect.get() {
        Some(rect) if rows > 0 && cols > 0 && !svg.contains(super::FALLBACK_MARKER) => {
            let mut rgb = Vec::with_capacity(rows * cols * 3);
            for r in 0..rows {
                for c in 0..cols {
                    let RGBColor(red, g, b) = color(cell(r, c));
                    rgb.extend([red, g, b]);
                }
            }
            with_hovers(
                embed_image(svg, rect, cols as u32, rows as u32, &rgb),
                &hovers,
            )
        }
        _ => with_hovers(svg, &hovers),
    }
}

fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

/// The axis titles below the column labels and left of the row labels.
fn axis_titles(
    root: &super::common::Area,
    axes: HeatmapAxes,
    (left, upper, right, lower): (i32, i32, i32, i32),
    rotated: bool,
) -> DrawResult {
    let style = TextStyle::from(("sans-serif", 13).into_font()).color(&BLACK);
    if !axes.x.is_empty() {
        let y = lower + if rotated { 96 } else { 28 };
        let s = style.clone().pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(short(axes.x, 60), ((left + right) / 2, y), s))?;
    }
    if !axes.y.is_empty() {
        let s = style
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            short(axes.y, 60),
            (left - 116, (upper + lower) / 2),
            s,
        ))?;
    }
    Ok(())
}

/// Insert the cells as one PNG `<image>` over the plot area `(x, y, w, h)` (pixels), scaled
/// without smoothing so cells stay sharp.
fn embed_image(
    svg: String,
    (x, y, w, h): (i32, i32, i32, i32),
    cols: u32,
    rows: u32,
    rgb: &[u8],
) -> String {
    let png = super::png::encode_rgb(cols, rows, rgb);
    let image = format!(
        "<image x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" \
         image-rendering=\"optimizeSpeed\" style=\"image-rendering:pixelated\" \
         href=\"data:image/png;base64,{}\"/>\n",
        super::png::base64(&png)
    );
    match svg.rfind("</svg>") {
        Some(i) => format!("{}{image}{}", &svg[..i], &svg[i..]),
        None => svg,
    }
}

/// A vertical gradient from the scale's top (`hi`) to its bottom (`lo`) with its end values
/// (and 0 in the middle of a diverging scale).
fn color_bar(
    root: &super::common::Area,
    x: i32,
    top: i32,
    bottom: i32,
    s: ColorScale,
) -> DrawResult {
    const STEPS: i32 = 32;
    let height = (bottom - top).max(STEPS);
    for i in 0..STEPS {
        let y0 = top + height * i / STEPS;
        let y1 = top + height * (i + 1) / STEPS;
        let f = 1.0 - (i as f64 + 0.5) / STEPS as f64;
        root.draw(&Rectangle::new([(x, y0), (x + 14, y1)], s.at(f).filled()))?;
    }
    let style =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    root.draw(&Text::new(fmt_num(s.hi), (x + 18, top), style.clone()))?;
    if s.diverging {
        root.draw(&Text::new("0", (x + 18, top + height / 2), style.clone()))?;
    }
    root.draw(&Text::new(fmt_num(s.lo), (x + 18, top + height), style))?;
    Ok(())
}
