//! The `[eval]` section: the evaluation done every epoch and at the end.

use crate::config::choices::EvalModel;
use crate::config::error::ConfigError;
use crate::config::eval_batch::EvalBatch;
use crate::config::reader::Reader;
use crate::config::schema::{section, FieldKind, KeyType};

section! {
    /// Evaluation done every epoch and at the end; `eps` and `alpha` default to the training
    /// attack's.
    pub struct EvalSpec in "eval" as "eval", keys EvalKey {
        eps: f64 [0.0, 1.0] = |c| c.eps; "Evaluation attack radius",
        alpha: f64 [0.0, 1.0] = |c| c.alpha; "Evaluation PGD step size",
        /// PGD steps for the per-epoch evaluation (PGD-10).
        steps: usize [0, 10_000] = |_| 10; "PGD steps for the per-epoch evaluation",
        /// PGD steps for the final evaluation (PGD-20).
        final_steps: usize [0, 10_000] = |_| 20; "PGD steps for the final evaluation",
        /// `auto`: 256 on the CPU, on a GPU the largest batch up to 1,024 the memory model fits.
        batch_size: EvalBatch = |_| EvalBatch::Auto;
            "Evaluation batch size: auto (256 on the CPU, up to 1024 on a GPU) or a number",
        /// Evaluate on the test set every this many epochs, and always after the last one.
        #[serde(default = "one")]
        every: usize [1, 100_000] = |_| 1;
            "Test-set evaluation every this many epochs, and always after the last",
        /// Which models the per-epoch test evaluation covers.
        #[serde(default = "EvalModel::all")]
        models: Vec<EvalModel> = |_| EvalModel::all();
            "Models the per-epoch test evaluation covers: live, ema, fawa (comma-separated)",
    }
}

fn one() -> usize {
    1
}

/// A list of models, each named once; given, it lists at least one.
impl KeyType for Vec<EvalModel> {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        if !r.table.contains_key(k) {
            return Ok(d);
        }
        let mut out = Vec::new();
        for name in &r.strings(k)? {
            let m = EvalModel::parse(name)
                .ok_or_else(|| ConfigError::not_allowed(&r.key(k), name, &EvalModel::NAMES))?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err(ConfigError::invalid(
                &r.key(k),
                format!("list at least one of {}", EvalModel::NAMES.join(", ")),
            ));
        }
        Ok(out)
    }
}
