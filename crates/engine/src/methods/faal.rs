//! FAAL, fairness-aware adversarial learning (Zhang et al., CVPR 2024; TrustAI/FAAL `ft_prn.py`
//! with `--loss AT`, `FAAL.py`): fine-tunes a robust model (2 epochs, lr 0.01 then 0.001 in the
//! reference). Per batch: PGD adversarial examples (eval-mode BatchNorm), train-mode forwards of
//! the adversarial and the clean batch (the clean one only moves BatchNorm's statistics, as in
//! the reference), the per-class margin `m_c` = class mean of (largest wrong-class probability -
//! true-class probability) on the adversarial softmax (-1 for a class absent from the batch),
//! and class weights from the distributionally robust problem
//! `max_p sum_i p_{y_i} m_{y_i}` over the simplex with `KL(u || p) <= r` (u uniform,
//! r = `method.faal_r`). The loss is `(K / B) sum_i p_{y_i} CE_i`.
//!
//! The reference solves the problem with cvxpy every batch; here [`dro_weights`] solves it in
//! closed form. With `a_c = n_c m_c` (the objective sums over samples, so a class counts once
//! per sample), stationarity gives `p_c = mu u / (nu - a_c)` with `nu > max a`, `mu` normalising;
//! the KL constraint is tight unless all `a_c` are equal (then `p = u`), and `KL(nu)` falls from
//! infinity to 0 as `nu` grows, so one bisection on `nu` finds it. The epoch's mean class
//! weights are recorded as `faal_weights`.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::kl::per_sample_ce;
use super::{train_pgd_config, Batch, Method, StepOutput, StepResult};
use crate::attacks::{per_sample_eps, pgd, PgdConfig};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::util::Rng;

/// `KL(u || p)` of `p_c ∝ 1 / (nu - a_c)` for `nu = top + t`, and that `p`.
fn kl_at(a: &[f64], top: f64, t: f64) -> (f64, Vec<f64>) {
    let inv: Vec<f64> = a.iter().map(|&x| 1.0 / (top + t - x)).collect();
    let total: f64 = inv.iter().sum();
    let p: Vec<f64> = inv.iter().map(|v| v / total).collect();
    let u = 1.0 / a.len() as f64;
    let kl = p.iter().map(|&pc| u * (u / pc).ln()).sum();
    (kl, p)
}

/// The maximiser of `sum_c a_c p_c` over the simplex with `KL(u || p) <= r`.
pub fn dro_weights(a: &[f64], r: f64) -> Vec<f64> {
    let k = a.len();
    let top = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let spread = top - a.iter().cloned().fold(f64::INFINITY, f64::min);
    if k == 0 || r <= 0.0 || spread.is_nan() || spread <= 1e-12 {
        return vec![1.0 / k.max(1) as f64; k];
    }
    // Bisection on log t, t = nu - max a, between a tiny and a huge multiple of the spread: KL
    // falls as t grows.
    let (mut lo, mut hi) = ((spread * 1e-12).ln(), (spread * 1e12).ln());
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if kl_at(a, top, mid.exp()).0 > r {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    kl_at(a, top, hi.exp()).1
}

/// Per-class mean margins (largest wrong-class minus true-class probability; -1 for a class
/// without samples) and counts of a batch, from its adversarial logits.
pub fn class_margins(logits: &Tensor, labels: &[i64], k: usize) -> (Vec<f64>, Vec<f64>) {
    let margins = tch::no_grad(|| {
        let p = logits.softmax(-1, Kind::Float);
        let y = Tensor::from_slice(labels)
            .to_device(p.device())
            .view([-1, 1]);
        let true_p = p.gather(1, &y, false);
        let others = p
            .scatter_value(1, &y, f64::NEG_INFINITY)
            .amax(&[1i64][..], true);
        (others - true_p)
            .view([-1])
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
    });
    let margins = Vec::<f64>::try_from(&margins).unwrap_or_default();
    let (mut sum, mut n) = (vec![0.0; k], vec![0.0; k]);
    for (&y, m) in labels.iter().zip(margins) {
        sum[y as usize] += m;
        n[y as usize] += 1.0;
    }
    let mean = sum
        .iter()
        .zip(&n)
        .map(|(s, &c)| if c > 0.0 { s / c } else { -1.0 })
        .collect();
    (mean, n)
}

pub struct Faal {
    cfg: PgdConfig,
    eps: Vec<f64>,
    r: f64,
    /// Sum of the batches' class weights this epoch, and the batch count.
    weight_sums: Vec<f64>,
    batches: usize,
}

impl Faal {
    pub fn new(spec: &RunSpec) -> Self {
        let k = spec.num_classes();
        Faal {
            cfg: train_pgd_config(&spec.attack),
            eps: vec![spec.attack.eps; k],
            r: spec.method.faal_r,
            weight_sums: vec![0.0; k],
            batches: 0,
        }
    }
}

/// FAAL's loss `(K / B) sum_i p_{y_i} CE_i` of adversarial logits under class weights `p`.
pub fn faal_loss(logits_adv: &Tensor, y: &Tensor, p: &[f64]) -> Tensor {
    let w = per_sample_eps(p, y);
    let b = y.size()[0].max(1) as f64;
    (per_sample_ce(logits_adv, y) * w).sum(Kind::Float) * (p.len() as f64 / b)
}

impl Method for Faal {
    fn kind(&self) -> MethodKind {
        MethodKind::Faal
    }

    fn begin_epoch(&mut self, _epoch: usize, _prev: Option<&ClassMetrics>) {
        self.weight_sums.iter_mut().for_each(|w| *w = 0.0);
        self.batches = 0;
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn step(&mut self, model: &Model, b: &Batch, _rng: &mut Rng) -> StepResult {
        let eps = per_sample_eps(&self.eps, &b.y);
        let x_adv = pgd(model, &b.x, &b.y, &eps, None, &self.cfg);
        let logits = model.forward_t(&x_adv, true);
        // The reference's clean forward: unused by the AT loss, it moves BatchNorm's statistics.
        let _ = tch::no_grad(|| model.forward_t(&b.x, true));
        let (m, n) = class_margins(&logits, &b.labels, self.eps.len());
        let a: Vec<f64> = m.iter().zip(&n).map(|(m, n)| m * n).collect();
        let p = dro_weights(&a, self.r);
        for (s, w) in self.weight_sums.iter_mut().zip(&p) {
            *s += w;
        }
        self.batches += 1;
        Ok(StepOutput {
            loss: faal_loss(&logits, &b.y, &p),
            logits,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        let n = self.batches.max(1) as f64;
        let mean = self.weight_sums.iter().map(|s| s / n).collect();
        BTreeMap::from([("faal_weights".to_string(), mean)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kl_u(p: &[f64]) -> f64 {
        let u = 1.0 / p.len() as f64;
        p.iter().map(|&x| u * (u / x).ln()).sum()
    }

    /// The closed form is feasible, tight, and beats every feasible point a random search finds.
    #[test]
    fn dro_weights_solve_the_kl_constrained_problem() {
        let a = [0.3, -0.2, 1.5, 0.0, 0.9];
        let r = 0.5;
        let p = dro_weights(&a, r);
        let obj = |p: &[f64]| p.iter().zip(&a).map(|(p, a)| p * a).sum::<f64>();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((kl_u(&p) - r).abs() < 1e-6, "KL {}", kl_u(&p));
        let best = obj(&p);
        let mut rng = Rng::new(1);
        for _ in 0..20_000 {
            let v: Vec<f64> = (0..5).map(|_| rng.next_f64().powi(3) + 1e-3).collect();
            let s: f64 = v.iter().sum();
            let q: Vec<f64> = v.iter().map(|x| x / s).collect();
            if kl_u(&q) <= r {
                assert!(obj(&q) <= best + 1e-9, "{q:?} beats {p:?}");
            }
        }
        // The largest a gets the largest weight; equal a or r = 0 give uniform weights.
        assert!(p[2] > p[4] && p[4] > p[0] && p[0] > p[3] && p[3] > p[1]);
        assert_eq!(dro_weights(&[0.4; 4], 1.0), vec![0.25; 4]);
        assert_eq!(dro_weights(&a, 0.0), vec![0.2; 5]);
    }

    #[test]
    fn margins_are_class_means_and_absent_classes_get_minus_one() {
        // Class 0: p = (0.7, 0.2, 0.1) -> 0.2 - 0.7; class 1 absent; class 2 twice.
        let p = Tensor::from_slice(&[0.7f32, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6]).view([3, 3]);
        let logits = p.log();
        let (m, n) = class_margins(&logits, &[0, 2, 2], 3);
        assert_eq!(n, vec![1.0, 0.0, 2.0]);
        let want = [0.2 - 0.7, -1.0, ((0.6 - 0.3) + (0.2 - 0.6)) / 2.0];
        for (g, w) in m.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{m:?}");
        }
    }
}
