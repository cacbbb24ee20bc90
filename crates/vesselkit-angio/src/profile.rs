//! Diameter profiles: intensity profiles perpendicular to the centerline (bilinear sampling),
//! sub-pixel lumen edges at the mean of the first- and second-derivative edge positions
//! (domain.md section 4), channel count, densitometric ratio and reliability.

use crate::error::{AngioError, Result, check_image, check_mm_per_px};
use ndarray::ArrayView2;
use vesselkit_core::{Point, ProfileSample};
use vesselkit_filters::{Polarity, bilinear, derivatives_1d, smooth_1d};

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
    /// Profiles are averaged over +- this many px along the vessel (0.5 px apart) against noise.
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
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            polarity: Polarity::DarkOnBright,
            sample_px: 0.25,
            derivative_sigma_px: 0.5,
            derivative_sigma_per_radius: 0.1,
            half_length_factor: 2.5,
            half_length_margin_px: 4.0,
            tangent_window_px: 2.0,
            along_average_px: 1.0,
            channel_dip_fraction: 0.2,
            junction_factor: 1.0,
            overlap_fraction: 0.5,
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
    let (mut best, mut best_i) = (0f32, None);
    let mut i = start as isize;
    for _ in 0..=reach1 {
        if !inside(i) {
            break;
        }
        let s = -(dir as f32) * d1[i as usize];
        if s > best {
            best = s;
            best_i = Some(i as usize);
        }
        i += dir;
    }
    let e1i = best_i?;
    let neg: Vec<f32>;
    let e1 = if dir > 0 {
        neg = d1.iter().map(|v| -v).collect();
        parabolic(&neg, e1i)
    } else {
        parabolic(d1, e1i)
    };
    // Second-derivative edge: largest convexity just outside the first-derivative edge.
    // The nearest local maximum outward that reaches half the largest one in reach (noise far
    // out must not pull the edge outwards).
    let mut vals: Vec<(usize, f32)> = Vec::with_capacity(reach2 + 1);
    let mut j = e1i as isize;
    for _ in 0..=reach2 {
        if !inside(j) {
            break;
        }
        vals.push((j as usize, d2[j as usize]));
        j += dir;
    }
    let top = vals.iter().map(|v| v.1).fold(0f32, f32::max);
    let mut best_j = None;
    for k in 0..vals.len() {
        let v = vals[k].1;
        let left = if k > 0 { vals[k - 1].1 } else { f32::MIN };
        let right = if k + 1 < vals.len() { vals[k + 1].1 } else { f32::MIN };
        if v > 0.0 && v >= 0.5 * top && v >= left && v >= right {
            best_j = Some(vals[k].0);
            break;
        }
    }
    let e2 = match best_j {
        Some(j) => parabolic(d2, j),
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
    measure(img, p, dir, radius_hint_px, opts, false)
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
    measure(img, p, dir, radius_hint_px, opts, true)
}

fn measure(
    img: &ArrayView2<f32>,
    p: Point,
    dir: (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
    outer: bool,
) -> CrossSection {
    // Left normal: +90 deg from the direction of travel in (row, col) display coordinates.
    let nrm = (-dir.1, dir.0);
    let half = opts.half_length_factor * radius_hint_px.max(1.0) + opts.half_length_margin_px;
    let m = (half / opts.sample_px).ceil() as isize;
    let n = (2 * m + 1) as usize;
    // Average parallel profiles over +- along_average_px along the vessel (noise).
    let na = (opts.along_average_px / 0.5).round() as isize;
    let mut raw = vec![0f32; n];
    let mut cnt = vec![0u32; n];
    for a in -na..=na {
        let (pr, pc) = (p.row + 0.5 * a as f64 * dir.0, p.col + 0.5 * a as f64 * dir.1);
        for (i, k) in (-m..=m).enumerate() {
            let t = k as f64 * opts.sample_px;
            if let Some(v) = bilinear(img, pr + t * nrm.0, pc + t * nrm.1) {
                raw[i] += v;
                cnt[i] += 1;
            }
        }
    }
    let mut clipped = false;
    for i in 0..n {
        if cnt[i] > 0 {
            raw[i] /= cnt[i] as f32;
        } else {
            clipped = true;
            raw[i] = f32::NAN;
        }
    }
    if clipped {
        // Replicate the nearest valid sample so the filters see a continuous signal.
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
    let o: Vec<f32> = raw.iter().map(|v| sign * v).collect();
    // Wider vessels tolerate (and noise favours) a wider derivative filter.
    let sigma_d = opts
        .derivative_sigma_px
        .max(opts.derivative_sigma_per_radius * radius_hint_px)
        .min(1.0);
    let sig = (sigma_d / opts.sample_px) as f32;
    let (d1, d2) = derivatives_1d(&o, sig);
    let os = smooth_1d(&o, sig.max((0.5 / opts.sample_px) as f32));
    // Peak opacity near the centre (within half the radius hint + 1 px).
    let c = m as usize;
    let w = ((0.5 * radius_hint_px + 1.0) / opts.sample_px).ceil() as usize;
    let (lo, hi) = (c.saturating_sub(w), (c + w).min(n - 1));
    let peak = (lo..=hi).max_by(|&a, &b| os[a].total_cmp(&os[b])).unwrap_or(c);
    // Rough background: lower quartile of the window; the half-maximum region around the peak,
    // bridging lucent bands narrower than half the radius (webs), bounds the edge search.
    let mut sorted = os.clone();
    sorted.sort_by(f32::total_cmp);
    let bg0 = sorted[n / 4];
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
        side_edge(&d1, &d2, start_l.saturating_sub(step_back), 1, reach1, reach2),
        side_edge(&d1, &d2, (start_r + step_back).min(n - 1), -1, reach1, reach2),
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
    let mut outside: Vec<f32> = (0..n)
        .filter(|&i| i + gap <= eri || i >= eli + gap)
        .map(|i| os[i])
        .collect();
    if outside.len() < 4 {
        return CrossSection::failed(clipped);
    }
    outside.sort_by(f32::total_cmp);
    let bg = outside[outside.len() / 2];
    let peak_contrast = os[peak] - bg;
    if peak_contrast <= 0.0 {
        return CrossSection::failed(clipped);
    }
    // Another vessel in the window: strong opacity outside the edges.
    let overlap = outside[outside.len() - 1] - bg > opts.overlap_fraction as f32 * peak_contrast;
    // Channels: significant valleys between opacity peaks inside the lumen.
    let inner_lo = eri.min(n - 1);
    let inner_hi = eli.min(n - 1);
    let mut peaks: Vec<usize> = Vec::new();
    for i in inner_lo + 1..inner_hi {
        if os[i] > os[i - 1] && os[i] >= os[i + 1] {
            peaks.push(i);
        }
    }
    let mut channels = 1u8;
    let dip = opts.channel_dip_fraction as f32 * peak_contrast;
    let mut k = 0;
    while k + 1 < peaks.len() {
        let (a, b) = (peaks[k], peaks[k + 1]);
        let valley = (a..=b).map(|i| os[i]).fold(f32::INFINITY, f32::min);
        if os[a].min(os[b]) - valley >= dip {
            channels = channels.saturating_add(1);
            k += 1;
        } else {
            // Merge: keep the higher peak as the left one of the next comparison.
            if os[b] < os[a] {
                peaks[k + 1] = a;
            }
            k += 1;
        }
    }
    // Densitometry: integrated attenuation across the profile vs a round lumen of the measured
    // diameter with the same peak attenuation. Log (Beer-Lambert) when intensities are
    // positive and vessels dark, else linear contrast.
    let bg_i = sign * bg; // background intensity
    let use_log = matches!(opts.polarity, Polarity::DarkOnBright) && bg_i > 0.0 && raw.iter().all(|&v| v > 0.0);
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
    let mut out = Vec::with_capacity(points.len());
    for (i, &p) in points.iter().enumerate() {
        let hint = radius_hint_px[i].max(1.0) as f64;
        let x = measure_cross_section(&img, p, tang[i], hint, opts);
        let near_start = zones.start_radius_px > 0.0 && arc[i] < opts.junction_factor * (zones.start_radius_px + hint);
        let near_end =
            zones.end_radius_px > 0.0 && total - arc[i] < opts.junction_factor * (zones.end_radius_px + hint);
        let ok = x.left_px.is_finite() && x.right_px.is_finite();
        out.push(ProfileSample {
            point: p,
            arc_mm: arc[i] * mm_per_px,
            diameter_mm: if ok { x.diameter_px() * mm_per_px } else { f64::NAN },
            left_mm: x.left_px * mm_per_px,
            right_mm: x.right_px * mm_per_px,
            channels: x.channels,
            density_ratio: x.density_ratio,
            reliable: ok && x.clean && !x.clipped && !near_start && !near_end,
        });
    }
    Ok(out)
}
