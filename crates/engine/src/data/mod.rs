//! Datasets: Fashion-MNIST IDX, CIFAR-10/100 binary, synthetic test data; the class-balanced
//! validation split and subsets; augmentation; mini-batches as tensors.
//!
//! Images stay `u8` until [`make_batch`] turns a batch into a float tensor, so every step up to
//! that point is plain Rust (no tch), deterministic and cheap to test.

mod augment;
mod batch;
mod cifar;
mod dataset;
mod error;
mod idx;
mod split;
mod synthetic;

pub use augment::Augment;
pub use batch::{batch_indices, make_batch};
pub use cifar::{load_cifar10, load_cifar100, CIFAR10_CLASSES};
pub use dataset::Dataset;
pub(crate) use error::read_file;
pub use error::DataError;
pub use idx::{load_fashion_mnist, FASHION_MNIST_CLASSES};
pub use split::{balanced_quotas, class_balanced_first, split_from, Splits};
// Which files a data set needs is plain path logic the server checks too, so it lives in core.
pub use fairtat_core::datafiles::{expected_files, missing_files};

use fairtat_core::config::{DataSpec, DatasetKind};

/// Load the dataset named in `spec` from `spec.dir` and split it as [`split_from`] describes.
pub fn load(spec: &DataSpec) -> Result<Splits, DataError> {
    let (train, test) = load_files(spec.dataset, &spec.dir)?;
    split_from(spec, train, test)
}

/// `(train, test)` as stored, before any split.
pub fn load_files(
    kind: DatasetKind,
    dir: &std::path::Path,
) -> Result<(Dataset, Dataset), DataError> {
    match kind {
        DatasetKind::FashionMnist => load_fashion_mnist(dir),
        DatasetKind::Cifar10 => load_cifar10(dir),
        DatasetKind::Cifar100 => load_cifar100(dir),
    }
}
