//! Mini-batches: index lists per epoch and the float tensors fed to the model.
//!
//! Augmentation runs on the bytes before the tensor is made, so a batch costs one allocation
//! and one copy into libtorch, and the per-image randomness comes only from the caller's
//! [`Rng`] (the trainer derives it from `(seed, epoch)`), never from libtorch's global RNG.

use tch::Tensor;

use super::{Augment, Dataset};
use fairtat_core::util::Rng;

/// Indices `0..n` in batches of `batch_size` (the last one may be smaller), shuffled with
/// `rng` when given, in order otherwise. A `batch_size` of 0 is treated as 1.
pub fn batch_indices(n: usize, batch_size: usize, rng: Option<&mut Rng>) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(rng) = rng {
        rng.shuffle(&mut order);
    }
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Images `indices` of `ds` as a float tensor in [0, 1] of shape `[B, C, H, W]` (CPU), and
/// their labels as int64 `[B]`. With `augment`, each image gets its own random crop/flip.
///
/// # Panics
/// If an index is out of range (indices come from [`batch_indices`] or the splits, not from
/// input files).
pub fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    augment: Option<(&Augment, &mut Rng)>,
) -> (Tensor, Tensor) {
    let shape = (ds.channels, ds.height, ds.width);
    let len = ds.image_len();
    let mut pixels = Vec::with_capacity(indices.len() * len);
    match augment {
        Some((aug, rng)) if !aug.is_identity() => {
            let mut scratch = vec![0u8; len];
            for &i in indices {
                aug.apply_into(ds.image(i), shape, rng, &mut scratch);
                pixels.extend(scratch.iter().map(|&b| b as f32 / 255.0));
            }
        }
        _ => {
            for &i in indices {
                pixels.extend(ds.image(i).iter().map(|&b| b as f32 / 255.0));
            }
        }
    }
    let labels: Vec<i64> = indices.iter().map(|&i| ds.labels[i] as i64).collect();
    let dims = [
        indices.len() as i64,
        ds.channels as i64,
        ds.height as i64,
        ds.width as i64,
    ];
    // The buffer was sized from the same dims, so the reshape cannot fail.
    let images = Tensor::from_slice(&pixels).reshape(dims);
    (images, Tensor::from_slice(&labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_index_once() {
        let plain = batch_indices(10, 4, None);
        assert_eq!(plain, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        let mut rng = Rng::new(5);
        let shuffled = batch_indices(10, 4, Some(&mut rng));
        assert_eq!(
            shuffled.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let mut all: Vec<usize> = shuffled.concat();
        assert_ne!(
            all,
            (0..10).collect::<Vec<_>>(),
            "seed 5 should not give the identity"
        );
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(batch_indices(0, 4, None).is_empty());
        assert_eq!(batch_indices(2, 0, None).len(), 2);
    }
}
