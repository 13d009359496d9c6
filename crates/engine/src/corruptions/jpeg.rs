//! JPEG compression artefacts: the lossy half of a baseline JPEG round trip.
//!
//! `make_cifar_c.py` saves through PIL (libjpeg) at quality 80, 65, 58, 50, 40 and reads back.
//! Only the lossy steps change pixels: 8-bit quantisation, RGB -> YCbCr, 4:2:0 chroma
//! subsampling (PIL's default), the 8x8 DCT, and quantisation with the IJG tables scaled by
//! quality. Huffman coding is lossless, so it is left out; the decode side is the exact inverse
//! (IDCT, chroma upsampling by pixel replication, YCbCr -> RGB, rounding). Not bit-exact with
//! libjpeg (its integer DCT and fancy upsampling differ slightly), but the same artefacts.
//! Images with `c != 3` are coded as one luminance plane.

use super::Dims;

const QUALITY: [u32; 5] = [80, 65, 58, 50, 40];

/// ITU T.81 Annex K.1 luminance table (row-major).
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
/// ITU T.81 Annex K.1 chrominance table.
const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// IJG `jpeg_quality_scaling` + `jpeg_add_quant_table` (baseline: clamp to 1..=255).
pub fn scaled_table(base: &[u16; 64], quality: u32) -> [f64; 64] {
    let q = quality.clamp(1, 100);
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let mut t = [0.0; 64];
    for (o, &b) in t.iter_mut().zip(base) {
        *o = ((b as u32 * scale + 50) / 100).clamp(1, 255) as f64;
    }
    t
}

/// cos((2x + 1) u pi / 16) * c(u) / 2, the orthonormal 8-point DCT-II basis.
fn dct_basis() -> [[f64; 8]; 8] {
    let mut b = [[0.0; 8]; 8];
    for (u, row) in b.iter_mut().enumerate() {
        let cu = if u == 0 { (0.5f64).sqrt() } else { 1.0 };
        for (x, v) in row.iter_mut().enumerate() {
            *v = 0.5 * cu * (((2 * x + 1) * u) as f64 * std::f64::consts::PI / 16.0).cos();
        }
    }
    b
}

/// Quantise one `h x w` plane (values 0..255) block by block; edges are padded by replication
/// as encoders do, and the padding is dropped after decoding.
fn code_plane(p: &[f64], h: usize, w: usize, table: &[f64; 64]) -> Vec<f64> {
    let basis = dct_basis();
    let mut out = vec![0.0; h * w];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            let mut blk = [0.0f64; 64];
            for y in 0..8 {
                for x in 0..8 {
                    let (sy, sx) = ((by + y).min(h - 1), (bx + x).min(w - 1));
                    blk[y * 8 + x] = p[sy * w + sx] - 128.0;
                }
            }
            // Forward DCT (rows then columns), quantise, dequantise.
            let mut coef = [0.0f64; 64];
            for v in 0..8 {
                for u in 0..8 {
                    let mut acc = 0.0;
                    for y in 0..8 {
                        for x in 0..8 {
                            acc += basis[v][y] * basis[u][x] * blk[y * 8 + x];
                        }
                    }
                    let q = table[v * 8 + u];
                    coef[v * 8 + u] = (acc / q).round() * q;
                }
            }
            for y in 0..8 {
                for x in 0..8 {
                    if by + y >= h || bx + x >= w {
                        continue;
                    }
                    let mut acc = 0.0;
                    for v in 0..8 {
                        for u in 0..8 {
                            acc += basis[v][y] * basis[u][x] * coef[v * 8 + u];
                        }
                    }
                    out[(by + y) * w + bx + x] = (acc + 128.0).round().clamp(0.0, 255.0);
                }
            }
        }
    }
    out
}

/// 2x2 average (edges replicated), then code, then upsample by replication.
fn code_chroma(p: &[f64], h: usize, w: usize, table: &[f64; 64]) -> Vec<f64> {
    let (sh, sw) = (h.div_ceil(2), w.div_ceil(2));
    let mut small = vec![0.0; sh * sw];
    for y in 0..sh {
        for x in 0..sw {
            let mut acc = 0.0;
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                acc += p[(2 * y + dy).min(h - 1) * w + (2 * x + dx).min(w - 1)];
            }
            small[y * sw + x] = acc / 4.0;
        }
    }
    let coded = code_plane(&small, sh, sw, table);
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = coded[(y / 2) * sw + x / 2];
        }
    }
    out
}

pub fn jpeg(x: &[f32], d: Dims, s: usize) -> Vec<f32> {
    jpeg_quality(x, d, QUALITY[s])
}

/// Round trip at `quality` (1..=100).
pub(crate) fn jpeg_quality(x: &[f32], d: Dims, quality: u32) -> Vec<f32> {
    let n = d.plane();
    let luma = scaled_table(&LUMA, quality);
    let chroma = scaled_table(&CHROMA, quality);
    // PIL starts from 8-bit pixels.
    let px: Vec<f64> = x
        .iter()
        .map(|&v| (v as f64 * 255.0).round().clamp(0.0, 255.0))
        .collect();
    if d.c != 3 {
        let mut out = Vec::with_capacity(x.len());
        for ch in px.chunks(n) {
            out.extend(
                code_plane(ch, d.h, d.w, &luma)
                    .into_iter()
                    .map(|v| (v / 255.0) as f32),
            );
        }
        return out;
    }
    // JFIF YCbCr (BT.601 full range).
    let (mut yy, mut cb, mut cr) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let (r, g, b) = (px[i], px[n + i], px[2 * n + i]);
        yy[i] = 0.299 * r + 0.587 * g + 0.114 * b;
        cb[i] = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
        cr[i] = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    }
    let yy = code_plane(&yy, d.h, d.w, &luma);
    let cb = code_chroma(&cb, d.h, d.w, &chroma);
    let cr = code_chroma(&cr, d.h, d.w, &chroma);
    let mut out = vec![0.0f32; 3 * n];
    for i in 0..n {
        let (y, b, r) = (yy[i], cb[i] - 128.0, cr[i] - 128.0);
        let rgb = [
            y + 1.402 * r,
            y - 0.344_136 * b - 0.714_136 * r,
            y + 1.772 * b,
        ];
        for (c, v) in rgb.into_iter().enumerate() {
            out[c * n + i] = (v.round().clamp(0.0, 255.0) / 255.0) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_scaling_matches_ijg() {
        // Quality 50 is the base table; 80 scales by 40 %, 40 by 125 %.
        assert_eq!(scaled_table(&LUMA, 50)[0], 16.0);
        assert_eq!(scaled_table(&LUMA, 80)[0], ((16 * 40 + 50) / 100) as f64);
        assert_eq!(scaled_table(&LUMA, 40)[0], 20.0);
        assert_eq!(scaled_table(&LUMA, 100)[63], 1.0);
    }

    #[test]
    fn flat_image_survives_and_quality_100_is_near_lossless() {
        let d = Dims { c: 3, h: 10, w: 13 };
        let flat = vec![0.5f32; 3 * 130];
        for (a, b) in flat.iter().zip(jpeg_quality(&flat, d, 40)) {
            assert!((a - b).abs() < 2.5 / 255.0);
        }
        let grad: Vec<f32> = (0..3 * 130).map(|i| (i % 130) as f32 / 130.0).collect();
        let g = Dims { c: 1, h: 10, w: 13 };
        let out = jpeg_quality(&grad[..130], g, 100);
        let err = out
            .iter()
            .zip(&grad)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 3.0 / 255.0, "max error {err}");
    }
}
