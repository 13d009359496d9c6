//! Fashion-MNIST in the IDX format (algorithms.md §6.4): gzip-compressed or raw files,
//! big-endian headers, magic 2051 (images) / 2049 (labels), `u8` pixels row-major.
//!
//! Each file is read whole and decompressed into one buffer whose size comes from the gzip
//! trailer, so a full load is a few memcpy-sized passes rather than per-byte pushes.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{read_file, DataError};
use super::Dataset;

/// Class names in label order (zalandoresearch/fashion-mnist README).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Larger capacity hints than this come from a corrupt trailer; the decoder still grows the
/// buffer if the data really is bigger.
const MAX_SIZE_HINT: usize = 1 << 28;

/// `(train, test)` from `train-*-ubyte.gz` and `t10k-*-ubyte.gz` in `dir` (each file may also
/// be given uncompressed, without `.gz`).
pub fn load_fashion_mnist(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let train = load_pair(dir, "train")?;
    let test = load_pair(dir, "t10k")?;
    Ok((train, test))
}

fn load_pair(dir: &Path, prefix: &str) -> Result<Dataset, DataError> {
    let (image_path, image_bytes) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (label_path, label_bytes) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = parse_images(&image_path, image_bytes)?;
    let labels = parse_labels(&label_path, label_bytes)?;
    if images.count != labels.len() {
        return Err(DataError::CountMismatch {
            images: image_path.display().to_string(),
            image_count: images.count,
            labels: label_path.display().to_string(),
            label_count: labels.len(),
        });
    }
    let num_classes = FASHION_MNIST_CLASSES.len();
    if let Some(index) = labels.iter().position(|&l| l as usize >= num_classes) {
        return Err(DataError::LabelOutOfRange {
            path: label_path.display().to_string(),
            index,
            label: labels[index],
            num_classes,
        });
    }
    Ok(Dataset {
        images: images.pixels,
        labels,
        channels: 1,
        height: images.rows,
        width: images.cols,
        class_names: FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    })
}

/// Read `dir/stem.gz` (decompressed) or else `dir/stem`; returns the path actually read.
fn read_maybe_gz(dir: &Path, stem: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let gz = dir.join(format!("{stem}.gz"));
    match read_file(&gz) {
        Ok(bytes) => {
            let data = gunzip(&gz, &bytes)?;
            Ok((gz, data))
        }
        Err(DataError::Missing { .. }) => {
            let raw = dir.join(stem);
            match read_file(&raw) {
                Ok(bytes) => Ok((raw, bytes)),
                Err(DataError::Missing { .. }) => Err(DataError::Missing {
                    path: gz.display().to_string(),
                    also: format!(" (nor {})", raw.display()),
                }),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Decompress a whole gzip file into one buffer.
pub(crate) fn gunzip(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    // ISIZE (last 4 bytes, little-endian) is the uncompressed size mod 2^32: a good hint.
    let hint = match bytes.len() {
        n if n >= 18 => {
            u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize
        }
        _ => 0,
    };
    let mut out = Vec::with_capacity(hint.min(MAX_SIZE_HINT));
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(out)
}

struct IdxImages {
    count: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Check the magic number and that the header is complete; returns the header fields.
fn header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
    fields: usize,
) -> Result<Vec<u32>, DataError> {
    let len = 4 * (1 + fields);
    if bytes.len() < 4 {
        return Err(DataError::BadHeader {
            path: path.display().to_string(),
            message: format!("file is {} bytes, too short for an IDX header", bytes.len()),
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.display().to_string(),
            found,
            expected: magic,
            what,
        });
    }
    if bytes.len() < len {
        return Err(DataError::BadHeader {
            path: path.display().to_string(),
            message: format!(
                "file is {} bytes, the IDX {what} header needs {len}",
                bytes.len()
            ),
        });
    }
    Ok((1..=fields).map(|i| be_u32(bytes, 4 * i)).collect())
}

fn check_size(path: &Path, expected: u64, actual: usize) -> Result<(), DataError> {
    if expected != actual as u64 {
        return Err(DataError::Size {
            path: path.display().to_string(),
            expected,
            actual: actual as u64,
        });
    }
    Ok(())
}

fn parse_images(path: &Path, mut bytes: Vec<u8>) -> Result<IdxImages, DataError> {
    let h = header(path, &bytes, IMAGES_MAGIC, "images", 3)?;
    let (count, rows, cols) = (h[0] as u64, h[1] as u64, h[2] as u64);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: path.display().to_string(),
            message: format!("image size {rows}x{cols} has a zero dimension"),
        });
    }
    // u32 * u32 * u32 can overflow u64 only in theory; saturate so it just mismatches.
    let expected = count.saturating_mul(rows * cols).saturating_add(16);
    check_size(path, expected, bytes.len())?;
    bytes.drain(..16);
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels: bytes,
    })
}

fn parse_labels(path: &Path, mut bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    let h = header(path, &bytes, LABELS_MAGIC, "labels", 1)?;
    check_size(path, h[0] as u64 + 8, bytes.len())?;
    bytes.drain(..8);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(count: u32, rows: u32, cols: u32, extra: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, count, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend((0..(count * rows * cols) as usize + extra).map(|i| i as u8));
        v
    }

    #[test]
    fn images_parse_and_size_is_exact() {
        let p = Path::new("x");
        let img = parse_images(p, idx_images(2, 2, 3, 0)).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 2, 3));
        assert_eq!(img.pixels, (0..12).collect::<Vec<u8>>());
        let err = parse_images(p, idx_images(2, 2, 3, 1)).err().unwrap();
        assert!(
            matches!(
                err,
                DataError::Size {
                    expected: 28,
                    actual: 29,
                    ..
                }
            ),
            "{err}"
        );
        let mut short = idx_images(2, 2, 3, 0);
        short.truncate(10);
        assert!(matches!(
            parse_images(p, short),
            Err(DataError::BadHeader { .. })
        ));
        assert!(matches!(
            parse_images(p, vec![0, 0]),
            Err(DataError::BadHeader { .. })
        ));
        assert!(matches!(
            parse_images(p, idx_images(1, 0, 3, 0)),
            Err(DataError::BadHeader { .. })
        ));
    }

    #[test]
    fn labels_with_image_magic_are_rejected() {
        let err = parse_labels(Path::new("l"), idx_images(1, 1, 1, 0))
            .err()
            .unwrap();
        assert!(matches!(
            err,
            DataError::BadMagic {
                found: 2051,
                expected: 2049,
                ..
            }
        ));
    }

    #[test]
    fn gzip_round_trip_and_garbage() {
        use std::io::Write;
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(Path::new("a.gz"), &gz).unwrap(), data);
        assert!(matches!(
            gunzip(Path::new("a.gz"), b"not gzip at all"),
            Err(DataError::Gzip { .. })
        ));
    }
}
