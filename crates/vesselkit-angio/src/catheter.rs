//! Catheter calibration: measure the outer width of a catheter of known French size along a
//! segment the user marks on it, then `Calibration::from_catheter`.
//!
//! Derivative edges of a hollow catheter read it too wide, more so the more the image is
//! blurred (a 6 Fr catheter at 0.2 mm/px: 3.6 % sharp, 10 % at a blur of 1 px), because its
//! projected wall is a steep chord, not a step. Each cross-section is therefore fitted with the
//! projection of a hollow cylinder (outer and inner radius) blurred by the imaging chain (its
//! width fitted too) over a linear background, and the outer radius taken from the fit.

use crate::error::{AngioError, Result, check_image};
use crate::lumen_fit::chord;
use crate::profile::ProfileOptions;
use nalgebra::{SMatrix, SVector};
use ndarray::ArrayView2;
use vesselkit_core::qca::fit_line;
use vesselkit_core::{Calibration, Point};
use vesselkit_filters::{Polarity, bilinear};

/// Width statistics of a catheter measured along a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatheterWidth {
    /// Outer width, px: the model fit to the mean profile across the stations, or (when the
    /// fit fails) the median of the stations' derivative edges.
    pub median_px: f64,
    /// Standard deviation of the per-station derivative-edge widths, px (how steady the
    /// catheter looked along the segment).
    pub sd_px: f64,
    /// Stations measured.
    pub stations: usize,
    /// Whether `median_px` comes from the model fit.
    pub fitted: bool,
}

/// Coarse half-width (px) at `p` across direction `dir`: the half-maximum extent of the
/// opacity bump in a +- 40 px window.
fn coarse_half_width(img: &ArrayView2<f32>, p: Point, dir: (f64, f64), polarity: Polarity) -> Option<f64> {
    let nrm = (-dir.1, dir.0);
    let sign = if polarity == Polarity::DarkOnBright { -1.0 } else { 1.0 };
    let step = 0.5;
    let m = 80isize;
    let o: Vec<Option<f32>> = (-m..=m)
        .map(|k| bilinear(img, p.row + k as f64 * step * nrm.0, p.col + k as f64 * step * nrm.1))
        .collect();
    let vals: Vec<f32> = o.iter().flatten().map(|v| sign * v).collect();
    if vals.len() < 20 {
        return None;
    }
    let mut sorted = vals.clone();
    sorted.sort_by(f32::total_cmp);
    let bg = sorted[sorted.len() / 4];
    let c = m as usize;
    let centre_win = 6usize;
    let peak = (c - centre_win..=c + centre_win)
        .filter_map(|i| o[i].map(|v| sign * v))
        .fold(f32::MIN, f32::max);
    if !(peak > bg) {
        return None;
    }
    let half = bg + 0.5 * (peak - bg);
    let above = |i: usize| o[i].is_some_and(|v| sign * v >= half);
    // Walk outwards over the bump, tolerating a lighter lumen between the walls (empty catheter).
    let mut lo = c;
    while lo > 0 && (above(lo - 1) || (lo >= 2 && above(lo - 2)) || (lo >= 8 && (1..8).any(|k| above(lo - k)))) {
        lo -= 1;
    }
    let mut hi = c;
    while hi + 1 < o.len() && (above(hi + 1) || (hi + 8 < o.len() && (1..8).any(|k| above(hi + k)))) {
        hi += 1;
    }
    Some(0.5 * (hi - lo) as f64 * step)
}

/// Measure the outer width of the catheter along `p0 -> p1` (px).
pub fn measure_catheter(image: ArrayView2<f32>, p0: Point, p1: Point, polarity: Polarity) -> Result<CatheterWidth> {
    check_image("image", &image)?;
    let (rows, cols) = image.dim();
    for (field, p) in [("p0", p0), ("p1", p1)] {
        if !(p.row >= 0.0 && p.col >= 0.0 && p.row <= (rows - 1) as f64 && p.col <= (cols - 1) as f64) {
            return Err(AngioError::invalid(
                field,
                format!("({}, {}) is outside the {rows} x {cols} image", p.row, p.col),
            ));
        }
    }
    let len = p0.dist(p1);
    if !(len >= 4.0) {
        return Err(AngioError::invalid(
            "p1",
            format!("segment is {len:.2} px long; mark at least 4 px of catheter"),
        ));
    }
    let dir = ((p1.row - p0.row) / len, (p1.col - p0.col) / len);
    let mid = p0.lerp(p1, 0.5);
    let r0 = coarse_half_width(&image, mid, dir, polarity)
        .ok_or_else(|| AngioError::not_found("catheter", "no opaque band across the marked segment"))?;
    let opts = ProfileOptions {
        polarity,
        half_length_factor: 2.0,
        half_length_margin_px: 4.0,
        overlap_fraction: f64::INFINITY,
        ..Default::default()
    };
    let n = (len / 0.5).floor() as usize;
    // Derivative edges at every station: where the catheter's centre lies, and the spread of
    // its width along the segment.
    let mut stations = Vec::new();
    for k in 0..=n {
        let p = p0.lerp(p1, k as f64 / n.max(1) as f64);
        let x = crate::profile::measure_outer(&image, p, dir, r0, &opts);
        if x.left_px.is_finite() && x.right_px.is_finite() && !x.clipped {
            stations.push((p, 0.5 * (x.left_px - x.right_px), x.diameter_px()));
        }
    }
    if stations.len() < 3 {
        return Err(AngioError::not_found(
            "catheter edges",
            format!("only {} of {} stations gave two edges", stations.len(), n + 1),
        ));
    }
    let mut widths: Vec<f64> = stations.iter().map(|s| s.2).collect();
    widths.sort_by(f64::total_cmp);
    let edge_median_px = widths[widths.len() / 2];
    let mean = widths.iter().sum::<f64>() / widths.len() as f64;
    let sd_px = (widths.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / widths.len() as f64).sqrt();
    // The mean profile across the catheter (noise and a short overlap drop out), read by one
    // model fit. Stations are centred on a straight line fitted to their edges' centres: the
    // marked stretch of catheter is straight, and centring each on its own noisy edges would
    // line up the noise with them (a 6 Fr catheter at a blur of 1 px read 8 % wide).
    let centre = straight_centres(&stations.iter().map(|s| s.1).collect::<Vec<_>>());
    let nrm = (-dir.1, dir.0);
    let half = ((edge_median_px + 6.0) / SAMPLE_PX).ceil() as usize;
    let x0 = -(half as f64) * SAMPLE_PX;
    let mut rows: Vec<Vec<f64>> = vec![Vec::with_capacity(stations.len()); 2 * half + 1];
    let mut line = Vec::with_capacity(2 * half + 1);
    for (&(p, _, _), c0) in stations.iter().zip(centre) {
        line.clear();
        for i in 0..=2 * half {
            let off = c0 + x0 + i as f64 * SAMPLE_PX;
            let mut sum = 0.0;
            for a in [-1.0, 0.0, 1.0] {
                let v = bilinear(&image, p.row + a * dir.0 + off * nrm.0, p.col + a * dir.1 + off * nrm.1);
                sum += v.map_or(f64::NAN, f64::from);
            }
            line.push(sum / 3.0);
        }
        if line.iter().all(|v| v.is_finite()) {
            rows.iter_mut().zip(&line).for_each(|(r, &v)| r.push(v));
        }
    }
    let mut profile: Vec<f64> = rows
        .iter_mut()
        .filter(|r| !r.is_empty())
        .map(|r| {
            // Interquartile mean: averages the noise down like a mean, while a vessel crossing
            // a quarter of the stations drops out as with a median (a plain median, biased by
            // skewed noise, read 6 Fr catheters 2 to 9 % wide).
            r.sort_by(f64::total_cmp);
            let q = r.len() / 4;
            let mid = &r[q..r.len() - q];
            mid.iter().sum::<f64>() / mid.len() as f64
        })
        .collect();
    // Transmission (X-ray intensities, the blur acting on them) when the catheter is dark on
    // positive values across the profile; else opacity, sign-flipped for a dark catheter.
    let log = polarity == Polarity::DarkOnBright && profile.iter().all(|&v| v > 0.0);
    if !log && polarity == Polarity::DarkOnBright {
        profile.iter_mut().for_each(|v| *v = -*v);
    }
    let fitted = (profile.len() == 2 * half + 1)
        .then(|| fit_hollow(&profile, x0, 0.0, 0.5 * edge_median_px, log))
        .flatten();
    Ok(CatheterWidth {
        median_px: fitted.map_or(edge_median_px, |r| 2.0 * r),
        sd_px,
        stations: stations.len(),
        fitted: fitted.is_some(),
    })
}

/// Least-squares straight line through `c` (one value per station, in order), refitted once
/// without the stations more than 3 median absolute deviations off (a crossing vessel), and
/// its value at each station.
fn straight_centres(c: &[f64]) -> Vec<f64> {
    let x: Vec<f64> = (0..c.len()).map(|i| i as f64).collect();
    // Some whenever a weight is positive, as in both fits: every station first, then at least
    // the half within the median residual.
    let line = |w: &[f64]| fit_line(&x, c, w).unwrap_or((0.0, 0.0));
    let (a, b) = line(&vec![1.0; c.len()]);
    let res: Vec<f64> = x.iter().zip(c).map(|(&i, &y)| (y - a - b * i).abs()).collect();
    let mut sorted = res.clone();
    sorted.sort_by(f64::total_cmp);
    let Some(&median) = sorted.get(sorted.len() / 2) else {
        return Vec::new();
    };
    let limit = 3.0 * median.max(0.05);
    let keep: Vec<f64> = res.iter().map(|&r| if r <= limit { 1.0 } else { 0.0 }).collect();
    let (a, b) = line(&keep);
    x.iter().map(|&i| a + b * i).collect()
}

/// Spacing of the samples across the catheter, px.
const SAMPLE_PX: f64 = 0.25;

/// Parameters of the catheter model: background level and slope, attenuation per px of
/// chord, centre, outer and inner radius (px), and the blur's Gaussian sigma (px).
type Params = SVector<f64, 7>;

/// The model profile at `n` samples from `x0` every [`SAMPLE_PX`]: the projected chord of a
/// hollow cylinder (averaged over each sample's width), as transmission `exp(-a chord)` times
/// a linear background when `log` (X-ray intensities: the blur acts on the intensities) or as
/// `a chord` over it otherwise, then blurred by a Gaussian.
fn hollow_model(p: &Params, x0: f64, n: usize, c0: f64, log: bool, sc: &mut ModelScratch, out: &mut Vec<f64>) {
    let (b0, b1, a, c, r, ri, sigma) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
    let h = 0.5 * SAMPLE_PX;
    let ModelScratch { t, w } = sc;
    t.clear();
    t.extend((0..n).map(|i| {
        let x = x0 + i as f64 * SAMPLE_PX;
        let inner = if ri > 0.05 { chord(x, c, ri, h).0 } else { 0.0 };
        let g = (chord(x, c, r, h).0 - inner).max(0.0);
        if log { (-a * g).exp() } else { a * g }
    }));
    let s = sigma / SAMPLE_PX;
    let k = (3.0 * s).ceil() as isize;
    w.clear();
    w.extend((-k..=k).map(|j| (-0.5 * (j * j) as f64 / (s * s)).exp()));
    let wsum: f64 = w.iter().sum();
    out.clear();
    out.extend((0..n as isize).map(|i| {
        let mut acc = 0.0;
        for (j, wj) in (-k..=k).zip(w.iter()) {
            acc += wj * t[(i + j).clamp(0, n as isize - 1) as usize];
        }
        let blurred = acc / wsum;
        let bg = b0 + b1 * (x0 + i as f64 * SAMPLE_PX - c0);
        if log { bg * blurred } else { bg + blurred }
    }));
}

/// Buffers of [`hollow_model`], reused over the fit's many evaluations: the unblurred profile
/// and the blur's kernel.
#[derive(Default)]
struct ModelScratch {
    t: Vec<f64>,
    w: Vec<f64>,
}

/// Outer radius (px) of the hollow-cylinder model fitted by Levenberg-Marquardt to the profile
/// `ys` (samples every [`SAMPLE_PX`] from `x0`), started from the derivative edges' centre
/// `c0` and radius `r0`. None when the fit does not settle on a catheter near the start.
fn fit_hollow(ys: &[f64], x0: f64, c0: f64, r0: f64, log: bool) -> Option<f64> {
    let n = ys.len();
    if n < 12 || !(r0 > 1.0) {
        return None;
    }
    let (mut t, mut m) = (ModelScratch::default(), Vec::with_capacity(n));
    let cost = |p: &Params, t: &mut ModelScratch, m: &mut Vec<f64>| {
        hollow_model(p, x0, n, c0, log, t, m);
        m.iter().zip(ys).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
    };
    // Start: the background from the outer fifth of the profile, a wall of 0.4 of the radius,
    // the default blur, and the attenuation that gives the deepest sample.
    let edge = (n / 5).max(2);
    let mut outer: Vec<f64> = ys[..edge].iter().chain(&ys[n - edge..]).copied().collect();
    outer.sort_by(f64::total_cmp);
    let b0 = outer[outer.len() / 2];
    let (ri0, g_max) = (0.6 * r0, 2.0 * (r0 * r0 - 0.36 * r0 * r0).sqrt());
    let a0 = if log {
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        if !(b0 > 0.0 && lo > 0.0 && lo < b0) {
            return None;
        }
        (b0 / lo).ln() / g_max
    } else {
        (ys.iter().copied().fold(f64::NEG_INFINITY, f64::max) - b0) / g_max
    };
    if !(a0 > 0.0) {
        return None;
    }
    let project = |mut p: Params| {
        p[4] = p[4].max(0.5);
        p[5] = p[5].clamp(0.0, 0.97 * p[4]);
        p[6] = p[6].clamp(0.2, p[4]);
        p
    };
    let mut p = Params::from_column_slice(&[b0, 0.0, a0, c0, r0, ri0, crate::profile::DEFAULT_BLUR_SIGMA_PX]);
    let mut f = cost(&p, &mut t, &mut m);
    let (mut lambda, mut converged, mut last_moved) = (1e-3, false, f64::INFINITY);
    let (mut hi, mut lo) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut cols: [Vec<f64>; 7] = Default::default();
    for _ in 0..100 {
        // Jacobian by central differences.
        let mut jac = SMatrix::<f64, 7, 1>::zeros();
        let mut jtj = SMatrix::<f64, 7, 7>::zeros();
        let mut jte = Params::zeros();
        hollow_model(&p, x0, n, c0, log, &mut t, &mut m);
        for (k, col) in cols.iter_mut().enumerate() {
            col.clear();
            let eps = 1e-5 * (1.0 + p[k].abs());
            let (mut ph, mut pl) = (p, p);
            ph[k] += eps;
            pl[k] -= eps;
            hollow_model(&ph, x0, n, c0, log, &mut t, &mut hi);
            hollow_model(&pl, x0, n, c0, log, &mut t, &mut lo);
            col.extend(hi.iter().zip(&lo).map(|(a, b)| (a - b) / (2.0 * eps)));
        }
        for i in 0..n {
            for k in 0..7 {
                jac[k] = cols[k][i];
            }
            jtj += jac * jac.transpose();
            jte += jac * (m[i] - ys[i]);
        }
        let mut a = jtj;
        for k in 0..7 {
            a[(k, k)] += lambda * jtj[(k, k)].max(1e-12);
        }
        let Some(ch) = a.cholesky() else {
            lambda *= 10.0;
            if lambda > 1e8 {
                break;
            }
            continue;
        };
        let q = project(p - ch.solve(&jte));
        let fq = cost(&q, &mut t, &mut m);
        if fq.is_finite() && fq <= f {
            let moved = (3..7).map(|k| (q[k] - p[k]).abs()).fold(0.0, f64::max);
            // Along the flat valley where blur and wall trade off, steps shrink slowly while
            // the cost no longer changes: that is convergence too.
            let settled = f - fq <= 1e-6 * f;
            last_moved = moved;
            (p, f) = (q, fq);
            lambda = (lambda * 0.3).max(1e-9);
            if moved < 1e-3 || settled {
                converged = true;
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e8 {
                converged = true; // no step lowers the cost: at the minimum
                break;
            }
        }
    }
    // Still creeping along that valley when the steps run out, by under 0.01 px a step.
    converged |= last_moved < 0.01;
    let r = p[4];
    (converged && p[2] > 0.0 && r > 0.5 * r0 && r < 1.5 * r0 && (p[3] - c0).abs() < 0.5 * r0).then_some(r)
}

/// Calibrate from a catheter of `french` size (outer diameter `french / 3` mm) marked by the
/// user from `p0` to `p1` along its axis. Assumes a dark catheter (X-ray); use a contrast-empty
/// catheter (filled ones measure 3.9-15.5 % small, domain.md section 4).
pub fn calibrate_catheter(image: ArrayView2<f32>, p0: Point, p1: Point, french: f64) -> Result<Calibration> {
    // The French size is checked before measuring (a plausible width stands in).
    Calibration::from_catheter(french, 2.0)?;
    let w = measure_catheter(image, p0, p1, Polarity::DarkOnBright)?;
    let mut c = Calibration::from_catheter(french, w.median_px)?;
    c.detail = Some(format!(
        "{}; {} of {} stations, edge sd {:.2} px",
        c.detail.unwrap_or_default(),
        if w.fitted {
            "hollow-cylinder fit to the mean profile"
        } else {
            "median derivative edges"
        },
        w.stations,
        w.sd_px
    ));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hollow catheter's transmission profile (outer radius `r`, inner `ri`, px; attenuation
    /// `mu` per px of chord) blurred by a Gaussian of `sigma` px on a fine grid, sampled every
    /// SAMPLE_PX from `x0`, over a background of 800.
    fn profile(r: f64, ri: f64, mu: f64, sigma: f64, x0: f64, n: usize) -> Vec<f64> {
        let fine = 0.01;
        let k = (5.0 * sigma / fine) as isize;
        (0..n)
            .map(|i| {
                let x = x0 + i as f64 * SAMPLE_PX;
                let (mut acc, mut wsum) = (0.0, 0.0);
                for j in -k..=k {
                    let u = x + j as f64 * fine;
                    let g = 2.0 * (r * r - u * u).max(0.0).sqrt() - 2.0 * (ri * ri - u * u).max(0.0).sqrt();
                    let w = (-0.5 * (j as f64 * fine / sigma).powi(2)).exp();
                    acc += w * (-mu * g).exp();
                    wsum += w;
                }
                800.0 * acc / wsum
            })
            .collect()
    }

    #[test]
    fn the_hollow_fit_reads_the_outer_radius_through_blur() {
        for sigma in [0.5, 1.0, 1.25, 1.5] {
            let ys = profile(5.0, 3.5, 0.12, sigma, -16.0, 129);
            let r = fit_hollow(&ys, -16.0, 0.0, 5.6, true).unwrap_or_else(|| panic!("no fit at blur {sigma}"));
            assert!((r - 5.0).abs() < 0.07, "sigma {sigma}: r {r}");
        }
    }
}
