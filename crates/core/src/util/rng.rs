//! A small deterministic RNG (xoshiro256** seeded through SplitMix64).
//!
//! Data order, augmentation and target sampling must be reproducible from `(seed, epoch)` alone so
//! that a resumed run sees the same batches as an uninterrupted one. An in-crate generator keeps
//! that guarantee independent of `rand`'s version churn. Reference: Blackman & Vigna,
//! "Scrambled linear pseudorandom number generators" (2021), <https://prng.di.unimi.it/>.

/// xoshiro256** state.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng {
            s: [
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
                splitmix64(&mut x),
            ],
        }
    }

    /// An independent stream for a sub-task, e.g. `Rng::derive(seed, &[epoch, STREAM_SHUFFLE])`.
    pub fn derive(seed: u64, parts: &[u64]) -> Self {
        let mut x = seed;
        for p in parts {
            x = splitmix64(&mut x) ^ p.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        Rng::new(x)
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); `n` must be positive. Lemire's multiply-shift (bias < 2^-64 * n).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// Index drawn with probability proportional to `weights` (non-negative, not all zero).
    /// Returns `None` when every weight is zero or not finite.
    pub fn categorical(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut u = self.next_f64() * total;
        let mut last = None;
        for (i, &w) in weights.iter().enumerate() {
            if w.is_finite() && w > 0.0 {
                if u < w {
                    return Some(i);
                }
                u -= w;
                last = Some(i);
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::derive(7, &[1]);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_and_f64_stay_in_range_and_cover_it() {
        let mut r = Rng::new(1);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            seen[r.below(7)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }

    #[test]
    fn categorical_skips_zero_weights() {
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            assert_ne!(r.categorical(&[1.0, 0.0, 2.0]), Some(1));
        }
        assert_eq!(r.categorical(&[0.0, 0.0]), None);
        assert_eq!(r.categorical(&[f64::NAN, 0.0]), None);
    }
}
