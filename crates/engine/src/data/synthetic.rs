//! [`Dataset::synthetic`]: small, deterministic, easily learnable data for tests.
//!
//! Each class has a fixed prototype: a coarse grid (at most 4x4 blocks per channel) of bright
//! and dark blocks. Images are the prototype plus uniform noise. Prototypes depend only on the
//! class index and the image shape, never on `seed`, so a training set and a test set drawn
//! with different seeds describe the same task; the seed only changes the noise.

use super::Dataset;
use fairtat_core::util::Rng;

/// Stream for prototypes; fixed so that prototypes do not follow the caller's seed.
const PROTOTYPE_STREAM: u64 = 0x5EED_C1A5_5E55;
const DARK: i32 = 60;
const BRIGHT: i32 = 195;
/// Noise amplitude: well below half the bright/dark gap so the task stays easy to learn.
const NOISE: i32 = 45;
/// Prototypes of two classes differ in at least this many blocks (when the grid allows it).
const MIN_DISTANCE: usize = 3;

impl Dataset {
    /// `num_classes * per_class` images of shape `channels x height x width`; image `i` has
    /// label `i % num_classes` (classes interleaved, as in a shuffled real file). Class names
    /// are `class_0`, `class_1`, ... Labels are `u8`, so `num_classes` must be at most 256.
    pub fn synthetic(
        num_classes: usize,
        per_class: usize,
        channels: usize,
        height: usize,
        width: usize,
        seed: u64,
    ) -> Dataset {
        let grid = (height.min(4), width.min(4));
        let prototypes = prototypes(num_classes, channels, grid);
        let n = num_classes * per_class;
        let len = channels * height * width;
        let mut rng = Rng::derive(seed, &[PROTOTYPE_STREAM, 1]);
        let mut images = Vec::with_capacity(n * len);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % num_classes;
            labels.push(class as u8);
            let proto = &prototypes[class];
            for c in 0..channels {
                for y in 0..height {
                    let by = y * grid.0 / height;
                    for x in 0..width {
                        let bx = x * grid.1 / width;
                        let base = if proto[(c * grid.0 + by) * grid.1 + bx] {
                            BRIGHT
                        } else {
                            DARK
                        };
                        let noise = rng.below(2 * NOISE as usize + 1) as i32 - NOISE;
                        images.push((base + noise).clamp(0, 255) as u8);
                    }
                }
            }
        }
        Dataset {
            images,
            labels,
            channels,
            height,
            width,
            class_names: (0..num_classes).map(|k| format!("class_{k}")).collect(),
        }
    }
}

/// One on/off block pattern per class, redrawn (a bounded number of times) while it is too
/// close to an earlier class's pattern.
fn prototypes(num_classes: usize, channels: usize, grid: (usize, usize)) -> Vec<Vec<bool>> {
    let blocks = channels * grid.0 * grid.1;
    let mut rng = Rng::derive(
        PROTOTYPE_STREAM,
        &[channels as u64, grid.0 as u64, grid.1 as u64],
    );
    let mut out: Vec<Vec<bool>> = Vec::with_capacity(num_classes);
    for _ in 0..num_classes {
        let mut best = Vec::new();
        let mut best_dist = 0;
        for _attempt in 0..64 {
            let p: Vec<bool> = (0..blocks).map(|_| rng.bool()).collect();
            let dist = out
                .iter()
                .map(|q| q.iter().zip(&p).filter(|(a, b)| a != b).count())
                .min()
                .unwrap_or(blocks);
            if dist > best_dist || best.is_empty() {
                best_dist = dist;
                best = p;
            }
            if best_dist >= MIN_DISTANCE.min(blocks) {
                break;
            }
        }
        out.push(best);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_seed_changes_only_noise() {
        let a = Dataset::synthetic(5, 8, 3, 8, 8, 1);
        let b = Dataset::synthetic(5, 8, 3, 8, 8, 1);
        let c = Dataset::synthetic(5, 8, 3, 8, 8, 2);
        assert_eq!(a, b);
        assert_ne!(a.images, c.images);
        assert_eq!(a.labels, c.labels);
        assert_eq!(a.len(), 40);
        assert_eq!(a.images.len(), 40 * 3 * 64);
        assert_eq!(a.class_counts(), vec![8; 5]);
        // Same class, different seeds: the class means agree far better than with any other class.
        let mean = |d: &Dataset, k: usize| -> Vec<f64> {
            let idx: Vec<usize> = (0..d.len())
                .filter(|&i| d.labels[i] as usize == k)
                .collect();
            (0..d.image_len())
                .map(|p| idx.iter().map(|&i| d.image(i)[p] as f64).sum::<f64>() / idx.len() as f64)
                .collect()
        };
        let dist = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(x, y)| (x - y).abs()).sum::<f64>();
        for k in 0..5 {
            let same = dist(&mean(&a, k), &mean(&c, k));
            for j in (0..5).filter(|&j| j != k) {
                assert!(
                    same * 3.0 < dist(&mean(&a, k), &mean(&c, j)),
                    "class {k} vs {j}"
                );
            }
        }
    }

    #[test]
    fn prototypes_are_distinct() {
        let p = prototypes(100, 1, (4, 4));
        for i in 0..p.len() {
            for j in 0..i {
                assert_ne!(p[i], p[j], "classes {i} and {j} share a prototype");
            }
        }
    }
}
