//! Common corruptions (Hendrycks & Dietterich, CIFAR-10-C style): the CIFAR-C `.npy` reader and
//! deterministic procedural generators. Plain Rust on `f32` CHW images in [0, 1]; no tch.
//!
//! The generators follow `hendrycks/robustness:ImageNet-C/create_c/make_cifar_c.py` with the CIFAR
//! severity tables of `shared/spec/algorithms.md` §7. They are not bit-exact reproductions of the
//! released files (those were made with unseeded numpy, PIL and OpenCV): use the released `.npy`
//! files ([`load_cifar_c`]) for benchmark numbers and the generators for other datasets
//! (Fashion-MNIST) and tests.
//!
//! Channel counts: every generator works per channel for any `c`. The HSV operations
//! (`brightness`, `saturate`) need RGB; on images with `c != 3` brightness adds to each channel as
//! if it were V (for a grey image V is the grey value) and saturate is the identity (a grey image
//! has zero saturation, and `S * mul + add` with `add > 0` would need a hue to be visible).
//! Size-dependent parameters (pixelate sizes, elastic alpha/sigma, fog map) scale with the image.

mod blur;
mod color;
mod fog;
mod geometric;
mod glass;
mod jpeg;
mod noise;
mod npy;

use crate::data::Dataset;
use fairtat_core::util::Rng;

pub use npy::{load_cifar_c, parse_npy_u8, read_npy_u8, NpyArray};

/// Every corruption [`corrupt`] can generate, in the order of §7.
pub const CORRUPTIONS: &[&str] = &[
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "defocus_blur",
    "zoom_blur",
    "glass_blur",
    "contrast",
    "brightness",
    "saturate",
    "pixelate",
    "elastic_transform",
    "fog",
    "jpeg_compression",
];

/// The corruptions that draw random numbers (the others ignore the RNG).
pub const RANDOM_CORRUPTIONS: &[&str] = &[
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "glass_blur",
    "elastic_transform",
    "fog",
];

#[derive(Debug, thiserror::Error)]
pub enum CorruptionError {
    #[error("unknown corruption {name:?}; allowed: {}", CORRUPTIONS.join(", "))]
    UnknownCorruption { name: String },
    #[error("corruption severity {severity} is out of range; allowed: 1, 2, 3, 4, 5")]
    BadSeverity { severity: u8 },
    #[error("image buffer holds {actual} values but c*h*w = {c}*{h}*{w} = {expected}")]
    Shape {
        actual: usize,
        c: usize,
        h: usize,
        w: usize,
        expected: usize,
    },
    #[error("{path}: {message}")]
    Npy { path: String, message: String },
    /// The file could not be read (missing or unreadable), worded as the datasets' errors are.
    #[error(transparent)]
    Read(#[from] crate::data::DataError),
}

impl CorruptionError {
    pub(crate) fn npy(path: &std::path::Path, message: impl Into<String>) -> Self {
        CorruptionError::Npy {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Image geometry shared by the generators.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    pub fn plane(&self) -> usize {
        self.h * self.w
    }
}

/// Corrupt one CHW image in [0, 1] at `severity` 1..=5; the result has the same shape and lies in
/// [0, 1]. Random corruptions draw only from `rng`, so a fixed seed gives a fixed result.
pub fn corrupt(
    name: &str,
    severity: u8,
    image: &[f32],
    c: usize,
    h: usize,
    w: usize,
    rng: &mut Rng,
) -> Result<Vec<f32>, CorruptionError> {
    if !CORRUPTIONS.contains(&name) {
        return Err(CorruptionError::UnknownCorruption {
            name: name.to_string(),
        });
    }
    if !(1..=5).contains(&severity) {
        return Err(CorruptionError::BadSeverity { severity });
    }
    let expected = c * h * w;
    if image.len() != expected {
        return Err(CorruptionError::Shape {
            actual: image.len(),
            c,
            h,
            w,
            expected,
        });
    }
    if expected == 0 {
        return Ok(Vec::new());
    }
    let d = Dims { c, h, w };
    let s = (severity - 1) as usize;
    let mut out = match name {
        "gaussian_noise" => noise::gaussian(image, s, rng),
        "shot_noise" => noise::shot(image, s, rng),
        "impulse_noise" => noise::impulse(image, s, rng),
        "speckle_noise" => noise::speckle(image, s, rng),
        "gaussian_blur" => blur::gaussian_blur(image, d, s),
        "defocus_blur" => blur::defocus_blur(image, d, s),
        "zoom_blur" => blur::zoom_blur(image, d, s),
        "glass_blur" => glass::glass_blur(image, d, s, rng),
        "contrast" => color::contrast(image, d, s),
        "brightness" => color::brightness(image, d, s),
        "saturate" => color::saturate(image, d, s),
        "pixelate" => geometric::pixelate(image, d, s),
        "elastic_transform" => geometric::elastic(image, d, s, rng),
        "fog" => fog::fog(image, d, s, rng),
        "jpeg_compression" => jpeg::jpeg(image, d, s),
        _ => unreachable!("checked against CORRUPTIONS above"),
    };
    for v in &mut out {
        *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    }
    Ok(out)
}

/// FNV-1a, to mix the corruption name into the per-image seed.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Corrupt every image of `ds`. Image `i` uses `Rng::derive(seed, [name, severity, i])`, so the
/// result does not depend on the order or on which other images are processed.
pub fn corrupt_dataset(
    ds: &Dataset,
    name: &str,
    severity: u8,
    seed: u64,
) -> Result<Dataset, CorruptionError> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let mut images = Vec::with_capacity(ds.images.len());
    for i in 0..ds.len() {
        let x: Vec<f32> = ds.image(i).iter().map(|&b| b as f32 / 255.0).collect();
        let mut rng = Rng::derive(seed, &[name_hash(name), severity as u64, i as u64]);
        let y = corrupt(name, severity, &x, c, h, w, &mut rng)?;
        images.extend(
            y.iter()
                .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8),
        );
    }
    if ds.is_empty() {
        // Still validate the name and severity for an empty dataset.
        corrupt(name, severity, &[], 0, 0, 0, &mut Rng::new(seed))?;
    }
    Ok(Dataset {
        images,
        labels: ds.labels.clone(),
        channels: c,
        height: h,
        width: w,
        class_names: ds.class_names.clone(),
    })
}

#[cfg(test)]
mod tests;
