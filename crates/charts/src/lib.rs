//! SVG charts for the dashboard: pure functions from metric series to an SVG string.
//!
//! Rendered with plotters' SVG backend and its built-in "naive" font metrics (no `ttf` feature):
//! the backend writes `<text>` elements and the browser picks the font, so no system font is
//! needed. Every renderer sanitises its input first (non-finite values dropped or greyed,
//! degenerate and huge ranges widened or clamped, sizes bounded) and, as a last line of defence,
//! catches a panic inside plotters and returns a placeholder SVG: a chart must never take down
//! a page handler.

mod band;
mod bar;
mod common;
mod heatmap;
mod line;
pub mod png;

pub use band::{band_chart, Band};
pub use bar::{bar_chart, bar_chart_with, bar_chart_with_errors, BarAxes};
pub use common::{
    diverging, fmt_int_tick, int_axis, palette_color, ColorScale, Scale, FALLBACK_MARKER, PALETTE,
};
pub use heatmap::{heatmap, heatmap_with, HeatmapAxes};
pub use line::{line_chart, line_chart_faded};

/// One named line of a line chart. Non-finite points are gaps.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
}
