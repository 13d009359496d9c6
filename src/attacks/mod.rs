//! Adversarial attacks in [0,1] pixel space: L-inf PGD (untargeted or targeted, per-sample
//! epsilon) and FGSM. AutoAttack components would live beside `pgd.rs`.

mod pgd;

pub use pgd::{fgsm, per_sample_eps, pgd, try_per_sample_eps, PgdConfig};
