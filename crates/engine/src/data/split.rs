//! Deterministic class-balanced selection: the validation split (the first n images of each
//! class in file order, algorithms.md §1.7, or the last n as WAT's and FRL's `data_loader.py`,
//! §3.4, §3.6) and the class-balanced train/test subsets.
//!
//! Everything here is a pure function of the labels, so the same files always give the same
//! splits, without an RNG, and a resumed run evaluates on exactly the same images.

use fairtat_core::config::{DataSpec, ValFrom};

use super::error::DataError;
use super::Dataset;

/// The three datasets a run uses.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
}

/// The first `per_class` indices of each class in file order, and every other index; both
/// lists in file order. A class with fewer images contributes all it has; labels
/// `>= num_classes` always go to `rest`.
pub fn class_balanced_first(
    labels: &[u8],
    num_classes: usize,
    per_class: usize,
) -> (Vec<usize>, Vec<usize>) {
    take_first(labels, &vec![per_class; num_classes])
}

/// Per-class quotas for a balanced subset of `n` images over `k` classes: `n / k` each, the
/// remainder going one apiece to the first classes.
pub fn balanced_quotas(n: usize, k: usize) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    (0..k).map(|c| n / k + usize::from(c < n % k)).collect()
}

/// The first `quotas[c]` indices of each class `c` in file order, and the rest.
fn take_first(labels: &[u8], quotas: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let wanted: usize = quotas.iter().sum();
    let mut taken = vec![0usize; quotas.len()];
    let mut chosen = Vec::with_capacity(wanted.min(labels.len()));
    let mut rest = Vec::with_capacity(labels.len().saturating_sub(wanted));
    for (i, &l) in labels.iter().enumerate() {
        let c = l as usize;
        if c < quotas.len() && taken[c] < quotas[c] {
            taken[c] += 1;
            chosen.push(i);
        } else {
            rest.push(i);
        }
    }
    (chosen, rest)
}

/// The last `quotas[c]` indices of each class `c` in file order, and the rest; both in file
/// order.
pub fn take_last(labels: &[u8], quotas: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let reversed: Vec<u8> = labels.iter().rev().copied().collect();
    let n = labels.len();
    let (chosen, rest) = take_first(&reversed, quotas);
    let back = |v: Vec<usize>| v.into_iter().rev().map(|i| n - 1 - i).collect::<Vec<_>>();
    (back(chosen), back(rest))
}

/// Like [`take_first`] (or [`take_last`]), but an error naming the first short class when a
/// quota cannot be met.
fn take_exactly(
    ds: &Dataset,
    quotas: &[usize],
    source: &str,
    what: &'static str,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    take_exactly_from(ds, quotas, source, what, ValFrom::First)
}

fn take_exactly_from(
    ds: &Dataset,
    quotas: &[usize],
    source: &str,
    what: &'static str,
    from: ValFrom,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let counts = ds.class_counts();
    if let Some(class) = (0..quotas.len()).find(|&c| counts[c] < quotas[c]) {
        return Err(DataError::NotEnoughImages {
            path: source.to_string(),
            what,
            class,
            needed: quotas[class],
            available: counts[class],
        });
    }
    Ok(match from {
        ValFrom::First => take_first(&ds.labels, quotas),
        ValFrom::Last => take_last(&ds.labels, quotas),
    })
}

/// Validation, train and test sets from the loaded `(train, test)` files as `spec` asks:
/// validation = the first (or, `data.val_from = "last"`, the last) `val_per_class` of each
/// class of `train` (no augmentation is applied to it later); train = the rest, optionally reduced to a balanced `train_subset`; test
/// optionally reduced to a balanced `test_subset`. Errors name `spec.dir`.
pub fn split_from(spec: &DataSpec, train: Dataset, test: Dataset) -> Result<Splits, DataError> {
    let source = spec.dir.display().to_string();
    let k = train.num_classes();
    let (val_idx, rest_idx) = take_exactly_from(
        &train,
        &vec![spec.val_per_class; k],
        &source,
        "the validation split (val_per_class)",
        spec.val_from,
    )?;
    let val = train.subset(&val_idx);
    let mut rest = train.subset(&rest_idx);
    drop(train);
    if spec.train_subset > 0 {
        let quotas = balanced_quotas(spec.train_subset, k);
        let (idx, _) = take_exactly(&rest, &quotas, &source, "train_subset")?;
        rest = rest.subset(&idx);
    }
    let test = if spec.test_subset > 0 {
        let quotas = balanced_quotas(spec.test_subset, test.num_classes());
        let (idx, _) = take_exactly(&test, &quotas, &source, "test_subset")?;
        test.subset(&idx)
    } else {
        test
    };
    Ok(Splits {
        train: rest,
        val,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_per_class_in_file_order() {
        let labels = [1, 0, 1, 1, 0, 2, 0, 5];
        let (chosen, rest) = class_balanced_first(&labels, 3, 2);
        assert_eq!(chosen, vec![0, 1, 2, 4, 5]);
        assert_eq!(rest, vec![3, 6, 7]);
        let (none, all) = class_balanced_first(&labels, 3, 0);
        assert!(none.is_empty());
        assert_eq!(all.len(), labels.len());
    }

    #[test]
    fn last_per_class_in_file_order() {
        let labels = [1, 0, 1, 1, 0, 2, 0, 5];
        // Class 0 at 1, 4, 6; class 1 at 0, 2, 3; class 2 at 5. The last two of each.
        let (chosen, rest) = take_last(&labels, &[2, 2, 2]);
        assert_eq!(chosen, vec![2, 3, 4, 5, 6]);
        assert_eq!(rest, vec![0, 1, 7]);
        let (none, all) = take_last(&labels, &[0, 0, 0]);
        assert!(none.is_empty());
        assert_eq!(all, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn quotas_spread_the_remainder_over_the_first_classes() {
        assert_eq!(balanced_quotas(23, 4), vec![6, 6, 6, 5]);
        assert_eq!(balanced_quotas(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(balanced_quotas(8, 4), vec![2; 4]);
        assert!(balanced_quotas(5, 0).is_empty());
        for (n, k) in [(0, 3), (101, 10), (7, 7)] {
            assert_eq!(balanced_quotas(n, k).iter().sum::<usize>(), n);
        }
    }
}
