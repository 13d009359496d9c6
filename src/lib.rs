//! fairtat: adversarial training that keeps every class robust.
//!
//! Module map (who may import whom is in `shared/STYLE.md`):
//! - [`config`]: raw config (TOML, form, `--set k=v`) -> validated [`config::RunSpec`]; presets.
//! - [`data`]: Fashion-MNIST IDX, CIFAR-10/100 binary, class-balanced splits, augmentation.
//! - [`corruptions`]: CIFAR-C `.npy` reader and seeded procedural corruptions (noise, blur, fog, JPEG ...). No tch.
//! - [`models`]: SmallCNN, PreAct ResNet-18, WRN-34-10 with PyTorch parameter names; checkpoints.
//! - [`attacks`]: L-inf PGD (targeted/untargeted, per-sample epsilon), FGSM; AutoAttack (APGD-CE/-T,
//!   FAB-T, Square) for evaluation.
//! - [`methods`]: one file per training method behind the [`methods::Method`] trait.
//! - [`fairness`]: confusion matrices and class-wise metrics (C_acc, C_FPS, worst-k). No tch.
//! - [`evaluation`]: test-set evaluation suites: PGD, AutoAttack with per-stage class-wise breakdown,
//!   Square, common corruptions; `fairtat eval` and the dashboard's evaluation jobs.
//! - [`train`]: the epoch loop, schedules, EMA, evaluation; emits [`runs::RunEvent`]s to sinks.
//! - [`runs`]: the run-directory format: event schema, writer, reader/tailer, CSV reports. No tch.
//! - [`server`]: the dashboard (axum): executor, SQLite index, pages, API, SSE. No tch.
//! - [`charts`]: plotters SVG renderers, pure functions of metric series. No tch.
//! - [`util`]: small shared helpers (deterministic RNG).

pub mod attacks;
pub mod charts;
pub mod cli;
pub mod config;
pub mod corruptions;
pub mod data;
pub mod evaluation;
pub mod fairness;
pub mod methods;
pub mod models;
pub mod runs;
pub mod server;
pub mod train;
pub mod util;
