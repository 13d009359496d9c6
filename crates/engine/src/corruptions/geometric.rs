//! Geometric corruptions: pixelate (box down- and up-sampling) and the elastic transform.

use super::blur::{bilinear, gaussian_kernel, per_plane, separable, Border};
use super::Dims;
use fairtat_core::util::Rng;

const PIXELATE: [f64; 5] = [0.95, 0.9, 0.85, 0.75, 0.65];
/// (alpha, sigma, affine) as fractions of the image size (`make_cifar_c.py` multiplies by 32).
const ELASTIC: [(f64, f64, f64); 5] = [
    (0.0, 0.0, 0.08),
    (0.05, 0.2, 0.07),
    (0.08, 0.06, 0.06),
    (0.1, 0.04, 0.05),
    (0.1, 0.03, 0.03),
];

/// The intermediate size of pixelate at severity index `s` for a side of `n` pixels
/// (`int(n * c)`, at least 1): 30, 28, 27, 24, 20 for 32.
pub fn pixelate_size(n: usize, s: usize) -> usize {
    ((n as f64 * PIXELATE[s]) as usize).max(1)
}

/// 1D box resampling weights (PIL `Image.BOX`): output pixel `o` averages the input over
/// `[o * n_in / n_out, (o + 1) * n_in / n_out)`, partial pixels weighted by their overlap.
fn box_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f64)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut ws = Vec::new();
            let mut i = lo.floor() as usize;
            while (i as f64) < hi && i < n_in {
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    ws.push((i, overlap / scale));
                }
                i += 1;
            }
            ws
        })
        .collect()
}

/// Box-resize one `h x w` plane to `nh x nw`.
fn box_resize(p: &[f64], h: usize, w: usize, nh: usize, nw: usize) -> Vec<f64> {
    let (wy, wx) = (box_weights(h, nh), box_weights(w, nw));
    let mut tmp = vec![0.0; h * nw];
    for y in 0..h {
        for (ox, ws) in wx.iter().enumerate() {
            tmp[y * nw + ox] = ws.iter().map(|&(i, k)| k * p[y * w + i]).sum();
        }
    }
    let mut out = vec![0.0; nh * nw];
    for (oy, ws) in wy.iter().enumerate() {
        for x in 0..nw {
            out[oy * nw + x] = ws.iter().map(|&(i, k)| k * tmp[i * nw + x]).sum();
        }
    }
    out
}

/// Box-resize to `int(h c) x int(w c)` and back.
pub fn pixelate(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let (nh, nw) = (pixelate_size(d.h, s), pixelate_size(d.w, s));
    per_plane(x, d, |p| {
        let small = box_resize(p, d.h, d.w, nh, nw);
        box_resize(&small, nh, nw, d.h, d.w)
    })
}

/// The affine map taking the three points `from` onto `to` (`[a, b, c, d, e, f]`:
/// `x' = a x + b y + c`, `y' = d x + e y + f`), as `cv2.getAffineTransform`.
fn affine_from_points(from: [(f64, f64); 3], to: [(f64, f64); 3]) -> Option<[f64; 6]> {
    let [(x1, y1), (x2, y2), (x3, y3)] = from;
    let det = x1 * (y2 - y3) - y1 * (x2 - x3) + (x2 * y3 - x3 * y2);
    if det.abs() < 1e-12 {
        return None;
    }
    // Cramer's rule on [[x1 y1 1] [x2 y2 1] [x3 y3 1]] m = t.
    let solve = |t1: f64, t2: f64, t3: f64| {
        let a = (t1 * (y2 - y3) - y1 * (t2 - t3) + (t2 * y3 - t3 * y2)) / det;
        let b = (x1 * (t2 - t3) - t1 * (x2 - x3) + (x2 * t3 - x3 * t2)) / det;
        let c =
            (x1 * (y2 * t3 - y3 * t2) - y1 * (x2 * t3 - x3 * t2) + t1 * (x2 * y3 - x3 * y2)) / det;
        (a, b, c)
    };
    let (a, b, c) = solve(to[0].0, to[1].0, to[2].0);
    let (d, e, f) = solve(to[0].1, to[1].1, to[2].1);
    Some([a, b, c, d, e, f])
}

/// Elastic transform: a random affine warp (three points around the centre moved by up to
/// `affine * size`, reflect-101 border, bilinear), then per-pixel displacements
/// `gaussian(U(-1, 1), sigma * size, reflect, truncate 3) * alpha * size`, bilinear with
/// `reflect` border. The same displacement field is used for every channel. `size` is
/// `min(h, w)` (32 on CIFAR, where the table comes from).
pub fn elastic(x: &[f32], d: Dims, s: usize, rng: &mut Rng) -> Vec<f32> {
    let size = d.h.min(d.w) as f64;
    let (alpha, sigma, affine) = ELASTIC[s];
    let (alpha, sigma, affine) = (alpha * size, sigma * size, affine * size);
    // Points as (x, y), like OpenCV.
    let (cx, cy) = ((d.w / 2) as f64, (d.h / 2) as f64);
    let sq = (d.h.min(d.w) / 3) as f64;
    let pts1 = [(cx + sq, cy + sq), (cx + sq, cy - sq), (cx - sq, cy - sq)];
    let mut jitter = || (2.0 * rng.next_f64() - 1.0) * affine;
    let mut pts2 = pts1;
    for p in &mut pts2 {
        p.0 += jitter();
        p.1 += jitter();
    }
    // warpAffine samples the source at M^-1(dst): solve the map from pts2 back to pts1.
    let inv = affine_from_points(pts2, pts1).unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let field = |rng: &mut Rng| -> Vec<f64> {
        let u: Vec<f64> = (0..d.plane()).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
        let k = gaussian_kernel(sigma, 3.0);
        separable(&u, d.h, d.w, &k, Border::Reflect)
            .into_iter()
            .map(|v| v * alpha)
            .collect()
    };
    let dx = field(rng);
    let dy = field(rng);
    per_plane(x, d, |p| {
        let mut warped = vec![0.0; d.plane()];
        for y in 0..d.h {
            for xx in 0..d.w {
                let (fx, fy) = (xx as f64, y as f64);
                let sx = inv[0] * fx + inv[1] * fy + inv[2];
                let sy = inv[3] * fx + inv[4] * fy + inv[5];
                warped[y * d.w + xx] = bilinear(p, d.h, d.w, sy, sx, Border::Reflect101);
            }
        }
        let mut out = vec![0.0; d.plane()];
        for y in 0..d.h {
            for xx in 0..d.w {
                let i = y * d.w + xx;
                out[i] = bilinear(
                    &warped,
                    d.h,
                    d.w,
                    y as f64 + dy[i],
                    xx as f64 + dx[i],
                    Border::Reflect,
                );
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_weights_sum_to_one() {
        for &(a, b) in &[(32, 20), (20, 32), (28, 27), (5, 5), (7, 1)] {
            for ws in box_weights(a, b) {
                let s: f64 = ws.iter().map(|w| w.1).sum();
                assert!((s - 1.0).abs() < 1e-9, "{a}->{b}");
            }
        }
    }

    #[test]
    fn affine_solves_points() {
        let from = [(1.0, 2.0), (4.0, -1.0), (0.0, 0.0)];
        let to = [(3.0, 1.0), (2.0, 7.0), (-1.0, 0.5)];
        let m = affine_from_points(from, to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            assert!((m[0] * f.0 + m[1] * f.1 + m[2] - t.0).abs() < 1e-9);
            assert!((m[3] * f.0 + m[4] * f.1 + m[5] - t.1).abs() < 1e-9);
        }
        assert!(affine_from_points([(0.0, 0.0); 3], to).is_none());
    }
}
