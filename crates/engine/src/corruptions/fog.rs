//! Fog: a diamond-square plasma fractal added to the image (`make_cifar_c.plasma_fractal`).

use super::Dims;
use fairtat_core::util::Rng;

const FOG: [(f64, f64); 5] = [(0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)];

/// A `size x size` plasma map in [0, 1] (`size` a power of two), wrapping toroidally like the
/// reference's `np.roll`. `wibble` starts at 100 and is divided by `decay` per level.
pub(crate) fn plasma_fractal(size: usize, decay: f64, rng: &mut Rng) -> Vec<f64> {
    debug_assert!(size.is_power_of_two());
    let mut m = vec![0.0f64; size * size];
    let mut wibble = 100.0f64;
    let mut step = size;
    let at = |i: usize| i % size;
    while step >= 2 {
        let half = step / 2;
        // `array / 4 + wibble * U(-wibble, wibble)` as in the reference.
        let noisy =
            |sum: f64, rng: &mut Rng| sum / 4.0 + wibble * (2.0 * rng.next_f64() - 1.0) * wibble;
        // Squares: centre of each step-cell = mean of its four corners.
        for y in (0..size).step_by(step) {
            for x in (0..size).step_by(step) {
                let sum = m[y * size + x]
                    + m[at(y + step) * size + x]
                    + m[y * size + at(x + step)]
                    + m[at(y + step) * size + at(x + step)];
                m[(y + half) * size + x + half] = noisy(sum, rng);
            }
        }
        // Diamonds: edge midpoints from the two adjacent corners and the two adjacent centres.
        for y in (0..size).step_by(step) {
            for x in (0..size).step_by(step) {
                // Top edge midpoint (y, x + half).
                let sum = m[y * size + x]
                    + m[y * size + at(x + step)]
                    + m[(y + half) * size + x + half]
                    + m[at(y + size - half) * size + x + half];
                m[y * size + x + half] = noisy(sum, rng);
            }
        }
        for y in (0..size).step_by(step) {
            for x in (0..size).step_by(step) {
                // Left edge midpoint (y + half, x).
                let sum = m[y * size + x]
                    + m[at(y + step) * size + x]
                    + m[(y + half) * size + x + half]
                    + m[(y + half) * size + at(x + size - half)];
                m[(y + half) * size + x] = noisy(sum, rng);
            }
        }
        step /= 2;
        wibble /= decay;
    }
    let min = m.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = m.iter().cloned().fold(f64::NEG_INFINITY, f64::max) - min;
    m.iter()
        .map(|v| if max > 0.0 { (v - min) / max } else { 0.0 })
        .collect()
}

/// `clip((x + strength * plasma) * max(x) / (max(x) + strength))`, the plasma (map size: next
/// power of two >= max(h, w), cropped) shared by all channels.
pub fn fog(x: &[f32], d: Dims, s: usize, rng: &mut Rng) -> Vec<f32> {
    let (strength, decay) = FOG[s];
    let size = d.h.max(d.w).next_power_of_two().max(2);
    let plasma = plasma_fractal(size, decay, rng);
    let max_val = x.iter().cloned().fold(0.0f32, f32::max) as f64;
    let scale = max_val / (max_val + strength);
    let mut out = Vec::with_capacity(x.len());
    for ch in x.chunks(d.plane()) {
        for (i, &v) in ch.iter().enumerate() {
            let (y, xx) = (i / d.w, i % d.w);
            let f = v as f64 + strength * plasma[y * size + xx];
            out.push((f * scale) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plasma_spans_unit_interval_and_is_smooth() {
        let p = plasma_fractal(32, 3.0, &mut Rng::new(1));
        let min = p.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(min == 0.0 && (max - 1.0).abs() < 1e-12);
        // Neighbours are closer than random pairs: the map is low-frequency.
        let neigh: f64 = (0..31 * 32).map(|i| (p[i] - p[i + 32]).abs()).sum::<f64>() / 992.0;
        assert!(neigh < 0.15, "mean neighbour difference {neigh}");
    }
}
