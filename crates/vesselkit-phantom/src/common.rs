//! Small shared helpers: hashing, quantisation, RNG streams, blur and rounding.

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// FNV-1a 64-bit hash of bytes, as 16 lowercase hex digits.
pub fn fnv1a_bytes(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// FNV-1a of the little-endian bytes of f32 values in logical (row-major) order.
pub fn fnv1a_f32<'a>(values: impl IntoIterator<Item = &'a f32>) -> String {
    fnv1a_bytes(values.into_iter().flat_map(|v| v.to_le_bytes()))
}

/// A u16 image and how it maps back: `value_f32 ≈ (u16 as f32) / scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantised {
    pub pixels: Array2<u16>,
    /// Multiplier applied before rounding.
    pub scale: f64,
    /// Pixels that fell outside [0, 65535] after scaling and were clipped (reported, not hidden).
    pub clipped: usize,
}

/// Quantise an f32 image to u16 as `round(v * scale)`, clipped to [0, 65535].
///
/// Angiograms are in detector counts: use `scale = 1.0` (integer counts, fits 12 to 16 bits).
/// OCT images are in [0, 1]: use `scale = 65535.0` (or 255 for an 8-bit view). The number of
/// clipped pixels is returned so a caller can warn.
pub fn quantise_u16(image: &Array2<f32>, scale: f64) -> Quantised {
    let mut clipped = 0usize;
    let pixels = image.mapv(|v| {
        let x = (f64::from(v) * scale).round();
        if !(0.0..=65535.0).contains(&x) {
            clipped += 1;
        }
        // NaN maps to 0 through the clamp+cast; phantoms never produce NaN.
        x.clamp(0.0, 65535.0) as u16
    });
    Quantised { pixels, scale, clipped }
}

/// An independent RNG stream for one purpose, derived from the case seed. Streams keep the
/// geometry identical when only noise parameters change.
pub(crate) fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

/// Round to 1e-4 so truth JSON stays small and stable across platforms' float printing.
pub(crate) fn r4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Separable Gaussian blur with mirrored borders; `sigma_px <= 0` returns a copy.
pub(crate) fn gaussian_blur(img: &Array2<f32>, sigma_px: f64) -> Array2<f32> {
    if sigma_px <= 1e-6 {
        return img.clone();
    }
    let radius = (3.0 * sigma_px).ceil() as isize;
    let mut k: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i as f64).powi(2) / (2.0 * sigma_px * sigma_px)).exp() as f32)
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let (rows, cols) = img.dim();
    let mirror = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let mut j = i;
        if j < 0 {
            j = -j - 1;
        }
        if j >= n {
            j = 2 * n - j - 1;
        }
        j.clamp(0, n - 1) as usize
    };
    let mut tmp = Array2::<f32>::zeros((rows, cols));
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0.0f32;
            for (t, w) in k.iter().enumerate() {
                acc += w * img[[r, mirror(c as isize + t as isize - radius, cols)]];
            }
            tmp[[r, c]] = acc;
        }
    }
    let mut out = Array2::<f32>::zeros((rows, cols));
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0.0f32;
            for (t, w) in k.iter().enumerate() {
                acc += w * tmp[[mirror(r as isize + t as isize - radius, rows), c]];
            }
            out[[r, c]] = acc;
        }
    }
    out
}

/// Bilinear sample with zero outside.
pub(crate) fn bilinear(img: &Array2<f32>, r: f64, c: f64) -> f32 {
    let (rows, cols) = img.dim();
    let r0 = r.floor();
    let c0 = c.floor();
    let fr = (r - r0) as f32;
    let fc = (c - c0) as f32;
    let get = |rr: f64, cc: f64| -> f32 {
        if rr < 0.0 || cc < 0.0 || rr >= rows as f64 || cc >= cols as f64 {
            0.0
        } else {
            img[[rr as usize, cc as usize]]
        }
    };
    let a = get(r0, c0);
    let b = get(r0, c0 + 1.0);
    let d = get(r0 + 1.0, c0);
    let e = get(r0 + 1.0, c0 + 1.0);
    (a * (1.0 - fc) + b * fc) * (1.0 - fr) + (d * (1.0 - fc) + e * fc) * fr
}

/// Cubic smoothstep of `x` in [0, 1].
pub(crate) fn smoothstep(x: f64) -> f64 {
    let t = x.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        assert_eq!(fnv1a_bytes(*b""), "cbf29ce484222325");
        assert_eq!(fnv1a_bytes(*b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a_bytes(*b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn quantise_rounds_and_counts_clipping() {
        let a = ndarray::arr2(&[[0.4f32, 1.6], [-2.0, 70000.0]]);
        let q = quantise_u16(&a, 1.0);
        assert_eq!(q.pixels, ndarray::arr2(&[[0u16, 2], [0, 65535]]));
        assert_eq!(q.clipped, 2);
    }

    #[test]
    fn blur_keeps_mass_and_spreads_a_point() {
        let mut a = Array2::<f32>::zeros((21, 21));
        a[[10, 10]] = 1.0;
        let b = gaussian_blur(&a, 1.5);
        let s: f32 = b.iter().sum();
        assert!((s - 1.0).abs() < 1e-4);
        // peak of a 2-D Gaussian with sigma 1.5: 1 / (2 pi sigma^2)
        let peak = 1.0 / (std::f64::consts::TAU * 2.25);
        assert!(
            (f64::from(b[[10, 10]]) - peak).abs() < 0.01 * peak + 1e-3,
            "{}",
            b[[10, 10]]
        );
    }
}
