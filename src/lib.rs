//! fairtat: adversarial training that keeps every class robust.
//!
//! The workspace's crate graph is the architecture (see the README's "Architecture"):
//! - `fairtat-core` ([`config`], [`runs`], [`fairness`], [`util`]): no tch, no tokio.
//! - `fairtat-charts` ([`charts`]): plotters SVG renderers, pure functions of metric series.
//! - `fairtat-engine` ([`data`], [`corruptions`], [`models`], [`attacks`], [`methods`],
//!   [`train`], [`evaluation`]): tensors; builds on core only.
//! - `fairtat-server` ([`server`]): the dashboard (axum, SQLite, Slurm); builds on core and charts,
//!   never on the engine, so "the server knows no tensors" is a build error, not a convention.
//! - this crate: the `fairtat` command line ([`cli`]) over all of them. It re-exports each
//!   crate's modules under one name so that the programs and tests read `fairtat::<module>`.

pub use fairtat_charts as charts;
pub use fairtat_core::{config, datafiles, fairness, runs, util};
pub use fairtat_engine::{attacks, corruptions, data, evaluation, methods, models, train};
pub use fairtat_server as server;

pub mod cli;
