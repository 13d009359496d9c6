//! SGD with momentum and weight decay, PyTorch semantics (`torch.optim.SGD`, dampening 0,
//! no Nesterov): d = g + wd * p; buf = momentum * buf + d (buf = d at the first step); p -= lr * buf.
//!
//! Written here rather than using `tch::nn::Optimizer` because resuming a run needs the momentum
//! buffers, which tch's optimiser does not expose.

use std::path::Path;

use tch::{nn::VarStore, Tensor};

pub struct Sgd {
    params: Vec<Tensor>,
    bufs: Vec<Option<Tensor>>,
    pub lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    pub fn new(vs: &VarStore, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        let params = vs.trainable_variables();
        let bufs = params.iter().map(|_| None).collect();
        Sgd {
            params,
            bufs,
            lr,
            momentum,
            weight_decay,
        }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Backward pass of `loss`, then one update.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    pub fn step(&mut self) {
        let (lr, m, wd) = (self.lr, self.momentum, self.weight_decay);
        tch::no_grad(|| {
            for (p, buf) in self.params.iter_mut().zip(self.bufs.iter_mut()) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if wd != 0.0 { g + &*p * wd } else { g };
                let step = match buf {
                    Some(b) if m != 0.0 => {
                        let _ = b.g_mul_scalar_(m);
                        let _ = b.g_add_(&d);
                        b.shallow_clone()
                    }
                    _ => {
                        if m != 0.0 {
                            *buf = Some(d.detach().copy());
                        }
                        d
                    }
                };
                let _ = p.g_add_(&(step * (-lr)));
            }
        });
    }

    /// Save the momentum buffers (missing buffers are stored as empty tensors).
    pub fn save(&self, path: &Path) -> Result<(), tch::TchError> {
        let named: Vec<(String, Tensor)> = self
            .bufs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    format!("buf.{i}"),
                    // Contiguous: under bf16 the buffers are channels_last like their weights.
                    b.as_ref()
                        .map(|t| t.to(tch::Device::Cpu).contiguous())
                        .unwrap_or_else(|| {
                            Tensor::zeros([0], (tch::Kind::Float, tch::Device::Cpu))
                        }),
                )
            })
            .collect();
        let tmp = path.with_extension("tmp");
        Tensor::write_safetensors(&named, &tmp)?;
        std::fs::rename(&tmp, path)
            .map_err(|e| tch::TchError::FileFormat(format!("{}: {e}", path.display())))
    }

    /// Restore momentum buffers written by [`Sgd::save`] for the same model.
    pub fn load(&mut self, path: &Path) -> Result<(), tch::TchError> {
        let named = Tensor::read_safetensors(path)?;
        for (name, t) in named {
            let Some(i) = name
                .strip_prefix("buf.")
                .and_then(|s| s.parse::<usize>().ok())
            else {
                continue;
            };
            if i >= self.params.len() {
                return Err(tch::TchError::FileFormat(format!(
                    "{}: {name} has no parameter",
                    path.display()
                )));
            }
            if t.numel() == 0 {
                self.bufs[i] = None;
            } else if t.size() != self.params[i].size() {
                return Err(tch::TchError::FileFormat(format!(
                    "{}: {name} has shape {:?}, expected {:?}",
                    path.display(),
                    t.size(),
                    self.params[i].size()
                )));
            } else {
                self.bufs[i] = Some(t.to_device(self.params[i].device()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    /// Two steps on f(p) = sum(p^2)/2 (grad = p) checked against the formula by hand.
    #[test]
    fn matches_pytorch_update_rule() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .var_copy("p", &Tensor::from_slice(&[1.0f32, -2.0]));
        let mut opt = Sgd::new(&vs, 0.1, 0.9, 0.01);
        for _ in 0..2 {
            let loss = (&p * &p).sum(Kind::Float) * 0.5;
            opt.backward_step(&loss);
        }
        // Step 1: d = p + 0.01p = 1.01p; buf = 1.01p; p1 = p - 0.101p = 0.899p.
        // Step 2: d = 1.01*p1 = 0.90799p; buf = 0.9*1.01p + 0.90799p = 1.81699p; p2 = 0.899p - 0.181699p.
        let want = 0.899 - 0.181_699;
        let got: Vec<f32> = Vec::try_from(&p).unwrap();
        assert!((got[0] as f64 - want).abs() < 1e-5, "{got:?}");
        assert!((got[1] as f64 + 2.0 * want).abs() < 1e-5, "{got:?}");
    }

    #[test]
    fn save_and_load_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let p = vs.root().var_copy("p", &Tensor::from_slice(&[1.0f32, 3.0]));
        let mut opt = Sgd::new(&vs, 0.1, 0.9, 0.0);
        opt.backward_step(&(&p * &p).sum(Kind::Float));
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut fresh = Sgd::new(&vs, 0.1, 0.9, 0.0);
        fresh.load(&path).unwrap();
        let a: Vec<f32> = Vec::try_from(opt.bufs[0].as_ref().unwrap()).unwrap();
        let b: Vec<f32> = Vec::try_from(fresh.bufs[0].as_ref().unwrap()).unwrap();
        assert_eq!(a, b);
    }
}
