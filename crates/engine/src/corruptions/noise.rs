//! The noise family: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.
//!
//! Each value gets independent noise, as numpy does in `make_cifar_c.py`. The Poisson sampler is
//! our own (Knuth for small means, Hörmann's PTRS for large ones) so results depend only on
//! [`Rng`].

use fairtat_core::util::Rng;

const GAUSSIAN_SIGMA: [f64; 5] = [0.04, 0.06, 0.08, 0.09, 0.10];
const SHOT_SCALE: [f64; 5] = [500.0, 250.0, 100.0, 75.0, 50.0];
const IMPULSE_AMOUNT: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.07];
const SPECKLE_SIGMA: [f64; 5] = [0.06, 0.10, 0.12, 0.16, 0.20];

/// Standard normal by Box-Muller (one value per call; simplicity over speed).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.next_f64(); // (0, 1], so ln is finite
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `x + N(0, sigma^2)`.
pub fn gaussian(x: &[f32], s: usize, rng: &mut Rng) -> Vec<f32> {
    let sigma = GAUSSIAN_SIGMA[s];
    x.iter()
        .map(|&v| (v as f64 + sigma * normal(rng)) as f32)
        .collect()
}

/// `Poisson(x * c) / c`.
pub fn shot(x: &[f32], s: usize, rng: &mut Rng) -> Vec<f32> {
    let c = SHOT_SCALE[s];
    x.iter()
        .map(|&v| (poisson(v.max(0.0) as f64 * c, rng) as f64 / c) as f32)
        .collect()
}

/// skimage `random_noise(mode='s&p', amount, salt_vs_pepper=0.5)`: each value is replaced with
/// probability `amount`, by 1 or 0 with equal odds.
pub fn impulse(x: &[f32], s: usize, rng: &mut Rng) -> Vec<f32> {
    let amount = IMPULSE_AMOUNT[s];
    x.iter()
        .map(|&v| {
            let flip = rng.next_f64() < amount;
            let salt = rng.next_f64() < 0.5;
            match (flip, salt) {
                (true, true) => 1.0,
                (true, false) => 0.0,
                _ => v,
            }
        })
        .collect()
}

/// `x + x * N(0, sigma^2)`.
pub fn speckle(x: &[f32], s: usize, rng: &mut Rng) -> Vec<f32> {
    let sigma = SPECKLE_SIGMA[s];
    x.iter()
        .map(|&v| {
            let v = v as f64;
            (v + v * sigma * normal(rng)) as f32
        })
        .collect()
}

/// A Poisson(lambda) sample.
pub(crate) fn poisson(lambda: f64, rng: &mut Rng) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 0;
    }
    if lambda < 10.0 {
        // Knuth: count uniforms until their product drops below e^-lambda.
        let limit = (-lambda).exp();
        let mut k = 0u64;
        let mut p = rng.next_f64();
        while p > limit {
            k += 1;
            p *= rng.next_f64();
        }
        return k;
    }
    // PTRS, W. Hörmann, "The transformed rejection method for generating Poisson random
    // variables", Insurance: Mathematics and Economics 12 (1993); the variant numpy uses.
    let slam = lambda.sqrt();
    let loglam = lambda.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let invalpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.next_f64() - 0.5;
        let v = rng.next_f64();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let lhs = v.ln() + invalpha.ln() - (a / (us * us) + b).ln();
        if lhs <= -lambda + k * loglam - ln_gamma(k + 1.0) {
            return k as u64;
        }
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-13 relative accuracy).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, &c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= n as f64;
            assert!((ln_gamma(n as f64 + 1.0) - f.ln()).abs() < 1e-9, "n = {n}");
        }
    }

    #[test]
    fn poisson_mean_and_variance() {
        let mut rng = Rng::new(3);
        for &lambda in &[0.5, 4.0, 25.0, 300.0] {
            let n = 20_000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(lambda, &mut rng) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let tol = 4.0 * (lambda / n as f64).sqrt() + 1e-9;
            assert!((mean - lambda).abs() < tol, "lambda {lambda}: mean {mean}");
            assert!(
                (var / lambda - 1.0).abs() < 0.08,
                "lambda {lambda}: var {var}"
            );
        }
        assert_eq!(poisson(0.0, &mut rng), 0);
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut rng = Rng::new(5);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
