//! Wide ResNet (WRN-34-10 for the TRADES/CFA comparisons), parameter names as `WideResNet` in
//! `tests/py/models.py`: `conv1`, `blockN.M.{bn1,conv1,bn2,conv2,shortcut}`, `bn`, `fc`.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::layers::{batch_norm2d, conv2d, linear, PreActBlock};

/// One block; the 1x1 projection when the shape changes is a plain conv `shortcut` (not a
/// Sequential, unlike PreAct's), created after the block's other layers.
fn block(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> PreActBlock {
    let equal = c_in == c_out && stride == 1;
    PreActBlock::new(p, c_in, c_out, stride, || {
        (!equal).then(|| conv2d(p / "shortcut", c_in, c_out, 1, stride, 0, false))
    })
}

#[derive(Debug)]
pub(crate) struct WideResNet {
    conv1: nn::Conv2D,
    blocks: Vec<PreActBlock>,
    bn: nn::BatchNorm,
    fc: nn::Linear,
}

impl WideResNet {
    /// WRN-`depth`-`width`; depth 34 and width 10 give WRN-34-10 (5 blocks per group).
    pub(crate) fn new(
        p: &nn::Path,
        depth: i64,
        width: i64,
        in_channels: i64,
        num_classes: i64,
    ) -> Self {
        let n = (depth - 4) / 6;
        let widths = [16, 16 * width, 32 * width, 64 * width];
        let mut blocks = Vec::new();
        let mut c_in = widths[0];
        for (g, (planes, stride)) in [(widths[1], 1), (widths[2], 2), (widths[3], 2)]
            .into_iter()
            .enumerate()
        {
            let group = p / format!("block{}", g + 1);
            for j in 0..n {
                let (cin, s) = if j == 0 { (c_in, stride) } else { (planes, 1) };
                blocks.push(block(&(&group / j.to_string()), cin, planes, s));
            }
            c_in = planes;
        }
        WideResNet {
            conv1: conv2d(p / "conv1", in_channels, widths[0], 3, 1, 1, false),
            blocks,
            bn: batch_norm2d(p / "bn", widths[3]),
            fc: linear(p / "fc", widths[3], num_classes),
        }
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.conv1.forward(x);
        for b in &self.blocks {
            h = b.forward_t(&h, train);
        }
        let h = self.bn.forward_t(&h, train).relu_();
        self.fc
            .forward(&h.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}
