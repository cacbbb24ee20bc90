//! Cine analysis: the frame of best opacification, contrast arrival time and a TIMI-style flow
//! grade at the distal end of each branch.
//!
//! Flow grade (thresholds are adjustable defaults, not clinical numbers):
//! 0 = no opacification at the distal end during the whole run; 1 = faint (distal contrast per
//! unit diameter well below the branch's proximal contrast); 2 = delayed (arrival later than
//! comparable branches by more than `delay_margin_ms`); 3 = normal.

use crate::error::{AngioError, Result};
use crate::profile::tangents;
use ndarray::{ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use vesselkit_core::{Branch, Point, VesselTree};
use vesselkit_filters::{Polarity, bilinear, flatten_background, gaussian_blur};

/// Options of the cine stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowOptions {
    /// Half-side (px) of the closing used to score opacification per frame.
    pub score_radius_px: usize,
    /// The distal end of a branch is its last `distal_fraction` of arc (at least 3 stations).
    pub distal_fraction: f64,
    /// Arrival: first time the distal contrast reaches this fraction of its rise over the run.
    pub arrival_fraction: f64,
    /// Grade 0 when the distal peak contrast per px of diameter stays below this fraction of the
    /// root branch's proximal contrast per px.
    pub no_flow_fraction: f64,
    /// Grade 1 when the distal peak contrast per px is below this fraction of the branch's own
    /// proximal one.
    pub faint_fraction: f64,
    /// Grade 2 when the arrival lag behind the parent exceeds the median lag by this much.
    pub delay_margin_ms: f64,
    /// Frame interval assumed when the cine has no time stamps, ms.
    pub default_frame_ms: f64,
    /// Largest vessel motion between frames (cardiac and respiratory) that registration
    /// searches for, px; 0 samples every frame at the best frame's positions.
    pub max_shift_px: f64,
    /// Frames on each side of the best one averaged, once registered, into the image the mask
    /// and the centerlines come from (0: the best frame alone). Noise falls by the square
    /// root of the frame count, so low-contrast vessels (over the diaphragm, behind a
    /// subtotal lesion) segment whole; the diameters are still measured on the best frame,
    /// which the averaging does not blur.
    pub mask_mean_half_width: usize,
    /// A neighbour joins that mean only when its vessel contrast at the tree's stations, once
    /// registered, reaches this fraction of the best frame's: a frame still filling, washing
    /// out or moving in a way a translation does not follow stays out.
    pub mask_mean_min_contrast: f64,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            score_radius_px: 8,
            distal_fraction: 0.2,
            arrival_fraction: 0.5,
            no_flow_fraction: 0.1,
            faint_fraction: 0.3,
            delay_margin_ms: 200.0,
            default_frame_ms: 1000.0 / 15.0,
            max_shift_px: 4.0,
            mask_mean_half_width: 1,
            mask_mean_min_contrast: 0.8,
        }
    }
}

/// Gaussian sigma (px) of the smoothing before the opacification score's top-hat. On the raw
/// frame, the closing lifts every pixel by a few noise SDs, over the whole frame, against
/// vessels that cover a tenth of it: the score followed the noise, and one validation
/// phantom's best frame was taken before the bolus had arrived (1342 noise branches). At
/// 1.5 px the noise SD falls about fivefold while vessels 5 px wide and more keep their
/// contrast.
const SCORE_BLUR_SIGMA_PX: f32 = 1.5;

/// Opacification score of every frame (mean top-hat vessel contrast of the frame smoothed at
/// [`SCORE_BLUR_SIGMA_PX`]) and the best frame index.
pub fn opacification_curve(frames: ArrayView3<f32>, polarity: Polarity, radius_px: usize) -> Result<(usize, Vec<f64>)> {
    if frames.len_of(Axis(0)) == 0 {
        return Err(AngioError::invalid("frames", "empty cine"));
    }
    let scores: Vec<f64> = frames
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|f| -> Result<f64> {
            let smooth = gaussian_blur(f, SCORE_BLUR_SIGMA_PX)?;
            let t = flatten_background(smooth.view(), radius_px.max(1), polarity)?;
            Ok(t.iter().map(|&v| v as f64).sum::<f64>() / t.len() as f64)
        })
        .collect::<Result<Vec<f64>>>()?;
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(0);
    Ok((best, scores))
}

/// Vessel contrast at a station (background minus vessel for dark vessels): the vessel is
/// sampled at `+- inner_fraction * radius` across the centerline (0 = the centre), the background
/// at `+- (radius + 3)` px.
fn vessel_contrast(
    img: &ArrayView2<f32>,
    p: Point,
    t: (f64, f64),
    radius_px: f64,
    inner_fraction: f64,
    sign: f32,
) -> Option<f32> {
    let n = (-t.1, t.0);
    let (a, off) = (inner_fraction * radius_px, radius_px + 3.0);
    let at = |d: f64| bilinear(img, p.row + d * n.0, p.col + d * n.1);
    let (l, r) = (at(a)?, at(-a)?);
    let (bl, br) = (at(off)?, at(-off)?);
    Some(sign * (0.5 * (l + r) - 0.5 * (bl + br)))
}

/// Registration samples the vessel at +- 0.7 radius, where the chord changes fastest with a
/// sideways shift, so the optimum is sharper than at the centre.
const FLANK_FRACTION: f64 = 0.7;

/// Mean contrast per px of diameter over the given stations of a branch, for every frame.
fn contrast_curve(
    frames: &ArrayView3<f32>,
    shifts: &[(f64, f64)],
    branch: &Branch,
    idx: &[usize],
    mm_per_px: f64,
    sign: f32,
) -> Vec<f64> {
    let pts: Vec<Point> = branch.samples.iter().map(|s| s.point).collect();
    let tang = tangents(&pts, 2.0);
    let median_d_px = (branch.median_diameter_mm() / mm_per_px).max(1.0);
    frames
        .axis_iter(Axis(0))
        .zip(shifts)
        .map(|(f, &(dr, dc))| {
            let (mut acc, mut n) = (0.0, 0usize);
            for &i in idx {
                let s = &branch.samples[i];
                let d_px = if s.diameter_mm.is_finite() {
                    s.diameter_mm / mm_per_px
                } else {
                    median_d_px
                };
                let at = Point::new(s.point.row + dr, s.point.col + dc);
                if let Some(c) = vessel_contrast(&f, at, tang[i], 0.5 * d_px, 0.0, sign) {
                    acc += c as f64 / d_px.max(1.0);
                    n += 1;
                }
            }
            if n > 0 { acc / n as f64 } else { 0.0 }
        })
        .collect()
}

/// Translation of the vessels in every frame relative to the frame the tree was measured on,
/// `(d_row, d_col)` px: the shift within `+- max_shift_px` that maximises the mean vessel contrast
/// at the tree's reliable stations (integer search, then a parabolic refinement per axis).
/// Frames with too little contrast to register (before the bolus, under 20 % of the best
/// frame's score) take the shift of the nearest registered frame.
pub fn frame_shifts(
    frames: ArrayView3<f32>,
    tree: &VesselTree,
    polarity: Polarity,
    max_shift_px: f64,
) -> Result<Vec<(f64, f64)>> {
    Ok(frame_registration(frames, tree, polarity, max_shift_px)?.shifts_px)
}

/// Registration of a cine's frames on a tree (see [`frame_registration`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registration {
    /// Per frame, the translation `(d_row, d_col)` px of its vessels (see [`frame_shifts`]).
    pub shifts_px: Vec<(f64, f64)>,
    /// Per frame, the mean vessel contrast at the tree's stations once registered (0 where
    /// too few stations fall inside the frame, or the tree has none).
    pub contrast: Vec<f64>,
}

/// [`frame_shifts`] and how well each frame's vessels show once registered.
pub fn frame_registration(
    frames: ArrayView3<f32>,
    tree: &VesselTree,
    polarity: Polarity,
    max_shift_px: f64,
) -> Result<Registration> {
    let nf = frames.len_of(Axis(0));
    if !(max_shift_px.is_finite() && max_shift_px >= 0.0) {
        return Err(AngioError::invalid(
            "max_shift_px",
            format!("must be a finite value >= 0, got {max_shift_px}"),
        ));
    }
    let r = max_shift_px.floor() as i32;
    let mm = tree.calibration.mm_per_px;
    let sign = if polarity == Polarity::DarkOnBright { -1.0 } else { 1.0 };
    // Stations: reliable samples of vessels at least 3 px wide, about 2 px apart, at most 600.
    let mut st: Vec<(Point, (f64, f64), f64)> = Vec::new();
    for b in &tree.branches {
        let pts: Vec<Point> = b.samples.iter().map(|s| s.point).collect();
        let tang = tangents(&pts, 2.0);
        for (i, s) in b.samples.iter().enumerate().step_by(4) {
            let d_px = s.diameter_mm / mm;
            if s.reliable && d_px >= 3.0 {
                st.push((s.point, tang[i], 0.5 * d_px));
            }
        }
    }
    if st.is_empty() {
        return Ok(Registration {
            shifts_px: vec![(0.0, 0.0); nf],
            contrast: vec![0.0; nf],
        });
    }
    let keep = st.len().div_ceil(600);
    let st: Vec<_> = st.into_iter().step_by(keep).collect();
    let score = |f: &ArrayView2<f32>, dr: f64, dc: f64| -> f64 {
        let (mut acc, mut n) = (0.0, 0usize);
        for &(p, t, rad) in &st {
            if let Some(c) = vessel_contrast(f, Point::new(p.row + dr, p.col + dc), t, rad, FLANK_FRACTION, sign) {
                acc += c as f64;
                n += 1;
            }
        }
        if n * 2 >= st.len() {
            acc / n as f64
        } else {
            f64::NEG_INFINITY
        }
    };
    let found: Vec<((f64, f64), f64)> = frames
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|f| {
            if r == 0 {
                // No search: every frame at the best frame's positions.
                return ((0.0, 0.0), score(&f, 0.0, 0.0));
            }
            let (mut best, mut at) = (f64::NEG_INFINITY, (0i32, 0i32));
            for dr in -r..=r {
                for dc in -r..=r {
                    let v = score(&f, dr as f64, dc as f64);
                    if v > best {
                        best = v;
                        at = (dr, dc);
                    }
                }
            }
            // Sub-pixel: a 0.25 px grid over +- 0.75 px around the integer optimum, then a
            // parabola per axis (along a straight vessel the score is flat, so both axes are
            // needed from the branches of other directions).
            let (mut ar, mut ac) = (at.0 as f64, at.1 as f64);
            let (cr, cc) = (ar, ac);
            for i in -3..=3 {
                for j in -3..=3 {
                    let (dr, dc) = (cr + 0.25 * i as f64, cc + 0.25 * j as f64);
                    let v = score(&f, dr, dc);
                    if v > best {
                        best = v;
                        (ar, ac) = (dr, dc);
                    }
                }
            }
            let refine = |m: f64, c: f64, p: f64| {
                let den = m - 2.0 * c + p;
                if den < 0.0 {
                    (0.5 * (m - p) / den).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            };
            let fr = 0.25 * refine(score(&f, ar - 0.25, ac), best, score(&f, ar + 0.25, ac));
            let fc = 0.25 * refine(score(&f, ar, ac - 0.25), best, score(&f, ar, ac + 0.25));
            let fr = if fr.is_finite() { fr } else { 0.0 };
            let fc = if fc.is_finite() { fc } else { 0.0 };
            ((ar + fr, ac + fc), best)
        })
        .collect();
    let contrast: Vec<f64> = found.iter().map(|f| f.1.max(0.0)).collect();
    let top = found.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
    if !(top > 0.0) {
        return Ok(Registration {
            shifts_px: vec![(0.0, 0.0); nf],
            contrast,
        });
    }
    let ok: Vec<usize> = (0..nf).filter(|&i| found[i].1 >= 0.2 * top).collect();
    let shifts = (0..nf)
        .map(|i| {
            let j = ok.iter().copied().min_by_key(|&j| j.abs_diff(i)).unwrap_or(i);
            found[j].0
        })
        .collect();
    Ok(Registration {
        shifts_px: shifts,
        contrast,
    })
}

/// Arrival time: first crossing of `baseline + fraction * (peak - baseline)`, linearly
/// interpolated between frames.
fn arrival(curve: &[f64], times: &[f64], fraction: f64) -> Option<f64> {
    let base = curve.iter().copied().fold(f64::INFINITY, f64::min);
    let peak = curve.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(peak > base) {
        return None;
    }
    let level = base + fraction * (peak - base);
    let k = curve.iter().position(|&c| c >= level)?;
    if k == 0 {
        return Some(times[0]);
    }
    let (c0, c1) = (curve[k - 1], curve[k]);
    let f = if c1 > c0 { (level - c0) / (c1 - c0) } else { 1.0 };
    Some(times[k - 1] + f * (times[k] - times[k - 1]))
}

/// Fill `arrival_ms` and `flow_grade` of every branch of `tree` from the cine frames. Returns
/// each frame's registration shift (see [`frame_shifts`]).
pub fn grade_flow(
    tree: &mut VesselTree,
    frames: ArrayView3<f32>,
    frame_times_ms: &[f64],
    polarity: Polarity,
    opts: &FlowOptions,
) -> Result<Vec<(f64, f64)>> {
    grade_flow_registered(tree, frames, frame_times_ms, polarity, opts, None)
}

/// [`grade_flow`] with the frames' registration on this tree when already known (`shifts`).
pub(crate) fn grade_flow_registered(
    tree: &mut VesselTree,
    frames: ArrayView3<f32>,
    frame_times_ms: &[f64],
    polarity: Polarity,
    opts: &FlowOptions,
    shifts: Option<Vec<(f64, f64)>>,
) -> Result<Vec<(f64, f64)>> {
    let nf = frames.len_of(Axis(0));
    if nf == 0 {
        return Err(AngioError::invalid("frames", "empty cine"));
    }
    if !frame_times_ms.is_empty() && frame_times_ms.len() != nf {
        return Err(AngioError::invalid(
            "frame_times_ms",
            format!("{} time stamps for {nf} frames", frame_times_ms.len()),
        ));
    }
    for (field, v) in [
        ("distal_fraction", opts.distal_fraction),
        ("arrival_fraction", opts.arrival_fraction),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            return Err(AngioError::invalid(field, format!("must be in (0, 1], got {v}")));
        }
    }
    let v = opts.mask_mean_min_contrast;
    if !(0.0..=1.0).contains(&v) {
        return Err(AngioError::invalid(
            "mask_mean_min_contrast",
            format!("must be in [0, 1], got {v}"),
        ));
    }
    let times: Vec<f64> = if frame_times_ms.is_empty() {
        (0..nf).map(|i| i as f64 * opts.default_frame_ms).collect()
    } else {
        frame_times_ms.iter().map(|t| t - frame_times_ms[0]).collect()
    };
    let mm = tree.calibration.mm_per_px;
    let sign = if polarity == Polarity::DarkOnBright { -1.0 } else { 1.0 };
    let stations = |b: &Branch, distal: bool| -> Vec<usize> {
        let n = b.samples.len();
        let k = ((n as f64 * opts.distal_fraction).ceil() as usize).clamp(3.min(n), n);
        let range: Vec<usize> = if distal { (n - k..n).collect() } else { (0..k).collect() };
        // At most 12 stations spread over the window.
        let step = (range.len() / 12).max(1);
        range.into_iter().step_by(step).collect()
    };
    let shifts = match shifts {
        Some(s) => s,
        None => frame_shifts(frames, tree, polarity, opts.max_shift_px)?,
    };
    let curves: Vec<(Vec<f64>, Vec<f64>)> = tree
        .branches
        .par_iter()
        .map(|b| {
            let d = contrast_curve(&frames, &shifts, b, &stations(b, true), mm, sign);
            let p = contrast_curve(&frames, &shifts, b, &stations(b, false), mm, sign);
            (d, p)
        })
        .collect();
    let rise = |c: &[f64]| {
        let base = c.iter().copied().fold(f64::INFINITY, f64::min);
        c.iter().copied().fold(f64::NEG_INFINITY, f64::max) - base
    };
    let reference = tree
        .root
        .and_then(|r| curves.get(r))
        .map(|(_, p)| rise(p))
        .unwrap_or_else(|| curves.iter().map(|(_, p)| rise(p)).fold(0.0, f64::max));
    let mut arrivals: Vec<Option<f64>> = vec![None; tree.branches.len()];
    let mut grades: Vec<u8> = vec![3; tree.branches.len()];
    for (i, (d, p)) in curves.iter().enumerate() {
        let rd = rise(d);
        if !(rd > opts.no_flow_fraction * reference) || reference <= 0.0 {
            grades[i] = 0;
            continue;
        }
        arrivals[i] = arrival(d, &times, opts.arrival_fraction);
        if rd < opts.faint_fraction * rise(p) {
            grades[i] = 1;
        }
    }
    // Delay relative to the parent, compared with the median lag of all branches.
    let lag = |i: usize| -> Option<f64> {
        let a = arrivals[i]?;
        match tree.branches[i].parent {
            Some(p) => Some(a - arrivals[p]?),
            None => None,
        }
    };
    let mut lags: Vec<f64> = (0..tree.branches.len()).filter_map(lag).collect();
    lags.sort_by(f64::total_cmp);
    if !lags.is_empty() {
        let med = lags[(lags.len() - 1) / 2]; // lower median
        for (i, g) in grades.iter_mut().enumerate() {
            if *g == 3
                && let Some(l) = lag(i)
                && l > med + opts.delay_margin_ms
            {
                *g = 2;
            }
        }
    }
    for (i, b) in tree.branches.iter_mut().enumerate() {
        b.arrival_ms = arrivals[i];
        b.flow_grade = Some(grades[i]);
    }
    Ok(shifts)
}

/// The frames whose registered mean the mask comes from (see
/// [`FlowOptions::mask_mean_half_width`]): the best frame and its neighbours within the half
/// width whose registered contrast reaches `mask_mean_min_contrast` of the best frame's. Only
/// the best frame when its own contrast is not positive.
pub fn mask_mean_frames(best: usize, registered_contrast: &[f64], opts: &FlowOptions) -> Vec<usize> {
    let n = registered_contrast.len();
    let top = registered_contrast.get(best).copied().unwrap_or(0.0);
    if best >= n || !(top > 0.0) {
        return vec![best];
    }
    let h = opts.mask_mean_half_width;
    (best.saturating_sub(h)..=(best + h).min(n - 1))
        .filter(|&k| k == best || registered_contrast[k] >= opts.mask_mean_min_contrast * top)
        .collect()
}

/// A non-empty run and one finite shift per frame; the run's `(frames, rows, cols)`.
fn check_shifted_frames(frames: ArrayView3<f32>, shifts: &[(f64, f64)]) -> Result<(usize, usize, usize)> {
    let (nf, rows, cols) = frames.dim();
    if nf == 0 || rows == 0 || cols == 0 {
        return Err(AngioError::invalid("frames", "empty cine"));
    }
    if shifts.len() != nf {
        return Err(AngioError::invalid(
            "shifts",
            format!("{} shifts for {nf} frames", shifts.len()),
        ));
    }
    if shifts.iter().any(|&(r, c)| !(r.is_finite() && c.is_finite())) {
        return Err(AngioError::invalid("shifts", "must be finite"));
    }
    Ok((nf, rows, cols))
}

/// The mean of the frames `pick`, each sampled (bilinear) where the vessels at every pixel of
/// the frame the shifts refer to have moved in it (see [`frame_shifts`]): a registered
/// average in that frame's positions. A pixel that a shifted frame does not reach averages
/// the others (the reference frame itself, unshifted, reaches all).
pub fn registered_mean(frames: ArrayView3<f32>, shifts: &[(f64, f64)], pick: &[usize]) -> Result<ndarray::Array2<f32>> {
    let (nf, rows, cols) = check_shifted_frames(frames, shifts)?;
    if pick.is_empty() {
        return Err(AngioError::invalid("pick", "no frame to average"));
    }
    if let Some(&k) = pick.iter().find(|&&k| k >= nf) {
        return Err(AngioError::invalid("pick", format!("frame {k} of {nf}")));
    }
    let views: Vec<(ArrayView2<f32>, (f64, f64))> = pick
        .iter()
        .map(|&k| (frames.index_axis(Axis(0), k), shifts[k]))
        .collect();
    let mut out = ndarray::Array2::<f32>::zeros((rows, cols));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut row)| {
            for (c, o) in row.iter_mut().enumerate() {
                let (mut sum, mut n) = (0.0f32, 0u32);
                for (f, (dr, dc)) in &views {
                    if let Some(v) = bilinear(f, r as f64 + dr, c as f64 + dc) {
                        sum += v;
                        n += 1;
                    }
                }
                // n = 0 only when no picked frame reaches the pixel: keep the first one's value.
                *o = if n > 0 { sum / n as f32 } else { views[0].0[[r, c]] };
            }
        });
    Ok(out)
}

/// Per pixel of the frame the tree was measured on, the most opacified value the run reaches
/// there: the minimum (dark vessels) or maximum (bright) over the frames, each moved by its
/// registration shift (rounded to the pixel) and averaged with its neighbours in time (three
/// frames, so that one noisy frame does not set the extreme). Where a vessel fills late (behind
/// a near-occlusion) it shows here at its fullest, which no single frame does. Pixels a shifted
/// frame does not cover take the frames that do (the measured frame, unshifted, covers all).
pub fn peak_opacification(
    frames: ArrayView3<f32>,
    shifts: &[(f64, f64)],
    polarity: Polarity,
) -> Result<ndarray::Array2<f32>> {
    Ok(opacification_extremes(frames, shifts, polarity, false)?.0)
}

/// [`peak_opacification`] and, from the same pass, the run's filling with the still anatomy
/// taken out: per pixel, the most opacified value over the least opacified one the registered
/// run reaches there (the inverse for bright vessels), so that 1 is no contrast ever and a
/// vessel reads below 1 as it would on a flat background, whatever lies behind it. The lung
/// texture, ribs and the diaphragm's edge, which in a single frame hide a faint vessel,
/// cancel. NaN where either value is not positive.
pub fn peak_and_subtracted_opacification(
    frames: ArrayView3<f32>,
    shifts: &[(f64, f64)],
    polarity: Polarity,
) -> Result<(ndarray::Array2<f32>, ndarray::Array2<f32>)> {
    let (peak, least) = opacification_extremes(frames, shifts, polarity, true)?;
    let dark = polarity == Polarity::DarkOnBright;
    let subtracted = ndarray::Zip::from(&peak).and(&least).par_map_collect(|&p, &l| {
        let (num, den) = if dark { (p, l) } else { (l, p) };
        if num > 0.0 && den > 0.0 { num / den } else { f32::NAN }
    });
    Ok((peak, subtracted))
}

/// The most and, `with_least`, the least opacified value per pixel (see
/// [`peak_opacification`]); without, the second array has no columns.
fn opacification_extremes(
    frames: ArrayView3<f32>,
    shifts: &[(f64, f64)],
    polarity: Polarity,
    with_least: bool,
) -> Result<(ndarray::Array2<f32>, ndarray::Array2<f32>)> {
    let (nf, rows, cols) = check_shifted_frames(frames, shifts)?;
    let dark = polarity == Polarity::DarkOnBright;
    let whole: Vec<(isize, isize)> = shifts
        .iter()
        .map(|&(r, c)| (r.round() as isize, c.round() as isize))
        .collect();
    let mut out = ndarray::Array2::<f32>::zeros((rows, cols));
    // Without the least values, rows of none: the loop below then neither keeps nor copies them.
    let least_cols = if with_least { cols } else { 0 };
    let mut least_out = ndarray::Array2::<f32>::zeros((rows, least_cols));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(least_out.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(r, (mut row, mut least_row))| {
            // A ring of the last three shifted rows: values (0 where the frame does not reach)
            // and weights (1 where it does), so the inner loops carry no branches.
            let mut val = [vec![0.0f32; cols], vec![0.0f32; cols], vec![0.0f32; cols]];
            let mut wt = [vec![0.0f32; cols], vec![0.0f32; cols], vec![0.0f32; cols]];
            let load = |k: usize, v: &mut [f32], w: &mut [f32]| {
                v.fill(0.0);
                w.fill(0.0);
                let (dr, dc) = whole[k];
                let rr = r as isize + dr;
                if rr < 0 || rr >= rows as isize {
                    return;
                }
                let frame = frames.index_axis(Axis(0), k);
                let src = frame.row(rr as usize);
                // Output columns c with 0 <= c + dc < cols.
                let c0 = (-dc).clamp(0, cols as isize) as usize;
                let c1 = (cols as isize - dc).clamp(0, cols as isize) as usize;
                if c1 <= c0 {
                    return;
                }
                let (s0, s1) = ((c0 as isize + dc) as usize, (c1 as isize + dc) as usize);
                match src.as_slice() {
                    Some(x) => v[c0..c1].copy_from_slice(&x[s0..s1]),
                    None => {
                        for (o, &x) in v[c0..c1].iter_mut().zip(src.slice(ndarray::s![s0..s1]).iter()) {
                            *o = x;
                        }
                    }
                }
                w[c0..c1].fill(1.0);
            };
            let mut best = vec![f32::NAN; cols];
            let mut least = vec![f32::NAN; least_cols];
            let mut loaded = 0usize;
            for j in 0..nf {
                let (lo, hi) = (j.saturating_sub(1), (j + 1).min(nf - 1));
                while loaded <= hi {
                    let slot = loaded % 3;
                    let (v, w) = (&mut val[slot], &mut wt[slot]);
                    load(loaded, v, w);
                    loaded += 1;
                }
                // Window of two frames at the ends of the run, three inside.
                let (s0, s1, s2) = (lo % 3, (lo + 1) % 3, hi % 3);
                let third = hi - lo == 2;
                let (v0, v1, v2) = (&val[s0], &val[s1], &val[s2]);
                let (w0, w1, w2) = (&wt[s0], &wt[s1], &wt[s2]);
                let k = if third { 1.0 } else { 0.0 };
                // NaN where no frame reaches: min / max then keep the other value.
                let means = v0
                    .iter()
                    .zip(v1)
                    .zip(v2)
                    .zip(w0.iter().zip(w1).zip(w2))
                    .map(|(((a, b), c), ((x, y), z))| (a + b + k * c) / (x + y + k * z));
                match (dark, with_least) {
                    (true, false) => best.iter_mut().zip(means).for_each(|(o, m)| *o = o.min(m)),
                    (false, false) => best.iter_mut().zip(means).for_each(|(o, m)| *o = o.max(m)),
                    (true, true) => best.iter_mut().zip(&mut least).zip(means).for_each(|((o, l), m)| {
                        *o = o.min(m);
                        *l = l.max(m);
                    }),
                    (false, true) => best.iter_mut().zip(&mut least).zip(means).for_each(|((o, l), m)| {
                        *o = o.max(m);
                        *l = l.min(m);
                    }),
                }
            }
            for (o, &b) in row.iter_mut().zip(&best) {
                *o = b;
            }
            for (o, &b) in least_row.iter_mut().zip(&least) {
                *o = b;
            }
        });
    Ok((out, least_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// About N(0, 1) from a xorshift generator (sum of 12 uniforms).
    fn gauss(state: &mut u64) -> f32 {
        (0..12)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state >> 11) as f64 / (1u64 << 53) as f64
            })
            .sum::<f64>() as f32
            - 6.0
    }

    #[test]
    fn the_best_frame_holds_the_contrast_not_the_most_noise() {
        // Frame 0: no vessel, noise SD 30 counts. Frame 1: an 8 px wide vessel 100 counts
        // darker than the 1000-count background, noise SD 20. On the raw frames the closing's
        // lift of the stronger noise outscored the vessel; smoothed first, the vessel wins.
        let mut st = 99u64;
        let frames = ndarray::Array3::<f32>::from_shape_fn((2, 64, 64), |(f, r, _)| {
            let vessel = if f == 1 && (28..36).contains(&r) { 100.0 } else { 0.0 };
            let sd = if f == 0 { 30.0 } else { 20.0 };
            1000.0 - vessel + sd * gauss(&mut st)
        });
        let (best, scores) = opacification_curve(frames.view(), Polarity::DarkOnBright, 8).unwrap();
        assert_eq!(best, 1, "{scores:?}");
        // The vessel frame's score is about the vessel's share of the frame (8 rows of 64 at
        // 100 counts: 12.5) above the noise-only frame's.
        assert!(scores[1] - scores[0] > 5.0, "{scores:?}");
    }

    #[test]
    fn registered_mean_undoes_each_frames_shift() {
        // A ramp v = 10 * row + col moved by (0.5, -1.25) px in frame 1 and (-1, 0.25) in
        // frame 2: sampled at the shifted positions, every frame reads the reference's ramp,
        // and so does their mean (bilinear sampling is exact on a linear ramp).
        let shifts = [(0.0, 0.0), (0.5, -1.25), (-1.0, 0.25)];
        let frames = ndarray::Array3::<f32>::from_shape_fn((3, 12, 14), |(f, r, c)| {
            let (dr, dc) = shifts[f];
            10.0 * (r as f64 - dr) as f32 + (c as f64 - dc) as f32
        });
        let mean = registered_mean(frames.view(), &shifts, &[0, 1, 2]).unwrap();
        for ((r, c), &v) in mean.indexed_iter() {
            assert!((v - (10.0 * r as f32 + c as f32)).abs() < 1e-3, "({r}, {c}) {v}");
        }
        // Independent noise: the mean of three frames has a third of the variance of one.
        let mut rng = 12345u64;
        let noisy = ndarray::Array3::<f32>::from_shape_fn((3, 64, 64), |_| 100.0 + gauss(&mut rng));
        let still = [(0.0, 0.0); 3];
        let var = |a: ndarray::ArrayView2<f32>| {
            let m = a.mean().unwrap();
            a.iter().map(|&v| (v - m) * (v - m)).sum::<f32>() / a.len() as f32
        };
        let one = var(noisy.index_axis(Axis(0), 0));
        let three = var(registered_mean(noisy.view(), &still, &[0, 1, 2]).unwrap().view());
        assert!((three / one - 1.0 / 3.0).abs() < 0.05, "{one} {three}");
        // Bad input names what is wrong.
        let e = registered_mean(frames.view(), &shifts[..2], &[0, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shifts"), "{e}");
        let e = registered_mean(frames.view(), &shifts, &[0, 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pick") && e.contains("frame 3"), "{e}");
        assert!(registered_mean(frames.view(), &shifts, &[]).is_err());
        let bad = [(0.0, 0.0), (f64::NAN, 0.0), (0.0, 0.0)];
        assert!(registered_mean(frames.view(), &bad, &[0, 1]).is_err());
    }

    #[test]
    fn mask_mean_takes_the_neighbours_that_fill_and_register_well() {
        let o = FlowOptions::default();
        assert_eq!((o.mask_mean_half_width, o.mask_mean_min_contrast), (1, 0.8));
        let c = [10.0, 50.0, 85.0, 100.0, 79.0, 90.0];
        // Frame 4 reads under 0.8 of the best's contrast: only frame 2 joins.
        assert_eq!(mask_mean_frames(3, &c, &o), vec![2, 3]);
        let wide = FlowOptions {
            mask_mean_half_width: 2,
            ..o
        };
        assert_eq!(mask_mean_frames(3, &c, &wide), vec![2, 3, 5]);
        // At the run's end the window is cut; the bar is the given best frame's own contrast
        // (0.8 x 90 = 72, which frame 4 passes).
        assert_eq!(mask_mean_frames(5, &c, &wide), vec![3, 4, 5]);
        // Off, or nothing registered: the best frame alone.
        let off = FlowOptions {
            mask_mean_half_width: 0,
            ..o
        };
        assert_eq!(mask_mean_frames(3, &c, &off), vec![3]);
        assert_eq!(mask_mean_frames(1, &[0.0; 4], &o), vec![1]);
        assert_eq!(mask_mean_frames(7, &c, &o), vec![7]);
    }

    #[test]
    fn peak_opacification_follows_the_registered_frames() {
        // Seven flat frames; in frame 3, moved one column right (shift rounded from 0.6), a dark
        // pixel at (4, 5): on the measured frame's grid that is (4, 4). Every three-frame mean
        // holding frame 3 reads (100 + 100 + 40) / 3 = 80 there.
        let mut frames = ndarray::Array3::<f32>::from_elem((7, 8, 8), 100.0);
        frames[[3, 4, 5]] = 40.0;
        let mut shifts = vec![(0.0, 0.0); 7];
        shifts[3] = (0.0, 0.6);
        let dark = peak_opacification(frames.view(), &shifts, Polarity::DarkOnBright).unwrap();
        assert!((dark[[4, 4]] - 80.0).abs() < 1e-4, "{}", dark[[4, 4]]);
        assert_eq!(dark[[4, 5]], 100.0);
        // The last column of the grid lies outside frame 3: the other frames fill it.
        assert_eq!(dark[[4, 7]], 100.0);
        assert!(dark.iter().filter(|&&v| v != 100.0).count() == 1);
        // Bright vessels take the maximum: the dark pixel never counts.
        let bright = peak_opacification(frames.view(), &shifts, Polarity::BrightOnDark).unwrap();
        assert!(bright.iter().all(|&v| v == 100.0));
        // Without the registration the dark pixel lands one column off.
        let still = peak_opacification(frames.view(), &[(0.0, 0.0); 7], Polarity::DarkOnBright).unwrap();
        assert!((still[[4, 5]] - 80.0).abs() < 1e-4 && still[[4, 4]] == 100.0);
        // Bad input: a shift per frame, finite.
        assert!(peak_opacification(frames.view(), &shifts[..6], Polarity::DarkOnBright).is_err());
        shifts[2] = (f64::NAN, 0.0);
        assert!(peak_opacification(frames.view(), &shifts, Polarity::DarkOnBright).is_err());
        let empty = ndarray::Array3::<f32>::zeros((0, 8, 8));
        assert!(peak_opacification(empty.view(), &[], Polarity::DarkOnBright).is_err());
    }

    #[test]
    fn subtraction_takes_out_what_never_changes() {
        // Seven frames at 100 counts over a still rib at 50 (column 2). A pixel on the rib,
        // (4, 2), and one off it, (4, 6), darken to 0.6 of their value in frames 3-5: their
        // fullest three-frame filling is 0.6 of their least, wherever they lie.
        let mut frames = ndarray::Array3::<f32>::from_elem((7, 8, 8), 100.0);
        frames.slice_mut(ndarray::s![.., .., 2]).fill(50.0);
        for f in 3..6 {
            frames[[f, 4, 2]] = 30.0;
            frames[[f, 4, 6]] = 60.0;
        }
        let still = [(0.0, 0.0); 7];
        let (peak, sub) = peak_and_subtracted_opacification(frames.view(), &still, Polarity::DarkOnBright).unwrap();
        assert_eq!(
            peak,
            peak_opacification(frames.view(), &still, Polarity::DarkOnBright).unwrap()
        );
        assert!((sub[[4, 2]] - 0.6).abs() < 1e-6 && (sub[[4, 6]] - 0.6).abs() < 1e-6);
        // The rib itself, and the flat background, read 1: no contrast ever.
        assert!(sub.iter().filter(|&&v| v != 1.0).count() == 2, "{sub:?}");
        // Bright vessels: a pixel brightening to 1 / 0.6 of its value reads 0.6 too.
        let bright = frames.mapv(|v| {
            if v == 60.0 {
                100.0 / 0.6
            } else if v == 30.0 {
                50.0 / 0.6
            } else {
                v
            }
        });
        let (_, sub) = peak_and_subtracted_opacification(bright.view(), &still, Polarity::BrightOnDark).unwrap();
        assert!((sub[[4, 2]] - 0.6).abs() < 1e-5 && (sub[[4, 6]] - 0.6).abs() < 1e-5);
        // No ratio where the counts are not positive.
        frames.slice_mut(ndarray::s![.., 0, 0]).fill(0.0);
        let (_, sub) = peak_and_subtracted_opacification(frames.view(), &still, Polarity::DarkOnBright).unwrap();
        assert!(sub[[0, 0]].is_nan());
        assert!(peak_and_subtracted_opacification(frames.view(), &still[..6], Polarity::DarkOnBright).is_err());
    }

    #[test]
    fn arrival_interpolates() {
        let c = [0.0, 0.0, 0.2, 0.6, 1.0, 1.0];
        let t: Vec<f64> = (0..6).map(|i| i as f64 * 100.0).collect();
        // Level 0.5 between 0.2 at 200 ms and 0.6 at 300 ms: 275 ms.
        assert!((arrival(&c, &t, 0.5).unwrap() - 275.0).abs() < 1e-9);
        assert!(arrival(&[1.0, 1.0], &t[..2], 0.5).is_none());
    }
}
