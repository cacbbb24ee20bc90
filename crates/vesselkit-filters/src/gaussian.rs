//! Separable Gaussian smoothing in f32 with mirror ("reflect", `d c b a | a b c d`) borders, as
//! scipy.ndimage and scikit-image use by default.
//!
//! Both passes run over blocks of rows with rayon and read contiguous memory: the horizontal pass
//! convolves each mirrored row; the vertical pass combines whole input rows into each output row,
//! which vectorises without a transpose. Each output vector is accumulated in registers over all
//! taps, and AVX2 code is selected at run time.

use crate::error::{FilterError, Result};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Taps beyond `truncate * sigma` are dropped (3 sigma keeps 99.7 % of the mass).
pub const DEFAULT_TRUNCATE: f32 = 3.0;

/// Largest kernel radius (taps either side): twice the largest frame side `core::Limits`
/// allows. A wider kernel blurs any frame to its mean, and its taps alone would take gigabytes
/// (sigma 1e9 asked for 12 GB and aborted the process).
pub const MAX_KERNEL_RADIUS: usize = 32_768;

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
    if truncate * sigma > MAX_KERNEL_RADIUS as f32 {
        return Err(FilterError::invalid(
            "sigma",
            format!(
                "{sigma} px needs a kernel of radius {:.0} taps, beyond the largest supported \
                 ({MAX_KERNEL_RADIUS})",
                (truncate * sigma).ceil()
            ),
        ));
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
    // Fast all-finite test (a branch-free fold per chunk vectorises; `find` does not), then
    // the slow search for the message only when it fails.
    let all_finite = match img.as_slice_memory_order() {
        Some(px) => px
            .par_chunks(1 << 14)
            .all(|ch| ch.iter().fold(true, |ok, v| ok & v.is_finite())),
        None => img.iter().all(|v| v.is_finite()),
    };
    if all_finite {
        return Ok(());
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

/// Output pixels accumulated together in registers by the convolution kernels (4 AVX2 or 8 SSE
/// vectors); the taps run in the inner loop, so each output is loaded and stored once.
const LANES: usize = 32;

/// `dst[j] = sum_k kernel[k] * src(j, k)` for `j` in `0..dst.len()`, with `src(j, k)` given by
/// `tap(k)[j]`. Taps are summed in kernel order (same rounding as a tap-by-tap axpy).
#[inline(always)]
fn convolve_lanes<'a>(dst: &mut [f32], kernel: &[f32], tap: impl Fn(usize) -> &'a [f32]) {
    let n = dst.len();
    let mut j = 0;
    while j + LANES <= n {
        let mut acc = [0f32; LANES];
        for (k, &w) in kernel.iter().enumerate() {
            let s = &tap(k)[j..j + LANES];
            for (a, &x) in acc.iter_mut().zip(s) {
                *a += w * x;
            }
        }
        dst[j..j + LANES].copy_from_slice(&acc);
        j += LANES;
    }
    for (jj, d) in dst.iter_mut().enumerate().skip(j) {
        let mut a = 0.0;
        for (k, &w) in kernel.iter().enumerate() {
            a += w * tap(k)[jj];
        }
        *d = a;
    }
}

#[inline(always)]
fn horizontal_row(pad: &[f32], kernel: &[f32], dst: &mut [f32]) {
    let n = dst.len();
    convolve_lanes(dst, kernel, |k| &pad[k..k + n]);
}

#[inline(always)]
fn vertical_row(tmp: &[f32], rows_idx: &[usize], cols: usize, kernel: &[f32], dst: &mut [f32]) {
    convolve_lanes(dst, kernel, |k| &tmp[rows_idx[k] * cols..(rows_idx[k] + 1) * cols]);
}

/// AVX2 builds of the row kernels, chosen at run time (the crate is compiled for baseline x86-64).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) fn horizontal_row(pad: &[f32], kernel: &[f32], dst: &mut [f32]) {
        super::horizontal_row(pad, kernel, dst)
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn vertical_row(tmp: &[f32], rows_idx: &[usize], cols: usize, kernel: &[f32], dst: &mut [f32]) {
        super::vertical_row(tmp, rows_idx, cols, kernel, dst)
    }
}

/// True when the CPU runs AVX2 (checked once per call site; the result is cached by std).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows per rayon task: enough work per task to amortise scheduling on small images too.
pub(crate) fn rows_per_task(rows: usize, cols: usize) -> usize {
    (16_384 / cols.max(1)).clamp(1, rows.max(1))
}

/// Separable convolution with a symmetric odd kernel into `out`, using `tmp` as scratch.
/// `tmp` and `out` must be standard-layout arrays of `img`'s shape (crate-internal callers
/// allocate them so); `img` may have any layout.
pub(crate) fn blur_into(
    img: ArrayView2<f32>,
    kernel: &[f32],
    mut tmp: ArrayViewMut2<f32>,
    mut out: ArrayViewMut2<f32>,
) {
    let (rows, cols) = img.dim();
    let radius = kernel.len() / 2;
    let avx2 = has_avx2();
    let chunk = rows_per_task(rows, cols);
    let (Some(tmp), Some(out)) = (tmp.as_slice_mut(), out.as_slice_mut()) else {
        // Unreachable for crate callers (they pass freshly allocated arrays).
        return;
    };
    // Horizontal pass: pad each row by mirroring, then convolve.
    tmp.par_chunks_mut(chunk * cols).enumerate().for_each_init(
        || vec![0f32; cols + 2 * radius],
        |pad, (ci, block)| {
            for (i, dst) in block.chunks_exact_mut(cols).enumerate() {
                let src = img.row(ci * chunk + i);
                match src.as_slice() {
                    // Contiguous rows: copy the middle, mirror only the borders.
                    Some(row) if cols > radius => {
                        pad[radius..radius + cols].copy_from_slice(row);
                        for j in (0..radius).chain(radius + cols..cols + 2 * radius) {
                            pad[j] = row[reflect(j as isize - radius as isize, cols)];
                        }
                    }
                    _ => {
                        for (j, p) in pad.iter_mut().enumerate() {
                            *p = src[reflect(j as isize - radius as isize, cols)];
                        }
                    }
                }
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: AVX2 support was checked at run time just above.
                    unsafe { avx2::horizontal_row(pad, kernel, dst) };
                    continue;
                }
                let _ = avx2;
                horizontal_row(pad, kernel, dst);
            }
        },
    );
    // Vertical pass: out[r] = sum_k w_k * tmp[reflect(r + k - R)].
    let tmp: &[f32] = tmp;
    out.par_chunks_mut(chunk * cols).enumerate().for_each_init(
        || vec![0usize; kernel.len()],
        |idx, (ci, block)| {
            for (i, dst) in block.chunks_exact_mut(cols).enumerate() {
                let r = ci * chunk + i;
                for (k, v) in idx.iter_mut().enumerate() {
                    *v = reflect(r as isize + k as isize - radius as isize, rows);
                }
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: AVX2 support was checked at run time just above.
                    unsafe { avx2::vertical_row(tmp, idx, cols, kernel, dst) };
                    continue;
                }
                vertical_row(tmp, idx, cols, kernel, dst);
            }
        },
    );
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

    /// Separable convolution written out with `reflect` at every tap.
    fn blur_brute(img: &Array2<f32>, sigma: f32) -> Array2<f32> {
        let k = gaussian_kernel(sigma, DEFAULT_TRUNCATE).unwrap();
        let r = (k.len() / 2) as isize;
        let (rows, cols) = img.dim();
        let h = Array2::from_shape_fn((rows, cols), |(i, j)| {
            k.iter()
                .enumerate()
                .map(|(t, w)| w * img[[i, reflect(j as isize + t as isize - r, cols)]])
                .sum::<f32>()
        });
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            k.iter()
                .enumerate()
                .map(|(t, w)| w * h[[reflect(i as isize + t as isize - r, rows), j]])
                .sum::<f32>()
        })
    }

    #[test]
    fn blur_matches_brute_force_on_any_layout_and_width() {
        // Widths below, at and above the kernel radius (3 for sigma 1, 7 for sigma 2.3); a
        // transposed view and a strided view take the non-contiguous row path.
        for (rows, cols) in [(9, 2), (11, 7), (13, 8), (40, 37)] {
            let img = Array2::from_shape_fn((rows, cols), |(r, c)| ((r * 13 + c * 7) % 11) as f32 - 0.5 * c as f32);
            for sigma in [1.0, 2.3] {
                let want = blur_brute(&img, sigma);
                let got = gaussian_blur(img.view(), sigma).unwrap();
                let t = img.t().to_owned();
                let got_t = gaussian_blur(img.t(), sigma).unwrap();
                let want_t = blur_brute(&t, sigma);
                for (a, b) in got.iter().zip(&want).chain(got_t.iter().zip(&want_t)) {
                    assert!((a - b).abs() < 1e-4, "{rows}x{cols} sigma {sigma}: {a} vs {b}");
                }
            }
        }
        let img = Array2::from_shape_fn((30, 50), |(r, c)| ((r * 5 + c * 3) % 7) as f32);
        let strided = img.slice(ndarray::s![..;2, ..;3]);
        let got = gaussian_blur(strided, 1.5).unwrap();
        let want = blur_brute(&strided.to_owned(), 1.5);
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    #[test]
    fn bad_sigma_names_the_field() {
        let a = Array2::<f32>::zeros((4, 4));
        let e = gaussian_blur(a.view(), 0.0).unwrap_err().to_string();
        assert!(e.contains("sigma"), "{e}");
        // An absurd sigma is refused before its taps are allocated (1e9 asked for 12 GB).
        let e = gaussian_blur(a.view(), 1e9).unwrap_err().to_string();
        assert!(e.contains("sigma") && e.contains("radius 3000000000"), "{e}");
        assert_eq!(
            gaussian_kernel(10_922.0, DEFAULT_TRUNCATE).unwrap().len(),
            2 * 32_766 + 1
        );
        assert!(gaussian_kernel(10_923.0, DEFAULT_TRUNCATE).is_err());
        // A non-finite pixel past the first vector chunk is found and reported by its index.
        let mut b = Array2::<f32>::zeros((70, 90));
        b[[50, 7]] = f32::NEG_INFINITY;
        let e = gaussian_blur(b.view(), 1.0).unwrap_err().to_string();
        assert!(e.contains("image") && e.contains("pixel 4507 is -inf"), "{e}");
        let e = gaussian_blur(b.t(), 1.0).unwrap_err().to_string();
        assert!(e.contains("pixel 540 is -inf"), "{e}");
    }
}
