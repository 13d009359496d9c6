//! The files each data set is stored as on disk (`data.dir`), and which of them are missing.
//! Plain path checks, no tch: the server refuses a run whose data is missing before queueing it,
//! and the engine's loaders read exactly these names.

use crate::config::DatasetKind;

/// The files `fairtat_engine::data::load_files` reads for `kind`, each with its accepted names (a Fashion-MNIST
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
