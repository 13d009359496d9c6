//! PreAct ResNet-18 (algorithms.md §5.1), parameter names as `PreActResNet18` in
//! `tests/py/models.py`: `conv1`, `layerN.M.{bn1,conv1,bn2,conv2,shortcut.0}`, `bn`, `linear`.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::layers::{batch_norm2d, conv2d, linear, PreActBlock};

/// One block; the 1x1 projection of the activated input when the shape changes is
/// `shortcut.0` in PyTorch (a one-element `nn.Sequential`) and is created first.
fn block(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> PreActBlock {
    let shortcut = (stride != 1 || c_in != c_out)
        .then(|| conv2d(p / "shortcut" / "0", c_in, c_out, 1, stride, 0, false));
    PreActBlock::new(p, c_in, c_out, stride, || shortcut)
}

#[derive(Debug)]
pub(crate) struct PreActResNet18 {
    conv1: nn::Conv2D,
    blocks: Vec<PreActBlock>,
    bn: nn::BatchNorm,
    linear: nn::Linear,
}

impl PreActResNet18 {
    pub(crate) fn new(p: &nn::Path, in_channels: i64, num_classes: i64) -> Self {
        let mut blocks = Vec::with_capacity(8);
        let mut c_in = 64;
        for (i, (planes, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)]
            .into_iter()
            .enumerate()
        {
            let layer = p / format!("layer{}", i + 1);
            blocks.push(block(&(&layer / "0"), c_in, planes, stride));
            blocks.push(block(&(&layer / "1"), planes, planes, 1));
            c_in = planes;
        }
        PreActResNet18 {
            conv1: conv2d(p / "conv1", in_channels, 64, 3, 1, 1, false),
            blocks,
            bn: batch_norm2d(p / "bn", 512),
            linear: linear(p / "linear", 512, num_classes),
        }
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.conv1.forward(x);
        for b in &self.blocks {
            h = b.forward_t(&h, train);
        }
        let h = self.bn.forward_t(&h, train).relu_();
        let h = h.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.linear.forward(&h)
    }
}
