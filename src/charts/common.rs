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
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let width = hi - lo;
    let min_width = 1e-9 * lo.abs().max(hi.abs()).max(1.0);
    if width < min_width {
        let half = (lo.abs() * 0.05).max(0.5);
        return (lo - half, hi + half);
    }
    (lo - width * pad, hi + width * pad)
}

/// A user-given range if it is usable, else `None`.
pub fn valid_range(r: Option<(f64, f64)>) -> Option<(f64, f64)> {
    let (lo, hi) = r?;
    let (lo, hi) = (finite(lo)?, finite(hi)?);
    (hi - lo > 1e-12 * lo.abs().max(hi.abs()).max(1.0)).then_some((lo, hi))
}

/// Compact tick label: up to 4 significant decimals, scientific for very large or small values.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let a = x.abs();
    if a == 0.0 {
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
