//! Photometric corruptions: contrast, brightness (HSV V) and saturate (HSV S).
//!
//! HSV follows skimage `rgb2hsv`/`hsv2rgb` (H in [0, 1)). Images that are not RGB (`c != 3`) have
//! no hue or saturation: brightness adds to every channel as V, saturate returns the image.

use super::Dims;

const CONTRAST: [f64; 5] = [0.75, 0.5, 0.4, 0.3, 0.15];
const BRIGHTNESS: [f64; 5] = [0.05, 0.1, 0.15, 0.2, 0.3];
const SATURATE: [(f64, f64); 5] = [(0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)];

/// `(x - mean) * c + mean` with the mean taken per channel over the image.
pub fn contrast(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let c = CONTRAST[s];
    let mut out = Vec::with_capacity(x.len());
    for ch in x.chunks(d.plane()) {
        let mean = ch.iter().map(|&v| v as f64).sum::<f64>() / ch.len() as f64;
        out.extend(ch.iter().map(|&v| ((v as f64 - mean) * c + mean) as f32));
    }
    out
}

pub(crate) fn rgb_to_hsv(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let v = max;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    let h = if delta <= 0.0 {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / delta + 2.0) / 6.0
    } else {
        ((r - g) / delta + 4.0) / 6.0
    };
    (h, s, v)
}

pub(crate) fn hsv_to_rgb(h: f64, s: f64, v: f64) -> (f64, f64, f64) {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Apply `f` to the HSV triple of every pixel of a 3-channel CHW image.
fn map_hsv(x: &[f32], d: Dims, f: impl Fn(f64, f64, f64) -> (f64, f64, f64)) -> Vec<f32> {
    let n = d.plane();
    let mut out = x.to_vec();
    for i in 0..n {
        let (h, s, v) = rgb_to_hsv(x[i] as f64, x[n + i] as f64, x[2 * n + i] as f64);
        let (h, s, v) = f(h, s, v);
        let (r, g, b) = hsv_to_rgb(h, s, v);
        out[i] = r as f32;
        out[n + i] = g as f32;
        out[2 * n + i] = b as f32;
    }
    out
}

/// HSV `V = clip(V + c, 0, 1)`; on non-RGB images every channel is treated as V.
pub fn brightness(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let c = BRIGHTNESS[s];
    if d.c != 3 {
        return x
            .iter()
            .map(|&v| (v as f64 + c).clamp(0.0, 1.0) as f32)
            .collect();
    }
    map_hsv(x, d, |h, sat, v| (h, sat, (v + c).clamp(0.0, 1.0)))
}

/// HSV `S = clip(S * mul + add, 0, 1)`; the identity on non-RGB images.
pub fn saturate(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let (mul, add) = SATURATE[s];
    if d.c != 3 {
        return x.to_vec();
    }
    map_hsv(x, d, |h, sat, v| (h, (sat * mul + add).clamp(0.0, 1.0), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip() {
        for &(r, g, b) in &[
            (0.2, 0.4, 0.9),
            (0.9, 0.1, 0.3),
            (0.5, 0.5, 0.5),
            (0.0, 0.0, 0.0),
            (1.0, 0.8, 0.1),
            (0.3, 0.9, 0.6),
        ] {
            let (h, s, v) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s, v);
            assert!((r - r2).abs() + (g - g2).abs() + (b - b2).abs() < 1e-12);
        }
        // Pure red, green, blue have hues 0, 1/3, 2/3.
        assert!((rgb_to_hsv(0.0, 1.0, 0.0).0 - 1.0 / 3.0).abs() < 1e-12);
        assert!((rgb_to_hsv(0.0, 0.0, 1.0).0 - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn saturate_zero_mul_gives_grey() {
        // Severity 2 multiplies S by 0.1: channels move towards V (the max).
        let d = Dims { c: 3, h: 1, w: 1 };
        let out = saturate(&[0.8, 0.2, 0.4], d, 1);
        assert!((out[0] - 0.8).abs() < 1e-6);
        assert!((out[1] - (0.8 - 0.1 * 0.6)).abs() < 1e-6, "{out:?}");
    }
}
