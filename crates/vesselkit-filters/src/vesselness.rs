//! Multi-scale Hessian vesselness (Frangi 1998, Jerman 2016, Sato 1998) in f32.
//!
//! Per scale: Gaussian smoothing (separable FIR), Hessian by central differences of the smoothed
//! image, scale normalisation by sigma^2, analytic eigenvalues of the 2x2 symmetric matrix, then
//! the response. The output keeps the maximum over scales and the sigma where it occurred.
//!
//! Sign convention: the Hessian is negated for bright-on-dark vessels so that, in both
//! polarities, a vessel has a large *positive* eigenvalue `l2` across it and a small `l1`
//! along it.
//!
//! Best scale and radius: with sigma^2 normalisation the response across a bar of half-width `R`
//! peaks at sigma = R (the maximum of `2 u phi(u)` at `u = R / sigma = 1`); across a cylinder
//! (chord profile `2 sqrt(R^2 - x^2)`, thin Beer-Lambert vessel) it peaks at sigma = 0.84 R
//! (numerical integration). The often-quoted `r = sqrt(2) sigma` overestimates the radius by
//! ~19 % under this normalisation; [`radius_from_sigma`] uses `R = 1.19 sigma`, pinned by a test
//! on rendered tubes.

use crate::error::{FilterError, Result};
use crate::gaussian::{DEFAULT_TRUNCATE, blur_into, check_image, gaussian_kernel, has_avx2, rows_per_task};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Which vesselness measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Frangi et al. 1998: `exp(-Rb^2 / 2 beta^2) * (1 - exp(-S^2 / 2 c^2))`.
    #[default]
    Frangi,
    /// Jerman et al. 2016 (2-D form): a saturating, contrast-normalised function of `l2`.
    Jerman,
    /// Sato et al. 1998 (2-D, no along-vessel weighting): `max(l2, 0)`.
    Sato,
}

impl Method {
    /// Parse the names the bindings pass (`"frangi"`, `"jerman"`, `"sato"`).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "frangi" => Ok(Self::Frangi),
            "jerman" => Ok(Self::Jerman),
            "sato" => Ok(Self::Sato),
            _ => Err(FilterError::invalid(
                "method",
                format!("unknown method {name:?}; expected one of \"frangi\", \"jerman\", \"sato\""),
            )),
        }
    }
}

/// Whether vessels are darker (X-ray angiography) or brighter than the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    #[default]
    DarkOnBright,
    BrightOnDark,
}

/// Options of [`vesselness`].
#[derive(Debug, Clone, PartialEq)]
pub struct VesselnessOptions {
    /// Gaussian scales in px.
    pub sigmas_px: Vec<f32>,
    pub method: Method,
    pub polarity: Polarity,
    /// Frangi blobness weight (0.5 in Frangi's paper and scikit-image).
    pub frangi_beta: f32,
    /// Frangi structureness scale; `None` uses half the largest Hessian norm of each scale, as
    /// scikit-image does.
    pub frangi_c: Option<f32>,
    /// Jerman's tau in (0, 1]: `l2` above `tau * max(l2)` saturates the response.
    pub jerman_tau: f32,
}

impl Default for VesselnessOptions {
    fn default() -> Self {
        Self {
            sigmas_px: vec![1.0, 2.0, 3.0, 4.0],
            method: Method::Frangi,
            polarity: Polarity::DarkOnBright,
            frangi_beta: 0.5,
            frangi_c: None,
            jerman_tau: 0.75,
        }
    }
}

impl VesselnessOptions {
    fn validate(&self) -> Result<()> {
        if self.sigmas_px.is_empty() {
            return Err(FilterError::invalid("sigmas_px", "need at least one scale"));
        }
        if let Some(s) = self.sigmas_px.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(FilterError::invalid(
                "sigmas_px",
                format!("every sigma must be > 0, got {s}"),
            ));
        }
        if !(self.frangi_beta.is_finite() && self.frangi_beta > 0.0) {
            return Err(FilterError::invalid(
                "frangi_beta",
                format!("must be > 0, got {}", self.frangi_beta),
            ));
        }
        if let Some(c) = self.frangi_c
            && !(c.is_finite() && c > 0.0)
        {
            return Err(FilterError::invalid("frangi_c", format!("must be > 0, got {c}")));
        }
        if !(self.jerman_tau > 0.0 && self.jerman_tau <= 1.0) {
            return Err(FilterError::invalid(
                "jerman_tau",
                format!("must be in (0, 1], got {}", self.jerman_tau),
            ));
        }
        Ok(())
    }
}

/// Vesselness response and the scale that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vesselness {
    /// Maximum response over scales (Frangi and Jerman in [0, 1]; Sato in intensity units).
    pub response: Array2<f32>,
    /// Sigma (px) of the maximum response; 0 where every scale gave 0.
    pub scale_px: Array2<f32>,
}

/// Radius per unit best-scale sigma for a cylinder under sigma^2 normalisation.
pub const RADIUS_PER_SIGMA: f32 = 1.19;

/// Vessel radius (px) suggested by the best scale sigma: `1.19 * sigma` for a cylinder (the
/// analytic optimum; a flat bar gives `1.0 * sigma`). Coarse: the scale grid limits it.
pub fn radius_from_sigma(sigma_px: f32) -> f32 {
    RADIUS_PER_SIGMA * sigma_px
}

/// Eigenvalues `(l1, l2)` of `[[a, b], [b, d]]` sorted by magnitude, `|l1| <= |l2|`.
#[inline]
pub fn eigen2_sym(a: f32, b: f32, d: f32) -> (f32, f32) {
    let m = 0.5 * (a + d);
    let h = 0.5 * (a - d);
    let r = (h * h + b * b).sqrt();
    let (e1, e2) = (m - r, m + r);
    if e1.abs() <= e2.abs() { (e1, e2) } else { (e2, e1) }
}

/// Frangi's 2-D vesselness for sorted eigenvalues; zero unless `l2 > 0` (vessel polarity).
#[inline]
pub fn frangi_2d(l1: f32, l2: f32, beta: f32, c: f32) -> f32 {
    if l2 <= 0.0 {
        return 0.0;
    }
    let rb = l1 / l2;
    let s2 = l1 * l1 + l2 * l2;
    (-(rb * rb) / (2.0 * beta * beta)).exp() * (1.0 - (-s2 / (2.0 * c * c)).exp())
}

/// Jerman's 2-D vesselness for `l2` given `tau * max(l2)` of the scale (Jerman et al. 2016,
/// eq. for 2-D: `l2^2 (lrho - l2) (3 / (l2 + lrho))^3`, 1 where `l2 >= lrho / 2`).
#[inline]
pub fn jerman_2d(l2: f32, tau_max_l2: f32) -> f32 {
    if l2 <= 0.0 || tau_max_l2 <= 0.0 {
        return 0.0;
    }
    let rho = l2.max(tau_max_l2);
    if l2 >= 0.5 * rho {
        return 1.0;
    }
    let k = 3.0 / (l2 + rho);
    l2 * l2 * (rho - l2) * k * k * k
}

/// Scale-normalised Hessian `(Hrr, Hrc, Hcc)` of one smoothed image at pixel `(r, c)` by
/// central differences with mirrored borders.
#[inline]
fn hessian_at(l: &ArrayView2<f32>, r: usize, c: usize, rows: usize, cols: usize, s2: f32) -> (f32, f32, f32) {
    let rm = r.saturating_sub(1);
    let rp = if r + 1 < rows { r + 1 } else { r };
    let cm = c.saturating_sub(1);
    let cp = if c + 1 < cols { c + 1 } else { c };
    let v = l[[r, c]];
    let hrr = l[[rp, c]] - 2.0 * v + l[[rm, c]];
    let hcc = l[[r, cp]] - 2.0 * v + l[[r, cm]];
    let hrc = 0.25 * (l[[rp, cp]] - l[[rp, cm]] - l[[rm, cp]] + l[[rm, cm]]);
    (s2 * hrr, s2 * hrc, s2 * hcc)
}

/// Scale-normalised Hessian of `img` at `sigma`: three arrays `(Hrr, Hrc, Hcc)`.
pub fn hessian(img: ArrayView2<f32>, sigma: f32) -> Result<[Array2<f32>; 3]> {
    check_image("image", &img)?;
    let kernel = gaussian_kernel(sigma, DEFAULT_TRUNCATE)?;
    let mut tmp = Array2::<f32>::zeros(img.dim());
    let mut l = Array2::<f32>::zeros(img.dim());
    blur_into(img, &kernel, tmp.view_mut(), l.view_mut());
    let (rows, cols) = img.dim();
    let lv = l.view();
    let mut out = [
        Array2::<f32>::zeros(img.dim()),
        Array2::<f32>::zeros(img.dim()),
        Array2::<f32>::zeros(img.dim()),
    ];
    let s2 = sigma * sigma;
    for ((r, c), v) in out[0].indexed_iter_mut() {
        *v = hessian_at(&lv, r, c, rows, cols, s2).0;
    }
    for ((r, c), v) in out[1].indexed_iter_mut() {
        *v = hessian_at(&lv, r, c, rows, cols, s2).1;
    }
    for ((r, c), v) in out[2].indexed_iter_mut() {
        *v = hessian_at(&lv, r, c, rows, cols, s2).2;
    }
    Ok(out)
}

/// `exp(x)` for `x <= 0` (inputs below -87 give ~0, NaN gives ~0) in branch-free f32 that
/// vectorises: Cody-Waite reduction by ln 2 and the Cephes degree-6 polynomial, relative error
/// below 3e-7 (pinned by a test against `f32::exp`).
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits
    // Not `clamp`: it would keep NaN, while `max` maps NaN to -87 (result ~0).
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(0.0);
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 0]; its two's complement sits in the low mantissa bits of `shifted`.
    let n_int = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    e * f32::from_bits(((n_int + 127) << 23) as u32)
}

/// Per-scale constants of the fused response pass.
#[derive(Clone, Copy)]
struct ScaleParams {
    /// `sign * sigma^2`: polarity and scale normalisation of the second differences.
    k: f32,
    sigma: f32,
    /// `-1 / (2 beta^2)` and `-1 / (2 c^2)` (Frangi).
    neg_inv_2b2: f32,
    neg_inv_2c2: f32,
    /// `tau * max(l2)` (Jerman).
    tau_max: f32,
}

const FRANGI: u8 = 0;
const JERMAN: u8 = 1;
const SATO: u8 = 2;
/// Pass-1 statistics: largest squared Hessian norm (Frangi's c) or largest `l2` (Jerman's tau).
const STAT_NORM: u8 = 0;
const STAT_L2: u8 = 1;

/// Scale-normalised, sign-adjusted Hessian at the centre of a 3x3 neighbourhood
/// `u` (row above), `m`, `d` (row below), each `[left, centre, right]`.
#[inline(always)]
fn hessian3(u: [f32; 3], m: [f32; 3], d: [f32; 3], k: f32) -> (f32, f32, f32) {
    let hrr = k * (d[1] - 2.0 * m[1] + u[1]);
    let hcc = k * (m[2] - 2.0 * m[1] + m[0]);
    let hrc = k * 0.25 * (d[2] - d[0] - u[2] + u[0]);
    (hrr, hrc, hcc)
}

/// Branch-free eigenvalues sorted by magnitude (same values as [`eigen2_sym`]).
#[inline(always)]
fn eigen_sorted(a: f32, b: f32, d: f32) -> (f32, f32) {
    let m = 0.5 * (a + d);
    let h = 0.5 * (a - d);
    let r = (h * h + b * b).sqrt();
    let (e1, e2) = (m - r, m + r);
    let keep = e1.abs() <= e2.abs();
    (if keep { e1 } else { e2 }, if keep { e2 } else { e1 })
}

/// Vesselness of one pixel from its Hessian; the method is a constant so each instantiation
/// compiles to a straight-line, vectorisable loop body.
#[inline(always)]
fn pixel_response<const M: u8>(hrr: f32, hrc: f32, hcc: f32, p: &ScaleParams) -> f32 {
    let (l1, l2) = eigen_sorted(hrr, hrc, hcc);
    match M {
        FRANGI => {
            let rb = l1 / l2;
            // l1^2 + l2^2 equals the squared Frobenius norm of the Hessian.
            let s2 = hrr * hrr + 2.0 * hrc * hrc + hcc * hcc;
            let v = exp_nonpositive(rb * rb * p.neg_inv_2b2) * (1.0 - exp_nonpositive(s2 * p.neg_inv_2c2));
            if l2 > 0.0 { v } else { 0.0 }
        }
        JERMAN => {
            let rho = l2.max(p.tau_max);
            let kk = 3.0 / (l2 + rho);
            let v = l2 * l2 * (rho - l2) * kk * kk * kk;
            let v = if l2 >= 0.5 * rho { 1.0 } else { v };
            if l2 > 0.0 && p.tau_max > 0.0 { v } else { 0.0 }
        }
        _ => l2.max(0.0),
    }
}

/// Column neighbours of `c` with mirrored borders (`d c b a | a b c d` at distance 1).
#[inline(always)]
fn col_nbrs(c: usize, n: usize) -> (usize, usize) {
    (c.saturating_sub(1), if c + 1 < n { c + 1 } else { c })
}

#[inline(always)]
fn at3(row: &[f32], c: usize, cm: usize, cp: usize) -> [f32; 3] {
    [row[cm], row[c], row[cp]]
}

/// Fold pixel `c` (column neighbours `cm`, `cp`) of one scale into the running maximum.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update_px<const M: u8>(
    rows3: (&[f32], &[f32], &[f32]),
    c: usize,
    cm: usize,
    cp: usize,
    p: &ScaleParams,
    resp: &mut [f32],
    scale: &mut [f32],
) {
    let (up, mid, down) = rows3;
    let (hrr, hrc, hcc) = hessian3(at3(up, c, cm, cp), at3(mid, c, cm, cp), at3(down, c, cm, cp), p.k);
    let v = pixel_response::<M>(hrr, hrc, hcc, p);
    let better = v > resp[c];
    resp[c] = if better { v } else { resp[c] };
    scale[c] = if better { p.sigma } else { scale[c] };
}

/// One row of the fused pass: Hessian, eigenvalues, response and the running maximum over scales.
#[inline(always)]
fn response_row<const M: u8>(
    up: &[f32],
    mid: &[f32],
    down: &[f32],
    p: &ScaleParams,
    resp: &mut [f32],
    scale: &mut [f32],
) {
    let n = mid.len();
    let rows3 = (&up[..n], mid, &down[..n]);
    let (resp, scale) = (&mut resp[..n], &mut scale[..n]);
    for c in [0, n - 1] {
        let (cm, cp) = col_nbrs(c, n);
        update_px::<M>(rows3, c, cm, cp, p, resp, scale);
    }
    for c in 1..n.saturating_sub(1) {
        update_px::<M>(rows3, c, c - 1, c + 1, p, resp, scale);
    }
}

/// Pass-1 statistic of pixel `c`.
#[inline(always)]
fn stat_px<const S: u8>(rows3: (&[f32], &[f32], &[f32]), c: usize, cm: usize, cp: usize, k: f32) -> f32 {
    let (up, mid, down) = rows3;
    let (hrr, hrc, hcc) = hessian3(at3(up, c, cm, cp), at3(mid, c, cm, cp), at3(down, c, cm, cp), k);
    if S == STAT_NORM {
        hrr * hrr + 2.0 * hrc * hrc + hcc * hcc
    } else {
        eigen_sorted(hrr, hrc, hcc).1
    }
}

/// One row of pass 1: the statistic `S` over the row's pixels.
#[inline(always)]
fn stat_row<const S: u8>(up: &[f32], mid: &[f32], down: &[f32], k: f32) -> f32 {
    let n = mid.len();
    let rows3 = (&up[..n], mid, &down[..n]);
    let mut best = 0f32;
    for c in [0, n - 1] {
        let (cm, cp) = col_nbrs(c, n);
        best = best.max(stat_px::<S>(rows3, c, cm, cp, k));
    }
    // Lane-wise maxima vectorise; a scalar `f32::max` chain would not (NaN ordering).
    const W: usize = 8;
    let mut acc = [0f32; W];
    let mut c = 1;
    while c + W < n {
        for (i, a) in acc.iter_mut().enumerate() {
            let v = stat_px::<S>(rows3, c + i, c + i - 1, c + i + 1, k);
            *a = if v > *a { v } else { *a };
        }
        c += W;
    }
    for c in c..n.saturating_sub(1) {
        best = best.max(stat_px::<S>(rows3, c, c - 1, c + 1, k));
    }
    acc.iter().fold(best, |a, &b| a.max(b))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::ScaleParams;
    #[target_feature(enable = "avx2")]
    pub(super) fn response_row<const M: u8>(
        up: &[f32],
        mid: &[f32],
        down: &[f32],
        p: &ScaleParams,
        resp: &mut [f32],
        scale: &mut [f32],
    ) {
        super::response_row::<M>(up, mid, down, p, resp, scale)
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn stat_row<const S: u8>(up: &[f32], mid: &[f32], down: &[f32], k: f32) -> f32 {
        super::stat_row::<S>(up, mid, down, k)
    }
}

/// Rows `r - 1`, `r`, `r + 1` of a row-major buffer with mirrored borders.
#[inline]
fn three_rows(smooth: &[f32], r: usize, rows: usize, cols: usize) -> (&[f32], &[f32], &[f32]) {
    let row = |i: usize| &smooth[i * cols..(i + 1) * cols];
    let rm = r.saturating_sub(1);
    let rp = if r + 1 < rows { r + 1 } else { r };
    (row(rm), row(r), row(rp))
}

/// Pass 1 over a smoothed image: max of statistic `S` (squared norm or `l2`), at least 0.
fn scale_stat<const S: u8>(smooth: &[f32], rows: usize, cols: usize, k: f32, avx2: bool) -> f32 {
    let chunk = rows_per_task(rows, cols);
    let n_tasks = rows.div_ceil(chunk);
    (0..n_tasks)
        .into_par_iter()
        .map(|t| {
            let mut best = 0f32;
            for r in t * chunk..((t + 1) * chunk).min(rows) {
                let (u, m, d) = three_rows(smooth, r, rows, cols);
                #[cfg(target_arch = "x86_64")]
                let v = if avx2 {
                    // SAFETY: AVX2 support was checked at run time by the caller.
                    unsafe { avx2::stat_row::<S>(u, m, d, k) }
                } else {
                    stat_row::<S>(u, m, d, k)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let v = {
                    let _ = avx2;
                    stat_row::<S>(u, m, d, k)
                };
                best = best.max(v);
            }
            best
        })
        .reduce(|| 0.0, f32::max)
}

/// Pass 2: fold one scale's response into `response` / `scale_px` (row-major, `rows x cols`).
fn fold_scale<const M: u8>(
    smooth: &[f32],
    (rows, cols): (usize, usize),
    p: &ScaleParams,
    response: &mut [f32],
    scale_px: &mut [f32],
    avx2: bool,
) {
    let chunk = rows_per_task(rows, cols);
    response
        .par_chunks_mut(chunk * cols)
        .zip(scale_px.par_chunks_mut(chunk * cols))
        .enumerate()
        .for_each(|(t, (resp, scale))| {
            for (i, (rr, ss)) in resp
                .chunks_exact_mut(cols)
                .zip(scale.chunks_exact_mut(cols))
                .enumerate()
            {
                let (u, m, d) = three_rows(smooth, t * chunk + i, rows, cols);
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: AVX2 support was checked at run time by the caller.
                    unsafe { avx2::response_row::<M>(u, m, d, p, rr, ss) };
                    continue;
                }
                let _ = avx2;
                response_row::<M>(u, m, d, p, rr, ss);
            }
        });
}

/// Multi-scale vesselness of `img` (any intensity scale; finite pixels).
///
/// Per scale: one separable blur, then (when the method needs a per-scale statistic) a pass for
/// Frangi's `c` or Jerman's `max(l2)`, then one fused pass computing the Hessian, eigenvalues
/// and response and keeping the maximum over scales. Frangi's exponentials use a polynomial
/// `exp` with relative error < 3e-7.
pub fn vesselness(img: ArrayView2<f32>, opts: &VesselnessOptions) -> Result<Vesselness> {
    check_image("image", &img)?;
    opts.validate()?;
    let dim = img.dim();
    let (rows, cols) = dim;
    let mut response = Array2::<f32>::zeros(dim);
    let mut scale_px = Array2::<f32>::zeros(dim);
    let mut tmp = Array2::<f32>::zeros(dim);
    let mut smooth = Array2::<f32>::zeros(dim);
    let sign = match opts.polarity {
        Polarity::DarkOnBright => 1.0,
        Polarity::BrightOnDark => -1.0,
    };
    let avx2 = has_avx2();
    for &sigma in &opts.sigmas_px {
        let kernel = gaussian_kernel(sigma, DEFAULT_TRUNCATE)?;
        blur_into(img, &kernel, tmp.view_mut(), smooth.view_mut());
        let (Some(sm), Some(resp), Some(scale)) = (smooth.as_slice(), response.as_slice_mut(), scale_px.as_slice_mut())
        else {
            // Unreachable: all three were just allocated in standard layout.
            return Err(FilterError::shape("image", "internal buffers are not contiguous"));
        };
        let k = sign * sigma * sigma;
        let mut p = ScaleParams {
            k,
            sigma,
            neg_inv_2b2: -1.0 / (2.0 * opts.frangi_beta * opts.frangi_beta),
            neg_inv_2c2: 0.0,
            tau_max: 0.0,
        };
        match opts.method {
            Method::Frangi => {
                let c = match opts.frangi_c {
                    Some(c) => c,
                    None => 0.5 * scale_stat::<STAT_NORM>(sm, rows, cols, k, avx2).sqrt(),
                }
                .max(f32::MIN_POSITIVE);
                p.neg_inv_2c2 = -1.0 / (2.0 * c * c);
                fold_scale::<FRANGI>(sm, dim, &p, resp, scale, avx2);
            }
            Method::Jerman => {
                p.tau_max = opts.jerman_tau * scale_stat::<STAT_L2>(sm, rows, cols, k, avx2);
                fold_scale::<JERMAN>(sm, dim, &p, resp, scale, avx2);
            }
            Method::Sato => fold_scale::<SATO>(sm, dim, &p, resp, scale, avx2),
        }
    }
    Ok(Vesselness { response, scale_px })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward implementation (separate eigenvalue and response passes with
    /// `f32::exp`), kept as the reference for the fused one.
    fn vesselness_reference(img: ArrayView2<f32>, opts: &VesselnessOptions) -> Vesselness {
        let dim = img.dim();
        let (rows, cols) = dim;
        let mut response = Array2::<f32>::zeros(dim);
        let mut scale_px = Array2::<f32>::zeros(dim);
        let sign = match opts.polarity {
            Polarity::DarkOnBright => 1.0,
            Polarity::BrightOnDark => -1.0,
        };
        for &sigma in &opts.sigmas_px {
            let smooth = crate::gaussian_blur(img, sigma).unwrap();
            let s2 = sign * sigma * sigma;
            let l = Array2::from_shape_fn(dim, |(r, c)| {
                let (hrr, hrc, hcc) = hessian_at(&smooth.view(), r, c, rows, cols, s2);
                eigen2_sym(hrr, hrc, hcc)
            });
            let max_norm = l.iter().map(|(a, b)| (a * a + b * b).sqrt()).fold(0f32, f32::max);
            let max_l2 = l.iter().map(|x| x.1).fold(0f32, f32::max);
            let c = opts.frangi_c.unwrap_or(0.5 * max_norm).max(f32::MIN_POSITIVE);
            for ((idx, &(a, b)), resp) in l.indexed_iter().zip(response.iter_mut()) {
                let v = match opts.method {
                    Method::Frangi => frangi_2d(a, b, opts.frangi_beta, c),
                    Method::Jerman => jerman_2d(b, opts.jerman_tau * max_l2),
                    Method::Sato => b.max(0.0),
                };
                if v > *resp {
                    *resp = v;
                    scale_px[idx] = sigma;
                }
            }
        }
        Vesselness { response, scale_px }
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (a, b) = (exp_nonpositive(x), x.exp());
            worst = worst.max((a - b).abs() / b);
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1e-37);
        assert!(exp_nonpositive(f32::NAN) < 1e-37);
    }

    #[test]
    fn fused_matches_reference() {
        // Curved dark tubes of several radii on a sloped background with deterministic texture;
        // odd sizes exercise the vector tails and the mirrored borders.
        let img = Array2::from_shape_fn((83, 77), |(r, c)| {
            let (y, x) = (r as f32, c as f32);
            let mut v = 100.0 + 0.2 * x - 0.1 * y;
            for (k, radius) in [1.5f32, 3.0, 5.0].iter().enumerate() {
                let centre = 15.0 + 25.0 * k as f32 + 4.0 * (x / 9.0).sin();
                let d = (y - centre).abs();
                if d < *radius {
                    v -= 6.0 * (radius * radius - d * d).sqrt();
                }
            }
            v + ((r * 7919 + c * 104_729) % 13) as f32 * 0.3
        });
        for method in [Method::Frangi, Method::Jerman, Method::Sato] {
            for polarity in [Polarity::DarkOnBright, Polarity::BrightOnDark] {
                for frangi_c in [None, Some(5.0)] {
                    let o = VesselnessOptions {
                        method,
                        polarity,
                        frangi_c,
                        ..Default::default()
                    };
                    let fast = vesselness(img.view(), &o).unwrap();
                    let slow = vesselness_reference(img.view(), &o);
                    let peak = slow.response.iter().fold(0f32, |a, &b| a.max(b));
                    assert!(peak > 0.0);
                    let mut bad_scale = 0;
                    for ((f, s), (fs, ss)) in fast
                        .response
                        .iter()
                        .zip(&slow.response)
                        .zip(fast.scale_px.iter().zip(&slow.scale_px))
                    {
                        assert!((f - s).abs() <= 1e-4 * peak, "{method:?} {polarity:?}: {f} vs {s}");
                        bad_scale += usize::from(fs != ss);
                    }
                    // Near-ties between scales may flip on rounding; allow a handful of pixels.
                    assert!(bad_scale <= 20, "{method:?} {polarity:?}: {bad_scale} scale mismatches");
                }
            }
        }
    }

    #[test]
    fn eigenvalues_of_hand_matrices() {
        // [[3, 1], [1, 3]] has eigenvalues 2 and 4.
        let (a, b) = eigen2_sym(3.0, 1.0, 3.0);
        assert!((a - 2.0).abs() < 1e-6 && (b - 4.0).abs() < 1e-6);
        // [[1, 2], [2, -2]]: trace -1, det -6 -> 2 and -3; sorted by magnitude.
        let (a, b) = eigen2_sym(1.0, 2.0, -2.0);
        assert!((a - 2.0).abs() < 1e-6 && (b + 3.0).abs() < 1e-6);
    }

    #[test]
    fn frangi_golden_by_hand() {
        // Hessian [[0.2, 0.1], [0.1, 1.0]]: m = 0.6, h = -0.4, r = sqrt(0.16 + 0.01) = 0.41231
        // l1 = 0.18769, l2 = 1.01231; Rb = 0.185408; S^2 = 0.035228 + 1.024772 = 1.06
        // beta = 0.5, c = 0.5: exp(-Rb^2 / 0.5) = exp(-0.068752) = 0.933558
        //                      1 - exp(-1.06 / 0.5) = 1 - exp(-2.12) = 0.879968
        // V = 0.821502
        let (l1, l2) = eigen2_sym(0.2, 0.1, 1.0);
        assert!((l1 - 0.187_689).abs() < 1e-5 && (l2 - 1.012_311).abs() < 1e-5);
        let v = frangi_2d(l1, l2, 0.5, 0.5);
        assert!((v - 0.821_502).abs() < 1e-5, "{v}");
        // Wrong polarity (bright ridge when looking for dark) gives 0.
        assert_eq!(frangi_2d(-0.18, -1.0, 0.5, 0.5), 0.0);
    }

    #[test]
    fn jerman_golden_by_hand() {
        // tau*max = 1: l2 = 0.2 -> rho = 1, 0.04 * 0.8 * (3/1.2)^3 = 0.032 * 15.625 = 0.5
        assert!((jerman_2d(0.2, 1.0) - 0.5).abs() < 1e-6);
        assert_eq!(jerman_2d(0.6, 1.0), 1.0);
        assert_eq!(jerman_2d(2.0, 1.0), 1.0);
        assert_eq!(jerman_2d(-0.1, 1.0), 0.0);
    }

    /// A dark Beer-Lambert tube of radius `r` along the columns at row `r0`, blurred by the
    /// rendering itself (supersampled), on background 1.
    fn dark_tube(rows: usize, cols: usize, r0: f64, radius: f64) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, _)| {
            let mut acc = 0.0;
            for k in 0..8 {
                let y = r as f64 - 0.5 + (k as f64 + 0.5) / 8.0 - r0;
                let chord = if y.abs() < radius {
                    2.0 * (radius * radius - y * y).sqrt()
                } else {
                    0.0
                };
                acc += (-0.1 * chord).exp();
            }
            (acc / 8.0) as f32
        })
    }

    #[test]
    fn tube_centre_beats_background_and_polarity_matters() {
        let img = dark_tube(64, 64, 32.0, 4.0);
        let v = vesselness(img.view(), &VesselnessOptions::default()).unwrap();
        let centre = v.response[[32, 32]];
        assert!(centre > 0.5, "{centre}");
        assert!(v.response[[5, 32]] < 0.01 * centre);
        let bright = VesselnessOptions {
            polarity: Polarity::BrightOnDark,
            ..Default::default()
        };
        let vb = vesselness(img.view(), &bright).unwrap();
        assert!(vb.response[[32, 32]] < 1e-3 * centre);
        for method in [Method::Jerman, Method::Sato] {
            let o = VesselnessOptions {
                method,
                ..Default::default()
            };
            let v = vesselness(img.view(), &o).unwrap();
            assert!(
                v.response[[32, 32]] > 10.0 * v.response[[5, 32]].max(1e-6),
                "{method:?}"
            );
        }
    }

    #[test]
    fn best_scale_tracks_radius() {
        // Fine scale grid; best sigma at the tube axis times 1.19 recovers the radius, while
        // sqrt(2) * sigma would overestimate it by ~19 %.
        let sigmas: Vec<f32> = (4..=80).map(|i| i as f32 * 0.125).collect();
        for radius in [3.0f64, 4.5, 6.0, 8.0] {
            let img = dark_tube(96, 48, 48.0, radius);
            let o = VesselnessOptions {
                sigmas_px: sigmas.clone(),
                method: Method::Sato,
                ..Default::default()
            };
            let v = vesselness(img.view(), &o).unwrap();
            let r_est = radius_from_sigma(v.scale_px[[48, 24]]) as f64;
            assert!(
                (r_est - radius).abs() <= 0.08 * radius,
                "radius {radius}: estimate {r_est}"
            );
            let sqrt2 = std::f64::consts::SQRT_2 * v.scale_px[[48, 24]] as f64;
            assert!(sqrt2 > 1.1 * radius, "radius {radius}: sqrt(2) sigma {sqrt2}");
        }
    }

    #[test]
    fn hessian_of_quadratic() {
        // f = 0.5 r^2 + 2 r c - c^2: Hrr = 1, Hrc = 2, Hcc = -2; smoothing leaves them unchanged.
        let img = Array2::from_shape_fn((40, 40), |(r, c)| {
            let (r, c) = (r as f32 - 20.0, c as f32 - 20.0);
            0.5 * r * r + 2.0 * r * c - c * c
        });
        let [hrr, hrc, hcc] = hessian(img.view(), 1.0).unwrap();
        assert!((hrr[[20, 20]] - 1.0).abs() < 1e-3, "{}", hrr[[20, 20]]);
        assert!((hrc[[20, 20]] - 2.0).abs() < 1e-3);
        assert!((hcc[[20, 20]] + 2.0).abs() < 1e-3);
    }

    #[test]
    fn bad_options_name_the_field() {
        let img = Array2::<f32>::zeros((8, 8));
        let o = VesselnessOptions {
            sigmas_px: vec![],
            ..Default::default()
        };
        assert!(
            vesselness(img.view(), &o)
                .unwrap_err()
                .to_string()
                .contains("sigmas_px")
        );
        assert!(Method::parse("hessian").unwrap_err().to_string().contains("frangi"));
        let mut bad = img.clone();
        bad[[1, 1]] = f32::NAN;
        let e = vesselness(bad.view(), &VesselnessOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("image"), "{e}");
    }
}
