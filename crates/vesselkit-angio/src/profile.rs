//! Diameter profiles: intensity profiles perpendicular to the centerline (bilinear sampling),
//! sub-pixel lumen edges at the mean of the first- and second-derivative edge positions
//! (domain.md section 4), channel count, densitometric ratio and reliability.

use crate::error::{AngioError, Result, check_image, check_mm_per_px};
use ndarray::ArrayView2;
use vesselkit_core::{Point, ProfileSample};
use vesselkit_filters::{Polarity, bilinear};

/// Options of [`diameter_profile`] and [`measure_cross_section`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileOptions {
    pub polarity: Polarity,
    /// Sample spacing along the normal, px.
    pub sample_px: f64,
    /// Gaussian sigma (px) of the derivative filter across the profile: at least this, and
    /// `derivative_sigma_per_radius` times the radius hint, at most 1 px.
    pub derivative_sigma_px: f64,
    pub derivative_sigma_per_radius: f64,
    /// Half-length of the profile: `half_length_factor * radius + half_length_margin_px`.
    pub half_length_factor: f64,
    pub half_length_margin_px: f64,
    /// Tangent estimated over +- this many px of arc.
    pub tangent_window_px: f64,
    /// Profiles are averaged over +- this many px along the vessel (1 px apart; bilinear samples closer than that are correlated) against noise.
    pub along_average_px: f64,
    /// A dip in opacity inside the lumen deeper than this fraction of the lumen contrast splits
    /// channels.
    pub channel_dip_fraction: f64,
    /// Samples closer than `junction_factor * (junction radius + own radius)` to a junction are
    /// unreliable.
    pub junction_factor: f64,
    /// Samples whose profile has opacity above this fraction of the centre's outside the edges
    /// (another vessel in the window: overlap, crossing) are unreliable.
    pub overlap_fraction: f64,
    /// Samples where one edge lies more than this many times farther from the centerline than
    /// the other are unreliable: the skeleton runs near the lumen centre, so a lopsided pair
    /// means one edge followed a background step or a neighbouring structure.
    pub max_edge_asymmetry: f64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            polarity: Polarity::DarkOnBright,
            sample_px: 0.5,
            derivative_sigma_px: 0.5,
            derivative_sigma_per_radius: 0.1,
            half_length_factor: 1.6,
            half_length_margin_px: 4.0,
            tangent_window_px: 2.0,
            along_average_px: 1.0,
            channel_dip_fraction: 0.2,
            junction_factor: 1.0,
            overlap_fraction: 0.5,
            max_edge_asymmetry: 2.0,
        }
    }
}

impl ProfileOptions {
    fn validate(&self) -> Result<()> {
        for (field, v, lo) in [
            ("sample_px", self.sample_px, 1e-3),
            ("derivative_sigma_px", self.derivative_sigma_px, 0.0),
            ("derivative_sigma_per_radius", self.derivative_sigma_per_radius, 0.0),
            ("half_length_factor", self.half_length_factor, 1.0),
            ("half_length_margin_px", self.half_length_margin_px, 0.0),
            ("tangent_window_px", self.tangent_window_px, 0.1),
            ("along_average_px", self.along_average_px, 0.0),
            ("channel_dip_fraction", self.channel_dip_fraction, 0.0),
            ("junction_factor", self.junction_factor, 0.0),
            ("overlap_fraction", self.overlap_fraction, 0.0),
            ("max_edge_asymmetry", self.max_edge_asymmetry, 1.0),
        ] {
            if !(v.is_finite() && v >= lo) {
                return Err(AngioError::invalid(
                    field,
                    format!("must be a finite value >= {lo}, got {v}"),
                ));
            }
        }
        if self.sample_px > 1.0 {
            return Err(AngioError::invalid(
                "sample_px",
                format!("must be <= 1 px, got {}", self.sample_px),
            ));
        }
        Ok(())
    }
}

/// One cross-section measurement (px units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossSection {
    /// Distance from the centerline point to the left edge (along the left normal) and to the
    /// right edge, px. NaN when not found.
    pub left_px: f64,
    pub right_px: f64,
    pub channels: u8,
    pub density_ratio: f64,
    /// Edges found and no other vessel inside the window.
    pub clean: bool,
    /// The profile window left the image.
    pub clipped: bool,
}

impl CrossSection {
    fn failed(clipped: bool) -> Self {
        Self {
            left_px: f64::NAN,
            right_px: f64::NAN,
            channels: 0,
            density_ratio: f64::NAN,
            clean: false,
            clipped,
        }
    }
    pub fn diameter_px(&self) -> f64 {
        self.left_px + self.right_px
    }
}

/// Parabolic sub-sample refinement of an extremum at index `i` of `y`.
fn parabolic(y: &[f32], i: usize) -> f64 {
    if i == 0 || i + 1 >= y.len() {
        return i as f64;
    }
    let (a, b, c) = (y[i - 1] as f64, y[i] as f64, y[i + 1] as f64);
    let den = a - 2.0 * b + c;
    if den.abs() < 1e-12 {
        i as f64
    } else {
        i as f64 + (0.5 * (a - c) / den).clamp(-0.5, 0.5)
    }
}

/// Edge on one side of an opacity bump (vessel = positive bump), searching outwards from
/// index `start` (`dir` = +1 towards higher indices) over at most `reach1` samples for the
/// first-derivative edge and `reach2` further samples for the second-derivative edge. Returns
/// the sub-sample index of the mean of both edges.
fn side_edge(d1: &[f32], d2: &[f32], start: usize, dir: isize, reach1: usize, reach2: usize) -> Option<f64> {
    let n = d1.len() as isize;
    let inside = |i: isize| i > 0 && i < n - 1;
    // First-derivative edge: steepest fall of opacity going outwards.
    let sgn = -(dir as f32);
    let (mut best, mut best_i) = (0f32, None);
    let mut i = start as isize;
    for _ in 0..=reach1 {
        if !inside(i) {
            break;
        }
        let s = sgn * d1[i as usize];
        if s > best {
            best = s;
            best_i = Some(i as usize);
        }
        i += dir;
    }
    let e1i = best_i?;
    // Parabolic refinement is invariant to the sign of the signal.
    let e1 = parabolic(d1, e1i);
    // Second-derivative edge: largest convexity just outside the first-derivative edge.
    // The nearest local maximum outward that reaches half the largest one in reach (noise far
    // out must not pull the edge outwards).
    let at = |k: usize| e1i as isize + dir * k as isize;
    let len = (0..=reach2).take_while(|&k| inside(at(k))).count();
    let val = |k: usize| d2[at(k) as usize];
    let top = (0..len).map(val).fold(0f32, f32::max);
    let best_j = (0..len).find(|&k| {
        let v = val(k);
        let left = if k > 0 { val(k - 1) } else { f32::MIN };
        let right = if k + 1 < len { val(k + 1) } else { f32::MIN };
        v > 0.0 && v >= 0.5 * top && v >= left && v >= right
    });
    let e2 = match best_j {
        Some(k) => parabolic(d2, at(k) as usize),
        None => e1,
    };
    Some(0.5 * (e1 + e2))
}

/// Measure the lumen across the centerline at `p` with unit direction of travel `dir`
/// (`(d_row, d_col)`), searching up to `radius_hint_px`-scaled half-length.
pub fn measure_cross_section(
    img: &ArrayView2<f32>,
    p: Point,
    dir: (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
) -> CrossSection {
    measure(img, p, dir, radius_hint_px, opts, false, &mut Scratch::default())
}

/// Like [`measure_cross_section`] but takes the outermost edges of the object (for hollow
/// objects such as an empty catheter).
pub fn measure_outer(
    img: &ArrayView2<f32>,
    p: Point,
    dir: (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
) -> CrossSection {
    measure(img, p, dir, radius_hint_px, opts, true, &mut Scratch::default())
}

/// Buffers reused across the cross-sections of one branch (no allocation per sample).
#[derive(Default)]
struct Scratch {
    raw: Vec<f32>,
    cnt: Vec<u32>,
    o: Vec<f32>,
    smooth: Vec<f32>,
    os: Vec<f32>,
    d1: Vec<f32>,
    d2: Vec<f32>,
    tmp: Vec<f32>,
    pad: Vec<f32>,
    kernel: Kernel,
}

/// A normalised Gaussian kernel, rebuilt only when sigma changes.
#[derive(Default)]
struct Kernel {
    weights: Vec<f32>,
    sigma: f32,
}

/// Gaussian smoothing of `x` into `out` with `sigma` in samples, edges replicated (the same
/// filter as `vesselkit_filters::smooth_1d`, with the kernel cached and the signal padded so the
/// inner loop has no bounds clamping).
fn smooth_into(x: &[f32], sigma: f32, kernel: &mut Kernel, pad: &mut Vec<f32>, out: &mut Vec<f32>) {
    let n = x.len();
    out.clear();
    if !(sigma > 0.0) || n == 0 {
        out.extend_from_slice(x);
        return;
    }
    if kernel.sigma != sigma || kernel.weights.is_empty() {
        let r = (3.0 * sigma).ceil() as isize;
        kernel.weights.clear();
        kernel
            .weights
            .extend((-r..=r).map(|k| (-0.5 * (k * k) as f32 / (sigma * sigma)).exp()));
        let sw: f32 = kernel.weights.iter().sum();
        kernel.weights.iter_mut().for_each(|w| *w /= sw);
        kernel.sigma = sigma;
    }
    let k = &kernel.weights;
    let r = k.len() / 2;
    pad.clear();
    pad.extend(std::iter::repeat_n(x[0], r));
    pad.extend_from_slice(x);
    pad.extend(std::iter::repeat_n(x[n - 1], r));
    out.extend((0..n).map(|i| pad[i..i + k.len()].iter().zip(k).map(|(a, b)| a * b).sum::<f32>()));
}

/// Bilinear samples of `img` along `count` points `start + k * step` (k = 0..count), added into
/// `acc` with `cnt` counting the samples inside the image. When both ends of the segment are
/// inside, every point is, and the per-sample bounds test is skipped.
fn sample_line(img: &ArrayView2<f32>, start: (f64, f64), step: (f64, f64), acc: &mut [f32], cnt: &mut [u32]) {
    let (rows, cols) = img.dim();
    let count = acc.len();
    let last = (
        start.0 + (count.saturating_sub(1)) as f64 * step.0,
        start.1 + (count.saturating_sub(1)) as f64 * step.1,
    );
    let inside = |r: f64, c: f64| r >= 0.0 && c >= 0.0 && r <= (rows - 1) as f64 && c <= (cols - 1) as f64;
    if rows >= 2
        && cols >= 2
        && inside(start.0, start.1)
        && inside(last.0, last.1)
        && let Some(s) = img.as_slice()
    {
        for (k, (a, c)) in acc.iter_mut().zip(cnt.iter_mut()).enumerate() {
            let (row, col) = (start.0 + k as f64 * step.0, start.1 + k as f64 * step.1);
            let r0 = (row as usize).min(rows - 2);
            let c0 = (col as usize).min(cols - 2);
            let fr = (row - r0 as f64) as f32;
            let fc = (col - c0 as f64) as f32;
            let i = r0 * cols + c0;
            let top = s[i] + (s[i + 1] - s[i]) * fc;
            let bot = s[i + cols] + (s[i + cols + 1] - s[i + cols]) * fc;
            *a += top + (bot - top) * fr;
            *c += 1;
        }
        return;
    }
    for (k, (a, c)) in acc.iter_mut().zip(cnt.iter_mut()).enumerate() {
        if let Some(v) = bilinear(img, start.0 + k as f64 * step.0, start.1 + k as f64 * step.1) {
            *a += v;
            *c += 1;
        }
    }
}

fn measure(
    img: &ArrayView2<f32>,
    p: Point,
    dir: (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
    outer: bool,
    sc: &mut Scratch,
) -> CrossSection {
    // Left normal: +90 deg from the direction of travel in (row, col) display coordinates.
    let nrm = (-dir.1, dir.0);
    let half = opts.half_length_factor * radius_hint_px.max(1.0) + opts.half_length_margin_px;
    let m = (half / opts.sample_px).ceil() as isize;
    let n = (2 * m + 1) as usize;
    // Average parallel profiles over +- along_average_px along the vessel (noise).
    let na = opts.along_average_px.round() as isize;
    sc.raw.clear();
    sc.raw.resize(n, 0.0);
    sc.cnt.clear();
    sc.cnt.resize(n, 0);
    let step = (opts.sample_px * nrm.0, opts.sample_px * nrm.1);
    for a in -na..=na {
        let (pr, pc) = (p.row + a as f64 * dir.0, p.col + a as f64 * dir.1);
        let start = (pr - m as f64 * step.0, pc - m as f64 * step.1);
        sample_line(img, start, step, &mut sc.raw, &mut sc.cnt);
    }
    let mut clipped = false;
    for (v, &c) in sc.raw.iter_mut().zip(&sc.cnt) {
        if c > 0 {
            *v /= c as f32;
        } else {
            clipped = true;
            *v = f32::NAN;
        }
    }
    if clipped {
        // Replicate the nearest valid sample so the filters see a continuous signal.
        let raw = &mut sc.raw;
        let Some(first) = raw.iter().position(|v| v.is_finite()) else {
            return CrossSection::failed(true);
        };
        let last = raw.iter().rposition(|v| v.is_finite()).unwrap_or(first);
        for i in 0..n {
            if i < first {
                raw[i] = raw[first];
            } else if i > last {
                raw[i] = raw[last];
            } else if !raw[i].is_finite() {
                raw[i] = raw[i - 1];
            }
        }
    }
    let sign = match opts.polarity {
        Polarity::DarkOnBright => -1.0f32,
        Polarity::BrightOnDark => 1.0,
    };
    sc.o.clear();
    sc.o.extend(sc.raw.iter().map(|v| sign * v));
    // Wider vessels tolerate (and noise favours) a wider derivative filter.
    let sigma_d = opts
        .derivative_sigma_px
        .max(opts.derivative_sigma_per_radius * radius_hint_px)
        .min(1.0);
    let sig = (sigma_d / opts.sample_px) as f32;
    let sig_os = sig.max((0.5 / opts.sample_px) as f32);
    // Derivatives of the signal smoothed at `sig`; the level signal at `sig_os` (often equal).
    smooth_into(&sc.o, sig, &mut sc.kernel, &mut sc.pad, &mut sc.smooth);
    if sig_os == sig {
        sc.os.clear();
        sc.os.extend_from_slice(&sc.smooth);
    } else {
        smooth_into(&sc.o, sig_os, &mut sc.kernel, &mut sc.pad, &mut sc.os);
    }
    sc.d1.clear();
    sc.d1.resize(n, 0.0);
    sc.d2.clear();
    sc.d2.resize(n, 0.0);
    for i in 1..n.saturating_sub(1) {
        let s = &sc.smooth;
        sc.d1[i] = 0.5 * (s[i + 1] - s[i - 1]);
        sc.d2[i] = s[i + 1] - 2.0 * s[i] + s[i - 1];
    }
    let (os, d1, d2) = (&sc.os, &sc.d1, &sc.d2);
    // Peak opacity near the centre (within half the radius hint + 1 px).
    let c = m as usize;
    let w = ((0.5 * radius_hint_px + 1.0) / opts.sample_px).ceil() as usize;
    let (lo, hi) = (c.saturating_sub(w), (c + w).min(n - 1));
    let peak = (lo..=hi).max_by(|&a, &b| os[a].total_cmp(&os[b])).unwrap_or(c);
    // Rough background: lower quartile of the window; the half-maximum region around the peak,
    // bridging lucent bands narrower than half the radius (webs), bounds the edge search.
    sc.tmp.clear();
    sc.tmp.extend_from_slice(os);
    let (_, q1, _) = sc.tmp.select_nth_unstable_by(n / 4, f32::total_cmp);
    let bg0 = *q1;
    let half_level = bg0 + 0.5 * (os[peak] - bg0);
    let gap_max = if outer {
        n
    } else {
        ((0.5 * radius_hint_px).max(2.0) / opts.sample_px) as usize
    };
    let extend = |dir: isize| -> usize {
        let (mut i, mut last_above, mut gap) = (peak as isize, peak, 0usize);
        while i + dir >= 0 && ((i + dir) as usize) < n {
            i += dir;
            if os[i as usize] >= half_level {
                last_above = i as usize;
                gap = 0;
            } else {
                gap += 1;
                if gap > gap_max {
                    break;
                }
            }
        }
        last_above
    };
    let (start_l, start_r) = (extend(1), extend(-1));
    let step_back = (1.0 / opts.sample_px) as usize;
    let reach1 = ((0.3 * radius_hint_px + 2.0) / opts.sample_px) as usize + step_back;
    let reach2 = ((3.0 * sigma_d + 2.5) / opts.sample_px) as usize;
    let (Some(el), Some(er)) = (
        side_edge(d1, d2, start_l.saturating_sub(step_back), 1, reach1, reach2),
        side_edge(d1, d2, (start_r + step_back).min(n - 1), -1, reach1, reach2),
    ) else {
        return CrossSection::failed(clipped);
    };
    let left_px = (el - c as f64) * opts.sample_px;
    let right_px = (c as f64 - er) * opts.sample_px;
    if !(left_px > 0.0 && right_px > 0.0) {
        return CrossSection::failed(clipped);
    }
    // Background: median opacity beyond the edges by at least 2 px.
    let gap = (2.0 / opts.sample_px).ceil() as usize;
    let (eli, eri) = (el.round() as usize, er.round() as usize);
    sc.tmp.clear();
    sc.tmp
        .extend((0..n).filter(|&i| i + gap <= eri || i >= eli + gap).map(|i| os[i]));
    let outside = &mut sc.tmp;
    if outside.len() < 4 {
        return CrossSection::failed(clipped);
    }
    let mid = outside.len() / 2;
    let (_, med, above) = outside.select_nth_unstable_by(mid, f32::total_cmp);
    let bg = *med;
    let out_max = above.iter().copied().fold(bg, f32::max);
    let peak_contrast = os[peak] - bg;
    if peak_contrast <= 0.0 {
        return CrossSection::failed(clipped);
    }
    // Another vessel in the window: strong opacity outside the edges.
    let overlap = out_max - bg > opts.overlap_fraction as f32 * peak_contrast;
    // Channels: significant valleys between opacity peaks inside the lumen.
    let inner_lo = eri.min(n - 1);
    let inner_hi = eli.min(n - 1);
    let mut channels = 1u8;
    let dip = opts.channel_dip_fraction as f32 * peak_contrast;
    // Walk the local maxima left to right, keeping the higher one of a merged pair.
    let mut prev: Option<usize> = None;
    for i in inner_lo + 1..inner_hi {
        if !(os[i] > os[i - 1] && os[i] >= os[i + 1]) {
            continue;
        }
        let Some(a) = prev else {
            prev = Some(i);
            continue;
        };
        let valley = (a..=i).map(|k| os[k]).fold(f32::INFINITY, f32::min);
        if os[a].min(os[i]) - valley >= dip {
            channels = channels.saturating_add(1);
            prev = Some(i);
        } else if os[i] >= os[a] {
            prev = Some(i);
        }
    }
    // Densitometry: integrated attenuation across the profile vs a round lumen of the measured
    // diameter with the same peak attenuation. Log (Beer-Lambert) when intensities are
    // positive and vessels dark, else linear contrast.
    let bg_i = sign * bg; // background intensity
    let use_log = matches!(opts.polarity, Polarity::DarkOnBright) && bg_i > 0.0 && sc.raw.iter().all(|&v| v > 0.0);
    let atten = |i: usize| -> f64 {
        if use_log {
            ((bg_i as f64) / (sign * os[i]) as f64).ln().max(0.0)
        } else {
            ((os[i] - bg) as f64).max(0.0)
        }
    };
    let span_lo = eri.saturating_sub(gap);
    let span_hi = (eli + gap).min(n - 1);
    let integral: f64 = (span_lo..=span_hi).map(atten).sum::<f64>() * opts.sample_px;
    let a_max = atten(peak);
    let d = left_px + right_px;
    let density_ratio = if a_max > 0.0 {
        integral / (a_max * std::f64::consts::PI * d / 4.0)
    } else {
        f64::NAN
    };
    CrossSection {
        left_px,
        right_px,
        channels,
        density_ratio,
        clean: !overlap,
        clipped,
    }
}

/// Unit tangents of a polyline by central differences over +- `window_px` of arc.
pub fn tangents(points: &[Point], window_px: f64) -> Vec<(f64, f64)> {
    let n = points.len();
    if n < 2 {
        return vec![(0.0, 1.0); n];
    }
    let step = points[0].dist(points[1]).max(1e-9);
    let k = ((window_px / step).round() as usize).max(1);
    (0..n)
        .map(|i| {
            let (a, b) = (points[i.saturating_sub(k)], points[(i + k).min(n - 1)]);
            let (dr, dc) = (b.row - a.row, b.col - a.col);
            let l = dr.hypot(dc);
            if l > 0.0 { (dr / l, dc / l) } else { (0.0, 1.0) }
        })
        .collect()
}

/// Where along the centerline the edges are unreliable for reasons of topology.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JunctionZones {
    /// Radius (px) of the junction at the start / end of the branch; 0 = free end.
    pub start_radius_px: f64,
    pub end_radius_px: f64,
}

/// Diameter profile along a centerline (points proximal -> distal, any spacing; resample to
/// <= 0.5 px first for QCA). `radius_hint_px` sizes the search window (e.g. the mask's distance
/// transform or `sqrt(2) * sigma` of the best vesselness scale); one value per point.
pub fn diameter_profile(
    img: ArrayView2<f32>,
    points: &[Point],
    radius_hint_px: &[f32],
    mm_per_px: f64,
    zones: JunctionZones,
    opts: &ProfileOptions,
) -> Result<Vec<ProfileSample>> {
    check_image("image", &img)?;
    diameter_profile_checked(img, points, radius_hint_px, mm_per_px, zones, opts)
}

/// [`diameter_profile`] on an image already checked for emptiness and non-finite values (the
/// tree builder checks it once, not once per branch).
pub(crate) fn diameter_profile_checked(
    img: ArrayView2<f32>,
    points: &[Point],
    radius_hint_px: &[f32],
    mm_per_px: f64,
    zones: JunctionZones,
    opts: &ProfileOptions,
) -> Result<Vec<ProfileSample>> {
    check_mm_per_px(mm_per_px)?;
    opts.validate()?;
    if radius_hint_px.len() != points.len() {
        return Err(AngioError::invalid(
            "radius_hint_px",
            format!("{} radii for {} points", radius_hint_px.len(), points.len()),
        ));
    }
    if let Some(p) = points.iter().find(|p| !(p.row.is_finite() && p.col.is_finite())) {
        return Err(AngioError::invalid(
            "points",
            format!("non-finite point ({}, {})", p.row, p.col),
        ));
    }
    let tang = tangents(points, opts.tangent_window_px);
    let arc = vesselkit_core::Polyline::new(points.to_vec()).arc_lengths_px();
    let total = arc.last().copied().unwrap_or(0.0);
    // Cross-sections are independent: spread them over the pool (one scratch per job), so a
    // long trunk does not serialise the tree.
    use rayon::prelude::*;
    let out: Vec<ProfileSample> = points
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .map_init(Scratch::default, |sc, (i, &p)| {
            let hint = radius_hint_px[i].max(1.0) as f64;
            let x = measure(&img, p, tang[i], hint, opts, false, sc);
            let near_start =
                zones.start_radius_px > 0.0 && arc[i] < opts.junction_factor * (zones.start_radius_px + hint);
            let near_end =
                zones.end_radius_px > 0.0 && total - arc[i] < opts.junction_factor * (zones.end_radius_px + hint);
            let ok = x.left_px.is_finite() && x.right_px.is_finite();
            let lopsided = x.left_px.max(x.right_px) > opts.max_edge_asymmetry * x.left_px.min(x.right_px);
            ProfileSample {
                point: p,
                arc_mm: arc[i] * mm_per_px,
                diameter_mm: if ok { x.diameter_px() * mm_per_px } else { f64::NAN },
                left_mm: x.left_px * mm_per_px,
                right_mm: x.right_px * mm_per_px,
                channels: x.channels,
                density_ratio: x.density_ratio,
                reliable: ok && x.clean && !x.clipped && !lopsided && !near_start && !near_end,
            }
        })
        .collect();
    Ok(out)
}
