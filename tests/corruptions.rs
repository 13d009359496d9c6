//! Integration tests of `fairtat::corruptions`: value range, shape, determinism and severity
//! ordering of every generator; the `.npy` reader on hand-written files; `load_cifar_c`.

use std::path::Path;

use fairtat::corruptions::{
    corrupt, corrupt_dataset, load_cifar_c, read_npy_u8, CORRUPTIONS, RANDOM_CORRUPTIONS,
};
use fairtat::data::Dataset;
use fairtat::util::Rng;

/// A smooth RGB-ish scene with an edge and some texture: blurs and noise both show on it.
fn scene(c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut rng = Rng::new(99);
    let mut x = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                let base = 0.2 + 0.5 * ((y as f32 / 5.0 + ch as f32).sin() * 0.5 + 0.5);
                let edge = if xx > w / 2 { 0.25 } else { 0.0 };
                x.push((base + edge + 0.05 * rng.next_f64() as f32).clamp(0.0, 1.0));
            }
        }
    }
    x
}

fn mad(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn every_generator_keeps_range_shape_and_is_deterministic() {
    for &(c, h, w) in &[(3usize, 32usize, 32usize), (1, 28, 28)] {
        let x = scene(c, h, w);
        for name in CORRUPTIONS {
            for sev in 1..=5u8 {
                let a = corrupt(name, sev, &x, c, h, w, &mut Rng::new(7)).unwrap();
                let b = corrupt(name, sev, &x, c, h, w, &mut Rng::new(7)).unwrap();
                assert_eq!(a.len(), x.len(), "{name} {sev}");
                assert!(
                    a.iter().all(|v| (0.0..=1.0).contains(v)),
                    "{name} {sev} out of range"
                );
                assert_eq!(a, b, "{name} {sev} not deterministic");
                let other = corrupt(name, sev, &x, c, h, w, &mut Rng::new(8)).unwrap();
                if RANDOM_CORRUPTIONS.contains(name) {
                    assert_ne!(a, other, "{name} {sev} ignores the seed");
                } else {
                    assert_eq!(a, other, "{name} {sev} is deterministic by design");
                }
            }
        }
    }
}

#[test]
fn every_generator_changes_the_image() {
    let x = scene(3, 32, 32);
    for name in CORRUPTIONS {
        let y = corrupt(name, 5, &x, 3, 32, 32, &mut Rng::new(1)).unwrap();
        let d = mad(&x, &y);
        assert!(
            d > 1e-3,
            "{name} at severity 5 barely changes the image: {d}"
        );
    }
}

#[test]
fn higher_severity_moves_further_from_the_original() {
    let x = scene(3, 32, 32);
    let monotone = [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "speckle_noise",
        "gaussian_blur",
        "defocus_blur",
        "zoom_blur",
        "contrast",
        "pixelate",
        "brightness",
        "fog",
        "jpeg_compression",
    ];
    for name in monotone {
        let d: Vec<f64> = (1..=5u8)
            .map(|s| {
                mad(
                    &x,
                    &corrupt(name, s, &x, 3, 32, 32, &mut Rng::new(3)).unwrap(),
                )
            })
            .collect();
        for k in 1..5 {
            assert!(
                d[k] >= d[k - 1] * 0.9 - 1e-3,
                "{name}: distance drops from severity {k} to {}: {d:?}",
                k + 1
            );
        }
        assert!(d[4] > d[0], "{name}: severity 5 not further than 1: {d:?}");
    }
}

#[test]
fn corrupt_dataset_is_order_independent() {
    let x = scene(1, 8, 8);
    let mut images = Vec::new();
    for i in 0..4 {
        images.extend(x.iter().map(|&v| ((v * 255.0) as u8).wrapping_add(i * 7)));
    }
    let ds = Dataset {
        images,
        labels: vec![0, 1, 1, 0],
        channels: 1,
        height: 8,
        width: 8,
        class_names: vec!["a".into(), "b".into()],
    };
    let all = corrupt_dataset(&ds, "gaussian_noise", 3, 11).unwrap();
    assert_eq!(all.labels, ds.labels);
    assert_eq!(all.images.len(), ds.images.len());
    assert_ne!(all.images, ds.images);
    // Same seed, same result; another seed, other noise.
    let again = corrupt_dataset(&ds, "gaussian_noise", 3, 11).unwrap();
    assert_eq!(all, again);
    let other_seed = corrupt_dataset(&ds, "gaussian_noise", 3, 12).unwrap();
    assert_ne!(all.images, other_seed.images);
    // Different images get different noise even when their pixels are equal.
    let same = Dataset {
        images: [ds.image(0), ds.image(0)].concat(),
        labels: vec![0, 0],
        ..ds.clone()
    };
    let out = corrupt_dataset(&same, "impulse_noise", 5, 11).unwrap();
    assert_ne!(out.image(0), out.image(1));
    // Each image's stream depends only on (seed, name, severity, index): a prefix of the
    // dataset gets exactly the images the full run produced.
    let prefix = corrupt_dataset(&ds.subset(&[0, 1]), "gaussian_noise", 3, 11).unwrap();
    assert_eq!(prefix.images, all.images[..128]);
    assert!(corrupt_dataset(&ds, "frost", 1, 0).is_err());
    assert!(corrupt_dataset(&ds, "fog", 6, 0).is_err());
}

/// Write a `.npy` exactly as numpy does: magic, version, header length, dict padded with spaces
/// and ended by a newline so that the data starts at a multiple of 64.
fn npy_bytes(major: u8, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let fo = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {shape_txt}, }}");
    let prefix = if major == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([major, 0]);
    if major == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    assert_eq!(out.len() % 64, 0);
    out.extend(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn npy_reads_v1_v2_v3_and_rejects_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..24).collect();
    for major in [1u8, 2, 3] {
        let p = write(
            tmp.path(),
            "ok.npy",
            &npy_bytes(major, "|u1", false, &[2, 2, 2, 3], &data),
        );
        let a = read_npy_u8(&p).unwrap();
        assert_eq!(a.shape, vec![2, 2, 2, 3]);
        assert_eq!(a.data, data);
    }
    let p = write(
        tmp.path(),
        "lab.npy",
        &npy_bytes(1, "|u1", false, &[5], &[1, 2, 3, 4, 5]),
    );
    assert_eq!(read_npy_u8(&p).unwrap().shape, vec![5]);

    let bad = |name: &str, bytes: Vec<u8>, needle: &str| {
        let p = write(tmp.path(), name, &bytes);
        let e = read_npy_u8(&p).unwrap_err().to_string();
        assert!(
            e.contains(name),
            "{name}: error does not name the file: {e}"
        );
        assert!(e.contains(needle), "{name}: expected {needle:?} in {e}");
    };
    bad("f4.npy", npy_bytes(1, "<f4", false, &[6], &data), "dtype");
    bad(
        "fortran.npy",
        npy_bytes(1, "|u1", true, &[4, 6], &data),
        "fortran_order",
    );
    bad(
        "short.npy",
        npy_bytes(1, "|u1", false, &[5, 5], &data),
        "truncated",
    );
    bad(
        "long.npy",
        npy_bytes(2, "|u1", false, &[4, 5], &data),
        "mismatch",
    );
    let mut magic = npy_bytes(1, "|u1", false, &[24], &data);
    magic[1] = b'X';
    bad("magic.npy", magic, "magic");
    let mut version = npy_bytes(1, "|u1", false, &[24], &data);
    version[6] = 9;
    bad("version.npy", version, "version");
    let whole = npy_bytes(1, "|u1", false, &[24], &data);
    bad("cut_header.npy", whole[..40].to_vec(), "truncated");
    bad("cut_len.npy", whole[..9].to_vec(), "truncated");
    let e = read_npy_u8(&tmp.path().join("missing.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.npy"), "{e}");
}

#[test]
fn load_cifar_c_splits_severities_and_converts_to_chw() {
    let tmp = tempfile::tempdir().unwrap();
    let (n, h, w, c) = (50usize, 4usize, 3usize, 3usize);
    // Pixel (i, y, x, ch) = (i + 10 * ch + 3 * y + x) mod 256, so the layout is checkable.
    let mut data = Vec::with_capacity(n * h * w * c);
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    data.push(((i + 10 * ch + 3 * y + x) % 256) as u8);
                }
            }
        }
    }
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    write(
        tmp.path(),
        "fog.npy",
        &npy_bytes(1, "|u1", false, &[n, h, w, c], &data),
    );
    write(
        tmp.path(),
        "labels.npy",
        &npy_bytes(1, "|u1", false, &[n], &labels),
    );
    let sets = load_cifar_c(tmp.path(), "fog", None).unwrap();
    assert_eq!(sets.len(), 5);
    for (k, (sev, ds)) in sets.iter().enumerate() {
        assert_eq!(*sev as usize, k + 1);
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width), (10, 3, 4, 3));
        assert_eq!(ds.labels, (0..10).collect::<Vec<u8>>());
        assert_eq!(ds.class_names[0], "airplane");
        for j in [0usize, 7] {
            let i = k * 10 + j;
            let img = ds.image(j);
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        assert_eq!(
                            img[ch * h * w + y * w + x] as usize,
                            (i + 10 * ch + 3 * y + x) % 256
                        );
                    }
                }
            }
        }
    }
    let named = load_cifar_c(
        tmp.path(),
        "fog",
        Some((0..10).map(|i| format!("c{i}")).collect()),
    )
    .unwrap();
    assert_eq!(named[0].1.class_names[3], "c3");

    // Errors: too few class names, missing file, bad split, mismatched labels, bad name.
    let e = load_cifar_c(tmp.path(), "fog", Some(vec!["a".into()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("labels.npy") && e.contains("label"), "{e}");
    let e = load_cifar_c(tmp.path(), "snow", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("snow.npy"), "{e}");
    write(
        tmp.path(),
        "odd.npy",
        &npy_bytes(1, "|u1", false, &[7, 1, 1, 1], &[0; 7]),
    );
    let e = load_cifar_c(tmp.path(), "odd", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("odd.npy") && e.contains("labels.npy"), "{e}");
    write(
        tmp.path(),
        "flat.npy",
        &npy_bytes(1, "|u1", false, &[n, 3], &vec![0; n * 3]),
    );
    let e = load_cifar_c(tmp.path(), "flat", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(N, H, W, C)"), "{e}");
    assert!(load_cifar_c(tmp.path(), "../fog", None).is_err());

    let sub = tempfile::tempdir().unwrap();
    write(
        sub.path(),
        "x.npy",
        &npy_bytes(1, "|u1", false, &[7, 1, 1, 1], &[0; 7]),
    );
    write(
        sub.path(),
        "labels.npy",
        &npy_bytes(1, "|u1", false, &[7], &[0; 7]),
    );
    let e = load_cifar_c(sub.path(), "x", None).unwrap_err().to_string();
    assert!(e.contains("5 equal severities"), "{e}");
}
