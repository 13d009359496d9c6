//! The validated run specification, declared section by section ([`section!`]): each key once,
//! with its type, range, default and form help. Serialises to the same key layout as the config
//! file, so the `config.toml` saved in a run directory is itself a valid config (and "clone run"
//! is a read).

mod data;
mod eval;
mod method;
mod slurm;
mod train;

pub use super::choices::{
    Arch, BnMode, ClassSampling, DatasetKind, EvalModel, LrSchedule, PaddingMode, Precision,
    TargetWeighting, ValFrom,
};
pub use data::{DataKey, DataSpec, ModelKey, ModelSpec};
pub use eval::{EvalKey, EvalSpec};
pub(crate) use method::LEGACY_CLEAN_FORWARD;
pub use method::{MethodDef, MethodKey, MethodKind, MethodSpec, METHODS};
pub use slurm::{
    format_minutes, mem_megabytes, time_minutes, SlurmKey, SlurmSpec, SlurmText, TIME_FORMATS,
};
pub use train::{AttackKey, AttackSpec, TrainKey, TrainSpec};

use serde::{Deserialize, Serialize};

use super::device::DeviceSpec;
use super::error::ConfigError;
use super::schema::{concat_fields, section, Field};

section! {
    /// The top-level keys of a config (the form's `run` group).
    pub struct RunKeys in "" as "run", keys RunKey {
        name: String = |c| format!("{}-{}-{}", c.dataset, c.arch, c.method);
            "Run name shown in the dashboard (1 to 80 characters)",
        tags: Vec<String> = |_| Vec::new(); "Comma-separated tags used to filter runs",
        seed: u64 [0, u32::MAX as u64] = |_| 0;
            "Random seed for initialisation, splits and attacks",
        device: DeviceSpec = |_| DeviceSpec::Auto; "auto, cpu or cuda:N",
    }
}

/// Longest run name, in characters.
pub const MAX_RUN_NAME: usize = 80;

/// The rule for a run's name, wherever it is set (config, rename): 1 to 80 printable
/// characters. Control characters (NUL, CR, ESC) would corrupt logs, CSV rows and terminals.
pub fn check_run_name(name: &str) -> Result<(), ConfigError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_RUN_NAME || n.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            RunKey::name.name(),
            format!("must be 1 to {MAX_RUN_NAME} printable characters"),
        ));
    }
    Ok(())
}

impl RunKeys {
    /// The checks beyond one key: the name's length.
    pub(crate) fn check(self) -> Result<Self, ConfigError> {
        check_run_name(&self.name)?;
        Ok(self)
    }
}

/// The sections of a config and their keys, in validation order.
pub const SECTIONS: [(&str, &[&str]); 7] = [
    (DataSpec::SECTION, &DataSpec::KEY_NAMES),
    (ModelSpec::SECTION, &ModelSpec::KEY_NAMES),
    (TrainSpec::SECTION, &TrainSpec::KEY_NAMES),
    (AttackSpec::SECTION, &AttackSpec::KEY_NAMES),
    (MethodSpec::SECTION, &MethodSpec::KEY_NAMES),
    (EvalSpec::SECTION, &EvalSpec::KEY_NAMES),
    (SlurmSpec::SECTION, &SlurmSpec::KEY_NAMES),
];

/// The keys outside any section.
pub const TOP_KEYS: [&str; 4] = RunKeys::KEY_NAMES;

const FIELD_COUNT: usize = RunKeys::FIELDS.len()
    + DataSpec::FIELDS.len()
    + ModelSpec::FIELDS.len()
    + MethodSpec::FIELDS.len()
    + AttackSpec::FIELDS.len()
    + TrainSpec::FIELDS.len()
    + EvalSpec::FIELDS.len()
    + SlurmSpec::FIELDS.len();

/// Every config key's declaration, grouped in form order.
pub const ALL_FIELDS: [Field; FIELD_COUNT] = concat_fields(&[
    &RunKeys::FIELDS,
    &DataSpec::FIELDS,
    &ModelSpec::FIELDS,
    &MethodSpec::FIELDS,
    &AttackSpec::FIELDS,
    &TrainSpec::FIELDS,
    &EvalSpec::FIELDS,
    &SlurmSpec::FIELDS,
]);

/// Form groups in display order.
pub const GROUPS: [&str; 8] = [
    RunKeys::GROUP,
    DataSpec::GROUP,
    ModelSpec::GROUP,
    MethodSpec::GROUP,
    AttackSpec::GROUP,
    TrainSpec::GROUP,
    EvalSpec::GROUP,
    SlurmSpec::GROUP,
];

/// A fully checked run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub tags: Vec<String>,
    pub seed: u64,
    pub device: DeviceSpec,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub attack: AttackSpec,
    pub method: MethodSpec,
    pub eval: EvalSpec,
    /// Resources asked of Slurm; absent from runs created before the section.
    #[serde(default)]
    pub slurm: SlurmSpec,
}

impl RunSpec {
    /// Number of classes of the configured dataset.
    pub fn num_classes(&self) -> usize {
        self.data.dataset.num_classes()
    }

    /// The evaluation batch size on a GPU (`on_gpu`) or the CPU (`eval.batch_size`, `auto`
    /// sized for the device).
    pub fn eval_batch(&self, on_gpu: bool) -> usize {
        let (arch, data) = (self.model.arch, self.data.dataset);
        (self.eval.batch_size).resolve(arch, data, self.train.precision, on_gpu)
    }

    /// The spec in config-file form.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunSpec always serialises to TOML")
    }

    /// The checks across sections.
    pub(crate) fn check(self) -> Result<Self, ConfigError> {
        if self.data.dataset != DatasetKind::FashionMnist
            && self.model.arch == Arch::Smallcnn
            && self.data.crop_padding > 8
        {
            return Err(ConfigError::invalid(
                DataKey::crop_padding.field().key,
                format!("at most 8 for {}", Arch::Smallcnn),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
