//! fairtat-engine: everything that touches tensors (tch), and nothing async or HTTP.
//!
//! - [`data`]: Fashion-MNIST IDX, CIFAR-10/100 binary, class-balanced splits, augmentation.
//! - [`corruptions`]: CIFAR-C `.npy` reader and seeded procedural corruptions (noise, blur, fog, JPEG ...).
//! - [`models`]: SmallCNN, PreAct ResNet-18, WRN-34-10 with PyTorch parameter names; checkpoints.
//! - [`attacks`]: L-inf PGD (targeted/untargeted, per-sample epsilon), FGSM; AutoAttack (APGD-CE/-T,
//!   FAB-T, Square) for evaluation.
//! - [`methods`]: one file per training method behind the [`methods::Method`] trait.
//! - [`evaluation`]: test-set evaluation suites: PGD, AutoAttack with per-stage class-wise breakdown,
//!   Square, common corruptions; `fairtat eval` and the dashboard's evaluation jobs.
//! - [`train`]: the epoch loop, schedules, EMA, evaluation; emits `runs::RunEvent`s to sinks.
//!
//! Config, run-directory format and fairness metrics come from `fairtat-core`.

pub mod attacks;
pub mod corruptions;
pub mod data;
pub mod evaluation;
pub mod methods;
pub mod models;
pub mod train;
