//! CFOL's class sampler (Pethick, Chrysos, Cevher, TMLR 2023;
//! LIONS-EPFL/class-focused-online-learning-code `cfol/class_sampler.py`), when
//! `train.class_sampler = "cfol"`: each training image is drawn by first drawing a class from
//! `p = gamma u + (1 - gamma) softmax(w)` (u uniform over the classes with images) and then an
//! image of that class uniformly, with replacement; an epoch's batches have the sizes of the
//! shuffled order's. After each
//! batch, Exp3's importance-weighted update `w_c += eta * 1[prediction != y] / p_c` for every
//! sample of class c, with the predictions on the batch's training adversarial examples
//! (`batch_update`, `class_sampler_reweight = False`). It changes which images a batch holds, so
//! it composes with every method's loss.
//!
//! A batch's draws come from a generator derived from the seed, epoch and batch, so a resumed
//! epoch draws what the cancelled one would have; `w` is saved with the resume state and carried
//! across epochs, as in the reference (no reset at learning-rate drops). The epoch's `p` is
//! recorded as `cfol_class_probs`.

use fairtat_core::config::RunSpec;
use fairtat_core::util::Rng;

/// Stream of the class sampler's draws (beside the batch order's).
const STREAM_CFOL: u64 = 0xCF01;

pub struct ClassSampler {
    gamma: f64,
    eta: f64,
    /// Exp3's log-weights, one per class.
    pub w: Vec<f64>,
    /// The training images of each class.
    by_class: Vec<Vec<usize>>,
}

impl ClassSampler {
    /// The sampler of `spec` over training labels `labels`, or none when it shuffles.
    pub fn for_run(spec: &RunSpec, labels: &[i64]) -> Option<Self> {
        use fairtat_core::config::ClassSampling;
        match spec.train.class_sampler {
            ClassSampling::Shuffle => None,
            ClassSampling::Cfol => Some(ClassSampler::new(
                labels,
                spec.num_classes(),
                spec.train.cfol_gamma,
                spec.train.cfol_eta,
            )),
        }
    }

    pub fn new(labels: &[i64], k: usize, gamma: f64, eta: f64) -> Self {
        let mut by_class = vec![Vec::new(); k];
        for (i, &y) in labels.iter().enumerate() {
            if let Some(c) = by_class.get_mut(y as usize) {
                c.push(i);
            }
        }
        ClassSampler {
            gamma,
            eta,
            w: vec![0.0; k],
            by_class,
        }
    }

    /// `gamma u + (1 - gamma) softmax(w)`, zero for classes without images.
    pub fn probs(&self) -> Vec<f64> {
        let present: Vec<bool> = self.by_class.iter().map(|c| !c.is_empty()).collect();
        let n = present.iter().filter(|&&p| p).count().max(1) as f64;
        let m = self.w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = self
            .w
            .iter()
            .zip(&present)
            .map(|(w, &p)| if p { (w - m).exp() } else { 0.0 })
            .collect();
        let total: f64 = e.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        e.iter()
            .zip(&present)
            .map(|(e, &p)| {
                if p {
                    self.gamma / n + (1.0 - self.gamma) * e / total
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The images of batch `b` (of `size`) of epoch `epoch`.
    pub fn batch(&self, seed: u64, epoch: usize, b: usize, size: usize) -> Vec<usize> {
        let mut rng = Rng::derive(seed, &[epoch as u64, b as u64, STREAM_CFOL]);
        let p = self.probs();
        (0..size)
            .filter_map(|_| {
                let c = rng.categorical(&p)?;
                let images = &self.by_class[c];
                Some(images[rng.below(images.len())])
            })
            .collect()
    }

    /// Exp3's update from a batch's labels and predictions on its adversarial examples.
    pub fn update(&mut self, labels: &[i64], predictions: &[i64]) {
        let p = self.probs();
        for (&y, &pred) in labels.iter().zip(predictions) {
            let c = y as usize;
            if pred != y && p.get(c).is_some_and(|&pc| pc > 0.0) {
                self.w[c] += self.eta / p[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_shift_the_draws_toward_their_class_and_gamma_keeps_a_floor() {
        let labels: Vec<i64> = (0..300).map(|i| i % 3).collect();
        let mut s = ClassSampler::new(&labels, 3, 0.5, 0.05);
        assert_eq!(s.probs(), vec![1.0 / 3.0; 3]);
        // Class 2 is always wrong, the others right.
        for _ in 0..40 {
            s.update(&[0, 1, 2, 2], &[0, 1, 0, 1]);
        }
        let p = s.probs();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[2] > 0.6 && p[0] >= 0.5 / 3.0 - 1e-12, "{p:?}");
        let batch = s.batch(1, 0, 0, 3000);
        let share = batch.iter().filter(|&&i| labels[i] == 2).count() as f64 / 3000.0;
        assert!((share - p[2]).abs() < 0.05, "{share} vs {}", p[2]);
        assert_eq!(
            batch,
            s.batch(1, 0, 0, 3000),
            "draws are fixed by seed, epoch, batch"
        );
        assert_ne!(batch, s.batch(1, 0, 1, 3000));
    }

    #[test]
    fn a_class_without_images_is_never_drawn() {
        let s = ClassSampler::new(&[0, 0, 2], 3, 0.5, 1.0);
        assert_eq!(s.probs(), vec![0.5, 0.0, 0.5]);
        let b = s.batch(0, 0, 0, 400);
        let class2 = b.iter().filter(|&&i| i == 2).count();
        assert!((150..250).contains(&class2), "{class2}");
    }
}
