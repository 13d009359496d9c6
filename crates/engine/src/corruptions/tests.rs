//! Unit tests of the dispatcher: errors, the §7 tables checked by hand, corner-case shapes.

use super::geometric::pixelate_size;
use super::*;

fn ramp(c: usize, h: usize, w: usize) -> Vec<f32> {
    (0..c * h * w)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect()
}

#[test]
fn errors_list_allowed_values() {
    let x = ramp(1, 4, 4);
    let mut rng = Rng::new(0);
    let e = corrupt("frost", 1, &x, 1, 4, 4, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"frost\"") && e.contains("gaussian_noise") && e.contains("jpeg_compression"),
        "{e}"
    );
    for bad in [0u8, 6, 255] {
        let e = corrupt("contrast", bad, &x, 1, 4, 4, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&bad.to_string()) && e.contains("1, 2, 3, 4, 5"),
            "{e}"
        );
    }
    let e = corrupt("contrast", 1, &x, 3, 4, 4, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("16") && e.contains("48"), "{e}");
}

#[test]
fn contrast_matches_formula_by_hand() {
    // One channel [0.2, 0.4, 0.6, 1.0]: mean 0.55; severity 3 has c = 0.4.
    let x = [0.2f32, 0.4, 0.6, 1.0];
    let y = corrupt("contrast", 3, &x, 1, 2, 2, &mut Rng::new(0)).unwrap();
    let want = [0.41f32, 0.49, 0.57, 0.73];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
    // Means are per channel: a constant channel stays put next to a varying one.
    let x = [0.3f32, 0.3, 0.0, 1.0];
    let y = corrupt("contrast", 5, &x, 2, 1, 2, &mut Rng::new(0)).unwrap();
    assert_eq!(&y[..2], &[0.3, 0.3]);
    assert!((y[2] - (0.5 - 0.5 * 0.15)).abs() < 1e-6 && (y[3] - (0.5 + 0.5 * 0.15)).abs() < 1e-6);
}

#[test]
fn pixelate_sizes_match_table() {
    let sizes: Vec<usize> = (0..5).map(|s| pixelate_size(32, s)).collect();
    assert_eq!(sizes, vec![30, 28, 27, 24, 20]);
    assert_eq!(pixelate_size(28, 4), 18);
    assert_eq!(pixelate_size(1, 4), 1);
}

#[test]
fn pixelate_keeps_constant_blocks_and_mean() {
    // Box weights of every output pixel sum to one and every input pixel is fully covered, so
    // the down-and-up round trip preserves the image mean.
    let x = ramp(1, 32, 32);
    for sev in 1..=5 {
        let y = corrupt("pixelate", sev, &x, 1, 32, 32, &mut Rng::new(0)).unwrap();
        let (mx, my) = (
            x.iter().sum::<f32>() / 1024.0,
            y.iter().sum::<f32>() / 1024.0,
        );
        assert!((mx - my).abs() < 1e-3, "severity {sev}: {mx} vs {my}");
    }
}

#[test]
fn brightness_and_saturate_on_grey_images() {
    let x = [0.0f32, 0.5, 0.9];
    let y = corrupt("brightness", 5, &x, 1, 1, 3, &mut Rng::new(0)).unwrap();
    assert!((y[0] - 0.3).abs() < 1e-6 && (y[1] - 0.8).abs() < 1e-6 && y[2] == 1.0);
    let y = corrupt("saturate", 5, &x, 1, 1, 3, &mut Rng::new(0)).unwrap();
    assert_eq!(y, x.to_vec());
    // On RGB, a grey pixel keeps zero hue but severity 5 adds 0.2 saturation; V is unchanged.
    let y = corrupt("saturate", 5, &[0.5, 0.5, 0.5], 3, 1, 1, &mut Rng::new(0)).unwrap();
    assert!(
        (y[0] - 0.5).abs() < 1e-6 && (y[1] - 0.4).abs() < 1e-6,
        "{y:?}"
    );
}

#[test]
fn tiny_and_odd_shapes_do_not_panic() {
    for &(c, h, w) in &[(1, 1, 1), (3, 1, 5), (2, 3, 2), (4, 9, 7)] {
        let x = ramp(c, h, w);
        for name in CORRUPTIONS {
            for sev in 1..=5 {
                let y = corrupt(name, sev, &x, c, h, w, &mut Rng::new(1)).unwrap();
                assert_eq!(y.len(), x.len(), "{name} {sev} {c}x{h}x{w}");
                assert!(y.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
            }
        }
    }
    assert!(corrupt("fog", 1, &[], 0, 0, 0, &mut Rng::new(1))
        .unwrap()
        .is_empty());
}

#[test]
fn glass_blur_only_moves_pixels_at_tiny_sigma() {
    // Severity 1 blurs with sigma 0.05 (kernel radius int(4*0.05 + 0.5) = 0: the identity), so
    // the result is the uint8-quantised input with pixels swapped among neighbours: the same
    // multiset of values in a different arrangement.
    let (c, h, w) = (1, 8, 8);
    // A quarter step above each uint8 level, so the truncating quantisation is exact.
    let x: Vec<f32> = (0..h * w).map(|i| (i as f32 + 0.25) / 255.0).collect();
    let y = corrupt("glass_blur", 1, &x, c, h, w, &mut Rng::new(3)).unwrap();
    let q = |v: &[f32]| {
        let mut s: Vec<u32> = v.iter().map(|&a| (a * 255.0).round() as u32).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(q(&x), q(&y));
    let moved = y
        .iter()
        .enumerate()
        .filter(|(i, v)| (**v * 255.0).round() as usize != *i)
        .count();
    assert!(moved > 0, "no pixel was swapped");
}
