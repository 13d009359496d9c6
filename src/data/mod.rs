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
pub use error::DataError;
pub use idx::{load_fashion_mnist, FASHION_MNIST_CLASSES};
pub use split::{balanced_quotas, class_balanced_first, split_from, Splits};

use crate::config::{DataSpec, DatasetKind};

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

/// The files [`load_files`] reads for `kind`, each with its accepted names (a Fashion-MNIST
/// file may be stored gzip'd or not).
pub fn expected_files(kind: DatasetKind) -> Vec<Vec<String>> {
    match kind {
        DatasetKind::FashionMnist => ["train-images", "train-labels", "t10k-images", "t10k-labels"]
            .iter()
            .map(|p| {
                let idx = if p.ends_with("images") {
                    "idx3"
                } else {
                    "idx1"
                };
                let base = format!("{p}-{idx}-ubyte");
                vec![format!("{base}.gz"), base]
            })
            .collect(),
        DatasetKind::Cifar10 => (1..=5)
            .map(|i| format!("data_batch_{i}.bin"))
            .chain(["test_batch.bin".to_string()])
            .map(|f| vec![f])
            .collect(),
        DatasetKind::Cifar100 => vec![vec!["train.bin".into()], vec!["test.bin".into()]],
    }
}

/// The expected files of `kind` that are not in `dir` (empty: all are there). A cheap check
/// before a run is queued, so a run whose data is missing is refused instead of failing.
pub fn missing_files(kind: DatasetKind, dir: &std::path::Path) -> Vec<String> {
    expected_files(kind)
        .into_iter()
        .filter(|names| !names.iter().any(|n| dir.join(n).is_file()))
        .map(|names| names[0].clone())
        .collect()
}
