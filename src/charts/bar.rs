//! Bar charts: one value per category, e.g. the C_FPS of every class in one epoch.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::common::{axis_range, draw_x_categories, finite, fmt_num, palette_color, render, short};

const W: u32 = 720;
const H: u32 = 400;
/// Categories drawn at most (bounded SVG size); later ones are dropped.
const MAX_BARS: usize = 1000;

/// One bar per value, labelled with `labels` (indices where labels are missing). A non-finite
/// value leaves its slot empty. The y axis always includes 0.
pub fn bar_chart(title: &str, labels: &[String], values: &[f64]) -> String {
    let values: Vec<Option<f64>> = values.iter().take(MAX_BARS).map(|v| finite(*v)).collect();
    let n = values.len();
    let (y0, y1) = axis_range(values.iter().flatten().copied().chain([0.0]), 0.08);
    let (x0, x1) = (-0.5, n.max(1) as f64 - 0.5);
    let title = short(title, 120);
    let rotate = n > 12;
    render(W, H, &title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(if rotate { 90 } else { 30 })
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(8)
            .y_label_formatter(&|y| fmt_num(*y))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let color = palette_color(0);
        let half = 0.4;
        chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
            let x = i as f64;
            v.map(|v| Rectangle::new([(x - half, 0.0), (x + half, v)], color.filled()))
        }))?;
        if n <= 12 {
            let style = TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                v.map(|v| Text::new(fmt_num(v), (i as f64, v.max(0.0)), style.clone()))
            }))?;
        }
        let anchors: Vec<(i32, i32)> = (0..n)
            .map(|i| chart.backend_coord(&(i as f64, y0)))
            .collect();
        draw_x_categories(root, &anchors, labels)?;
        Ok(())
    })
}
