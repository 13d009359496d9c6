//! Layer constructors with PyTorch's default initialisation.
//!
//! tch's defaults differ from `torch.nn`: its conv/linear weights use Kaiming-uniform with the
//! ReLU gain (bound sqrt(6/fan_in), PyTorch uses a=sqrt(5), i.e. bound 1/sqrt(fan_in)), conv
//! biases start at 0 (PyTorch: uniform(+-1/sqrt(fan_in))) and BatchNorm weights are uniform(0,1)
//! (PyTorch: 1). Training curves are only comparable with the PyTorch reference if the
//! initialisation matches, so every model builds its layers through these helpers. Also the
//! pre-activation block both ResNets share ([`PreActBlock`]).

use tch::nn::{self, init::FanInOut, init::NonLinearity, init::NormalOrUniform, Init};
use tch::nn::{Module, ModuleT};
use tch::Tensor;

/// `kaiming_uniform_(w, a=sqrt(5))`: gain sqrt(2/(1+5)) = 1/sqrt(3), bound = sqrt(3)*gain/sqrt(fan_in).
const TORCH_WEIGHT_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Uniform,
    fan: FanInOut::FanIn,
    non_linearity: NonLinearity::ExplicitGain(0.577_350_269_189_625_8),
};

/// PyTorch's bias init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn torch_bias_init(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn.Conv2d(c_in, c_out, k, stride, padding, bias=bias)` with square kernel.
pub(crate) fn conv2d(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    padding: i64,
    bias: bool,
) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        bias,
        ..conv_config(c_in, k, (stride, padding), 1)
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// `nn.Conv2d(c, c, 3, padding=1, groups=c)` with bias: a depthwise 3x3 convolution that
/// keeps the spatial size.
pub(crate) fn depthwise_conv3x3(p: nn::Path, c: i64) -> nn::Conv2D {
    nn::conv2d(p, c, c, 3, conv_config(c, 3, (1, 1), c))
}

/// PyTorch's conv initialisation (with bias); the fan-in of the bias bound counts one group's
/// inputs.
fn conv_config(c_in: i64, k: i64, (stride, padding): (i64, i64), groups: i64) -> nn::ConvConfig {
    nn::ConvConfig {
        stride,
        padding,
        groups,
        ws_init: TORCH_WEIGHT_INIT,
        bs_init: torch_bias_init(c_in / groups.max(1) * k * k),
        ..Default::default()
    }
}

/// `nn.Linear(d_in, d_out)` (with bias).
pub(crate) fn linear(p: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: TORCH_WEIGHT_INIT,
        bs_init: Some(torch_bias_init(d_in)),
        bias: true,
    };
    nn::linear(p, d_in, d_out, cfg)
}

/// `nn.BatchNorm2d(c)`: weight 1, bias 0, momentum 0.1, eps 1e-5, running stats tracked.
pub(crate) fn batch_norm2d(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: Init::Const(1.0),
        bs_init: Init::Const(0.0),
        momentum: 0.1,
        eps: 1e-5,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// The pre-activation basic block of PreAct ResNet and Wide ResNet: BN-ReLU-conv3x3(stride)-
/// BN-ReLU-conv3x3, plus the input (identity) or a 1x1 projection of the activated input when
/// the shape changes.
#[derive(Debug)]
pub(crate) struct PreActBlock {
    bn1: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn2: nn::BatchNorm,
    conv2: nn::Conv2D,
    shortcut: Option<nn::Conv2D>,
}

impl PreActBlock {
    /// The block under `p` (`bn1`, `conv1`, `bn2`, `conv2`); `shortcut` builds the projection,
    /// if any, after them. The models name the projection differently, and the order in which
    /// convolutions are created decides which random draws initialise which weight, so each
    /// model keeps PyTorch's order (PreAct ResNet builds its projection before the block).
    pub fn new(
        p: &nn::Path,
        c_in: i64,
        c_out: i64,
        stride: i64,
        shortcut: impl FnOnce() -> Option<nn::Conv2D>,
    ) -> Self {
        PreActBlock {
            bn1: batch_norm2d(p / "bn1", c_in),
            conv1: conv2d(p / "conv1", c_in, c_out, 3, stride, 1, false),
            bn2: batch_norm2d(p / "bn2", c_out),
            conv2: conv2d(p / "conv2", c_out, c_out, 3, 1, 1, false),
            shortcut: shortcut(),
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        // In-place ReLU on a fresh BN output is safe for autograd (BN's backward does not need
        // its output) and saves one activation-sized allocation per block.
        let a = self.bn1.forward_t(x, train).relu_();
        let h = self.conv1.forward(&a);
        let h = self.conv2.forward(&self.bn2.forward_t(&h, train).relu_());
        match &self.shortcut {
            Some(sc) => h + sc.forward(&a),
            // Identity on the un-activated input, as in the references.
            None => h + x,
        }
    }
}
