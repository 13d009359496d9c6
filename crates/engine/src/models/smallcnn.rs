//! SmallCNN: four 3x3 convolutions and three linear layers (the TRADES MNIST layout), with the
//! parameter names of `SmallCNN` in `tests/py/models.py` (`feature_extractor.convN`,
//! `classifier.fcN`).

use tch::nn::{self, Module};
use tch::Tensor;

use super::layers::{conv2d, linear};

#[derive(Debug)]
pub(crate) struct SmallCnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    conv3: nn::Conv2D,
    conv4: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
}

/// Spatial side after the two conv-conv-pool stages, as models.py computes it; `None` when the
/// image is too small to leave at least one pixel.
pub(crate) fn feature_side(image_size: usize) -> Option<usize> {
    let after_first = image_size.checked_sub(4)? / 2;
    let side = after_first.checked_sub(4)? / 2;
    (side >= 1).then_some(side)
}

impl SmallCnn {
    /// `side` comes from [`feature_side`], already checked by the caller.
    pub(crate) fn new(p: &nn::Path, in_channels: i64, num_classes: i64, side: i64) -> Self {
        let fe = p / "feature_extractor";
        let cl = p / "classifier";
        SmallCnn {
            conv1: conv2d(&fe / "conv1", in_channels, 32, 3, 1, 0, true),
            conv2: conv2d(&fe / "conv2", 32, 32, 3, 1, 0, true),
            conv3: conv2d(&fe / "conv3", 32, 64, 3, 1, 0, true),
            conv4: conv2d(&fe / "conv4", 64, 64, 3, 1, 0, true),
            fc1: linear(&cl / "fc1", 64 * side * side, 200),
            fc2: linear(&cl / "fc2", 200, 200),
            fc3: linear(&cl / "fc3", 200, num_classes),
        }
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.conv1.forward(x).relu();
        let h = self.conv2.forward(&h).relu().max_pool2d_default(2);
        let h = self.conv3.forward(&h).relu();
        let h = self.conv4.forward(&h).relu().max_pool2d_default(2);
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        // Dropout(0.5) only while training; `dropout(_, false)` is the identity.
        let h = h.dropout(0.5, train);
        let h = self.fc2.forward(&h).relu();
        self.fc3.forward(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::feature_side;

    #[test]
    fn feature_side_matches_models_py() {
        // ((s - 4) // 2 - 4) // 2 for the sizes the project uses; too small images give None.
        for (s, want) in [
            (28, Some(4)),
            (32, Some(5)),
            (16, Some(1)),
            (15, None),
            (8, None),
            (0, None),
        ] {
            assert_eq!(feature_side(s), want, "image size {s}");
        }
    }
}
