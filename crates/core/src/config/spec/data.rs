//! The `[data]` and `[model]` sections.

use std::path::PathBuf;

use crate::config::choices::{Arch, DatasetKind, PaddingMode, ValFrom};
use crate::config::schema::section;

section! {
    /// What the run trains and evaluates on.
    pub struct DataSpec in "data" as "data", keys DataKey {
        /// Read before the section's other keys, which it gives defaults.
        dataset: DatasetKind = |c| c.dataset; "Dataset to train on",
        dir: PathBuf = |c| c.dataset.default_dir().into();
            "Directory holding the dataset files",
        /// Class-balanced training subset size; 0 = everything left after the validation split.
        train_subset: usize [0, usize::MAX] = |_| 0;
            "Class-balanced training subset size; 0 = all",
        /// Validation images per class of the training files (algorithms.md §1.7, §3.4, §3.6).
        val_per_class: usize [0, 10_000] = |c| c.method.def().val_per_class(c.dataset);
            "Validation images per class taken from the training set; WAT/FRL default to 300 (30 on CIFAR-100)",
        /// Which images of each class form the validation split: the first in file order
        /// (FAIR-TAT, CFA) or the last (WAT's and FRL's `data_loader.py`).
        #[serde(default)]
        val_from: ValFrom = |c| c.method.def().val_from();
            "Validation images from the start (FAIR-TAT, CFA) or the end (WAT, FRL) of each class",
        /// Class-balanced test subset for per-epoch evaluation; 0 = the whole test set.
        test_subset: usize [0, usize::MAX] = |_| 0;
            "Class-balanced test subset for per-epoch evaluation; 0 = all",
        /// Random-crop padding in pixels; 0 = no crop.
        crop_padding: usize [0, 16] = |c| if c.dataset == DatasetKind::FashionMnist { 0 } else { 4 };
            "Random-crop padding in pixels; 0 = no crop",
        padding_mode: PaddingMode = |_| PaddingMode::Reflect; "Padding used by the random crop",
        flip: bool = |c| c.dataset != DatasetKind::FashionMnist; "Random horizontal flips",
        /// Per-dataset mean/std normalisation inside the model.
        normalize: bool = |_| false; "Per-dataset mean/std normalisation inside the model",
    }
}

section! {
    /// The network.
    pub struct ModelSpec in "model" as "model", keys ModelKey {
        arch: Arch = |c| match c.dataset {
            DatasetKind::FashionMnist => Arch::Smallcnn,
            _ => Arch::PreactResnet18,
        };
            "Network architecture",
    }
}
