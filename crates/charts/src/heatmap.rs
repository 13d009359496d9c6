//! Heatmaps: class x epoch C_FPS, confusion matrices. Row 0 is drawn at the top.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{
    category, draw_x_categories, draw_y_categories, finite, fmt_num, render, short, with_hovers,
    Chart, ColorScale, DrawResult, Hover, Scale,
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

/// The cells a heatmap draws: at most [`MAX_CELLS_PER_AXIS`] rows and columns of `values`, and
/// the colour scale over their finite values.
#[derive(Clone, Copy)]
struct Grid<'a> {
    values: &'a [Vec<f64>],
    rows: usize,
    cols: usize,
    scale: Option<ColorScale>,
}

impl<'a> Grid<'a> {
    fn new(values: &'a [Vec<f64>], scale: Scale) -> Self {
        let rows = values.len().min(MAX_CELLS_PER_AXIS);
        let cols = values.iter().take(rows).map(Vec::len).max().unwrap_or(0);
        let mut g = Grid {
            values,
            rows,
            cols: cols.min(MAX_CELLS_PER_AXIS),
            scale: None,
        };
        let all = (0..g.rows).flat_map(|r| (0..g.cols).filter_map(move |c| g.cell(r, c)));
        g.scale = ColorScale::new(scale, all);
        g
    }

    fn cell(&self, r: usize, c: usize) -> Option<f64> {
        self.values
            .get(r)
            .and_then(|row| row.get(c))
            .and_then(|v| finite(*v))
    }

    fn color(&self, r: usize, c: usize) -> RGBColor {
        match (self.cell(r, c), self.scale) {
            (Some(v), Some(s)) => s.color(v),
            _ => MISSING,
        }
    }

    /// Row `r`'s top edge in chart coordinates (row 0 at the top).
    fn top(&self, r: usize) -> f64 {
        (self.rows - r) as f64
    }

    /// One RGB pixel per cell, row by row (the raster of large matrices).
    fn rgb(&self) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(self.rows * self.cols * 3);
        for r in 0..self.rows {
            for c in 0..self.cols {
                let RGBColor(red, g, b) = self.color(r, c);
                rgb.extend([red, g, b]);
            }
        }
        rgb
    }
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
    let g = Grid::new(values, axes.scale);
    let (rows, cols) = (g.rows, g.cols);
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
        let (left, upper) = chart.backend_coord(&(0.0, rows.max(1) as f64));
        let (right, lower) = chart.backend_coord(&(cols.max(1) as f64, 0.0));
        if raster {
            plot_rect.set(Some((left, upper, right - left, lower - upper)));
        } else {
            draw_cells(&mut chart, g)?;
        }
        if annotate {
            annotate_cells(&mut chart, g)?;
        }
        let x_anchors: Vec<(i32, i32)> = (0..cols)
            .map(|c| chart.backend_coord(&(c as f64 + 0.5, 0.0)))
            .collect();
        let y_anchors: Vec<(i32, i32)> = (0..rows)
            .map(|r| chart.backend_coord(&(0.0, g.top(r) - 0.5)))
            .collect();
        draw_x_categories(root, &x_anchors, col_labels)?;
        draw_y_categories(root, &y_anchors, row_labels)?;
        axis_titles(root, axes, (left, upper, right, lower), rotate)?;
        if let Some(s) = g.scale {
            color_bar(root, right + 16, upper, lower, s)?;
        }
        if rows * cols <= super::common::MAX_HOVERS {
            let size = (
                (right - left) / cols.max(1) as i32,
                (lower - upper) / rows.max(1) as i32,
            );
            hovers = cell_hovers(&chart, g, size, (row_labels, col_labels), axes);
        }
        Ok(())
    });
    match plot_rect.get() {
        Some(rect) if rows > 0 && cols > 0 && !svg.contains(super::FALLBACK_MARKER) => {
            let image = embed_image(svg, rect, cols as u32, rows as u32, &g.rgb());
            with_hovers(image, &hovers)
        }
        _ => with_hovers(svg, &hovers),
    }
}

/// One filled rectangle per cell (small matrices).
fn draw_cells(chart: &mut Chart, g: Grid) -> DrawResult {
    chart.draw_series((0..g.rows).flat_map(|r| {
        (0..g.cols).map(move |c| {
            let (x, y) = (c as f64, g.top(r));
            Rectangle::new([(x, y), (x + 1.0, y - 1.0)], g.color(r, c).filled())
        })
    }))?;
    Ok(())
}

/// Each cell's value written in it, in ink that reads on its colour.
fn annotate_cells(chart: &mut Chart, g: Grid) -> DrawResult {
    let base =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    chart.draw_series((0..g.rows).flat_map(|r| {
        let base = base.clone();
        (0..g.cols).filter_map(move |c| {
            let v = g.cell(r, c)?;
            let dark = g.scale.is_some_and(|s| s.dark_ink(v));
            let ink: &'static RGBColor = if dark { &BLACK } else { &WHITE };
            let pos = (c as f64 + 0.5, g.top(r) - 0.5);
            Some(Text::new(fmt_num(v), pos, base.clone().color(ink)))
        })
    }))?;
    Ok(())
}

/// A hover title per cell: its row, column and value.
fn cell_hovers(
    chart: &Chart,
    g: Grid,
    size: (i32, i32),
    (row_labels, col_labels): (&[String], &[String]),
    axes: HeatmapAxes,
) -> Vec<Hover> {
    let mut hovers = Vec::with_capacity(g.rows * g.cols);
    for r in 0..g.rows {
        for c in 0..g.cols {
            let (x, y) = chart.backend_coord(&(c as f64, g.top(r)));
            let v = g.cell(r, c).map_or("missing".into(), fmt_num);
            let (rn, cn) = (category(row_labels, r), category(col_labels, c));
            let text = format!(
                "{}: {rn}, {}: {cn}: {v}",
                or(axes.y, "row"),
                or(axes.x, "column")
            );
            hovers.push(Hover {
                x,
                y,
                size: Some(size),
                text,
            });
        }
    }
    hovers
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
