//! fairtat-core: what every other crate agrees on, with no tch and no tokio.
//!
//! - [`config`]: raw config (TOML, form, `--set k=v`) -> validated [`config::RunSpec`]; presets.
//! - [`runs`]: the run-directory format: event schema, writer, reader/tailer, CSV reports.
//! - [`fairness`]: confusion matrices and class-wise metrics (C_acc, C_FPS, worst-k) on counts.
//! - [`datafiles`]: the files each data set is stored as, and which are missing.
//! - [`util`]: small shared helpers (deterministic RNG).
//!
//! The engine (tensors) and the server (HTTP) both build on this crate and never on each other.

pub mod config;
pub mod datafiles;
pub mod fairness;
pub mod runs;
pub mod util;
