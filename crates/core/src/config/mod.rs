//! Configuration: what the user typed ([`RawConfig`], from TOML, `--set key=value` or a form)
//! apart from what the trainer runs ([`RunSpec`], exists only once every field is checked),
//! as ripgrep keeps `LowArgs` apart from `HiArgs`.
//!
//! Defaults reproduce the FAIR-TAT reference code (`shared/spec/algorithms.md` §1.2, §5); the
//! Fashion-MNIST presets in `configs/` override what CIFAR-specific defaults do not fit.

mod activations;
mod choices;
mod ctx;
pub mod device;
mod error;
pub mod eval_batch;
pub mod fields;
pub mod form_check;
pub mod form_resolve;
pub mod gpu_memory;
pub mod grid;
pub mod grid_init;
pub mod keys;
mod number;
mod raw;
mod reader;
mod schema;
mod spec;
mod value;

pub use device::DeviceSpec;
pub use error::ConfigError;
pub use eval_batch::EvalBatch;
pub use number::{parse_fraction, short_number};
pub use raw::RawConfig;
pub use spec::*;

use std::path::Path;

/// Read a TOML file, apply `--set key=value` overrides, validate.
pub fn load(path: &Path, sets: &[String]) -> Result<RunSpec, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    from_toml_str(&text, sets)
}

/// Parse TOML text, apply overrides, validate.
pub fn from_toml_str(text: &str, sets: &[String]) -> Result<RunSpec, ConfigError> {
    let mut table = keys::parse_toml(text)?;
    for s in sets {
        value::apply_set(&mut table, s)?;
    }
    RawConfig::from_table(table)?.validate()
}
