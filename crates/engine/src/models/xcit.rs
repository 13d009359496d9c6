//! XCiT-S12 (El-Nouby et al., "XCiT: Cross-Covariance Image Transformers", NeurIPS 2021), the
//! paper's second architecture, with patch size 4 for 32x32 inputs: timm's `xcit_small_12_p16`
//! layout (huggingface/pytorch-image-models `timm/models/xcit.py`) whose first two stem
//! convolutions take stride 1, the adaptation of Debenedetti et al. ("A Light Recipe to Train
//! Robust Vision Transformers", SaTML 2023). Parameter names are timm's, so a checkpoint loads
//! into `XCiT` of `tests/py/models.py` and into timm's module adapted that way.
//!
//! Initialisation follows timm: linear weights N(0, 0.02) (timm's truncation at +-2 never bites
//! at that scale), linear biases 0, LayerNorm 1/0, class token N(0, 0.02), layer scales 1,
//! attention temperatures 1; convolutions keep PyTorch's default.

use tch::nn::{self, Init, Module, ModuleT};
use tch::{Kind, Tensor};

use super::layers::{batch_norm2d, conv2d, depthwise_conv3x3};

/// XCiT-S12: token width, XCA blocks, heads, class-attention blocks.
pub(crate) const S12: Shape = Shape {
    dim: 384,
    depth: 12,
    heads: 8,
    class_blocks: 2,
};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub dim: i64,
    pub depth: usize,
    pub heads: i64,
    pub class_blocks: usize,
}

/// timm's `nn.Linear` init in XCiT: weight N(0, 0.02), bias 0.
fn linear(p: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, d_in, d_out, cfg)
}

fn layer_norm(p: nn::Path, dim: i64) -> nn::LayerNorm {
    let cfg = nn::LayerNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    nn::layer_norm(p, vec![dim], cfg)
}

fn ones(p: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    p.var(name, dims, Init::Const(1.0))
}

fn gelu(x: &Tensor) -> Tensor {
    x.gelu("none")
}

/// `fc1 -> GELU -> fc2` with a 4x hidden width.
#[derive(Debug)]
struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    fn new(p: &nn::Path, dim: i64) -> Self {
        Mlp {
            fc1: linear(p / "fc1", dim, 4 * dim),
            fc2: linear(p / "fc2", 4 * dim, dim),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&gelu(&self.fc1.forward(x)))
    }
}

/// Cross-covariance attention: each head attends over its channels (a d x d map from
/// L2-normalised queries and keys, scaled by a learnt temperature), not over tokens.
#[derive(Debug)]
struct Xca {
    heads: i64,
    temperature: Tensor,
    qkv: nn::Linear,
    proj: nn::Linear,
}

impl Xca {
    fn new(p: &nn::Path, dim: i64, heads: i64) -> Self {
        Xca {
            heads,
            temperature: ones(p, "temperature", &[heads, 1, 1]),
            qkv: linear(p / "qkv", dim, 3 * dim),
            proj: linear(p / "proj", dim, dim),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, n, c) = x.size3().expect("tokens are [B, N, C]");
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, self.heads, c / self.heads])
            .permute([2, 0, 3, 4, 1]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let attn = (l2_normalize(&q).matmul(&l2_normalize(&k).transpose(-2, -1))
            * &self.temperature)
            .softmax(-1, Kind::Float);
        let out = attn.matmul(&v).permute([0, 3, 1, 2]).reshape([b, n, c]);
        self.proj.forward(&out)
    }
}

/// `F.normalize(x, dim=-1)`: x / max(||x||, 1e-12).
fn l2_normalize(x: &Tensor) -> Tensor {
    let norm = x
        .norm_scalaropt_dim(2, [-1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / norm
}

/// Local patch interaction: depthwise 3x3 conv, GELU, BatchNorm, depthwise 3x3 conv over the
/// token grid.
#[derive(Debug)]
struct Lpi {
    conv1: nn::Conv2D,
    bn: nn::BatchNorm,
    conv2: nn::Conv2D,
}

impl Lpi {
    fn new(p: &nn::Path, dim: i64) -> Self {
        Lpi {
            conv1: depthwise_conv3x3(p / "conv1", dim),
            bn: batch_norm2d(p / "bn", dim),
            conv2: depthwise_conv3x3(p / "conv2", dim),
        }
    }

    fn forward_t(&self, x: &Tensor, grid: (i64, i64), train: bool) -> Tensor {
        let (b, n, c) = x.size3().expect("tokens are [B, N, C]");
        let y = x.permute([0, 2, 1]).reshape([b, c, grid.0, grid.1]);
        let y = self.conv1.forward(&y);
        let y = self.bn.forward_t(&gelu(&y), train);
        self.conv2.forward(&y).reshape([b, c, n]).permute([0, 2, 1])
    }
}

/// One XCA block: attention, local patch interaction and MLP, each pre-normed and scaled by a
/// learnt per-channel gamma (applied in timm's order 1, 3, 2).
#[derive(Debug)]
struct XcaBlock {
    norm1: nn::LayerNorm,
    attn: Xca,
    norm3: nn::LayerNorm,
    local_mp: Lpi,
    norm2: nn::LayerNorm,
    mlp: Mlp,
    gamma1: Tensor,
    gamma3: Tensor,
    gamma2: Tensor,
}

impl XcaBlock {
    fn new(p: &nn::Path, dim: i64, heads: i64) -> Self {
        XcaBlock {
            norm1: layer_norm(p / "norm1", dim),
            attn: Xca::new(&(p / "attn"), dim, heads),
            norm3: layer_norm(p / "norm3", dim),
            local_mp: Lpi::new(&(p / "local_mp"), dim),
            norm2: layer_norm(p / "norm2", dim),
            mlp: Mlp::new(&(p / "mlp"), dim),
            gamma1: ones(p, "gamma1", &[dim]),
            gamma3: ones(p, "gamma3", &[dim]),
            gamma2: ones(p, "gamma2", &[dim]),
        }
    }

    fn forward_t(&self, x: &Tensor, grid: (i64, i64), train: bool) -> Tensor {
        let x = x + &self.gamma1 * self.attn.forward(&self.norm1.forward(x));
        let local = self
            .local_mp
            .forward_t(&self.norm3.forward(&x), grid, train);
        let x = &x + &self.gamma3 * local;
        &x + &self.gamma2 * self.mlp.forward(&self.norm2.forward(&x))
    }
}

/// CaiT's class attention (only the class token queries) in timm's block with
/// `tokens_norm = true`. The patch tokens are carried along exactly as timm does (added to
/// their normalised selves), because they are the next block's keys and values.
#[derive(Debug)]
struct ClassBlock {
    heads: i64,
    norm1: nn::LayerNorm,
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    proj: nn::Linear,
    norm2: nn::LayerNorm,
    mlp: Mlp,
    gamma1: Tensor,
    gamma2: Tensor,
}

impl ClassBlock {
    fn new(p: &nn::Path, dim: i64, heads: i64) -> Self {
        let a = p / "attn";
        ClassBlock {
            heads,
            norm1: layer_norm(p / "norm1", dim),
            q: linear(&a / "q", dim, dim),
            k: linear(&a / "k", dim, dim),
            v: linear(&a / "v", dim, dim),
            proj: linear(&a / "proj", dim, dim),
            norm2: layer_norm(p / "norm2", dim),
            mlp: Mlp::new(&(p / "mlp"), dim),
            gamma1: ones(p, "gamma1", &[dim]),
            gamma2: ones(p, "gamma2", &[dim]),
        }
    }

    fn attend(&self, x: &Tensor) -> Tensor {
        let (b, n, c) = x.size3().expect("tokens are [B, N, C]");
        let d = c / self.heads;
        let heads = |t: Tensor, len: i64| t.reshape([b, len, self.heads, d]).permute([0, 2, 1, 3]);
        let q = heads(self.q.forward(&x.select(1, 0)), 1) * (d as f64).powf(-0.5);
        let k = heads(self.k.forward(x), n);
        let v = heads(self.v.forward(x), n);
        let attn = q.matmul(&k.transpose(-2, -1)).softmax(-1, Kind::Float);
        self.proj
            .forward(&attn.matmul(&v).transpose(1, 2).reshape([b, 1, c]))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let xn = self.norm1.forward(x);
        let n = xn.size()[1];
        let mixed = Tensor::cat(&[self.attend(&xn), xn.narrow(1, 1, n - 1)], 1);
        let x = self.norm2.forward(&(x + &self.gamma1 * mixed));
        let cls = &self.gamma2 * self.mlp.forward(&x.narrow(1, 0, 1));
        &x + Tensor::cat(&[cls, x.narrow(1, 1, n - 1)], 1)
    }
}

/// The whole network: convolutional stem (stride 4), Fourier positions, XCA blocks, class
/// attention, LayerNorm and the linear head on the class token.
#[derive(Debug)]
pub(crate) struct Xcit {
    stem: Vec<(nn::Conv2D, nn::BatchNorm)>,
    cls_token: Tensor,
    pos_projection: nn::Conv2D,
    blocks: Vec<XcaBlock>,
    class_blocks: Vec<ClassBlock>,
    norm: nn::LayerNorm,
    head: nn::Linear,
}

/// Width of the Fourier features per axis.
const POS_HIDDEN: i64 = 32;

impl Xcit {
    pub(crate) fn new(p: &nn::Path, in_channels: i64, num_classes: i64, s: Shape) -> Self {
        let d = s.dim;
        let proj = p / "patch_embed" / "proj";
        let widths = [in_channels, d / 8, d / 4, d / 2, d];
        let stem = (0..4)
            .map(|i| {
                let unit = &proj / (2 * i).to_string();
                // Stride 1, 1, 2, 2: patch size 4 (timm's p16 stem strides all four).
                let stride = if i < 2 { 1 } else { 2 };
                let conv = conv2d(&unit / "0", widths[i], widths[i + 1], 3, stride, 1, false);
                (conv, batch_norm2d(&unit / "1", widths[i + 1]))
            })
            .collect();
        let pos = p / "pos_embed" / "token_projection";
        Xcit {
            stem,
            cls_token: p.var(
                "cls_token",
                &[1, 1, d],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            pos_projection: conv2d(pos, 2 * POS_HIDDEN, d, 1, 1, 0, true),
            blocks: (0..s.depth)
                .map(|i| XcaBlock::new(&(p / "blocks" / i.to_string()), d, s.heads))
                .collect(),
            class_blocks: (0..s.class_blocks)
                .map(|i| ClassBlock::new(&(p / "cls_attn_blocks" / i.to_string()), d, s.heads))
                .collect(),
            norm: layer_norm(p / "norm", d),
            head: linear(p / "head", d, num_classes),
        }
    }

    /// timm's `PositionalEncodingFourier` for an h x w grid: [1, dim, h, w].
    fn positions(&self, h: i64, w: i64) -> Tensor {
        let dev = self.cls_token.device();
        let opts = (Kind::Float, dev);
        let scale = 2.0 * std::f64::consts::PI;
        let rows = (Tensor::arange_start(1, h + 1, opts) / (h as f64 + 1e-6) * scale)
            .view([1, h, 1])
            .expand([1, h, w], false);
        let cols = (Tensor::arange_start(1, w + 1, opts) / (w as f64 + 1e-6) * scale)
            .view([1, 1, w])
            .expand([1, h, w], false);
        let i = Tensor::arange(POS_HIDDEN, opts);
        let exponent = i.floor_divide_scalar(2) * 2.0 / POS_HIDDEN as f64;
        let freq = Tensor::from(10_000f64)
            .to_kind(Kind::Float)
            .to_device(dev)
            .pow(&exponent);
        let feats = |e: Tensor| {
            let p = e.unsqueeze(-1) / &freq;
            let sin = p.slice(3, 0, POS_HIDDEN, 2).sin();
            let cos = p.slice(3, 1, POS_HIDDEN, 2).cos();
            Tensor::stack(&[sin, cos], 4).flatten(3, 4)
        };
        let pos = Tensor::cat(&[feats(rows), feats(cols)], 3).permute([0, 3, 1, 2]);
        self.pos_projection.forward(&pos)
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let b = x.size()[0];
        let mut h = x.shallow_clone();
        for (i, (conv, bn)) in self.stem.iter().enumerate() {
            h = bn.forward_t(&conv.forward(&h), train);
            if i + 1 < self.stem.len() {
                h = gelu(&h);
            }
        }
        let grid = (h.size()[2], h.size()[3]);
        let tokens = h.flatten(2, -1).transpose(1, 2);
        let pos = self
            .positions(grid.0, grid.1)
            .flatten(2, -1)
            .transpose(1, 2);
        let mut t = tokens + pos;
        for blk in &self.blocks {
            t = blk.forward_t(&t, grid, train);
        }
        let dim = self.cls_token.size()[2];
        let mut t = Tensor::cat(&[self.cls_token.expand([b, 1, dim], false), t], 1);
        for blk in &self.class_blocks {
            t = blk.forward(&t);
        }
        self.head.forward(&self.norm.forward(&t).select(1, 0))
    }
}
