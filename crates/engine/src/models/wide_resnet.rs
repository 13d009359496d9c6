//! Wide ResNet (WRN-34-10 for the TRADES/CFA comparisons), parameter names as `WideResNet` in
//! `tests/py/models.py`: `conv1`, `blockN.M.{bn1,conv1,bn2,conv2,shortcut}`, `bn`, `fc`.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::layers::{batch_norm2d, conv2d, linear};

#[derive(Debug)]
struct WideBasic {
    bn1: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn2: nn::BatchNorm,
    conv2: nn::Conv2D,
    /// Plain 1x1 conv (not a Sequential, unlike PreAct's) when the shape changes.
    shortcut: Option<nn::Conv2D>,
}

impl WideBasic {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let equal = c_in == c_out && stride == 1;
        WideBasic {
            bn1: batch_norm2d(p / "bn1", c_in),
            conv1: conv2d(p / "conv1", c_in, c_out, 3, stride, 1, false),
            bn2: batch_norm2d(p / "bn2", c_out),
            conv2: conv2d(p / "conv2", c_out, c_out, 3, 1, 1, false),
            shortcut: (!equal).then(|| conv2d(p / "shortcut", c_in, c_out, 1, stride, 0, false)),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let o = self.bn1.forward_t(x, train).relu_();
        let y = self.conv1.forward(&o);
        let y = self.conv2.forward(&self.bn2.forward_t(&y, train).relu_());
        match &self.shortcut {
            Some(sc) => y + sc.forward(&o),
            None => y + x,
        }
    }
}

#[derive(Debug)]
pub(crate) struct WideResNet {
    conv1: nn::Conv2D,
    blocks: Vec<WideBasic>,
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
                blocks.push(WideBasic::new(&(&group / j.to_string()), cin, planes, s));
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
