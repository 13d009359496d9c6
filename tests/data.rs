//! Integration tests for `fairtat::data`: IDX and CIFAR parsing from files written to a
//! tempdir (and their rejection), the class-balanced splits, augmentation and batches, and
//! one load of the real Fashion-MNIST installed by `make test`.

use std::io::Write;
use std::path::{Path, PathBuf};

use fairtat::config::{DataSpec, DatasetKind, PaddingMode};
use fairtat::data::{self, Augment, DataError, Dataset};
use fairtat::util::Rng;
use tch::Kind;

// ---------- file writers ----------

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_images(count: u32, rows: u32, cols: u32, pixel: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051, count, rows, cols] {
        v.extend_from_slice(&u32::to_be_bytes(x));
    }
    v.extend((0..(count * rows * cols) as usize).map(pixel));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2049, labels.len() as u32] {
        v.extend_from_slice(&u32::to_be_bytes(x));
    }
    v.extend_from_slice(labels);
    v
}

/// A 2x3 Fashion-MNIST-like set: train (gzip) has 4 images, t10k (raw, no `.gz`) has 2.
/// Pixel k of the whole train file is `k`, so positions are easy to check.
fn write_fmnist(dir: &Path) {
    let w = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    w(
        "train-images-idx3-ubyte.gz",
        gz(&idx_images(4, 2, 3, |k| k as u8)),
    );
    w("train-labels-idx1-ubyte.gz", gz(&idx_labels(&[9, 0, 3, 0])));
    w(
        "t10k-images-idx3-ubyte",
        idx_images(2, 2, 3, |k| 200 + k as u8),
    );
    w("t10k-labels-idx1-ubyte", idx_labels(&[1, 2]));
}

/// CIFAR record: label byte(s) then 3072 pixels where pixel j of record r is `(r + 3j) % 256`
/// (channel c, row y, column x at j = c*1024 + y*32 + x).
fn cifar_records(labels: &[&[u8]], first: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for (r, lab) in labels.iter().enumerate() {
        v.extend_from_slice(lab);
        v.extend((0..3072).map(|j| ((first + r + 3 * j) % 256) as u8));
    }
    v
}

fn expected_pixel(record: usize, c: usize, y: usize, x: usize) -> u8 {
    ((record + 3 * (c * 1024 + y * 32 + x)) % 256) as u8
}

fn write_cifar10(dir: &Path) {
    for b in 1..=5 {
        let labels: Vec<[u8; 1]> = vec![[(b % 10) as u8], [((b + 5) % 10) as u8]];
        let refs: Vec<&[u8]> = labels.iter().map(|l| &l[..]).collect();
        let bytes = cifar_records(&refs, 2 * (b - 1));
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), bytes).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_records(&[&[7]], 100)).unwrap();
}

fn err_text<T>(r: Result<T, DataError>) -> (DataError, String) {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let s = e.to_string();
            (e, s)
        }
    }
}

// ---------- Fashion-MNIST IDX ----------

#[test]
fn idx_gz_and_raw_files_parse_into_chw() {
    let dir = tempfile::tempdir().unwrap();
    write_fmnist(dir.path());
    let (train, test) = data::load_fashion_mnist(dir.path()).unwrap();
    assert_eq!(
        (train.len(), train.channels, train.height, train.width),
        (4, 1, 2, 3)
    );
    assert_eq!(train.labels, vec![9, 0, 3, 0]);
    assert_eq!(train.image(2), &[12, 13, 14, 15, 16, 17]);
    assert_eq!(test.labels, vec![1, 2]);
    assert_eq!(test.image(1), &[206, 207, 208, 209, 210, 211]);
    assert_eq!(train.num_classes(), 10);
    assert_eq!(train.class_names[0], "T-shirt/top");
    assert_eq!(train.class_names[9], "Ankle boot");
    assert_eq!(train.class_counts()[0], 2);
}

#[test]
fn idx_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (e, msg) = err_text(data::load_fashion_mnist(dir.path()));
    assert!(matches!(e, DataError::Missing { .. }), "{msg}");
    assert!(
        msg.contains("train-images-idx3-ubyte.gz") && msg.contains("not found"),
        "{msg}"
    );
}

fn fmnist_with(name: &str, bytes: Vec<u8>) -> (DataError, String) {
    let dir = tempfile::tempdir().unwrap();
    write_fmnist(dir.path());
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let r = data::load_fashion_mnist(dir.path());
    let (e, msg) = err_text(r);
    assert!(msg.contains(name), "message should name {name}: {msg}");
    (e, msg)
}

#[test]
fn idx_truncated_file_reports_expected_and_actual_size() {
    let mut bytes = idx_images(2, 2, 3, |k| k as u8);
    bytes.truncate(bytes.len() - 5);
    let (e, msg) = fmnist_with("t10k-images-idx3-ubyte", bytes);
    assert!(
        matches!(
            e,
            DataError::Size {
                expected: 28,
                actual: 23,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("28") && msg.contains("23"), "{msg}");
}

#[test]
fn idx_wrong_magic_is_rejected() {
    let (e, msg) = fmnist_with(
        "train-labels-idx1-ubyte.gz",
        gz(&idx_images(4, 2, 3, |_| 0)),
    );
    assert!(
        matches!(
            e,
            DataError::BadMagic {
                found: 2051,
                expected: 2049,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn idx_label_out_of_range_is_rejected() {
    let (e, msg) = fmnist_with("t10k-labels-idx1-ubyte", idx_labels(&[1, 10]));
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn idx_mismatched_counts_are_rejected() {
    let (e, msg) = fmnist_with("train-labels-idx1-ubyte.gz", gz(&idx_labels(&[1, 2, 3])));
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                image_count: 4,
                label_count: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
}

#[test]
fn idx_corrupt_gzip_is_rejected() {
    let good = gz(&idx_images(4, 2, 3, |k| (k * 7) as u8));
    // A flipped byte inside the deflate stream (header is 10 bytes, trailer 8) and a
    // truncated stream must both fail, never yield wrong pixels.
    let mut flipped = good.clone();
    let mid = 10 + (flipped.len() - 18) / 2;
    flipped[mid] ^= 0xFF;
    let (e, msg) = fmnist_with("train-images-idx3-ubyte.gz", flipped);
    assert!(matches!(e, DataError::Gzip { .. }), "{msg}");
    let (e, _) = fmnist_with(
        "train-images-idx3-ubyte.gz",
        good[..good.len() - 6].to_vec(),
    );
    assert!(matches!(e, DataError::Gzip { .. }));
    let (e, msg) = fmnist_with("train-images-idx3-ubyte.gz", b"plain text".to_vec());
    assert!(
        matches!(e, DataError::Gzip { .. }) && msg.contains("gzip"),
        "{msg}"
    );
}

// ---------- CIFAR ----------

#[test]
fn cifar10_records_land_in_chw_order_with_meta_names() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let (train, test) = data::load_cifar10(dir.path()).unwrap();
    assert_eq!(
        (train.len(), train.channels, train.height, train.width),
        (10, 3, 32, 32)
    );
    assert_eq!(train.labels, vec![1, 6, 2, 7, 3, 8, 4, 9, 5, 0]);
    for (r, c, y, x) in [(0, 0, 0, 0), (3, 1, 5, 7), (9, 2, 31, 31), (4, 2, 0, 1)] {
        assert_eq!(
            train.image(r)[c * 1024 + y * 32 + x],
            expected_pixel(r, c, y, x)
        );
    }
    assert_eq!(test.labels, vec![7]);
    assert_eq!(test.image(0)[1024], expected_pixel(100, 1, 0, 0));
    assert_eq!(
        train.class_names,
        data::CIFAR10_CLASSES.map(String::from).to_vec()
    );

    let names: String = (0..10).map(|i| format!("name{i}\n")).collect::<String>() + "\n\n";
    std::fs::write(dir.path().join("batches.meta.txt"), names).unwrap();
    let (train, _) = data::load_cifar10(dir.path()).unwrap();
    assert_eq!(train.class_names[3], "name3");
    std::fs::write(dir.path().join("batches.meta.txt"), "a\nb\n").unwrap();
    let (e, msg) = err_text(data::load_cifar10(dir.path()));
    assert!(
        matches!(e, DataError::ClassNames { .. }) && msg.contains("batches.meta.txt"),
        "{msg}"
    );
}

#[test]
fn cifar10_bad_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let batch3 = dir.path().join("data_batch_3.bin");
    let mut bytes = std::fs::read(&batch3).unwrap();
    bytes.pop();
    std::fs::write(&batch3, &bytes).unwrap();
    let (e, msg) = err_text(data::load_cifar10(dir.path()));
    assert!(
        matches!(e, DataError::RecordSize { record: 3073, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("3073"),
        "{msg}"
    );

    write_cifar10(dir.path());
    std::fs::write(&batch3, cifar_records(&[&[3], &[10]], 0)).unwrap();
    let (e, msg) = err_text(data::load_cifar10(dir.path()));
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{msg}"
    );

    std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    write_cifar10(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_5.bin")).unwrap();
    let (e, msg) = err_text(data::load_cifar10(dir.path()));
    assert!(
        matches!(e, DataError::Missing { .. }) && msg.contains("data_batch_5.bin"),
        "{msg}"
    );
}

#[test]
fn cifar100_uses_fine_labels_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let train = cifar_records(&[&[19, 99], &[0, 42], &[5, 0]], 0);
    std::fs::write(dir.path().join("train.bin"), train).unwrap();
    std::fs::write(dir.path().join("test.bin"), cifar_records(&[&[1, 7]], 50)).unwrap();
    let (train, test) = data::load_cifar100(dir.path()).unwrap();
    assert_eq!(train.labels, vec![99, 42, 0]);
    assert_eq!(test.labels, vec![7]);
    assert_eq!(train.image(1)[2 * 1024 + 3], expected_pixel(1, 2, 0, 3));
    assert_eq!(train.num_classes(), 100);
    assert_eq!(train.class_names[42], "class_42");

    let names: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    std::fs::write(dir.path().join("fine_label_names.txt"), names).unwrap();
    let (train, _) = data::load_cifar100(dir.path()).unwrap();
    assert_eq!(train.class_names[99], "fine99");

    // A CIFAR-10-sized record (3073 bytes) is not a CIFAR-100 record.
    std::fs::write(dir.path().join("test.bin"), cifar_records(&[&[1]], 0)).unwrap();
    let (e, msg) = err_text(data::load_cifar100(dir.path()));
    assert!(
        matches!(e, DataError::RecordSize { record: 3074, .. }),
        "{msg}"
    );
    std::fs::write(dir.path().join("test.bin"), cifar_records(&[&[1, 100]], 0)).unwrap();
    let (e, _) = err_text(data::load_cifar100(dir.path()));
    assert!(matches!(e, DataError::LabelOutOfRange { label: 100, .. }));
}

// ---------- splits ----------

fn spec(kind: DatasetKind, dir: &Path, val: usize, train: usize, test: usize) -> DataSpec {
    DataSpec {
        dataset: kind,
        dir: PathBuf::from(dir),
        train_subset: train,
        val_per_class: val,
        val_from: fairtat::config::ValFrom::First,
        test_subset: test,
        crop_padding: 0,
        padding_mode: PaddingMode::Reflect,
        flip: false,
        normalize: false,
    }
}

/// 400 images of 1x1x2 whose bytes encode their file index; 4 classes in random order.
fn indexed(seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let n = 400usize;
    Dataset {
        images: (0..n).flat_map(|i| [(i >> 8) as u8, i as u8]).collect(),
        labels: (0..n).map(|_| rng.below(4) as u8).collect(),
        channels: 1,
        height: 1,
        width: 2,
        class_names: (0..4).map(|k| format!("c{k}")).collect(),
    }
}

fn origin(ds: &Dataset) -> Vec<usize> {
    (0..ds.len())
        .map(|i| (ds.image(i)[0] as usize) << 8 | ds.image(i)[1] as usize)
        .collect()
}

/// First `quota[c]` indices of each class among `candidates`, in order: the rule, spelled out.
fn first_per_class(labels: &[u8], candidates: &[usize], quota: &[usize]) -> Vec<usize> {
    let mut taken = vec![0; quota.len()];
    let mut out = Vec::new();
    for &i in candidates {
        let c = labels[i] as usize;
        if taken[c] < quota[c] {
            taken[c] += 1;
            out.push(i);
        }
    }
    out
}

#[test]
fn validation_split_is_first_per_class_deterministic_and_disjoint() {
    let (train, test) = (indexed(1), indexed(2));
    let s = spec(DatasetKind::FashionMnist, Path::new("/d"), 10, 0, 0);
    let a = data::split_from(&s, train.clone(), test.clone()).unwrap();
    let b = data::split_from(&s, train.clone(), test.clone()).unwrap();
    assert_eq!((&a.train, &a.val, &a.test), (&b.train, &b.val, &b.test));
    assert_eq!(a.val.class_counts(), vec![10; 4]);
    let all: Vec<usize> = (0..400).collect();
    let val = origin(&a.val);
    assert_eq!(val, first_per_class(&train.labels, &all, &[10; 4]));
    let rest = origin(&a.train);
    assert_eq!(
        rest,
        all.iter()
            .copied()
            .filter(|i| !val.contains(i))
            .collect::<Vec<_>>()
    );
    assert_eq!(a.train.len() + a.val.len(), 400);
    assert_eq!(a.test, test);
    let (chosen, others) = data::class_balanced_first(&train.labels, 4, 10);
    assert_eq!((chosen, others), (val, rest));
}

#[test]
fn train_and_test_subsets_are_class_balanced_first_of_the_rest() {
    let (train, test) = (indexed(3), indexed(4));
    let s = spec(DatasetKind::FashionMnist, Path::new("/d"), 5, 23, 8);
    let sp = data::split_from(&s, train.clone(), test.clone()).unwrap();
    assert_eq!(sp.train.class_counts(), vec![6, 6, 6, 5]);
    assert_eq!(sp.test.class_counts(), vec![2; 4]);
    let val = origin(&sp.val);
    let rest: Vec<usize> = (0..400).filter(|i| !val.contains(i)).collect();
    assert_eq!(
        origin(&sp.train),
        first_per_class(&train.labels, &rest, &[6, 6, 6, 5])
    );
    let all: Vec<usize> = (0..400).collect();
    assert_eq!(
        origin(&sp.test),
        first_per_class(&test.labels, &all, &[2; 4])
    );

    let too_big = spec(DatasetKind::FashionMnist, Path::new("/my/dir"), 5, 1000, 0);
    let (e, msg) = err_text(data::split_from(&too_big, train.clone(), test.clone()));
    assert!(
        matches!(e, DataError::NotEnoughImages { needed: 250, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("/my/dir") && msg.contains("train_subset"),
        "{msg}"
    );
    let val_too_big = spec(DatasetKind::FashionMnist, Path::new("/d"), 200, 0, 0);
    let (_, msg) = err_text(data::split_from(&val_too_big, train, test));
    assert!(msg.contains("val_per_class"), "{msg}");
}

#[test]
fn load_dispatches_on_the_spec_and_reports_short_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_fmnist(dir.path());
    let sp = data::load(&spec(DatasetKind::FashionMnist, dir.path(), 0, 0, 0)).unwrap();
    assert_eq!((sp.train.len(), sp.val.len(), sp.test.len()), (4, 0, 2));
    let (e, _) = err_text(data::load(&spec(
        DatasetKind::FashionMnist,
        dir.path(),
        1,
        0,
        0,
    )));
    assert!(matches!(
        e,
        DataError::NotEnoughImages {
            class: 1,
            available: 0,
            ..
        }
    ));
    let (e, _) = err_text(data::load(&spec(DatasetKind::Cifar10, dir.path(), 0, 0, 0)));
    assert!(matches!(e, DataError::Missing { .. }));
}

// ---------- augmentation and batches ----------

fn aug(padding: usize, mode: PaddingMode, flip: bool) -> Augment {
    Augment {
        padding,
        mode,
        flip,
    }
}

/// Reference: materialise the padded image, crop at (dy, dx), then mirror. Padding < size.
fn reference(
    img: &[u8],
    n: usize,
    p: usize,
    mode: PaddingMode,
    dy: usize,
    dx: usize,
    f: bool,
) -> Vec<u8> {
    let m = n + 2 * p;
    let src = |i: isize| -> Option<usize> {
        match (i, mode) {
            (i, _) if (0..n as isize).contains(&i) => Some(i as usize),
            (_, PaddingMode::Zero) => None,
            (i, PaddingMode::Reflect) if i < 0 => Some((-i) as usize),
            (i, PaddingMode::Reflect) => Some(2 * (n - 1) - i as usize),
        }
    };
    let padded: Vec<u8> = (0..m * m)
        .map(|k| {
            match (
                src((k / m) as isize - p as isize),
                src((k % m) as isize - p as isize),
            ) {
                (Some(y), Some(x)) => img[y * n + x],
                _ => 0,
            }
        })
        .collect();
    (0..n * n)
        .map(|k| {
            let (y, x) = (k / n, k % n);
            let x = if f { n - 1 - x } else { x };
            padded[(y + dy) * m + x + dx]
        })
        .collect()
}

const IMG: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

#[test]
fn crop_padding_matches_reference_and_borders_are_zero_or_reflected() {
    for (mode, corner) in [
        (PaddingMode::Reflect, [5, 4, 5, 2, 1, 2, 5, 4, 5]),
        (PaddingMode::Zero, [0, 0, 0, 0, 1, 2, 0, 4, 5]),
    ] {
        let a = aug(1, mode, true);
        let mut rng = Rng::new(11);
        // Reflect padding makes some (offset, flip) pairs coincide, so compare output sets.
        let expected: std::collections::HashSet<Vec<u8>> = (0..3)
            .flat_map(|dy| (0..3).flat_map(move |dx| [(dy, dx, false), (dy, dx, true)]))
            .map(|(dy, dx, f)| reference(&IMG, 3, 1, mode, dy, dx, f))
            .collect();
        let outputs: Vec<Vec<u8>> = (0..400)
            .map(|_| a.apply(&IMG, (1, 3, 3), &mut rng))
            .collect();
        for out in &outputs {
            assert!(
                expected.contains(out),
                "{mode:?}: unexpected output {out:?}"
            );
        }
        let seen: std::collections::HashSet<Vec<u8>> = outputs.iter().cloned().collect();
        assert_eq!(
            seen, expected,
            "{mode:?}: every offset and flip should occur"
        );
        assert!(expected.len() >= 12, "{mode:?}: test image too symmetric");
        assert!(
            outputs.iter().any(|o| o[..] == corner),
            "{mode:?}: no top-left crop"
        );
    }
}

#[test]
fn flip_mirrors_each_channel_half_the_time() {
    let img: Vec<u8> = IMG
        .iter()
        .copied()
        .chain(IMG.iter().map(|v| 10 * v))
        .collect();
    let mirror: Vec<u8> = [
        3, 2, 1, 6, 5, 4, 9, 8, 7, 30, 20, 10, 60, 50, 40, 90, 80, 70,
    ]
    .to_vec();
    let a = aug(0, PaddingMode::Zero, true);
    assert!(!a.is_identity());
    let mut rng = Rng::new(5);
    let mut flips = 0;
    for _ in 0..400 {
        let out = a.apply(&img, (2, 3, 3), &mut rng);
        if out == mirror {
            flips += 1;
        } else {
            assert_eq!(out, img);
        }
    }
    assert!((140..260).contains(&flips), "flipped {flips} of 400");
}

#[test]
fn batches_have_shape_kind_range_and_identity_without_augmentation() {
    tch::manual_seed(0);
    let ds = Dataset::synthetic(3, 4, 3, 8, 8, 7);
    let idx = [0usize, 4, 2, 11];
    let (x, y) = data::make_batch(&ds, &idx, None);
    assert_eq!(x.size(), vec![4, 3, 8, 8]);
    assert_eq!((x.kind(), y.kind()), (Kind::Float, Kind::Int64));
    assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![0, 1, 2, 2]);
    let flat = Vec::<f32>::try_from(&x.flatten(0, -1)).unwrap();
    let expect: Vec<f32> = idx
        .iter()
        .flat_map(|&i| ds.image(i).iter().map(|&b| b as f32 / 255.0))
        .collect();
    assert_eq!(flat, expect);

    let mut s = spec(DatasetKind::Cifar10, Path::new("/d"), 0, 0, 0);
    s.flip = false;
    let identity = Augment::from_spec(&s);
    assert!(identity.is_identity());
    let (xi, _) = data::make_batch(&ds, &idx, Some((&identity, &mut Rng::new(1))));
    assert!(xi.equal(&x));

    s.crop_padding = 2;
    s.flip = true;
    let train_aug = Augment::from_spec(&s);
    assert_eq!(train_aug, aug(2, PaddingMode::Reflect, true));
    let (xa, ya) = data::make_batch(&ds, &idx, Some((&train_aug, &mut Rng::new(1))));
    assert_eq!(xa.size(), vec![4, 3, 8, 8]);
    assert!(ya.equal(&y));
    let (lo, hi) = (xa.min().double_value(&[]), xa.max().double_value(&[]));
    assert!(lo >= 0.0 && hi <= 1.0, "range [{lo}, {hi}]");
    assert!(
        !xa.equal(&x),
        "padding 2 with flips should change at least one image"
    );
    let (xb, _) = data::make_batch(&ds, &idx, Some((&train_aug, &mut Rng::new(1))));
    assert!(xb.equal(&xa), "same RNG seed, same augmented batch");
    let mut r1 = Rng::derive(3, &[1]);
    let mut r2 = Rng::derive(3, &[1]);
    assert_eq!(
        data::batch_indices(12, 5, Some(&mut r1)),
        data::batch_indices(12, 5, Some(&mut r2))
    );
}

// ---------- the real Fashion-MNIST ----------

#[test]
fn real_fashion_mnist_loads_and_splits() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let start = std::time::Instant::now();
    let (train, test) = data::load_fashion_mnist(dir)
        .unwrap_or_else(|e| panic!("{e} (install Debian's dataset-fashion-mnist: make deps)"));
    eprintln!(
        "Fashion-MNIST loaded in {:?} (test profile)",
        start.elapsed()
    );
    assert_eq!((train.len(), test.len()), (60000, 10000));
    assert_eq!((train.channels, train.height, train.width), (1, 28, 28));
    assert_eq!(train.images.len(), 60000 * 784);
    assert_eq!(train.num_classes(), 10);
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    // Real images are not blank: mean intensity of Fashion-MNIST is about 0.286 * 255.
    let mean = train.images.iter().map(|&b| b as f64).sum::<f64>() / train.images.len() as f64;
    assert!((65.0..80.0).contains(&mean), "mean pixel {mean}");

    let s = spec(DatasetKind::FashionMnist, dir, 100, 0, 2000);
    let sp = data::split_from(&s, train, test).unwrap();
    assert_eq!(sp.val.class_counts(), vec![100; 10]);
    assert_eq!(sp.train.class_counts(), vec![5900; 10]);
    assert_eq!(sp.test.class_counts(), vec![200; 10]);
}
