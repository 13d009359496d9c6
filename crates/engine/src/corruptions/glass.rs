//! Glass blur: Gaussian blur, local pixel swaps, Gaussian blur again
//! (`hendrycks/robustness:ImageNet-C/create_c/make_cifar_c.py` `glass_blur`, CIFAR parameters of
//! `shared/spec/algorithms.md` §7).
//!
//! The reference quantises to uint8 between the first blur and the swaps (`np.uint8(... * 255)`,
//! which truncates); we keep that so the swap pass sees the same values. The swap scan runs from
//! the bottom-right corner (`range(32 - d, d, -1)`) and draws the offsets from `randint(-d, d)`,
//! i.e. from `{-d, ..., d - 1}` (upper bound exclusive): with `d = 1` only `-1` or `0`.

use super::blur::{gaussian_kernel, per_plane, separable, Border};
use super::Dims;
use fairtat_core::util::Rng;

/// (sigma, max_delta, iterations) per severity.
const GLASS: [(f64, usize, usize); 5] = [
    (0.05, 1, 1),
    (0.25, 1, 1),
    (0.4, 1, 1),
    (0.25, 1, 2),
    (0.4, 1, 2),
];

/// skimage `gaussian(x, sigma, channel_axis=-1)` on every channel plane.
fn blur(x: &[f32], d: Dims, sigma: f64) -> Vec<f32> {
    let k = gaussian_kernel(sigma, 4.0);
    per_plane(x, d, |p| separable(p, d.h, d.w, &k, Border::Nearest))
}

pub fn glass_blur(x: &[f32], d: Dims, s: usize, rng: &mut Rng) -> Vec<f32> {
    let (sigma, delta, iterations) = GLASS[s];
    let mut img: Vec<f32> = blur(x, d, sigma)
        .into_iter()
        .map(|v| ((v.clamp(0.0, 1.0) * 255.0) as u8) as f32 / 255.0)
        .collect();
    let plane = d.plane();
    // The reference swaps whole pixels (all channels together).
    let swap = |img: &mut Vec<f32>, a: usize, b: usize| {
        for ch in 0..d.c {
            img.swap(ch * plane + a, ch * plane + b);
        }
    };
    let span = 2 * delta;
    for _ in 0..iterations {
        let mut h = d.h as isize - delta as isize;
        while h > delta as isize {
            let mut w = d.w as isize - delta as isize;
            while w > delta as isize {
                // numpy draws (dx, dy) in this order.
                let dx = rng.below(span) as isize - delta as isize;
                let dy = rng.below(span) as isize - delta as isize;
                let (hp, wp) = (h + dy, w + dx);
                let inside = |v: isize, n: usize| (0..n as isize).contains(&v);
                if inside(h, d.h) && inside(w, d.w) && inside(hp, d.h) && inside(wp, d.w) {
                    swap(
                        &mut img,
                        h as usize * d.w + w as usize,
                        hp as usize * d.w + wp as usize,
                    );
                }
                w -= 1;
            }
            h -= 1;
        }
    }
    blur(&img, d, sigma)
}
