//! Layer constructors with PyTorch's default initialisation.
//!
//! tch's defaults differ from `torch.nn`: its conv/linear weights use Kaiming-uniform with the
//! ReLU gain (bound sqrt(6/fan_in), PyTorch uses a=sqrt(5), i.e. bound 1/sqrt(fan_in)), conv
//! biases start at 0 (PyTorch: uniform(+-1/sqrt(fan_in))) and BatchNorm weights are uniform(0,1)
//! (PyTorch: 1). Training curves are only comparable with the PyTorch reference if the
//! initialisation matches, so every model builds its layers through these helpers.

use tch::nn::{self, init::FanInOut, init::NonLinearity, init::NormalOrUniform, Init};

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
        stride,
        padding,
        bias,
        ws_init: TORCH_WEIGHT_INIT,
        bs_init: torch_bias_init(c_in * k * k),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
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
