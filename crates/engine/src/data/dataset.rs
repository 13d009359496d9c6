//! [`Dataset`]: images as raw `u8` in one contiguous buffer, with labels and class names.
//!
//! Keeping the pixels as bytes (not float tensors) holds CIFAR-10 in 150 MB instead of 600 MB,
//! lets augmentation run in plain Rust, and makes subsets and splits cheap copies. Tensors are
//! made per batch by [`super::make_batch`].

use std::fmt;

/// Images stored as raw u8, planar CHW per image, all images contiguous (N*C*H*W).
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes, `class_names.len()` (a class may have no image in a subset).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The CHW bytes of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`: indices come from the program (splits, batches), not from input files.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// A new dataset holding the given images, in the given order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range (a caller bug, see [`Dataset::image`]).
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            class_names: self.class_names.clone(),
        }
    }

    /// Images per class, length `num_classes()`. Labels outside the range are not counted
    /// (the loaders reject them, so this only matters for hand-built datasets).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.num_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// Shape and size only: the derived form would print millions of pixel bytes.
impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("channels", &self.channels)
            .field("height", &self.height)
            .field("width", &self.width)
            .field("num_classes", &self.num_classes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // 3 images of 1x1x2: image i holds bytes [10*i, 10*i + 1].
        Dataset {
            images: vec![0, 1, 10, 11, 20, 21],
            labels: vec![2, 0, 2],
            channels: 1,
            height: 1,
            width: 2,
            class_names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn image_subset_and_counts() {
        let d = tiny();
        assert_eq!(d.len(), 3);
        assert_eq!(d.num_classes(), 3);
        assert_eq!(d.image(1), &[10, 11]);
        assert_eq!(d.class_counts(), vec![1, 0, 2]);
        let s = d.subset(&[2, 0, 2]);
        assert_eq!(s.images, vec![20, 21, 0, 1, 20, 21]);
        assert_eq!(s.labels, vec![2, 2, 2]);
        assert_eq!(s.class_counts(), vec![0, 0, 3]);
        assert!(d.subset(&[]).is_empty());
        assert!(format!("{d:?}").contains("len: 3"));
    }
}
