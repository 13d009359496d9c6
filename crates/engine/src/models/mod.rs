//! Models with the parameter names of `tests/py/models.py` (SmallCNN, PreAct ResNet-18,
//! WRN-34-10, XCiT-S12), an optional per-channel input normalisation inside the forward,
//! checkpoints and weight averaging (EMA / FAWA).
//!
//! Inputs are NCHW images in [0,1]; attacks work in that space and the normalisation is applied
//! inside [`Model::forward_t`] (algorithms.md §9). The normalisation is deliberately not a
//! variable, so a checkpoint holds exactly the reference module's state_dict (it is recorded in
//! the checkpoint metadata instead).

mod average;
mod checkpoint;
mod error;
mod layers;
mod preact_resnet;
pub mod precision;
mod smallcnn;
mod wide_resnet;
mod xcit;

use std::collections::BTreeMap;
use std::path::Path;

use tch::{nn::VarStore, Device, Kind, Tensor};

pub use average::WeightAverage;
pub use checkpoint::read_metadata;
pub use error::ModelError;

use fairtat_core::config::{Arch, Precision};

#[derive(Debug)]
enum Net {
    Small(Box<smallcnn::SmallCnn>),
    PreAct(preact_resnet::PreActResNet18),
    Wide(wide_resnet::WideResNet),
    Xcit(Box<xcit::Xcit>),
}

/// A network, its variables and what it was built for.
#[derive(Debug)]
pub struct Model {
    /// Every variable (parameters and BN running stats) under its PyTorch state_dict name.
    pub vs: VarStore,
    pub arch: Arch,
    pub in_channels: usize,
    pub num_classes: usize,
    /// Expected image side; only SmallCNN depends on it (its first linear layer's width).
    pub image_size: usize,
    net: Net,
    /// (mean, std) as [1, C, 1, 1] tensors on the model's device.
    normalization: Option<(Tensor, Tensor)>,
    /// The arithmetic of its forwards ([`precision`]); fp32 unless set.
    precision: Precision,
}

impl Model {
    pub fn new(
        arch: Arch,
        in_channels: usize,
        num_classes: usize,
        image_size: usize,
        normalization: Option<(Vec<f64>, Vec<f64>)>,
        device: Device,
    ) -> Result<Model, ModelError> {
        if in_channels == 0 || num_classes == 0 || image_size == 0 {
            return Err(ModelError::Config(format!(
                "in_channels ({in_channels}), num_classes ({num_classes}) and image_size ({image_size}) must be positive"
            )));
        }
        let norm = match normalization {
            None => None,
            Some((mean, std)) => {
                if mean.len() != in_channels || std.len() != in_channels {
                    return Err(ModelError::Config(format!(
                        "normalisation has {} means and {} stds for {in_channels} input channels",
                        mean.len(),
                        std.len()
                    )));
                }
                if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                    return Err(ModelError::Config(format!(
                        "normalisation std {s} is not a positive number"
                    )));
                }
                if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
                    return Err(ModelError::Config(format!(
                        "normalisation mean {m} is not finite"
                    )));
                }
                let as4 = |v: &[f64]| -> Result<Tensor, ModelError> {
                    Ok(Tensor::f_from_slice(v)?
                        .f_to_kind(Kind::Float)?
                        .f_view([1, in_channels as i64, 1, 1])?
                        .f_to_device(device)?)
                };
                Some((as4(&mean)?, as4(&std)?))
            }
        };
        let vs = VarStore::new(device);
        let root = vs.root();
        let (c, k) = (in_channels as i64, num_classes as i64);
        let net = match arch {
            Arch::Smallcnn => {
                let side = smallcnn::feature_side(image_size).ok_or_else(|| {
                    ModelError::Config(format!(
                        "smallcnn needs images of at least 16x16 pixels, got {image_size}"
                    ))
                })?;
                Net::Small(Box::new(smallcnn::SmallCnn::new(&root, c, k, side as i64)))
            }
            Arch::PreactResnet18 => Net::PreAct(preact_resnet::PreActResNet18::new(&root, c, k)),
            Arch::Wrn34_10 => Net::Wide(wide_resnet::WideResNet::new(&root, 34, 10, c, k)),
            Arch::XcitS12 => Net::Xcit(Box::new(xcit::Xcit::new(&root, c, k, xcit::S12))),
        };
        Ok(Model {
            vs,
            arch,
            in_channels,
            num_classes,
            image_size,
            net,
            normalization: norm,
            precision: Precision::Fp32,
        })
    }

    /// Run forwards (and so their backwards) in `precision`. bf16 also lays the convolution
    /// weights out channels_last (same values; the weights stay float32 and keep their names).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
        if precision == Precision::Bf16 {
            tch::no_grad(|| {
                for (_, mut v) in self.vs.variables() {
                    if v.dim() == 4 {
                        let cl = precision::channels_last(&v);
                        v.set_data(&cl);
                    }
                }
            });
        }
    }

    /// Hold over several forwards that share these weights (an attack and the loss forward of
    /// one step, one evaluation batch's attack): a bf16 model then casts each weight once for
    /// all of them ([`precision::Scope`]). Drop it before the weights change.
    pub fn precision_scope(&self) -> precision::Scope {
        precision::scope(self.precision, self.device())
    }

    /// Logits [B, K] of images `x` [B, C, H, W] in [0,1]. `train` selects BatchNorm batch
    /// statistics (and running-stat updates) and SmallCNN's dropout. Panics on a wrong input
    /// shape; use [`Model::f_forward_t`] where the shape comes from outside.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self.precision {
            Precision::Fp32 => self.forward_net(x, train),
            Precision::Bf16 => precision::run(self.precision, self.device(), || {
                let x = precision::channels_last(x);
                self.forward_net(&x, train).to_kind(Kind::Float)
            }),
        }
    }

    /// The normalisation and the network, in whatever precision the caller set up (inside
    /// [`Model::forward_t`]'s bf16 region, autocast's).
    fn forward_net(&self, x: &Tensor, train: bool) -> Tensor {
        let normalized;
        let input = match &self.normalization {
            Some((mean, std)) => {
                normalized = (x - mean) / std;
                &normalized
            }
            None => x,
        };
        match &self.net {
            Net::Small(n) => n.forward_t(input, train),
            Net::PreAct(n) => n.forward_t(input, train),
            Net::Wide(n) => n.forward_t(input, train),
            Net::Xcit(n) => n.forward_t(input, train),
        }
    }

    /// [`Model::forward_t`] after checking that `x` is [B, C, H, W] with this model's channels
    /// (and, for SmallCNN, its image size).
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let shape = x.size();
        let bad = |reason: String| {
            Err(ModelError::Input {
                shape: shape.clone(),
                reason,
            })
        };
        if shape.len() != 4 {
            return bad("expected 4 dimensions [B, C, H, W]".into());
        }
        if shape[0] == 0 {
            return bad("empty batch".into());
        }
        if shape[1] != self.in_channels as i64 {
            return bad(format!("model takes {} channels", self.in_channels));
        }
        if matches!(self.arch, Arch::Smallcnn)
            && (shape[2] != self.image_size as i64 || shape[3] != self.image_size as i64)
        {
            return bad(format!(
                "smallcnn was built for {0}x{0} images",
                self.image_size
            ));
        }
        if !matches!(x.kind(), Kind::Float) {
            return bad(format!("expected float32 input, got {:?}", x.kind()));
        }
        Ok(self.forward_t(&x.f_to_device(self.device())?, train))
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// All variables including BN running stats, sorted by name. The tensors share storage with
    /// the model (shallow), so copy them to keep a snapshot.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Write a safetensors checkpoint (f32, CPU) with `metadata`, atomically (temp file + rename).
    pub fn save(&self, path: &Path, metadata: &BTreeMap<String, String>) -> Result<(), ModelError> {
        checkpoint::save_named(&self.named_state(), path, metadata)
    }

    /// Load every variable by name from a checkpoint written by [`Model::save`] or by PyTorch
    /// (`safetensors.torch.save_file(model.state_dict())`; `num_batches_tracked` is ignored).
    /// A missing, extra or mis-shaped tensor is an error naming it; the model is then unchanged.
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        checkpoint::load_into(&self.vs, path)
    }
}

/// Predicted classes (argmax of the logits) in eval mode, in batches of `batch_size`, without
/// gradients. `x` may live on any device; it is moved batch by batch.
pub fn predict(model: &Model, x: &Tensor, batch_size: usize) -> Vec<i64> {
    let n = x.size().first().copied().unwrap_or(0);
    let bs = batch_size.max(1) as i64;
    let device = model.device();
    let mut out = Vec::with_capacity(n.max(0) as usize);
    tch::no_grad(|| {
        let mut start = 0;
        while start < n {
            let len = bs.min(n - start);
            let xb = x.narrow(0, start, len).to_device(device);
            let pred = model
                .forward_t(&xb, false)
                .argmax(-1, false)
                .to_device(Device::Cpu);
            out.extend(Vec::<i64>::try_from(&pred).unwrap_or_default());
            start += len;
        }
    });
    out
}
