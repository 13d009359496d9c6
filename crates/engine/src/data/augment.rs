//! Training augmentation on raw `u8` CHW images: random crop after zero or reflect padding,
//! then a horizontal flip with probability 0.5 (algorithms.md §1.7, §5).
//!
//! Padding is never materialised: each output pixel is mapped back to a source pixel (or to
//! zero), which is both faster and free of temporary buffers. The order — crop, then flip —
//! matches torchvision's `RandomCrop` followed by `RandomHorizontalFlip`.

use fairtat_core::config::{DataSpec, PaddingMode};
use fairtat_core::util::Rng;

/// Training-time augmentation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Augment {
    /// Pixels of padding on each side before the random crop; 0 = no crop.
    pub padding: usize,
    /// Zero padding (torchvision `RandomCrop(padding=4)`) or numpy `reflect` (Rice et al., CFA,
    /// FAIR-TAT), which mirrors without repeating the edge pixel.
    pub mode: PaddingMode,
    pub flip: bool,
}

impl Augment {
    pub fn from_spec(spec: &DataSpec) -> Augment {
        Augment {
            padding: spec.crop_padding,
            mode: spec.padding_mode,
            flip: spec.flip,
        }
    }

    /// True when [`Augment::apply`] returns its input unchanged, whatever the RNG.
    pub fn is_identity(&self) -> bool {
        self.padding == 0 && !self.flip
    }

    /// One augmented copy of `image` (CHW, `channels * height * width` bytes).
    ///
    /// Draws, in order: the row offset and column offset (each uniform in `0..=2*padding`,
    /// only when padding > 0), then the flip (only when `flip`).
    pub fn apply(
        &self,
        image: &[u8],
        (channels, height, width): (usize, usize, usize),
        rng: &mut Rng,
    ) -> Vec<u8> {
        let mut out = vec![0u8; channels * height * width];
        self.apply_into(image, (channels, height, width), rng, &mut out);
        out
    }

    /// [`Augment::apply`] into `out` (same length as `image`).
    pub fn apply_into(
        &self,
        image: &[u8],
        (channels, height, width): (usize, usize, usize),
        rng: &mut Rng,
        out: &mut [u8],
    ) {
        let plane = height * width;
        debug_assert_eq!(image.len(), channels * plane);
        debug_assert_eq!(out.len(), channels * plane);
        let p = self.padding;
        let (dy, dx) = if p > 0 {
            (rng.below(2 * p + 1), rng.below(2 * p + 1))
        } else {
            (p, p)
        };
        let flip = self.flip && rng.bool();
        // Output coordinate o reads padded coordinate o + d, i.e. source o + d - p.
        let rows: Vec<Option<usize>> = (0..height)
            .map(|y| source_index(y as isize + dy as isize - p as isize, height, self.mode))
            .collect();
        let cols: Vec<Option<usize>> = (0..width)
            .map(|x| {
                let x = if flip { width - 1 - x } else { x };
                source_index(x as isize + dx as isize - p as isize, width, self.mode)
            })
            .collect();
        for c in 0..channels {
            let src = &image[c * plane..(c + 1) * plane];
            let dst = &mut out[c * plane..(c + 1) * plane];
            for (y, sy) in rows.iter().enumerate() {
                let dst_row = &mut dst[y * width..(y + 1) * width];
                match sy {
                    None => dst_row.fill(0),
                    Some(sy) => {
                        let src_row = &src[sy * width..(sy + 1) * width];
                        for (d, sx) in dst_row.iter_mut().zip(&cols) {
                            *d = sx.map_or(0, |sx| src_row[sx]);
                        }
                    }
                }
            }
        }
    }
}

/// The source index read for (possibly out-of-range) coordinate `i` along an axis of length
/// `n`; `None` means a zero pixel. Reflect folds with period `2(n-1)` like `np.pad(mode=
/// 'reflect')`, so it stays in range even when the padding exceeds the image.
fn source_index(i: isize, n: usize, mode: PaddingMode) -> Option<usize> {
    if (0..n as isize).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        PaddingMode::Zero => None,
        PaddingMode::Reflect if n <= 1 => Some(0),
        PaddingMode::Reflect => {
            let period = 2 * (n as isize - 1);
            let m = i.rem_euclid(period);
            Some(if m < n as isize { m } else { period - m } as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy_and_zero_pads_with_none() {
        // np.pad([0,1,2,3], 3, mode='reflect') = [3,2,1, 0,1,2,3, 2,1,0]
        let got: Vec<usize> = (-3..7)
            .map(|i| source_index(i, 4, PaddingMode::Reflect).unwrap())
            .collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(source_index(-1, 4, PaddingMode::Zero), None);
        assert_eq!(source_index(4, 4, PaddingMode::Zero), None);
        assert_eq!(source_index(2, 4, PaddingMode::Zero), Some(2));
        assert_eq!(source_index(-5, 1, PaddingMode::Reflect), Some(0));
        // Padding larger than the image keeps folding inside it.
        for i in -20..20 {
            assert!(source_index(i, 3, PaddingMode::Reflect).unwrap() < 3);
        }
    }

    #[test]
    fn identity_when_no_padding_and_no_flip() {
        let aug = Augment {
            padding: 0,
            mode: PaddingMode::Reflect,
            flip: false,
        };
        assert!(aug.is_identity());
        let img: Vec<u8> = (0..24).collect();
        let mut rng = Rng::new(0);
        assert_eq!(aug.apply(&img, (2, 3, 4), &mut rng), img);
    }
}
