//! Blurs: Gaussian, defocus (aliased disk) and zoom blur, plus the filtering and border helpers
//! the geometric corruptions share.

use super::Dims;

const GAUSSIAN_SIGMA: [f64; 5] = [0.4, 0.6, 0.7, 0.8, 1.0];
const DEFOCUS: [(f64, f64); 5] = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)];
/// Largest zoom factor per severity; factors run from 1.00 in steps of 0.01
/// (`np.arange(1, 1.06, 0.01)` ...).
const ZOOM_MAX_STEPS: [usize; 5] = [5, 10, 15, 20, 25];

/// How an index outside `0..n` is mapped back inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Border {
    /// `aaa|abcd|ddd` (scipy/skimage `nearest`).
    Nearest,
    /// `dcb|abcd|cba` (OpenCV `BORDER_REFLECT_101`, scipy `mirror`).
    Reflect101,
    /// `cba|abcd|dcb` (scipy `reflect`, half-sample symmetric).
    Reflect,
}

pub(crate) fn border(i: isize, n: usize, mode: Border) -> usize {
    let n_i = n as isize;
    if (0..n_i).contains(&i) {
        return i as usize;
    }
    match mode {
        Border::Nearest => i.clamp(0, n_i - 1) as usize,
        Border::Reflect101 => {
            if n == 1 {
                return 0;
            }
            let period = 2 * (n_i - 1);
            let m = i.rem_euclid(period);
            (if m < n_i { m } else { period - m }) as usize
        }
        Border::Reflect => {
            let period = 2 * n_i;
            let m = i.rem_euclid(period);
            (if m < n_i { m } else { period - 1 - m }) as usize
        }
    }
}

/// Normalised 1D Gaussian with radius `int(truncate * sigma + 0.5)` (scipy `gaussian_filter1d`).
pub(crate) fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (truncate * sigma + 0.5) as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i * i) as f64 / (sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// Separable filter of one `h x w` plane with the same odd-length 1D kernel along both axes.
pub(crate) fn separable(plane: &[f64], h: usize, w: usize, k: &[f64], mode: Border) -> Vec<f64> {
    let rows = correlate_1d(plane, h, w, k, mode, true);
    correlate_1d(&rows, h, w, k, mode, false)
}

/// 1D correlation of one `h x w` plane with the odd-length kernel `k`, along rows (`along_x`)
/// or along columns.
fn correlate_1d(
    src: &[f64],
    h: usize,
    w: usize,
    k: &[f64],
    mode: Border,
    along_x: bool,
) -> Vec<f64> {
    let r = (k.len() / 2) as isize;
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            let at = |j: usize| {
                let off = j as isize - r;
                if along_x {
                    y * w + border(x as isize + off, w, mode)
                } else {
                    border(y as isize + off, h, mode) * w + x
                }
            };
            out[y * w + x] = k.iter().enumerate().map(|(j, kv)| kv * src[at(j)]).sum();
        }
    }
    out
}

/// 2D correlation of one plane with a square odd-sized kernel `k` (`ks x ks`).
fn filter2d(plane: &[f64], h: usize, w: usize, k: &[f64], ks: usize, mode: Border) -> Vec<f64> {
    let r = (ks / 2) as isize;
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for ky in 0..ks {
                let sy = border(y as isize + ky as isize - r, h, mode);
                for kx in 0..ks {
                    let sx = border(x as isize + kx as isize - r, w, mode);
                    acc += k[ky * ks + kx] * plane[sy * w + sx];
                }
            }
            out[y * w + x] = acc;
        }
    }
    out
}

/// Apply `f` to each channel plane (as f64) and collect the result as f32.
pub(crate) fn per_plane(x: &[f32], d: Dims, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for ch in x.chunks(d.plane()) {
        let p: Vec<f64> = ch.iter().map(|&v| v as f64).collect();
        out.extend(f(&p).into_iter().map(|v| v as f32));
    }
    out
}

/// skimage `gaussian(x, sigma, channel_axis=-1)`: truncate 4, `nearest` border.
pub fn gaussian_blur(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let k = gaussian_kernel(GAUSSIAN_SIGMA[s], 4.0);
    per_plane(x, d, |p| separable(p, d.h, d.w, &k, Border::Nearest))
}

/// The aliased disk of `make_cifar_c.disk`: a 17x17 (grid -8..8) indicator of
/// `x^2 + y^2 <= radius^2`, normalised, then smoothed by OpenCV's 3x3 Gaussian with
/// `alias_sigma`; returned cropped to its non-zero support (odd, centred).
pub(crate) fn disk_kernel(radius: f64, alias_sigma: f64) -> (Vec<f64>, usize) {
    const N: usize = 17;
    let mut disk = vec![0.0; N * N];
    for y in 0..N {
        for x in 0..N {
            let (dy, dx) = (y as f64 - 8.0, x as f64 - 8.0);
            if dx * dx + dy * dy <= radius * radius {
                disk[y * N + x] = 1.0;
            }
        }
    }
    let sum: f64 = disk.iter().sum();
    disk.iter_mut().for_each(|v| *v /= sum);
    // OpenCV's fixed-size Gaussian: exp(-(i - 1)^2 / (2 sigma^2)), i = 0..3, normalised.
    let g: Vec<f64> = (0..3)
        .map(|i: i32| (-((i - 1) * (i - 1)) as f64 / (2.0 * alias_sigma * alias_sigma)).exp())
        .collect();
    let gs: f64 = g.iter().sum();
    let g: Vec<f64> = g.into_iter().map(|v| v / gs).collect();
    let smooth = separable(&disk, N, N, &g, Border::Reflect101);
    // Support: the largest offset from the centre with a non-zero weight.
    let mut r = 0;
    for y in 0..N {
        for x in 0..N {
            if smooth[y * N + x] > 0.0 {
                r = r
                    .max((y as isize - 8).unsigned_abs())
                    .max((x as isize - 8).unsigned_abs());
            }
        }
    }
    let ks = 2 * r + 1;
    let mut k = Vec::with_capacity(ks * ks);
    for y in 8 - r..=8 + r {
        for x in 8 - r..=8 + r {
            k.push(smooth[y * N + x]);
        }
    }
    (k, ks)
}

/// Defocus blur: the aliased disk kernel, `cv2.filter2D` per channel (reflect-101 border).
pub fn defocus_blur(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let (radius, alias) = DEFOCUS[s];
    let (k, ks) = disk_kernel(radius, alias);
    per_plane(x, d, |p| filter2d(p, d.h, d.w, &k, ks, Border::Reflect101))
}

/// Bilinear sample of a plane at (y, x) with the given border for the four neighbours.
pub(crate) fn bilinear(p: &[f64], h: usize, w: usize, y: f64, x: f64, mode: Border) -> f64 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let (y0, x0) = (y0 as isize, x0 as isize);
    let at = |yy: isize, xx: isize| p[border(yy, h, mode) * w + border(xx, w, mode)];
    (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
        + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))
}

/// `clipped_zoom`: crop the centre `ceil(n / z)` pixels, zoom them back by `z` with scipy's
/// order-1 `zoom` (output size `round(ceil(n/z) * z)`, corners aligned), trim to `n`.
fn clipped_zoom(p: &[f64], h: usize, w: usize, z: f64) -> Vec<f64> {
    let axis = |n: usize| {
        let cn = ((n as f64 / z).ceil() as usize).clamp(1, n);
        let top = (n - cn) / 2;
        let out_n = ((cn as f64 * z).round() as usize).max(n);
        let trim = (out_n - n) / 2;
        // Source coordinate (in the full plane) of each kept output index.
        (0..n)
            .map(|o| {
                let oo = (o + trim) as f64;
                let src = if out_n > 1 {
                    oo * (cn as f64 - 1.0) / (out_n as f64 - 1.0)
                } else {
                    0.0
                };
                top as f64 + src
            })
            .collect::<Vec<f64>>()
    };
    let (ys, xs) = (axis(h), axis(w));
    let mut out = Vec::with_capacity(h * w);
    for &y in &ys {
        for &x in &xs {
            out.push(bilinear(p, h, w, y, x, Border::Nearest));
        }
    }
    out
}

/// Zoom blur: the mean of the image and its centre zooms by 1.00, 1.01, ... up to the severity's
/// maximum (the factor 1.00 included, as `np.arange(1, 1.06, 0.01)` does).
pub fn zoom_blur(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    let steps = ZOOM_MAX_STEPS[s];
    per_plane(x, d, |p| {
        let mut acc = p.to_vec();
        for i in 0..=steps {
            let z = 1.0 + 0.01 * i as f64;
            for (a, v) in acc.iter_mut().zip(clipped_zoom(p, d.h, d.w, z)) {
                *a += v;
            }
        }
        let n = (steps + 2) as f64;
        acc.into_iter().map(|v| v / n).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders() {
        let got: Vec<usize> = (-3..7).map(|i| border(i, 4, Border::Reflect101)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        let got: Vec<usize> = (-3..7).map(|i| border(i, 4, Border::Reflect)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
        assert_eq!(border(-5, 4, Border::Nearest), 0);
        assert_eq!(border(9, 4, Border::Nearest), 3);
        assert_eq!(border(-2, 1, Border::Reflect101), 0);
    }

    #[test]
    fn kernels_are_normalised() {
        let k = gaussian_kernel(1.0, 4.0);
        assert_eq!(k.len(), 9);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for (r, a) in DEFOCUS {
            let (k, ks) = disk_kernel(r, a);
            assert_eq!(k.len(), ks * ks);
            assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-9, "radius {r}");
        }
        // radius 0.3 keeps only the centre before smoothing: a 3x3 kernel.
        assert_eq!(disk_kernel(0.3, 0.4).1, 3);
        assert_eq!(disk_kernel(1.5, 0.1).1, 5);
    }

    #[test]
    fn zoom_by_one_is_identity() {
        let p: Vec<f64> = (0..20).map(|v| v as f64).collect();
        let z = clipped_zoom(&p, 4, 5, 1.0);
        for (a, b) in p.iter().zip(&z) {
            assert!((a - b).abs() < 1e-9);
        }
    }
}
