//! The `.npy` reader for CIFAR-10-C / CIFAR-100-C (`algorithms.md` §6.3) and [`load_cifar_c`].
//!
//! Only what those files use is accepted: uint8 (`|u1`) data in C order, format versions 1.0,
//! 2.0 and 3.0. Everything else is rejected with the file name and the reason, never guessed at.

use std::path::Path;

use super::CorruptionError;
use crate::data::{Dataset, CIFAR10_CLASSES};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A uint8 array from a `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Read a `|u1`, C-order `.npy` file.
pub fn read_npy_u8(path: &Path) -> Result<NpyArray, CorruptionError> {
    let bytes = crate::data::read_file(path)?;
    parse_npy_u8(&bytes, path)
}

/// Parse the bytes of a `.npy` file; `path` is only used in error messages.
pub fn parse_npy_u8(bytes: &[u8], path: &Path) -> Result<NpyArray, CorruptionError> {
    let err = |m: String| CorruptionError::npy(path, m);
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(err(
            "not a .npy file (bad magic, expected \\x93NUMPY)".into()
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, start) = match major {
        1 => (2usize, 10usize),
        2 | 3 => (4, 12),
        _ => {
            return Err(err(format!(
                "unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            )))
        }
    };
    if bytes.len() < start {
        return Err(err("truncated: file ends inside the header length".into()));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            err(format!(
                "truncated: header of {header_len} bytes but the file has {} bytes",
                bytes.len()
            ))
        })?;
    let header = std::str::from_utf8(&bytes[start..data_start])
        .map_err(|_| err("header is not valid text".into()))?;
    let descr = dict_value(header, "descr")
        .ok_or_else(|| err(format!("header has no 'descr': {header:?}")))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if !matches!(descr, "|u1" | "<u1" | ">u1" | "u1" | "=u1") {
        return Err(err(format!(
            "dtype {descr:?} is not supported (expected uint8 '|u1')"
        )));
    }
    match dict_value(header, "fortran_order") {
        Some("False") => {}
        Some("True") => {
            return Err(err(
                "fortran_order is True (only C-order arrays are supported)".into(),
            ))
        }
        other => return Err(err(format!("bad or missing 'fortran_order': {other:?}"))),
    }
    let shape_text = dict_value(header, "shape")
        .ok_or_else(|| err(format!("header has no 'shape': {header:?}")))?;
    let shape = parse_shape(shape_text).ok_or_else(|| err(format!("bad shape {shape_text:?}")))?;
    let expected = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("shape {shape:?} is too large")))?;
    let actual = bytes.len() - data_start;
    if actual != expected {
        let what = if actual < expected {
            "truncated"
        } else {
            "data size mismatch"
        };
        return Err(err(format!(
            "{what}: shape {shape:?} needs {expected} data bytes, found {actual}"
        )));
    }
    Ok(NpyArray {
        shape,
        data: bytes[data_start..].to_vec(),
    })
}

/// The raw text of `'key': value` in a Python dict literal; tuples are returned with their
/// parentheses.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[pos + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// `(50000, 32, 32, 3)`, `(50000,)` or `()`.
fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

/// Load `<dir>/<corruption>.npy` and `<dir>/labels.npy` and split them into the five severities
/// (rows `k*N/5 .. (k+1)*N/5` are severity `k + 1`), converting NHWC to planar CHW.
/// `class_names` defaults to the CIFAR-10 names when every label is below 10 and to
/// `class_0 .. class_99` (CIFAR-100-C) otherwise.
pub fn load_cifar_c(
    dir: &Path,
    corruption: &str,
    class_names: Option<Vec<String>>,
) -> Result<Vec<(u8, Dataset)>, CorruptionError> {
    if corruption.is_empty() || corruption.contains(['/', '\\']) || corruption.contains("..") {
        return Err(CorruptionError::npy(
            dir,
            format!("{corruption:?} is not a corruption file name"),
        ));
    }
    let lab_path = dir.join("labels.npy");
    let (images, labels) =
        read_images_and_labels(&dir.join(format!("{corruption}.npy")), &lab_path)?;
    let class_names = checked_class_names(&labels.data, class_names, &lab_path)?;
    Ok(split_severities(&images, &labels.data, &class_names))
}

/// The (N, H, W, C) images and their N labels, N a positive multiple of 5 (the severities).
fn read_images_and_labels(
    img_path: &Path,
    lab_path: &Path,
) -> Result<(NpyArray, NpyArray), CorruptionError> {
    let images = read_npy_u8(img_path)?;
    let labels = read_npy_u8(lab_path)?;
    let &[n, _, _, _] = images.shape.as_slice() else {
        return Err(CorruptionError::npy(
            img_path,
            format!("shape {:?} is not (N, H, W, C)", images.shape),
        ));
    };
    if labels.shape != [n] {
        return Err(CorruptionError::npy(
            lab_path,
            format!(
                "shape {:?} does not match the {n} images of {}",
                labels.shape,
                img_path.display()
            ),
        ));
    }
    if n == 0 || n % 5 != 0 {
        return Err(CorruptionError::npy(
            img_path,
            format!("{n} images cannot be split into 5 equal severities"),
        ));
    }
    Ok((images, labels))
}

/// `given`, or the default names for these labels; every label must name a class.
fn checked_class_names(
    labels: &[u8],
    given: Option<Vec<String>>,
    lab_path: &Path,
) -> Result<Vec<String>, CorruptionError> {
    let max_label = labels.iter().copied().max().unwrap_or(0) as usize;
    let class_names = given.unwrap_or_else(|| {
        if max_label < 10 {
            CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
        } else {
            (0..(max_label + 1).max(100))
                .map(|i| format!("class_{i}"))
                .collect()
        }
    });
    if let Some(i) = labels.iter().position(|&l| l as usize >= class_names.len()) {
        return Err(CorruptionError::npy(
            lab_path,
            format!(
                "row {i} has label {} but there are {} classes",
                labels[i],
                class_names.len()
            ),
        ));
    }
    Ok(class_names)
}

/// Severity `k + 1` = rows `k*N/5 .. (k+1)*N/5`, each image NHWC to planar CHW.
fn split_severities(
    images: &NpyArray,
    labels: &[u8],
    class_names: &[String],
) -> Vec<(u8, Dataset)> {
    // (N, H, W, C), checked by `read_images_and_labels`.
    let (n, h, w, c) = (
        images.shape[0],
        images.shape[1],
        images.shape[2],
        images.shape[3],
    );
    let per = n / 5;
    let img_len = h * w * c;
    (0..5)
        .map(|k| {
            let mut chw = vec![0u8; per * img_len];
            let rows = &images.data[k * per * img_len..(k + 1) * per * img_len];
            for (src, dst) in rows
                .chunks_exact(img_len)
                .zip(chw.chunks_exact_mut(img_len))
            {
                for (p, px) in src.chunks_exact(c).enumerate() {
                    for (ch, &v) in px.iter().enumerate() {
                        dst[ch * h * w + p] = v;
                    }
                }
            }
            let dataset = Dataset {
                images: chw,
                labels: labels[k * per..(k + 1) * per].to_vec(),
                channels: c,
                height: h,
                width: w,
                class_names: class_names.to_vec(),
            };
            (k as u8 + 1, dataset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dict_values_and_shapes() {
        let h = "{'descr': '|u1', 'fortran_order': False, 'shape': (50000, 32, 32, 3), }";
        assert_eq!(dict_value(h, "descr"), Some("'|u1'"));
        assert_eq!(dict_value(h, "fortran_order"), Some("False"));
        assert_eq!(dict_value(h, "shape"), Some("(50000, 32, 32, 3)"));
        assert_eq!(parse_shape("(50000,)"), Some(vec![50000]));
        assert_eq!(parse_shape("()"), Some(vec![]));
        assert_eq!(parse_shape("(3, x)"), None);
    }

    #[test]
    fn a_missing_file_is_reported_as_the_dataset_readers_report_theirs() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fog.npy");
        let err = read_npy_u8(&path).unwrap_err().to_string();
        assert_eq!(err, format!("{}: file not found", path.display()));
    }
}
