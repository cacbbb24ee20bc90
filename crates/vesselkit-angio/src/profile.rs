//! Diameter profiles: intensity profiles perpendicular to the centerline (bilinear sampling),
//! sub-pixel lumen edges at the mean of the first- and second-derivative edge positions
//! (domain.md section 4), channel count, densitometric ratio and reliability.

use crate::error::{AngioError, Result, check_image, check_mm_per_px};
use crate::lumen_fit::fit_lumen;
use ndarray::ArrayView2;
use rayon::prelude::*;
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
    /// Outside opacity counts toward the overlap flag only up to the first valley where the
    /// profile falls to within this fraction of the lumen contrast above background: a
    /// neighbour separated from the lumen by background does not disturb its edges.
    pub overlap_valley_fraction: f64,
    /// Samples where one edge lies more than this many times farther from the centerline than
    /// the other are unreliable: the skeleton runs near the lumen centre, so a lopsided pair
    /// means one edge followed a background step or a neighbouring structure.
    pub max_edge_asymmetry: f64,
    /// Samples whose diameter measured on the frame divided by its morphological background
    /// differs from the one measured on the frame itself by more than this fraction (or by
    /// more than 2 px) are unreliable: a dense structure's border (the diaphragm, the heart)
    /// runs under the vessel there and one edge followed it. Applied by the tree builder
    /// ([`crate::build_tree`]) on positive frames of dark vessels; 0 switches it off.
    pub background_check: f64,
    /// Each edge's distance from the centerline is replaced by a local quadratic fit over at
    /// most +- this many px of arc (0 = raw edges), the window chosen per sample by the
    /// intersection-of-confidence-intervals rule: wide in healthy lumen (edge noise is nearly
    /// independent beyond 2 px of arc and averages out), narrow at a narrowing's minimum.
    pub edge_smoothing_px: f64,
    /// Refine each cross-section's edges by a least-squares fit of a round lumen's blurred
    /// projection over a linear background to the whole profile (log attenuation where the
    /// intensities allow); the derivative edges stand where the fit fails. Averages the noise
    /// that moves two derivative extrema.
    pub fit_lumen: bool,
    /// Gaussian sigma of the imaging chain's blur that the lumen fit models, px. None: read
    /// from the image ([`estimate_blur_sigma_px`] over its widest cross-sections), else
    /// [`DEFAULT_BLUR_SIGMA_PX`].
    pub blur_sigma_px: Option<f64>,
}

/// Whether the background removed by flattening (`flat / img`) departs from a straight line
/// across the profile window at `p` by more than [`BACKGROUND_BEND`] in log terms. Where it
/// does not, both frames give the same edges (the derivative edges are scale-free and the
/// lumen fit takes in a linear background), so the second measurement is skipped.
fn background_bends(
    img: &ArrayView2<f32>,
    flat: &ArrayView2<f32>,
    p: Point,
    dir: (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
) -> bool {
    let nrm = (-dir.1, dir.0);
    let half = opts.half_length_px(radius_hint_px);
    let mut logs = [0f64; 5];
    for (k, v) in logs.iter_mut().enumerate() {
        let t = half * (k as f64 - 2.0) / 2.0;
        let (r, c) = (p.row + t * nrm.0, p.col + t * nrm.1);
        match (
            vesselkit_filters::bilinear(img, r, c),
            vesselkit_filters::bilinear(flat, r, c),
        ) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => *v = (b as f64 / a as f64).ln(),
            // Off the image or not positive: measure both.
            _ => return true,
        }
    }
    // Residuals from the least-squares line through the five equally spaced values.
    let mean = logs.iter().sum::<f64>() / 5.0;
    let slope = (0..5).map(|k| (k as f64 - 2.0) * logs[k]).sum::<f64>() / 10.0;
    (0..5).any(|k| (logs[k] - mean - slope * (k as f64 - 2.0)).abs() > BACKGROUND_BEND)
}

/// See [`background_bends`]: 0.3 % of the intensity (on the 40 phantoms of seeds 1-40, 1 %
/// let through a third more gross diameter errors).
const BACKGROUND_BEND: f64 = 0.003;

/// [`ProfileOptions::background_check`] measures every `BACKGROUND_CHECK_STRIDE`-th station
/// twice and flags its neighbours with it (a background step spans several stations).
const BACKGROUND_CHECK_STRIDE: usize = 2;

/// Smallest diameter difference (px) between the frame and its flattened copy that
/// [`ProfileOptions::background_check`] counts (a lumen fit's noise on narrow vessels).
const BACKGROUND_CHECK_MIN_PX: f64 = 2.0;

/// Blur assumed where the image does not show it (too few wide vessels), px: a 0.35 mm FWHM
/// focal spot and detector at 0.2 mm/px.
pub const DEFAULT_BLUR_SIGMA_PX: f64 = 0.75;

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
            overlap_valley_fraction: 0.25,
            max_edge_asymmetry: 2.0,
            background_check: 0.3,
            edge_smoothing_px: 3.0,
            fit_lumen: true,
            blur_sigma_px: None,
        }
    }
}

impl ProfileOptions {
    /// Half-length (px) of the cross-section measured around a centerline point whose lumen
    /// radius is about `radius_hint_px`.
    fn half_length_px(&self, radius_hint_px: f64) -> f64 {
        self.half_length_factor * radius_hint_px.max(1.0) + self.half_length_margin_px
    }

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
            ("overlap_valley_fraction", self.overlap_valley_fraction, 0.0),
            ("max_edge_asymmetry", self.max_edge_asymmetry, 1.0),
            ("background_check", self.background_check, 0.0),
            ("edge_smoothing_px", self.edge_smoothing_px, 0.0),
            ("blur_sigma_px", self.blur_sigma_px.unwrap_or(0.0), 0.0),
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
    /// The derivative edges alone (before the lumen fit; equal to the above without it), px.
    pub edge_left_px: f64,
    pub edge_right_px: f64,
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
            edge_left_px: f64::NAN,
            edge_right_px: f64::NAN,
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
    /// Samples and starting lumen (centre, radius px) of the last lumen fit, if it got that far.
    fit_x: Vec<f64>,
    fit_y: Vec<f64>,
    fit_start: Option<(f64, f64)>,
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
    sc.fit_start = None;
    // Left normal: +90 deg from the direction of travel in (row, col) display coordinates.
    let nrm = (-dir.1, dir.0);
    let half = opts.half_length_px(radius_hint_px);
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
    let mut left_px = (el - c as f64) * opts.sample_px;
    let mut right_px = (c as f64 - er) * opts.sample_px;
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
    let (_, med, _) = outside.select_nth_unstable_by(mid, f32::total_cmp);
    let bg = *med;
    let peak_contrast = os[peak] - bg;
    if peak_contrast <= 0.0 {
        return CrossSection::failed(clipped);
    }
    let (edge_left_px, edge_right_px) = (left_px, right_px);
    // Log (Beer-Lambert) attenuation for the fit and densitometry when vessels are dark on
    // positive intensities.
    let log_ok = matches!(opts.polarity, Polarity::DarkOnBright) && sc.raw.iter().all(|&v| v > 0.0);
    if opts.fit_lumen && !outer && !clipped {
        // The fit's background stops at the valley before a neighbouring vessel on each side.
        let rise = 0.5 * peak_contrast;
        let valley_at = |idx: &mut dyn Iterator<Item = usize>| -> Option<usize> {
            let (mut lo, mut at) = (f32::INFINITY, 0);
            for i in idx {
                if os[i] < lo {
                    (lo, at) = (os[i], i);
                } else if os[i] > lo + rise {
                    return Some(at);
                }
            }
            None
        };
        let outer_l = valley_at(&mut (eli.min(n - 1)..n)).unwrap_or(n - 1);
        let outer_r = valley_at(&mut (0..=eri.min(n - 1)).rev()).unwrap_or(0);
        let span = (
            (outer_r as f64 - c as f64) * opts.sample_px,
            (outer_l as f64 - c as f64) * opts.sample_px,
        );
        if let Some((l, r)) = fit_edges(
            (&sc.raw, log_ok),
            (&mut sc.fit_x, &mut sc.fit_y, &mut sc.fit_start),
            c,
            (left_px, right_px),
            span,
            radius_hint_px,
            opts,
        ) {
            left_px = l;
            right_px = r;
        }
    }
    // Another vessel touching the lumen: strong opacity outside the edges before the profile
    // has come back down to background on that side.
    let valley = bg + opts.overlap_valley_fraction as f32 * peak_contrast;
    let touching_max = |idx: &mut dyn Iterator<Item = usize>| -> f32 {
        idx.map(|i| os[i]).take_while(|&v| v > valley).fold(bg, f32::max)
    };
    let out_max =
        touching_max(&mut ((eli + gap).min(n)..n)).max(touching_max(&mut (0..(eri + 1).saturating_sub(gap)).rev()));
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
    // positive and vessels dark, else linear contrast. The diameter is the derivative edges'
    // (the web threshold on this ratio was set on it; with the fitted one 2 fewer lesions are
    // found and typed on the 120 development phantoms).
    let bg_i = sign * bg; // background intensity
    let use_log = log_ok && bg_i > 0.0;
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
    let d = edge_left_px + edge_right_px;
    let density_ratio = if a_max > 0.0 {
        integral / (a_max * std::f64::consts::PI * d / 4.0)
    } else {
        f64::NAN
    };
    CrossSection {
        left_px,
        right_px,
        edge_left_px,
        edge_right_px,
        channels,
        density_ratio,
        clean: !overlap,
        clipped,
    }
}

/// Edges (left, right, px from the centre sample `c`) of the lumen model fitted to the raw
/// profile (as log attenuation when `log`) within one radius and a background margin of the
/// derivative edges.
fn fit_edges(
    (raw, log): (&[f32], bool),
    (xs, ys, start): (&mut Vec<f64>, &mut Vec<f64>, &mut Option<(f64, f64)>),
    c: usize,
    (left_px, right_px): (f64, f64),
    (span_lo, span_hi): (f64, f64),
    radius_hint_px: f64,
    opts: &ProfileOptions,
) -> Option<(f64, f64)> {
    let (c0, r0) = (0.5 * (left_px - right_px), 0.5 * (left_px + right_px));
    // Background on both sides: past the blur and at least half a radius (3 px at least),
    // within the span clear of other vessels, of which 2 px at least on each side.
    let sigma = opts.blur_sigma_px.unwrap_or(DEFAULT_BLUR_SIGMA_PX);
    let blur = 2.0 * sigma;
    let reach = r0 + (0.5 * r0.max(radius_hint_px)).max(3.0) + blur;
    let (lo, hi) = ((c0 - reach).max(span_lo), (c0 + reach).min(span_hi));
    if lo > -right_px - blur - 2.0 || hi < left_px + blur + 2.0 {
        return None;
    }
    xs.clear();
    ys.clear();
    // Samples closer than a pixel share their bilinear neighbours: wider lumens are fitted on
    // every other one (half the time, the same precision).
    let stride = if r0 >= 4.0 {
        ((1.0 / opts.sample_px).floor() as usize).max(1)
    } else {
        1
    };
    for (i, &v) in raw.iter().enumerate().skip(c % stride).step_by(stride) {
        let x = (i as f64 - c as f64) * opts.sample_px;
        if x < lo || x > hi {
            continue;
        }
        // Attenuation adds along the ray (Beer-Lambert): the background is additive in log.
        let y = match opts.polarity {
            Polarity::DarkOnBright if log => -(v as f64).ln(),
            Polarity::DarkOnBright => -(v as f64),
            Polarity::BrightOnDark => v as f64,
        };
        xs.push(x);
        ys.push(y);
    }
    *start = Some((c0, r0));
    let f = fit_lumen(xs, ys, c0, r0, sigma)?;
    let (l, r) = (f.centre_px + f.radius_px, f.radius_px - f.centre_px);
    (l > 0.0 && r > 0.0).then_some((l, r))
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

/// Cross-sections the blur is read from (a few milliseconds of fits per frame).
pub const BLUR_SECTIONS: usize = 150;

/// The blur the lumen fit models along `lines` (centerlines with a radius hint per point):
/// [`estimate_blur_sigma_px`] over up to [`BLUR_SECTIONS`] of their cross-sections, else
/// [`DEFAULT_BLUR_SIGMA_PX`].
pub fn lines_blur_sigma_px(img: ArrayView2<f32>, lines: &[(&[Point], &[f32])], opts: &ProfileOptions) -> Result<f64> {
    Ok(estimate_blur_sigma_px(img, lines, opts, BLUR_SECTIONS)?.unwrap_or(DEFAULT_BLUR_SIGMA_PX))
}

/// Candidate blurs of [`estimate_blur_sigma_px`], Gaussian sigma px.
const BLUR_GRID_PX: [f64; 10] = [0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.25, 1.5, 1.8, 2.2];

/// Blur of the imaging chain (Gaussian sigma, px) read from the image: at each of up to
/// `max_sections` cross-sections of lumens at least 4 px in radius (clean, a few radii from
/// either end of their centerline), the blur whose lumen fit leaves the least residual; the
/// median over them. `lines` are centerlines with one radius hint per point (lines whose
/// lengths differ are skipped). None with fewer than 10 such cross-sections; an error for an
/// empty or non-finite image or invalid options.
pub fn estimate_blur_sigma_px(
    img: ArrayView2<f32>,
    lines: &[(&[Point], &[f32])],
    opts: &ProfileOptions,
    max_sections: usize,
) -> Result<Option<f64>> {
    check_image("image", &img)?;
    opts.validate()?;
    const MIN_RADIUS_PX: f32 = 4.0;
    let mut picks: Vec<(Point, (f64, f64), f64)> = Vec::new();
    for &(points, hints) in lines {
        if points.len() != hints.len() || points.len() < 3 {
            continue;
        }
        let tang = tangents(points, opts.tangent_window_px);
        let arc = vesselkit_core::Polyline::new(points.to_vec()).arc_lengths_px();
        let total = arc.last().copied().unwrap_or(0.0);
        let mut next = 0.0;
        for i in 0..points.len() {
            let h = hints[i];
            let margin = 3.0 * h as f64;
            if h >= MIN_RADIUS_PX && arc[i] >= margin.max(next) && total - arc[i] >= margin {
                picks.push((points[i], tang[i], h as f64));
                // One section per radius of arc: neighbours share most of their pixels.
                next = arc[i] + h as f64;
            }
        }
    }
    if picks.len() > max_sections {
        let step = picks.len() as f64 / max_sections as f64;
        picks = (0..max_sections).map(|k| picks[(k as f64 * step) as usize]).collect();
    }
    let o = ProfileOptions {
        fit_lumen: true,
        ..opts.clone()
    };
    let mut best: Vec<f64> = picks
        .par_iter()
        .map_init(Scratch::default, |sc, &(p, dir, hint)| {
            let x = measure(&img, p, dir, hint, &o, false, sc);
            let (c0, r0) = sc.fit_start?;
            if !x.clean {
                return None;
            }
            let costs: Vec<f64> = BLUR_GRID_PX
                .iter()
                .map(|&b| fit_lumen(&sc.fit_x, &sc.fit_y, c0, r0, b).map_or(f64::INFINITY, |f| f.cost))
                .collect();
            let k = (0..costs.len()).min_by(|&a, &b| costs[a].total_cmp(&costs[b]))?;
            if !costs[k].is_finite() {
                return None;
            }
            if k == 0 || k + 1 == costs.len() || !costs[k - 1].is_finite() || !costs[k + 1].is_finite() {
                return Some(BLUR_GRID_PX[k]);
            }
            // Vertex of the parabola through the minimum and its neighbours.
            let (x0, x1, x2) = (BLUR_GRID_PX[k - 1], BLUR_GRID_PX[k], BLUR_GRID_PX[k + 1]);
            let (y0, y1, y2) = (costs[k - 1], costs[k], costs[k + 1]);
            let num = (x1 - x0).powi(2) * (y1 - y2) - (x1 - x2).powi(2) * (y1 - y0);
            let den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0);
            let v = if den.abs() > 0.0 { x1 - 0.5 * num / den } else { x1 };
            Some(v.clamp(x0, x2))
        })
        .flatten()
        .collect();
    if best.len() < 10 {
        return Ok(None);
    }
    let mid = best.len() / 2;
    let (_, m, _) = best.select_nth_unstable_by(mid, f64::total_cmp);
    Ok(Some(*m))
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
    diameter_profile_checked(img, None, points, radius_hint_px, mm_per_px, zones, opts)
}

/// [`diameter_profile`] on an image already checked for emptiness and non-finite values (the
/// tree builder checks it once, not once per branch). With `flat` (the frame divided by its
/// background, same shape) each cross-section is measured on both, see
/// [`ProfileOptions::background_check`].
pub(crate) fn diameter_profile_checked(
    img: ArrayView2<f32>,
    flat: Option<ArrayView2<f32>>,
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
    let resolved;
    let opts = if opts.fit_lumen && opts.blur_sigma_px.is_none() {
        // Read the blur from this centerline's own wide sections.
        resolved = ProfileOptions {
            blur_sigma_px: Some(lines_blur_sigma_px(img, &[(points, radius_hint_px)], opts)?),
            ..opts.clone()
        };
        &resolved
    } else {
        opts
    };
    let tang = tangents(points, opts.tangent_window_px);
    let arc = vesselkit_core::Polyline::new(points.to_vec()).arc_lengths_px();
    let total = arc.last().copied().unwrap_or(0.0);
    // Cross-sections are independent: spread them over the pool (one scratch per job), so a
    // long trunk does not serialise the tree.
    let check = flat.filter(|f| opts.background_check > 0.0 && f.dim() == img.dim());
    let (raw, stepped): (Vec<CrossSection>, Vec<bool>) = points
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .map_init(Scratch::default, |sc, (i, &p)| {
            let hint = radius_hint_px[i].max(1.0) as f64;
            let x = measure(&img, p, tang[i], hint, opts, false, sc);
            let d = x.diameter_px();
            let stepped = d.is_finite()
                && i % BACKGROUND_CHECK_STRIDE == 0
                && check.is_some_and(|f| {
                    background_bends(&img, &f, p, tang[i], hint, opts) && {
                        let e = measure(&f, p, tang[i], hint, opts, false, sc).diameter_px();
                        !((d - e).abs() <= (opts.background_check * d).max(BACKGROUND_CHECK_MIN_PX))
                    }
                });
            (x, stepped)
        })
        .unzip();
    let left = smooth_edges(
        &arc,
        &raw.iter().map(|x| x.left_px).collect::<Vec<_>>(),
        opts.edge_smoothing_px,
    );
    let right = smooth_edges(
        &arc,
        &raw.iter().map(|x| x.right_px).collect::<Vec<_>>(),
        opts.edge_smoothing_px,
    );
    let stepped_near = |i: usize| {
        let r = BACKGROUND_CHECK_STRIDE - 1;
        stepped[i.saturating_sub(r)..(i + r + 1).min(stepped.len())]
            .iter()
            .any(|&s| s)
    };
    let out: Vec<ProfileSample> = points
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let hint = radius_hint_px[i].max(1.0) as f64;
            let x = CrossSection {
                left_px: left[i],
                right_px: right[i],
                ..raw[i]
            };
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
                reliable: ok && x.clean && !x.clipped && !lopsided && !stepped_near(i) && !near_start && !near_end,
            }
        })
        .collect();
    Ok(out)
}

/// Local quadratic least-squares fit of `y` against `x` over the samples `lo..=hi` within
/// `half` of `x[i]`: the intercept (fitted value at `x[i]`) and its variance factor (variance of
/// the intercept over the variance of one sample). None with fewer than 5 finite samples.
fn quadratic_at(x: &[f64], y: &[f64], i: usize, lo: usize, hi: usize, half: f64) -> Option<(f64, f64)> {
    let mut s = [0f64; 5];
    let mut t = [0f64; 3];
    for k in lo..=hi {
        let v = y[k];
        let u = (x[k] - x[i]) / half;
        if !v.is_finite() || u.abs() > 1.0 + 1e-9 {
            continue;
        }
        let u2 = u * u;
        s[0] += 1.0;
        s[1] += u;
        s[2] += u2;
        s[3] += u2 * u;
        s[4] += u2 * u2;
        t[0] += v;
        t[1] += u * v;
        t[2] += u2 * v;
    }
    if s[0] < 5.0 {
        return None;
    }
    // Intercept by Cramer's rule on the symmetric 3x3 normal equations.
    let det3 = |a: [f64; 9]| {
        a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6])
    };
    let den = det3([s[0], s[1], s[2], s[1], s[2], s[3], s[2], s[3], s[4]]);
    if !(den.abs() > 1e-9 * s[0].powi(3)) {
        return None;
    }
    let a = det3([t[0], s[1], s[2], t[1], s[2], s[3], t[2], s[3], s[4]]) / den;
    let var = (s[2] * s[4] - s[3] * s[3]) / den;
    (a.is_finite() && var.is_finite()).then_some((a, var))
}

/// Adaptive local quadratic smoothing of one edge's distance from the centerline along the arc
/// (LPA-ICI: the widest window up to `max_half_px` whose confidence interval still overlaps all
/// narrower ones). Healthy lumen gets the widest window and its noise averaged out; at a
/// narrowing the wide fits disagree with the narrow ones and the narrow window is kept, so the
/// minimum lumen is not filled in. Non-finite samples stay as they are and do not enter fits.
fn smooth_edges(arc_px: &[f64], edge_px: &[f64], max_half_px: f64) -> Vec<f64> {
    const WINDOWS_PX: [f64; 4] = [1.0, 2.0, 3.0, 4.5];
    // Half-width of the confidence intervals in SDs.
    const GAMMA: f64 = 2.0;
    let n = edge_px.len();
    let mut out = edge_px.to_vec();
    if !(max_half_px > 0.0) || n < 5 {
        return out;
    }
    let halves: Vec<f64> = WINDOWS_PX
        .iter()
        .copied()
        .filter(|&h| h < max_half_px)
        .chain(std::iter::once(max_half_px))
        .collect();
    let widest = halves[halves.len() - 1];
    // Window bounds per sample for the widest window (arc is non-decreasing).
    let mut bounds = vec![(0usize, 0usize); n];
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..n {
        while arc_px[i] - arc_px[lo] > widest {
            lo += 1;
        }
        hi = hi.max(i);
        while hi + 1 < n && arc_px[hi + 1] - arc_px[i] <= widest {
            hi += 1;
        }
        bounds[i] = (lo, hi);
    }
    // Noise SD of one sample: robust spread of the residuals from the widest fit; neighbouring
    // samples share noise (profiles average +-1 px along the vessel), so the variance factors
    // are inflated by 1 + 2 * sum of the residuals' autocorrelation over 4 lags.
    let resid: Vec<f64> = (0..n)
        .map(|i| {
            if edge_px[i].is_finite() {
                quadratic_at(arc_px, edge_px, i, bounds[i].0, bounds[i].1, widest)
                    .map_or(f64::NAN, |(a, _)| edge_px[i] - a)
            } else {
                f64::NAN
            }
        })
        .collect();
    let mut abs: Vec<f64> = resid.iter().filter(|r| r.is_finite()).map(|r| r.abs()).collect();
    if abs.len() < 5 {
        return out;
    }
    let mid = abs.len() / 2;
    let (_, med, _) = abs.select_nth_unstable_by(mid, f64::total_cmp);
    let sigma = 1.4826 * *med;
    if !(sigma > 0.0) {
        return out;
    }
    let energy: f64 = resid.iter().filter(|r| r.is_finite()).map(|r| r * r).sum();
    let rho_sum: f64 = (1..=4)
        .map(|lag| {
            let c: f64 = resid
                .iter()
                .zip(&resid[lag.min(n)..])
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|(a, b)| a * b)
                .sum();
            (c / energy).max(0.0)
        })
        .sum();
    let inflate = (1.0 + 2.0 * rho_sum).clamp(1.0, 9.0);
    for i in 0..n {
        let y = edge_px[i];
        if !y.is_finite() {
            continue;
        }
        let (mut lower, mut upper) = (y - GAMMA * sigma, y + GAMMA * sigma);
        let mut best = y;
        for &h in &halves {
            let Some((a, var)) = quadratic_at(arc_px, edge_px, i, bounds[i].0, bounds[i].1, h) else {
                continue;
            };
            let sd = sigma * (var * inflate).min(1.0).sqrt();
            lower = lower.max(a - GAMMA * sd);
            upper = upper.min(a + GAMMA * sd);
            if lower > upper {
                break;
            }
            if a > 0.0 {
                best = a;
            }
        }
        out[i] = best;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::smooth_edges;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn noisy(clean: &[f64], sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, sd).unwrap();
        clean.iter().map(|v| v + normal.sample(&mut rng)).collect()
    }

    fn rms(a: &[f64], b: &[f64]) -> f64 {
        (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
    }

    #[test]
    fn smoothing_averages_noise_on_a_straight_edge() {
        // Samples every 0.5 px; white noise of 0.4 px on a 6 px edge distance.
        let arc: Vec<f64> = (0..400).map(|i| 0.5 * i as f64).collect();
        let clean = vec![6.0; arc.len()];
        let raw = noisy(&clean, 0.4, 7);
        let out = smooth_edges(&arc, &raw, 3.0);
        let (before, after) = (rms(&raw, &clean), rms(&out, &clean));
        // A 13-sample quadratic fit: intercept variance factor about 0.21, so SD / 2.2.
        assert!(after < 0.6 * before, "rms {before:.3} -> {after:.3}");
    }

    #[test]
    fn smoothing_keeps_a_narrowing_minimum() {
        // Edge 6 px from the centerline narrowing to 2 px over an 8 px raised cosine.
        let arc: Vec<f64> = (0..200).map(|i| 0.5 * i as f64).collect();
        let clean: Vec<f64> = arc
            .iter()
            .map(|&s| {
                let u = (s - 50.0) / 4.0;
                if u.abs() < 1.0 {
                    6.0 - 2.0 * (1.0 + (std::f64::consts::PI * u).cos())
                } else {
                    6.0
                }
            })
            .collect();
        let mut min_err = Vec::new();
        for seed in 0..20 {
            let raw = noisy(&clean, 0.15, seed);
            let out = smooth_edges(&arc, &raw, 3.0);
            let m = out.iter().copied().fold(f64::INFINITY, f64::min);
            min_err.push(m - 2.0);
        }
        let mean = min_err.iter().sum::<f64>() / min_err.len() as f64;
        // Within 0.25 px (0.05 mm at 0.2 mm/px); a plain quadratic fit over +-4.5 px fills 0.5 px in.
        assert!(mean.abs() < 0.25, "minimum error {mean:.3} px");
    }

    #[test]
    fn non_finite_samples_stay_and_do_not_spread() {
        let arc: Vec<f64> = (0..60).map(|i| 0.5 * i as f64).collect();
        let mut raw = noisy(&vec![4.0; 60], 0.2, 3);
        raw[30] = f64::NAN;
        let out = smooth_edges(&arc, &raw, 3.0);
        assert!(out[30].is_nan());
        assert!(out.iter().enumerate().all(|(i, v)| i == 30 || v.is_finite()));
        assert_eq!(smooth_edges(&arc, &raw, 0.0)[5], raw[5]);
    }
}
