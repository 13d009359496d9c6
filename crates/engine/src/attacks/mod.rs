//! Adversarial attacks in [0,1] pixel space: L-inf PGD (untargeted or targeted, per-sample
//! epsilon) and FGSM for training, and the evaluation attacks of AutoAttack (APGD-CE/-T, FAB-T,
//! Square) with the sequential AutoAttack driver (algorithms.md §4).

mod apgd;
mod autoattack;
mod autoattack_result;
mod classifier;
mod fab;
mod fab_projection;
mod losses;
mod pgd;
mod signed;
mod square;

pub use apgd::{apgd, checkpoints as apgd_checkpoints, ApgdConfig, ApgdLoss};
pub use autoattack::{AaStage, AaVersion, AutoAttack, AutoAttackConfig};
pub use autoattack_result::{AaResult, StageMetrics};
pub use classifier::{AttackError, Classifier};
pub use fab::{fab_targeted, FabConfig};
pub use fab_projection::projection_linf;
pub use losses::{ce_loss, ce_loss_targeted, dlr_loss, dlr_loss_targeted, margin};
pub use pgd::{fgsm, per_sample_eps, pgd, try_per_sample_eps, PgdConfig};
pub(crate) use pgd::{linf_bounds, start_delta};
pub use signed::{signed_steps, trades_start, Ball};
pub use square::{p_selection, square, window_side, SquareConfig};
