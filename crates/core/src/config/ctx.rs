//! What a default may depend on: the keys read before it. The method is read first (it decides
//! the defaults of the validation split, the BN mode of the attack, FAWA, clean forwards and its
//! own options), and the data set first in its section; then the sections in order, each
//! filling in what later defaults use. The defaults of `method.name` and `data.dataset` are
//! [`Ctx::default`]'s.

use super::choices::{Arch, DatasetKind};
use super::error::ConfigError;
use super::reader::Reader;
use super::spec::MethodKind;

/// The values read so far that later defaults depend on.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// `method.name`; before it is read, its default.
    pub method: MethodKind,
    /// The key that preceded `train.clean_forwards`, `method.clean_forward_after_step` (a
    /// bool, found in older run directories), if set.
    pub legacy_clean_forward: Option<bool>,
    /// `data.dataset`, read first in its section; before, its default.
    pub dataset: DatasetKind,
    /// `model.arch`, `train.epochs`, `attack.eps`, `attack.alpha`, once read.
    pub arch: Arch,
    pub epochs: usize,
    pub eps: f64,
    pub alpha: f64,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            method: MethodKind::FairTat,
            legacy_clean_forward: None,
            dataset: DatasetKind::FashionMnist,
            arch: Arch::Smallcnn,
            epochs: 0,
            eps: 0.0,
            alpha: 0.0,
        }
    }
}

/// A config section as [`super::schema::section!`] declares it.
pub(crate) trait Section: Sized {
    /// Its name in a config (`""` for top-level keys) and its keys.
    const SECTION: &'static str;
    const KEY_NAMES: &'static [&'static str];
    /// Read every key of the section from `r`, defaults from `c`.
    fn read(r: &Reader, c: &Ctx) -> Result<Self, ConfigError>;
}
