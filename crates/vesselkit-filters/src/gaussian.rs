//! Separable Gaussian smoothing in f32 with mirror ("reflect", `d c b a | a b c d`) borders, as
//! scipy.ndimage and scikit-image use by default.
//!
//! Both passes run over rows with rayon and read contiguous memory: the horizontal pass
//! convolves each row; the vertical pass accumulates whole input rows into each output row
//! (an axpy per tap), which vectorises without a transpose.

use crate::error::{FilterError, Result};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// Taps beyond `truncate * sigma` are dropped (3 sigma keeps 99.7 % of the mass).
pub const DEFAULT_TRUNCATE: f32 = 3.0;

/// Normalised 1-D Gaussian kernel of radius `ceil(truncate * sigma)`.
pub fn gaussian_kernel(sigma: f32, truncate: f32) -> Result<Vec<f32>> {
    if !sigma.is_finite() || sigma <= 0.0 {
        return Err(FilterError::invalid(
            "sigma",
            format!("must be a finite value > 0, got {sigma}"),
        ));
    }
    if !truncate.is_finite() || truncate <= 0.0 {
        return Err(FilterError::invalid("truncate", format!("must be > 0, got {truncate}")));
    }
    let radius = (truncate * sigma).ceil().max(1.0) as usize;
    let mut k: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let x = i as f32 - radius as f32;
            (-0.5 * x * x / (sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    Ok(k)
}

/// Mirror an index into `[0, n)` with `d c b a | a b c d` borders (any distance).
#[inline]
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

pub(crate) fn check_image(field: &'static str, img: &ArrayView2<f32>) -> Result<()> {
    let (r, c) = img.dim();
    if r == 0 || c == 0 {
        return Err(FilterError::shape(field, format!("empty image ({r} x {c})")));
    }
    if let Some((i, v)) = img.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(FilterError::invalid(
            field,
            format!("pixel {i} is {v}; all pixels must be finite"),
        ));
    }
    Ok(())
}

/// Gaussian blur of `img` with standard deviation `sigma` px (truncated at 3 sigma).
pub fn gaussian_blur(img: ArrayView2<f32>, sigma: f32) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    let kernel = gaussian_kernel(sigma, DEFAULT_TRUNCATE)?;
    let mut tmp = Array2::<f32>::zeros(img.dim());
    let mut out = Array2::<f32>::zeros(img.dim());
    blur_into(img, &kernel, tmp.view_mut(), out.view_mut());
    Ok(out)
}

/// Separable convolution with a symmetric odd kernel into `out`, using `tmp` as scratch.
/// Shapes must match `img` (crate-internal callers guarantee it).
pub(crate) fn blur_into(
    img: ArrayView2<f32>,
    kernel: &[f32],
    mut tmp: ArrayViewMut2<f32>,
    mut out: ArrayViewMut2<f32>,
) {
    let (rows, cols) = img.dim();
    let radius = kernel.len() / 2;
    // Horizontal pass: pad each row by mirroring, then accumulate tap by tap.
    tmp.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(img.axis_iter(Axis(0)).into_par_iter())
        .for_each_init(
            || vec![0f32; cols + 2 * radius],
            |pad, (mut dst, src)| {
                for (j, p) in pad.iter_mut().enumerate() {
                    *p = src[reflect(j as isize - radius as isize, cols)];
                }
                let dst = match dst.as_slice_mut() {
                    Some(d) => d,
                    None => return, // freshly allocated standard-layout arrays are always contiguous
                };
                dst.fill(0.0);
                for (k, &w) in kernel.iter().enumerate() {
                    let src = &pad[k..k + cols];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += w * s;
                    }
                }
            },
        );
    // Vertical pass: out[r] = sum_k w_k * tmp[reflect(r + k - R)].
    let tmp = tmp.view();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut dst)| {
            let dst = match dst.as_slice_mut() {
                Some(d) => d,
                None => return,
            };
            dst.fill(0.0);
            for (k, &w) in kernel.iter().enumerate() {
                let rr = reflect(r as isize + k as isize - radius as isize, rows);
                let src = tmp.row(rr);
                match src.as_slice() {
                    Some(s) => {
                        for (d, s) in dst.iter_mut().zip(s) {
                            *d += w * s;
                        }
                    }
                    None => {
                        for (d, s) in dst.iter_mut().zip(src.iter()) {
                            *d += w * s;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel(2.0, 3.0).unwrap();
        assert_eq!(k.len(), 13);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((k[0] - k[12]).abs() < 1e-9);
        // ratio of neighbouring taps is exp(-(2x+1)/(2 s^2))
        assert!((k[6] / k[7] - (1.0f32 / 8.0).exp()).abs() < 1e-5);
    }

    #[test]
    fn reflect_mirrors() {
        assert_eq!(reflect(-1, 5), 0);
        assert_eq!(reflect(-2, 5), 1);
        assert_eq!(reflect(5, 5), 4);
        assert_eq!(reflect(6, 5), 3);
        assert_eq!(reflect(12, 5), 2);
    }

    #[test]
    fn blur_preserves_constant_and_matches_variance() {
        let c = Array2::<f32>::from_elem((20, 31), 3.5);
        let b = gaussian_blur(c.view(), 1.7).unwrap();
        assert!(b.iter().all(|v| (v - 3.5).abs() < 1e-5));
        // An impulse in the middle spreads with variance sigma^2 along each axis.
        let mut d = Array2::<f32>::zeros((41, 41));
        d[[20, 20]] = 1.0;
        let b = gaussian_blur(d.view(), 2.0).unwrap();
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for ((r, _), &x) in b.indexed_iter() {
            m += x as f64;
            v += x as f64 * (r as f64 - 20.0).powi(2);
        }
        assert!((m - 1.0).abs() < 1e-5);
        // The truncated kernel has slightly less variance than sigma^2 = 4.
        assert!((v - 4.0).abs() < 0.1, "{v}");
    }

    #[test]
    fn bad_sigma_names_the_field() {
        let a = Array2::<f32>::zeros((4, 4));
        let e = gaussian_blur(a.view(), 0.0).unwrap_err().to_string();
        assert!(e.contains("sigma"), "{e}");
    }
}
