//! Catheter calibration: measure the outer width of a catheter of known French size along a
//! segment the user marks on it, then `Calibration::from_catheter`.

use crate::error::{AngioError, Result, check_image};
use crate::profile::ProfileOptions;
use ndarray::ArrayView2;
use vesselkit_core::{Calibration, Point};
use vesselkit_filters::{Polarity, bilinear};

/// Width statistics of a catheter measured along a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatheterWidth {
    /// Median outer width, px.
    pub median_px: f64,
    /// Standard deviation of the per-station widths, px.
    pub sd_px: f64,
    /// Stations measured.
    pub stations: usize,
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
    let mut widths = Vec::new();
    for k in 0..=n {
        let p = p0.lerp(p1, k as f64 / n.max(1) as f64);
        let x = crate::profile::measure_outer(&image, p, dir, r0, &opts);
        if x.left_px.is_finite() && x.right_px.is_finite() && !x.clipped {
            widths.push(x.diameter_px());
        }
    }
    if widths.len() < 3 {
        return Err(AngioError::not_found(
            "catheter edges",
            format!("only {} of {} stations gave two edges", widths.len(), n + 1),
        ));
    }
    widths.sort_by(f64::total_cmp);
    let median_px = widths[widths.len() / 2];
    let mean = widths.iter().sum::<f64>() / widths.len() as f64;
    let sd_px = (widths.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / widths.len() as f64).sqrt();
    Ok(CatheterWidth {
        median_px,
        sd_px,
        stations: widths.len(),
    })
}

/// Calibrate from a catheter of `french` size (outer diameter `french / 3` mm) marked by the
/// user from `p0` to `p1` along its axis. Assumes a dark catheter (X-ray); use a contrast-empty
/// catheter (filled ones measure 3.9-15.5 % small, domain.md section 4).
pub fn calibrate_catheter(image: ArrayView2<f32>, p0: Point, p1: Point, french: f64) -> Result<Calibration> {
    let w = measure_catheter(image, p0, p1, Polarity::DarkOnBright)?;
    let mut c = Calibration::from_catheter(french, w.median_px)?;
    c.detail = Some(format!(
        "{}; median of {} stations, sd {:.2} px",
        c.detail.unwrap_or_default(),
        w.stations,
        w.sd_px
    ));
    Ok(c)
}
