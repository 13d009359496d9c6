//! Weight averaging of the full model state (EMA and CFA's FAWA, algorithms.md §2.4):
//! `avg = decay * avg + (1 - decay) * model` over every variable, BN running mean/var included.

use tch::Tensor;

use super::Model;

/// A detached copy of a model's state that is averaged in place.
#[derive(Debug)]
pub struct WeightAverage {
    /// Sorted by name, same order as [`Model::named_state`].
    state: Vec<(String, Tensor)>,
}

impl WeightAverage {
    /// Start the average as a copy of `model` (EMA at epoch 0, FAWA on its first update).
    pub fn new(model: &Model) -> Self {
        let state = tch::no_grad(|| {
            model
                .named_state()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect()
        });
        WeightAverage { state }
    }

    /// `avg = decay * avg + (1 - decay) * model` for every variable, without gradients.
    ///
    /// Panics if `model` lacks a variable of the average (a different architecture): that is a
    /// programming error, not bad input.
    pub fn update(&mut self, model: &Model, decay: f64) {
        let vars = model.vs.variables();
        tch::no_grad(|| {
            for (name, avg) in &mut self.state {
                let v = vars.get(name).unwrap_or_else(|| {
                    panic!("WeightAverage::update: model has no variable `{name}`")
                });
                // lerp: avg + w * (v - avg) with w = 1 - decay.
                let _ = avg.lerp_(v, 1.0 - decay);
            }
        });
    }

    /// Copy the averaged state into `target` (same architecture), e.g. the EMA model used for
    /// evaluation and checkpoints.
    pub fn copy_into(&self, target: &mut Model) {
        let vars = target.vs.variables();
        tch::no_grad(|| {
            for (name, avg) in &self.state {
                let mut v = vars
                    .get(name)
                    .unwrap_or_else(|| {
                        panic!("WeightAverage::copy_into: model has no variable `{name}`")
                    })
                    .shallow_clone();
                v.copy_(avg);
            }
        });
    }

    /// The averaged tensors by name (sorted), e.g. to save them with the checkpoint writer.
    pub fn state(&self) -> &[(String, Tensor)] {
        &self.state
    }
}
