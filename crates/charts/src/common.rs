//! Shared chart plumbing: the palette, input sanitising, number labels, and the render wrapper
//! that turns a plotters error or panic into a placeholder SVG.

use std::panic::{catch_unwind, AssertUnwindSafe};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Tableau 10: ten colours that stay distinguishable (also for the common colour-vision
/// deficiencies) and print well; series beyond ten repeat them.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Attribute present only on the placeholder SVG, so tests and callers can tell a real chart
/// from a failed one.
pub const FALLBACK_MARKER: &str = "data-fallback";

/// The colour of series `i`.
pub fn palette_color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// Values beyond this are clamped: plotters' tick computation and our `f64 -> pixel` casts
/// stay exact well inside it, and no metric of ours comes close.
pub const MAX_ABS: f64 = 1e12;

pub type DrawResult = Result<(), Box<dyn std::error::Error>>;
pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// A chart with numeric axes on an SVG area, as the drawing helpers of each chart take it.
pub type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The axes of a curve chart: titles, x ticks and their labels.
pub struct PlotAxes<'f> {
    pub labels: (&'f str, &'f str),
    pub x_ticks: usize,
    pub x_fmt: &'f dyn Fn(&f64) -> String,
}

/// A curve chart's plot on `root`: caption, `legend_w` pixels kept right for the legend, the
/// ranges, light grid and axis labels (shared by the line and band charts).
pub fn plot<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    legend_w: u32,
    ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64)),
    axes: PlotAxes,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .margin_right(12 + legend_w)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(short(axes.labels.0, 80))
        .y_desc(short(axes.labels.1, 80))
        .x_labels(axes.x_ticks)
        .y_labels(8)
        .x_label_formatter(axes.x_fmt)
        .y_label_formatter(&|y| fmt_num(*y))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    Ok(chart)
}

/// Render with `draw` on a white `w x h` canvas. Any error or panic yields [`fallback`].
pub fn render(w: u32, h: u32, title: &str, draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut buf = String::new();
        {
            let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
        }
        Ok::<String, Box<dyn std::error::Error>>(buf)
    }));
    match result {
        Ok(Ok(svg)) => svg,
        Ok(Err(err)) => {
            tracing::warn!(cause = %err, title, "chart rendering failed");
            fallback(w, h, title, "chart unavailable")
        }
        Err(_) => {
            tracing::error!(title, "chart renderer panicked");
            fallback(w, h, title, "chart unavailable")
        }
    }
}

/// A minimal, valid SVG naming the chart and why it is empty.
pub fn fallback(w: u32, h: u32, title: &str, reason: &str) -> String {
    format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" {FALLBACK_MARKER}=\"1\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"#FFFFFF\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"16\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#777777\">{}</text>\n</svg>\n",
        w / 2,
        escape_xml(title),
        w / 2,
        h / 2,
        escape_xml(reason)
    )
}

pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 text.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A label shortened to `max` characters (names of 100 classes or long run names).
pub fn short(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut t: String = clean.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Finite values clamped to ±[`MAX_ABS`]; `None` for NaN and infinities.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then(|| x.clamp(-MAX_ABS, MAX_ABS))
}

/// An axis range covering `values` (already finite), padded by `pad` of its width, never
/// degenerate: an empty set gives (0, 1), a single value a unit-ish window around it.
pub fn axis_range(values: impl IntoIterator<Item = f64>, pad: f64) -> (f64, f64) {
    let Some((lo, hi)) = extent(values) else {
        return (0.0, 1.0);
    };
    let width = hi - lo;
    let min_width = 1e-9 * lo.abs().max(hi.abs()).max(1.0);
    if width < min_width {
        let half = (lo.abs() * 0.05).max(0.5);
        return (lo - half, hi + half);
    }
    (lo - width * pad, hi + width * pad)
}

/// The smallest and largest of `values` (already finite); `None` when there is none.
pub fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi).then_some((lo, hi))
}

/// A user-given range if it is usable, else `None`.
pub fn valid_range(r: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let (lo, hi) = r?;
    let (lo, hi) = (finite(lo)?, finite(hi)?);
    (hi - lo > 1e-12 * lo.abs().max(hi.abs()).max(1.0)).then_some((lo, hi))
}

/// Below this a value is float noise of a sum that should be 0 (a tick at -0.4 + 4 x 0.1 is
/// -5.55e-17), not a quantity: it is labelled 0.
const NOISE: f64 = 1e-12;

/// Compact tick label: up to 4 significant decimals, scientific for very large or small values.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let a = x.abs();
    if a < NOISE {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.2e}")
    } else {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    }
}

/// Viridis-like colour for `t` in [0, 1] (interpolated between five stops of matplotlib's
/// viridis; plotters' `colormaps` feature is not enabled).
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Every `stride`-th label is drawn so that at most `max_labels` appear along an axis.
pub fn label_stride(n: usize, max_labels: usize) -> usize {
    n.div_ceil(max_labels.max(1)).max(1)
}

/// Category labels under an x axis at pixel `anchors` (the axis point below each category),
/// every `label_stride`-th one, rotated to read downwards when there are many.
pub fn draw_x_categories(root: &Area, anchors: &[(i32, i32)], labels: &[String]) -> DrawResult {
    let rotate = anchors.len() > 12;
    let stride = label_stride(anchors.len(), if rotate { 50 } else { 12 });
    let style = TextStyle::from(("sans-serif", 11).into_font()).color(&BLACK);
    let style = if rotate {
        style
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center))
    } else {
        style.pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (i, &(x, y)) in anchors.iter().enumerate().step_by(stride) {
        let text = short(&category(labels, i), 14);
        root.draw(&Text::new(text, (x, y + 6), style.clone()))?;
    }
    Ok(())
}

/// Category labels left of a y axis at pixel `anchors`, every `label_stride`-th one.
pub fn draw_y_categories(root: &Area, anchors: &[(i32, i32)], labels: &[String]) -> DrawResult {
    let stride = label_stride(anchors.len(), 40);
    let style = TextStyle::from(("sans-serif", 11).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, &(x, y)) in anchors.iter().enumerate().step_by(stride) {
        let text = short(&category(labels, i), 14);
        root.draw(&Text::new(text, (x - 6, y), style.clone()))?;
    }
    Ok(())
}

/// The label of category `i`, its index when `labels` is too short.
pub fn category(labels: &[String], i: usize) -> String {
    labels.get(i).cloned().unwrap_or_else(|| i.to_string())
}

/// One hover target: an invisible shape over a point, bar or cell whose `<title>` the browser
/// shows as a tooltip (the chart must be embedded as a document, not an `<img>`).
pub struct Hover {
    pub x: i32,
    pub y: i32,
    /// Width and height of a rectangle; `None`: a circle around a point.
    pub size: Option<(i32, i32)>,
    pub text: String,
}

/// Hover targets per chart at most (bounded SVG size); charts with more get none for the rest.
pub const MAX_HOVERS: usize = 3000;

/// `svg` with `fragment` (SVG elements) appended on top; a placeholder stays as it is.
pub fn overlay(svg: String, fragment: &str) -> String {
    if fragment.is_empty() || svg.contains(FALLBACK_MARKER) {
        return svg;
    }
    let Some(end) = svg.rfind("</svg>") else {
        return svg;
    };
    let mut out = String::with_capacity(svg.len() + fragment.len());
    out.push_str(&svg[..end]);
    out.push_str(fragment);
    out.push_str(&svg[end..]);
    out
}

/// `svg` with the `hovers` appended on top (transparent, so the picture does not change).
pub fn with_hovers(svg: String, hovers: &[Hover]) -> String {
    if hovers.is_empty() {
        return svg;
    }
    let mut out = String::with_capacity(hovers.len() * 80);
    out.push_str("<g class=\"hover\" fill=\"transparent\">\n");
    for h in hovers.iter().take(MAX_HOVERS) {
        let t = escape_xml(&h.text);
        match h.size {
            Some((w, ht)) => out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{t}</title></rect>\n",
                h.x,
                h.y,
                w.max(1),
                ht.max(1)
            )),
            None => out.push_str(&format!(
                "<circle cx=\"{}\" cy=\"{}\" r=\"6\"><title>{t}</title></circle>\n",
                h.x, h.y
            )),
        }
    }
    out.push_str("</g>\n");
    overlay(svg, &out)
}

/// Tick label of an integer axis (epochs): the integer, or nothing for a tick between two
/// integers, so no "0.5" or "-5.55e-17" is ever written under an epoch axis.
pub fn fmt_int_tick(x: f64) -> String {
    let r = x.round();
    if x.is_finite() && (x - r).abs() < 1e-6 {
        format!("{}", r as i64)
    } else {
        String::new()
    }
}

/// The x range of an integer axis over `values`: the data padded by half a step when it spans
/// less than one integer (a single epoch), else by 2%; and how many ticks to ask for so that the
/// ticks plotters picks fall on integers (at most one per integer, at most 10).
pub fn int_axis(values: impl IntoIterator<Item = f64>) -> ((f64, f64), usize) {
    let Some((lo, hi)) = extent(values) else {
        return ((0.0, 1.0), 2);
    };
    let span = hi - lo;
    if span < 1.0 {
        return ((lo - 0.5, hi + 0.5), 1);
    }
    let pad = (span * 0.02).min(0.5);
    let ticks = ((span.round() as usize) + 1).min(10);
    ((lo - pad, hi + pad), ticks)
}

/// Diverging colour for `t` in [-1, 1]: blue below 0, white at exactly 0, red above (ColorBrewer
/// RdBu, reversed), for differences whose sign matters.
pub fn diverging(t: f64) -> RGBColor {
    const NEG: [(f64, f64, f64); 3] = [
        (255.0, 255.0, 255.0),
        (146.0, 197.0, 222.0),
        (33.0, 102.0, 172.0),
    ];
    const POS: [(f64, f64, f64); 3] = [
        (255.0, 255.0, 255.0),
        (244.0, 165.0, 130.0),
        (178.0, 24.0, 43.0),
    ];
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let stops = if t < 0.0 { NEG } else { POS };
    let x = t.abs() * 2.0;
    let i = (x.floor() as usize).min(1);
    let f = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// How a heatmap maps values to colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Viridis from the smallest to the largest finite value.
    Sequential,
    /// Viridis over a fixed range (values outside are clamped), e.g. accuracies in [0, 1].
    Fixed(f64, f64),
    /// Blue-white-red, symmetric around 0: the ends are -m and +m for the largest |value| m.
    Diverging,
}

/// A scale resolved against the data: the value range and the colour of a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorScale {
    pub lo: f64,
    pub hi: f64,
    pub diverging: bool,
}

impl ColorScale {
    /// Resolve `scale` over the finite `values`; `None` when there is none (and no fixed range).
    pub fn new(scale: Scale, values: impl IntoIterator<Item = f64>) -> Option<ColorScale> {
        let range = extent(values.into_iter().filter(|v| v.is_finite()));
        let plain = |lo, hi| ColorScale {
            lo,
            hi,
            diverging: false,
        };
        match (scale, range) {
            (Scale::Fixed(a, b), _) if b > a => Some(plain(a, b)),
            (_, None) => None,
            (Scale::Diverging, Some((lo, hi))) => {
                let m = lo.abs().max(hi.abs());
                // An all-zero difference: a unit window, so 0 stays white.
                let m = if m > 0.0 { m } else { 1.0 };
                Some(ColorScale {
                    lo: -m,
                    hi: m,
                    diverging: true,
                })
            }
            (_, Some((lo, hi))) => Some(plain(lo, hi)),
        }
    }

    /// Position of `v` on the scale: [0, 1] for sequential scales, [-1, 1] for diverging ones.
    pub fn t(&self, v: f64) -> f64 {
        if self.diverging {
            (v / self.hi).clamp(-1.0, 1.0)
        } else if self.hi > self.lo {
            ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    pub fn color(&self, v: f64) -> RGBColor {
        if self.diverging {
            diverging(self.t(v))
        } else {
            viridis(self.t(v))
        }
    }

    /// Whether text on the colour of `v` should be dark (light cells).
    pub fn dark_ink(&self, v: f64) -> bool {
        if self.diverging {
            self.t(v).abs() < 0.6
        } else {
            self.t(v) > 0.6
        }
    }

    /// The colour at fraction `f` of the bar from bottom (`lo`) to top (`hi`).
    pub fn at(&self, f: f64) -> RGBColor {
        self.color(self.lo + (self.hi - self.lo) * f)
    }
}
