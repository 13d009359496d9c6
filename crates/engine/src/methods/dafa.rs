//! DAFA, distance-aware fair adversarial training (Lee et al., ICLR 2024; rucy74/DAFA at
//! 74657cd or later, which fixed the weight formula): plain TRADES (`dafa`) or PGD-AT
//! (`dafa-pgd-at`) for `method.dafa_warmup` epochs; from the last warm-up epoch's training
//! adversarial softmax, once, `P[i, j]` = mean probability of class j over class i's examples
//! and class weights `W_i = 1 + lambda sum_{j != i} s_ij`, `s_ij = P[i, j] P[j, j]` when
//! `P[i, i] < P[j, j]`, else `-P[j, i] P[i, i]` ([`dafa_weights`]). Afterwards each example's
//! radius and step are `eps W_y` and `alpha W_y`, and the loss is weighted by `W_y` (TRADES: the
//! clean CE term; PGD-AT: the adversarial CE).
//!
//! Two things the reference does that fairtat does not: its PGD-AT variant takes a second,
//! unweighted step projected onto the uniform ball after each weighted one, which cancels the
//! class margins (here each step is the weighted one only, [`crate::attacks::signed_steps`]);
//! and W can be negative (hard classes pull weight from easy ones), which would invert a margin
//! and a loss: W is clipped at [`MIN_WEIGHT`]. Attacks run with BatchNorm in eval mode and start
//! at `x + 0.001 N(0, 1)` in both variants, as `trades_loss` and `madry_loss` do.
//!
//! [`DafaWeights`] (the warm-up statistics and W) is also TRIX's. `dafa_weights` is recorded per
//! epoch; the warm-up sums and W are saved for resume.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::kl::per_sample_ce;
use super::{Batch, Method, StepOutput, StepResult};
use crate::attacks::{signed_steps, trades_start, Ball};
use crate::models::Model;
use fairtat_core::config::{BnMode, MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::util::Rng;

/// The smallest class weight in force: a class DAFA would give a negative or zero weight keeps
/// a tenth of the base radius, step and loss weight.
pub const MIN_WEIGHT: f64 = 0.1;

/// DAFA's class weights from `p` (K rows, `p[i][j]` the mean probability of class j over class
/// i's examples): `calculate_class_weights` of rucy74/DAFA `utils.py`, unclipped.
pub fn dafa_weights(p: &[Vec<f64>], lambda: f64) -> Vec<f64> {
    let k = p.len();
    let mut w = vec![1.0; k];
    for i in 0..k {
        for j in (0..k).filter(|&j| j != i) {
            if p[i][i] < p[j][j] {
                w[i] += lambda * p[i][j] * p[j][j];
            } else {
                w[i] -= lambda * p[j][i] * p[i][i];
            }
        }
    }
    w
}

/// Row means of per-class probability sums ([K, K] on any device) over `counts` [K]; a class
/// without examples gets a zero row.
pub fn class_means(sums: &Tensor, counts: &Tensor) -> Vec<Vec<f64>> {
    let k = counts.size()[0];
    let means =
        sums.to_kind(Kind::Double) / counts.to_kind(Kind::Double).clamp_min(1.0).view([k, 1]);
    let flat =
        Vec::<f64>::try_from(&means.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
    flat.chunks(k.max(1) as usize).map(|r| r.to_vec()).collect()
}

/// The warm-up statistics and the class weights of DAFA (and TRIX), and the class radii
/// `eps W_k` they put in force.
pub(crate) struct DafaWeights {
    lambda: f64,
    warmup: usize,
    /// W in force, clipped at [`MIN_WEIGHT`]: all 1 until the warm-up ends.
    pub w: Vec<f64>,
    /// The attack's base radius and `eps W_k` in force (set at each epoch's start).
    eps: f64,
    class_eps: Vec<f64>,
    computed: bool,
    /// Softmax sums [K, K] and counts [K] of the last warm-up epoch, while it runs.
    sums: Option<(Tensor, Tensor)>,
}

impl DafaWeights {
    pub fn new(spec: &RunSpec) -> Self {
        DafaWeights {
            lambda: spec.method.dafa_lambda,
            warmup: spec.method.dafa_warmup,
            w: vec![1.0; spec.num_classes()],
            eps: spec.attack.eps,
            class_eps: vec![spec.attack.eps; spec.num_classes()],
            computed: false,
            sums: None,
        }
    }

    /// Epoch `epoch` starts: the weights come into force after the warm-up; the last warm-up
    /// epoch collects (a resumed run keeps what it had collected). The class radii follow W.
    pub fn begin_epoch(&mut self, epoch: usize) {
        self.update(epoch);
        self.class_eps = self.w.iter().map(|w| w * self.eps).collect();
    }

    /// `eps W_k` in force.
    pub fn class_eps(&self) -> &[f64] {
        &self.class_eps
    }

    /// The per-epoch record: `dafa_weights`, W in force.
    pub fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([("dafa_weights".to_string(), self.w.clone())])
    }

    fn update(&mut self, epoch: usize) {
        if epoch >= self.warmup && !self.computed {
            if let Some((sums, counts)) = self.sums.take() {
                let raw = dafa_weights(&class_means(&sums, &counts), self.lambda);
                self.w = raw.iter().map(|w| w.max(MIN_WEIGHT)).collect();
                self.computed = true;
            }
        }
        if epoch + 1 == self.warmup && self.sums.is_none() {
            let k = self.w.len() as i64;
            let z = |s: &[i64]| Tensor::zeros(s, (Kind::Double, Device::Cpu));
            self.sums = Some((z(&[k, k]), z(&[k])));
        }
    }

    /// Add a batch's training adversarial logits to the warm-up sums (in the last warm-up
    /// epoch only).
    pub fn observe(&mut self, logits_adv: &Tensor, y: &Tensor) {
        let Some((sums, counts)) = self.sums.as_mut() else {
            return;
        };
        tch::no_grad(|| {
            let dev = sums.device();
            let p = logits_adv.softmax(-1, Kind::Double).to_device(dev);
            let y = y.to_device(dev);
            let _ = sums.index_add_(0, &y, &p);
            let _ = counts.index_add_(0, &y, &y.ones_like().to_kind(Kind::Double));
        });
    }

    /// `W_y` per sample [B], float on `y`'s device.
    pub fn per_sample(&self, y: &Tensor) -> Tensor {
        crate::attacks::per_sample_eps(&self.w, y)
    }

    pub fn resume_state(&self) -> BTreeMap<String, Vec<f64>> {
        let mut m = BTreeMap::new();
        if self.computed {
            m.insert("dafa_weights".into(), self.w.clone());
        }
        if let Some((sums, counts)) = &self.sums {
            let host = |t: &Tensor| Vec::<f64>::try_from(&t.flatten(0, -1)).unwrap_or_default();
            m.insert("dafa_prob_sums".into(), host(sums));
            m.insert("dafa_counts".into(), host(counts));
        }
        m
    }

    pub fn restore_state(&mut self, s: &BTreeMap<String, Vec<f64>>) {
        let k = self.w.len();
        if let Some(w) = s.get("dafa_weights").filter(|w| w.len() == k) {
            self.w = w.clone();
            self.computed = true;
        }
        let sums = s.get("dafa_prob_sums").filter(|v| v.len() == k * k);
        if let (Some(sums), Some(counts)) = (sums, s.get("dafa_counts").filter(|v| v.len() == k)) {
            let k = k as i64;
            self.sums = Some((
                Tensor::from_slice(sums).view([k, k]),
                Tensor::from_slice(counts),
            ));
        }
    }
}

/// `KLDivLoss(reduction='sum')(log_softmax(logits), p)`, the reference's KL term, with the same
/// operations: in TRADES' first steps the KL's gradient is near rounding level, where another
/// formula takes other signs.
fn kl_sum(logits: &Tensor, p: &Tensor) -> Tensor {
    logits
        .log_softmax(-1, Kind::Float)
        .kl_div(p, tch::Reduction::Sum, false)
}

/// The fixed settings of a DAFA step.
#[derive(Clone, Copy, Debug)]
pub struct DafaStep {
    pub eps: f64,
    pub alpha: f64,
    pub steps: usize,
    pub bn_train: bool,
    /// TRADES' `beta` (CE + beta KL); `None` for the PGD-AT variant.
    pub beta: Option<f64>,
}

/// One DAFA step from `start` (`None`: TRADES' `x + 0.001 N(0, 1)` inside the ball, as the
/// reference) with per-sample weights `w` [B]: the adversarial batch in
/// `[x - eps w, x + eps w]` by steps of `alpha w`, then the weighted loss. Returns the loss, the
/// train-mode logits on the adversarial batch and the batch. The same operations in the same
/// order as rucy74/DAFA `trades_loss` / `madry_loss` (without the latter's second step).
pub fn dafa_step(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    start: Option<&Tensor>,
    w: &Tensor,
    s: &DafaStep,
) -> (Tensor, Tensor, Tensor) {
    let ball = tch::no_grad(|| Ball::new(x, &(w * s.eps)));
    let start = start.map_or_else(|| trades_start(x, &ball), Tensor::shallow_clone);
    let start = &start;
    let step = w * s.alpha;
    match s.beta {
        Some(beta) => {
            let p_nat = tch::no_grad(|| model.forward_t(x, s.bn_train).softmax(-1, Kind::Float));
            let kl = |l: &Tensor| kl_sum(l, &p_nat);
            let x_adv = signed_steps(model, start, &ball, &step, s.steps, s.bn_train, kl);
            let adv = model.forward_t(&x_adv, true);
            let nat = model.forward_t(x, true);
            let natural = (per_sample_ce(&nat, y) * w).mean(Kind::Float);
            let b = y.size()[0].max(1) as f64;
            let robust = kl_sum(&adv, &nat.softmax(-1, Kind::Float)) / b;
            (natural + robust * beta, adv, x_adv)
        }
        None => {
            let ce = |l: &Tensor| l.cross_entropy_for_logits(y);
            let x_adv = signed_steps(model, start, &ball, &step, s.steps, s.bn_train, ce);
            let adv = model.forward_t(&x_adv, true);
            ((per_sample_ce(&adv, y) * w).mean(Kind::Float), adv, x_adv)
        }
    }
}

/// `dafa` (on TRADES) and `dafa-pgd-at`.
pub struct Dafa {
    kind: MethodKind,
    weights: DafaWeights,
    step: DafaStep,
}

impl Dafa {
    pub fn new(spec: &RunSpec) -> Self {
        let a = &spec.attack;
        let trades = spec.method.name != MethodKind::DafaPgdAt;
        Dafa {
            kind: spec.method.name,
            weights: DafaWeights::new(spec),
            step: DafaStep {
                eps: a.eps,
                alpha: a.alpha,
                steps: a.steps,
                bn_train: a.bn_mode == BnMode::Train,
                beta: trades.then_some(spec.method.beta),
            },
        }
    }
}

impl Method for Dafa {
    fn kind(&self) -> MethodKind {
        self.kind
    }

    fn begin_epoch(&mut self, epoch: usize, _prev: Option<&ClassMetrics>) {
        self.weights.begin_epoch(epoch);
    }

    fn class_eps(&self) -> &[f64] {
        self.weights.class_eps()
    }

    fn step(&mut self, model: &Model, b: &Batch, _rng: &mut Rng) -> StepResult {
        let w = self.weights.per_sample(&b.y);
        let (loss, logits, _) = dafa_step(model, &b.x, &b.y, None, &w, &self.step);
        self.weights.observe(&logits, &b.y);
        Ok(StepOutput {
            loss,
            logits,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        self.weights.method_state()
    }

    super::resume_state_in!(weights);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The corrected branch by hand on 3 classes: class 0 is the weakest (P[0,0] = 0.5).
    #[test]
    fn weights_follow_the_corrected_formula() {
        let p = vec![
            vec![0.5, 0.3, 0.2],
            vec![0.1, 0.8, 0.1],
            vec![0.2, 0.1, 0.7],
        ];
        let w = dafa_weights(&p, 1.0);
        // i = 0: both others are stronger: + P[0,1] P[1,1] + P[0,2] P[2,2].
        let w0 = 1.0 + 0.3 * 0.8 + 0.2 * 0.7;
        // i = 1: strongest: - P[0,1] P[1,1] - P[2,1] P[1,1].
        let w1 = 1.0 - 0.3 * 0.8 - 0.1 * 0.8;
        // i = 2: weaker than 1, stronger than 0: + P[2,1] P[1,1] - P[0,2] P[2,2].
        let w2 = 1.0 + 0.1 * 0.8 - 0.2 * 0.7;
        for (got, want) in w.iter().zip([w0, w1, w2]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        // Weights move mass from strong to weak classes; lambda scales the move.
        let w2x = dafa_weights(&p, 2.0);
        assert!((w2x[0] - 1.0 - 2.0 * (w0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn warmup_collects_once_and_weights_survive_resume() {
        let spec = fairtat_core::config::from_toml_str(
            "",
            &[
                "method.name=dafa".to_string(),
                "train.epochs=3".to_string(),
                "method.dafa_warmup=1".to_string(),
            ],
        )
        .unwrap();
        let mut d = DafaWeights::new(&spec);
        d.begin_epoch(0);
        assert!(d.sums.is_some(), "epoch 0 is the last warm-up epoch");
        let k = spec.num_classes() as i64;
        // Class 0 always predicts class 1 strongly: class 1 is stronger, class 0 gains weight.
        let logits = Tensor::zeros([2, k], (Kind::Float, Device::Cpu));
        let _ = logits.get(0).get(1).fill_(5.0);
        let _ = logits.get(1).get(1).fill_(5.0);
        d.observe(&logits, &Tensor::from_slice(&[0i64, 1]));
        let saved = d.resume_state();
        assert_eq!(saved["dafa_prob_sums"].len(), (k * k) as usize);
        let mut r = DafaWeights::new(&spec);
        r.restore_state(&saved);
        r.begin_epoch(0); // a resume in the middle of the last warm-up epoch keeps the sums
        r.begin_epoch(1);
        d.begin_epoch(1);
        assert_eq!(d.w, r.w);
        assert!(d.w[0] > 1.0 && d.w[1] < 1.0, "{:?}", d.w);
        assert!(d.w.iter().all(|&w| w >= MIN_WEIGHT));
        let again = d.resume_state();
        assert_eq!(again["dafa_weights"], d.w);
    }
}
