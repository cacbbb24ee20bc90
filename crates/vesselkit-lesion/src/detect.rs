//! Finding lesions along branch diameter profiles and OCT area profiles.
//!
//! Angiography: per branch, a robust running reference (an upper percentile of the measured
//! diameters within ±`reference_window_mm`) turns the profile into a diameter ratio. Runs below
//! the shoulder fraction whose deepest point reaches `min_ds_pct` are narrowings; runs of
//! multi-channel or low-density profiles are web candidates; an abrupt branch end is an occlusion
//! candidate. Nearby runs are merged, each merged run is measured by [`vesselkit_core::qca`] on a
//! window with healthy margins, and detections that meet across a junction are suppressed to the
//! strongest one, so one lesion gives one detection.

use crate::classify::{classify, is_tortuous};
use crate::error::{LesionError, Result};
use crate::model::{EndProbe, Evidence, Lesion, Modality, RuleFired, Site, StumpShape};
use crate::rules::Rules;
use vesselkit_core::qca::{area_stenosis_pct, diameter_stenosis_pct};
use vesselkit_core::{
    Branch, BranchEnd, LesionType, Point, Polyline, QcaOptions, ReferenceMethod, Tortuosity, VesselTree, qca,
};

/// Half-width of the window averaged around each interpolated-reference marker, mm.
const MARKER_WINDOW_MM: f64 = 0.5;

/// Tolerance of arc-length thresholds. Profile steps are nominally half a pixel but come out
/// a little shorter along the resampled centreline (six 0.1 mm steps read 0.59998 mm), so a
/// plateau of six steps must still meet a 0.6 mm threshold.
pub(crate) const ARC_EPS_MM: f64 = 0.01;

/// Linear-interpolated percentile `p` (0-100) of a non-empty slice (sorted in place).
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let x = p / 100.0 * (v.len() - 1) as f64;
    let i = x.floor() as usize;
    let j = (i + 1).min(v.len() - 1);
    v[i] + (v[j] - v[i]) * (x - i as f64)
}

/// Percentile `p` of the finite values of `v` whose position lies within `half_window` of each
/// position (`pos` increasing). The values are ranked once; a Fenwick tree over the ranks holds
/// the window, so each step and each order statistic costs O(log n) whatever the window's
/// size. NaN where the window holds no finite value.
fn running_percentile(pos: &[f64], v: &[f64], half_window: f64, p: f64) -> Vec<f64> {
    let n = pos.len();
    let mut out = vec![f64::NAN; n];
    let mut order: Vec<usize> = (0..n).filter(|&i| v[i].is_finite()).collect();
    if order.is_empty() {
        return out;
    }
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let m = order.len();
    let mut rank = vec![usize::MAX; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let sorted: Vec<f64> = order.iter().map(|&i| v[i]).collect();
    // Fenwick tree (1-based) of how many values of each rank are in the window.
    let mut tree = vec![0i32; m + 1];
    let add = |tree: &mut [i32], r: usize, delta: i32| {
        let mut k = r + 1;
        while k <= m {
            tree[k] += delta;
            k += k & k.wrapping_neg();
        }
    };
    let top = m.next_power_of_two();
    // Rank of the k-th smallest value in the window (k from 0).
    let kth = |tree: &[i32], k: usize| -> usize {
        let (mut at, mut rem, mut step) = (0usize, k as i32 + 1, top);
        while step > 0 {
            let next = at + step;
            if next <= m && tree[next] < rem {
                at = next;
                rem -= tree[next];
            }
            step >>= 1;
        }
        at
    };
    let (mut lo, mut hi, mut count) = (0, 0, 0usize);
    for i in 0..n {
        while hi < n && pos[hi] <= pos[i] + half_window {
            if rank[hi] != usize::MAX {
                add(&mut tree, rank[hi], 1);
                count += 1;
            }
            hi += 1;
        }
        while pos[lo] < pos[i] - half_window {
            if rank[lo] != usize::MAX {
                add(&mut tree, rank[lo], -1);
                count -= 1;
            }
            lo += 1;
        }
        if count > 0 {
            let x = p / 100.0 * (count - 1) as f64;
            let a = x.floor() as usize;
            let b = (a + 1).min(count - 1);
            let va = sorted[kth(&tree, a)];
            let vb = if b == a { va } else { sorted[kth(&tree, b)] };
            out[i] = va + (vb - va) * (x - a as f64);
        }
    }
    out
}

/// Longest run of consecutive `true`.
fn longest_run(flags: impl Iterator<Item = bool>) -> usize {
    let (mut best, mut cur) = (0, 0);
    for f in flags {
        cur = if f { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

/// Heading reversals smaller than this do not end a bend: centerline noise at the resampling
/// step flips the sign of the local turning, which would otherwise split one bend into many
/// small ones. A measurement-noise constant, not a clinical threshold.
const BEND_HYSTERESIS_DEG: f64 = 15.0;

/// Tortuosity of a centerline (px points) resampled at `step_px`; `None` when too short.
/// DM = path / chord; a bend is one monotonic swing of the (unwrapped) heading between two
/// reversals larger than [`BEND_HYSTERESIS_DEG`], counted when it reaches `bend_deg`;
/// ICM = (inflections + 1) × DM; SOAM = total |turning| / path length.
pub(crate) fn tortuosity_of(points: &[Point], step_px: f64, mm_per_px: f64, bend_deg: f64) -> Option<Tortuosity> {
    let pl = Polyline::new(points.to_vec()).resample(step_px);
    if pl.len() < 3 {
        return None;
    }
    let p = &pl.points;
    let path = pl.length_px();
    let chord = p[0].dist(p[p.len() - 1]);
    if !(chord > 1e-9 && path > 0.0) {
        return None;
    }
    let mut angles = Vec::with_capacity(p.len());
    for w in p.windows(3) {
        let (a, b) = (
            (w[1].row - w[0].row, w[1].col - w[0].col),
            (w[2].row - w[1].row, w[2].col - w[1].col),
        );
        if (a.0 == 0.0 && a.1 == 0.0) || (b.0 == 0.0 && b.1 == 0.0) {
            continue;
        }
        angles.push((a.0 * b.1 - a.1 * b.0).atan2(a.0 * b.0 + a.1 * b.1));
    }
    // Unwrapped heading relative to the first segment; swings between reversals are bends.
    let hyst = BEND_HYSTERESIS_DEG.to_radians();
    let (mut bends, mut max_bend, mut inflections) = (0u32, 0.0f64, 0u32);
    let (mut heading, mut start, mut ext, mut dir) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut close = |from: f64, to: f64, bends: &mut u32| {
        let deg = (to - from).abs().to_degrees();
        max_bend = max_bend.max(deg);
        if deg >= bend_deg {
            *bends += 1;
        }
    };
    for &a in &angles {
        heading += a;
        if dir == 0.0 {
            if (heading - start).abs() >= hyst {
                dir = (heading - start).signum();
                ext = heading;
            } else if (heading - start).abs() > (ext - start).abs() {
                ext = heading;
            }
            continue;
        }
        if (heading - ext) * dir > 0.0 {
            ext = heading;
        } else if (ext - heading) * dir >= hyst {
            close(start, ext, &mut bends);
            inflections += 1;
            start = ext;
            ext = heading;
            dir = -dir;
        }
    }
    close(start, ext, &mut bends);
    let total: f64 = angles.iter().map(|a| a.abs()).sum();
    let dm = path / chord;
    Some(Tortuosity {
        dm,
        icm: (inflections as f64 + 1.0) * dm,
        soam_rad_per_mm: total / (path * mm_per_px),
        bends,
        max_bend_deg: max_bend,
    })
}

/// Angle between two directions, degrees in [0, 180].
fn angle_between(a: (f64, f64), b: (f64, f64)) -> Option<f64> {
    let (na, nb) = (a.0.hypot(a.1), b.0.hypot(b.1));
    if !(na > 1e-9 && nb > 1e-9) {
        return None;
    }
    Some(
        ((a.0 * b.0 + a.1 * b.1) / (na * nb))
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees(),
    )
}

/// A branch profile prepared for detection. Built only for branches with at least one sample
/// (checked in `detect_branch`), so `s[0]` and `samples[0]` exist.
struct Profile<'a> {
    b: &'a Branch,
    s: Vec<f64>,
    /// Diameter where reliable and measured, else NaN.
    d: Vec<f64>,
    /// Running reference at samples with a diameter, else NaN.
    reference: Vec<f64>,
    /// Densitometric contrast per mm of diameter at reliable samples, else NaN (all NaN
    /// without densitometry).
    opacity: Vec<f64>,
    /// Centreline contrast at every sample where it was measured (reliable or not), else NaN:
    /// the densitometric signal of a narrowing whose edges the blur bridged.
    raw: Vec<f64>,
    /// Running reference of `raw` (as `reference` for diameters).
    raw_ref: Vec<f64>,
    /// Samples whose channel and density readings count as web signs (see [`web_signs_usable`]).
    web_ok: Vec<bool>,
    /// `raw` per mm of measured diameter (median of three samples) over its running median,
    /// else NaN: below 1 where a band inside the lumen takes away contrast.
    q_ratio: Vec<f64>,
}

/// Unreliable samples narrower than the shoulder fraction of the reference, inside a stretch of
/// at most `detection.narrow_unreliable_max_mm` between reliable samples and at least one
/// reference diameter from a junction, count as measured: the flags that mark a sample
/// unreliable (another vessel's opacity beside it, lopsided edges) come from a lumen that is
/// *wider* than the edges say, so a narrow reading there is still the lumen's upper bound.
/// The narrowest part of a lesion in a winding or next to a crossing is often flagged so.
fn admit_narrow_unreliable(b: &Branch, s: &[f64], d: &mut [f64], reference: &[f64], rules: &Rules) {
    let det = &rules.detection;
    let max_gap = det.narrow_unreliable_max_mm;
    let n = s.len();
    // Validated non-negative: 0 switches the admission off.
    if max_gap <= 0.0 || n < 3 {
        return;
    }
    let measured: Vec<usize> = (0..n).filter(|&i| d[i].is_finite()).collect();
    let near_junction = |i: usize| {
        let r = reference[i];
        (b.parent.is_some() && s[i] - s[0] < r) || (!b.children.is_empty() && s[n - 1] - s[i] < r)
    };
    for w in measured.windows(2) {
        let (a, z) = (w[0], w[1]);
        if z <= a + 1 || s[z] - s[a] > max_gap {
            continue;
        }
        for i in a + 1..z {
            let x = b.samples[i].diameter_mm;
            let r = reference[i];
            if x.is_finite() && x > 0.0 && r > 0.0 && x < det.shoulder_fraction * r && !near_junction(i) {
                d[i] = x;
            }
        }
    }
}

/// Where flagged samples next to a junction may be read: the branch's calibre (the
/// reference percentile of its reliable diameters) and, per sample, whether it lies within
/// `crate::paths::READMIT_REACH_CALIBRES` calibres of a junction. `None` when
/// `detection.junction_reference` is off or nothing is measured.
struct JunctionZone {
    calibre: f64,
    near: Vec<bool>,
}

/// `d` holds the reliable diameters (NaN elsewhere).
fn junction_zone(b: &Branch, s: &[f64], d: &[f64], rules: &Rules) -> Option<JunctionZone> {
    let n = s.len();
    let mut v: Vec<f64> = d.iter().copied().filter(|x| x.is_finite()).collect();
    if n == 0 || v.is_empty() || !rules.detection.junction_reference {
        return None;
    }
    let calibre = percentile(&mut v, rules.detection.reference_percentile);
    let reach = crate::paths::READMIT_REACH_CALIBRES * calibre;
    let near = (0..n)
        .map(|i| (b.parent.is_some() && s[i] - s[0] <= reach) || (!b.children.is_empty() && s[n - 1] - s[i] <= reach))
        .collect();
    Some(JunctionZone { calibre, near })
}

/// Flagged samples next to a junction that read a normal lumen (balanced edges, between the
/// shoulder fraction and `crate::paths::READMIT_MAX_FLARE` of the branch's calibre) count as
/// measured: the junction flag guards against the other vessel's opening widening the lumen,
/// which such a section does not show, and without them a narrowing just past a junction has
/// no measured lumen on that side. Narrow ones are left to [`admit_narrow_unreliable`].
fn admit_junction_reference(b: &Branch, zone: Option<&JunctionZone>, d: &mut [f64], rules: &Rules) {
    let Some(z) = zone else {
        return;
    };
    for (i, x) in b.samples.iter().enumerate() {
        if !x.reliable
            && z.near[i]
            && crate::paths::balanced(x, z.calibre)
            && x.diameter_mm >= rules.detection.shoulder_fraction * z.calibre
        {
            d[i] = x.diameter_mm;
        }
    }
}

/// Reliable samples, and flagged samples next to a junction that read a balanced lumen no
/// wider than `crate::paths::READMIT_MAX_FLARE` times the branch's calibre and resolve at least
/// `web_min_channels` channels: webs often sit at a branch point, and the junction flag guards
/// against the other vessel's opening, whose section is wider and lopsided.
fn web_signs_usable(b: &Branch, zone: Option<&JunctionZone>, rules: &Rules) -> Vec<bool> {
    b.samples
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.reliable
                || zone.is_some_and(|z| {
                    z.near[i]
                        && x.channels >= rules.classification.web_min_channels
                        && crate::paths::balanced(x, z.calibre)
                })
        })
        .collect()
}

impl<'a> Profile<'a> {
    fn new(bi: usize, b: &'a Branch, opacity: Option<&[f64]>, clean: Option<&[f64]>, rules: &Rules) -> Result<Self> {
        for (j, smp) in b.samples.iter().enumerate() {
            if !smp.arc_mm.is_finite() || (j > 0 && smp.arc_mm <= b.samples[j - 1].arc_mm) {
                return Err(LesionError::invalid(
                    format!("branches[{bi}].samples[{j}].arc_mm"),
                    format!(
                        "arc positions must be finite and strictly increasing, got {}",
                        smp.arc_mm
                    ),
                ));
            }
            if smp.diameter_mm < 0.0 {
                return Err(LesionError::invalid(
                    format!("branches[{bi}].samples[{j}].diameter_mm"),
                    format!("must be >= 0 or NaN (not measured), got {}", smp.diameter_mm),
                ));
            }
        }
        let s: Vec<f64> = b.samples.iter().map(|x| x.arc_mm).collect();
        let d: Vec<f64> = b
            .samples
            .iter()
            .map(|x| {
                if x.reliable && x.diameter_mm.is_finite() {
                    x.diameter_mm
                } else {
                    f64::NAN
                }
            })
            .collect();
        let mut d = d;
        let zone = junction_zone(b, &s, &d, rules);
        let web_ok = web_signs_usable(b, zone.as_ref(), rules);
        admit_junction_reference(b, zone.as_ref(), &mut d, rules);
        let mut reference = running_percentile(
            &s,
            &d,
            rules.detection.reference_window_mm,
            rules.detection.reference_percentile,
        );
        admit_narrow_unreliable(b, &s, &mut d, &reference, rules);
        for (r, x) in reference.iter_mut().zip(&d) {
            if x.is_nan() {
                *r = f64::NAN;
            }
        }
        let raw: Vec<f64> = match clean {
            Some(o) if o.len() == b.samples.len() => o.to_vec(),
            _ => vec![f64::NAN; b.samples.len()],
        };
        let opacity = match opacity {
            Some(o) if o.len() == b.samples.len() => b
                .samples
                .iter()
                .zip(o)
                .map(|(x, &v)| {
                    if x.reliable && x.diameter_mm > 0.0 && v.is_finite() && v > 0.0 {
                        v / x.diameter_mm
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
            Some(o) => {
                return Err(LesionError::invalid(
                    format!("opacity[{bi}]"),
                    format!("{} values for {} samples", o.len(), b.samples.len()),
                ));
            }
            None => vec![f64::NAN; b.samples.len()],
        };
        let raw_ref = running_percentile(
            &s,
            &raw,
            rules.detection.reference_window_mm,
            rules.detection.reference_percentile,
        );
        let per_mm: Vec<f64> = raw
            .iter()
            .zip(&b.samples)
            .map(|(&v, x)| {
                if x.diameter_mm.is_finite() && x.diameter_mm > 0.0 {
                    v / x.diameter_mm
                } else {
                    f64::NAN
                }
            })
            .collect();
        let idx: Vec<usize> = (0..per_mm.len()).filter(|&i| per_mm[i].is_finite()).collect();
        let mut q_ratio = vec![f64::NAN; per_mm.len()];
        let smooth: Vec<f64> = (0..idx.len())
            .map(|k| {
                let mut w = [
                    per_mm[idx[k.saturating_sub(1)]],
                    per_mm[idx[k]],
                    per_mm[idx[(k + 1).min(idx.len() - 1)]],
                ];
                w.sort_by(f64::total_cmp);
                w[1]
            })
            .collect();
        let q_ref = running_percentile(&s, &per_mm, rules.detection.reference_window_mm, 50.0);
        for (k, &i) in idx.iter().enumerate() {
            if q_ref[i] > 0.0 {
                q_ratio[i] = smooth[k] / q_ref[i];
            }
        }
        Ok(Self {
            b,
            s,
            d,
            reference,
            opacity,
            raw,
            raw_ref,
            q_ratio,
            web_ok,
        })
    }

    /// Median contrast per mm of measured diameter over arc `[lo, hi]`, unreliable samples
    /// included; `None` with fewer than three.
    fn opacity_any_in(&self, lo: f64, hi: f64) -> Option<f64> {
        let mut v: Vec<f64> = self
            .range(lo, hi)
            .map(|i| self.raw[i] / self.b.samples[i].diameter_mm)
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        (v.len() >= 3).then(|| percentile(&mut v, 50.0))
    }

    fn ok(&self, i: usize) -> bool {
        self.d[i].is_finite()
    }

    fn ratio(&self, i: usize) -> f64 {
        if self.reference[i] > 0.0 {
            self.d[i] / self.reference[i]
        } else {
            f64::NAN
        }
    }

    /// Centerline position at arc `x` (linear between samples; clamped to the branch).
    fn point_at(&self, x: f64) -> Point {
        let smp = &self.b.samples;
        let k = self.s.partition_point(|&a| a < x);
        if k == 0 {
            return smp[0].point;
        }
        if k >= smp.len() {
            return smp[smp.len() - 1].point;
        }
        let t = (x - self.s[k - 1]) / (self.s[k] - self.s[k - 1]);
        smp[k - 1].point.lerp(smp[k].point, t)
    }

    /// Median contrast per mm of diameter over arc `[lo, hi]`; `None` with fewer than
    /// three measured samples.
    fn opacity_in(&self, lo: f64, hi: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.opacity[self.range(lo, hi)]
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        (v.len() >= 3).then(|| percentile(&mut v, 50.0))
    }

    /// Length over which the measured diameter ratio (median of three consecutive measured
    /// samples) stays in the lower half of the dip below `shoulder` within arc `[lo, hi]`,
    /// around its deepest point, mm. `None` with fewer than three measured samples.
    fn plateau_mm(&self, lo: f64, hi: f64, shoulder: f64) -> Option<f64> {
        let idx: Vec<usize> = self.range(lo, hi).filter(|&i| self.ok(i)).collect();
        if idx.len() < 3 {
            return None;
        }
        let r: Vec<f64> = idx.iter().map(|&i| self.ratio(i)).collect();
        let med: Vec<f64> = (0..r.len())
            .map(|k| {
                let mut w = [r[k.saturating_sub(1)], r[k], r[(k + 1).min(r.len() - 1)]];
                w.sort_by(f64::total_cmp);
                w[1]
            })
            .collect();
        let k = (0..med.len()).min_by(|&a, &b| med[a].total_cmp(&med[b]))?;
        // NaN ratios never reach here (measured samples only); at or above the shoulder there
        // is no dip.
        if med[k] >= shoulder {
            return Some(0.0);
        }
        let level = med[k] + 0.5 * (shoulder - med[k]);
        let (mut a, mut z) = (k, k);
        while a > 0 && med[a - 1] <= level {
            a -= 1;
        }
        while z + 1 < med.len() && med[z + 1] <= level {
            z += 1;
        }
        Some(self.s[idx[z]] - self.s[idx[a]])
    }

    /// Index range of samples with arc in `[lo, hi]`.
    fn range(&self, lo: f64, hi: f64) -> std::ops::Range<usize> {
        self.s.partition_point(|&a| a < lo)..self.s.partition_point(|&a| a <= hi)
    }
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    end: f64,
    narrowing: bool,
    defect: bool,
    /// A mild narrowing (below `detection.min_ds_pct`) kept for its web-like flat lumen; it is
    /// measured against `classification.web_min_ds_pct` instead.
    shallow: bool,
    /// Centreline contrast far below its running reference (see [`dens_dip`]).
    dens: bool,
}

/// Maximal runs `(first, last)` of `0..n`: each begins at an index where `starts` holds and
/// goes on while `continues` holds for the next index.
fn runs(n: usize, starts: impl Fn(usize) -> bool, continues: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        if starts(i) {
            let first = i;
            while i + 1 < n && continues(i + 1) {
                i += 1;
            }
            out.push((first, i));
        }
        i += 1;
    }
    out
}

impl Segment {
    /// A run of web signs (channels, low density or a lucent band) from `start` to `end` mm.
    fn defect(start: f64, end: f64) -> Self {
        Self {
            start,
            end,
            narrowing: false,
            defect: true,
            shallow: false,
            dens: false,
        }
    }
}

/// Whether samples `r` carry the web sign for long enough (same test as rule B).
fn defect_sign(p: &Profile, r: std::ops::Range<usize>, rules: &Rules) -> (usize, usize) {
    let c = &rules.classification;
    let smp = &p.b.samples[r.clone()];
    let ok = &p.web_ok[r];
    let multi = longest_run(
        smp.iter()
            .zip(ok)
            .map(|(x, &ok)| ok && x.channels >= c.web_min_channels),
    );
    let low = longest_run(
        smp.iter()
            .zip(ok)
            .map(|(x, &ok)| ok && x.density_ratio < c.web_max_density_ratio),
    );
    (multi, low)
}

/// `calibrated`: the profile is in mm (the web-from-shape lengths are physical; in pixels of an
/// uncalibrated image they mean nothing, so mild narrowings are not kept there).
fn candidate_segments(p: &Profile, rules: &Rules, calibrated: bool) -> Vec<Segment> {
    let det = &rules.detection;
    let c = &rules.classification;
    let n = p.s.len();
    let mut segs = Vec::new();
    // Narrowings over the measured samples (unmeasured ones neither break nor extend a run).
    let ok: Vec<usize> = (0..n).filter(|&i| p.ok(i)).collect();
    let max_ratio = 1.0 - det.min_ds_pct / 100.0;
    let narrow = |k: usize| p.ratio(ok[k]) < det.shoulder_fraction;
    for (start, k) in runs(ok.len(), narrow, narrow) {
        let deepest = (start..=k).map(|m| p.ratio(ok[m])).fold(f64::INFINITY, f64::min);
        let (a, z) = (p.s[ok[start]], p.s[ok[k]]);
        // A mild narrowing counts only with a flat lumen on reliable samples throughout, or
        // with a lucent band along it (centreline contrast per mm well below the vessel's).
        let lucent = c.web_contrast_max_ratio > 0.0
            && longest_run(p.range(a, z).map(|i| p.q_ratio[i] < c.web_contrast_max_ratio)) >= c.web_min_samples;
        let shallow = calibrated
            && det.mild_web_candidates
            && deepest > max_ratio
            && deepest <= 1.0 - c.web_min_ds_pct / 100.0
            && (lucent
                || (p.range(a, z).all(|i| p.b.samples[i].reliable)
                    && p.plateau_mm(a, z, det.shoulder_fraction)
                        .is_some_and(|x| x >= c.web_plateau_min_mm - ARC_EPS_MM)));
        if deepest <= max_ratio || shallow {
            segs.push(Segment {
                start: a,
                end: z,
                narrowing: true,
                defect: false,
                shallow,
                dens: false,
            });
        }
    }
    // Web signs over reliable samples.
    let sign = |i: usize| {
        let x = &p.b.samples[i];
        p.web_ok[i] && (x.channels >= c.web_min_channels || x.density_ratio < c.web_max_density_ratio)
    };
    for (start, i) in runs(n, sign, sign) {
        let (multi, low) = defect_sign(p, start..i + 1, rules);
        if multi >= c.web_min_samples || low >= c.web_min_samples {
            segs.push(Segment::defect(p.s[start], p.s[i]));
        }
    }
    // Lucent bands along the lumen: contrast per mm of diameter well below the vessel's.
    if c.web_contrast_max_ratio > 0.0 {
        let low = |i: usize| p.q_ratio[i] < c.web_contrast_max_ratio;
        // Unmeasured samples do not break a band.
        for (start, i) in runs(n, low, |i| low(i) || p.q_ratio[i].is_nan()) {
            if (start..=i).filter(|&k| low(k)).count() >= c.web_min_samples {
                segs.push(Segment::defect(p.s[start], p.s[i]));
            }
        }
    }
    // Densitometric runs: centreline contrast far below its running reference (validated
    // in [0, 1]; 0 switches them off).
    if det.dens_run_ratio > 0.0 {
        let idx: Vec<usize> = (0..n).filter(|&i| p.raw[i].is_finite() && p.raw_ref[i] > 0.0).collect();
        let low = |k: usize| p.raw[idx[k]] < det.dens_run_ratio * p.raw_ref[idx[k]];
        for (start, k) in runs(idx.len(), low, low) {
            segs.push(Segment {
                start: p.s[idx[start]],
                end: p.s[idx[k]],
                narrowing: false,
                defect: false,
                shallow: false,
                dens: true,
            });
        }
    }
    segs.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut merged: Vec<Segment> = Vec::new();
    for sg in segs {
        match merged.last_mut() {
            Some(m) if sg.start - m.end <= det.merge_gap_mm => {
                m.end = m.end.max(sg.end);
                // Shallow only while every merged narrowing is.
                m.shallow = (m.shallow || !m.narrowing) && (sg.shallow || !sg.narrowing);
                m.narrowing |= sg.narrowing;
                m.defect |= sg.defect;
                m.dens |= sg.dens;
            }
            _ => merged.push(sg),
        }
    }
    merged
}

/// The largest of each tortuosity metric over the branches below branch `id`.
fn distal_tortuosity(tree: &VesselTree, id: usize) -> Option<Tortuosity> {
    tree.descendants(id)
        .iter()
        .filter_map(|&d| tree.branches.get(d))
        .map(|x| x.tortuosity)
        .reduce(|a, x| Tortuosity {
            dm: a.dm.max(x.dm),
            icm: a.icm.max(x.icm),
            soam_rad_per_mm: a.soam_rad_per_mm.max(x.soam_rad_per_mm),
            bends: a.bends.max(x.bends),
            max_bend_deg: a.max_bend_deg.max(x.max_bend_deg),
        })
}

/// Tortuosity of branch `b` from arc `from_mm` to its end, and of the centreline within
/// `tortuosity_window_ref` reference diameters around `extent` (continued across straight
/// junctions, see [`path_around`]); `None` each without a calibration or when too short.
fn segment_tortuosity(
    tree: &VesselTree,
    p: &Profile,
    extent: (f64, f64),
    refd: f64,
    rules: &Rules,
) -> (Option<Tortuosity>, Option<Tortuosity>) {
    let det = &rules.detection;
    let mm_per_px = tree.calibration.mm_per_px;
    if mm_per_px.is_nan() || mm_per_px <= 0.0 {
        return (None, None);
    }
    let half = det.tortuosity_window_ref * refd;
    // One lumen centre for both: from the local window's start to the branch's end.
    let from = (extent.0 - half).min(extent.0);
    let (first, centre) = lumen_centre(p.b, mm_per_px, Some(extent), (from, f64::INFINITY));
    let pts = &centre[p.s.partition_point(|&a| a < extent.0) - first..];
    let step_px = det.tortuosity_step_mm / mm_per_px;
    let segment = tortuosity_of(pts, step_px, mm_per_px, det.bend_threshold_deg);
    let local = path_around(
        tree,
        p,
        extent.0 - half,
        extent.1 + half,
        det.angle_window_mm,
        det.bend_threshold_deg,
        (first, &centre, mm_per_px),
    );
    (
        segment,
        tortuosity_of(&local, step_px, mm_per_px, det.bend_threshold_deg),
    )
}

/// Evidence shared by narrowings and occlusions, filled in by the caller where it differs.
fn base_evidence(p: &Profile, tree: &VesselTree, extent: (f64, f64), window: (f64, f64), rules: &Rules) -> Evidence {
    let b = p.b;
    let r = p.range(extent.0, extent.1);
    let (multi, low) = defect_sign(p, r.clone(), rules);
    let smp = &b.samples[r.clone()];
    let ok = &p.web_ok[r.clone()];
    let channels_max = smp
        .iter()
        .zip(ok)
        .filter(|&(_, &ok)| ok)
        .map(|(x, _)| x.channels as u32)
        .max()
        .unwrap_or(0);
    let density_ratio_min = smp
        .iter()
        .zip(ok)
        .filter(|&(x, &ok)| ok && x.density_ratio.is_finite())
        .map(|(x, _)| x)
        .map(|x| x.density_ratio)
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))));
    let q: Vec<f64> = r.clone().map(|i| p.q_ratio[i]).collect();
    let centreline_contrast_ratio_min = q
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))));
    let low_contrast_samples = longest_run(q.iter().map(|&x| x < rules.classification.web_contrast_max_ratio));
    let wr = p.range(window.0, window.1);
    let reliable_fraction = if wr.is_empty() {
        0.0
    } else {
        wr.clone().filter(|&i| b.samples[i].reliable).count() as f64 / wr.len() as f64
    };
    let distal_tortuosity = distal_tortuosity(tree, b.id);
    Evidence {
        modality: Modality::Angio,
        rule: RuleFired::Fallback,
        rule_text: String::new(),
        diameter_stenosis_pct: f64::NAN,
        area_stenosis_pct: f64::NAN,
        mld_mm: f64::NAN,
        reference_diameter_mm: f64::NAN,
        length_mm: 0.0,
        arc_mm: f64::NAN,
        start_mm: extent.0,
        end_mm: extent.1,
        proximal_shoulder_slope_per_mm: None,
        distal_shoulder_slope_per_mm: None,
        symmetry: None,
        focal: false,
        channels_max,
        multichannel_samples: multi,
        lucent_bands: channels_max.saturating_sub(1),
        plateau_mm: None,
        density_ratio_min,
        low_density_samples: low,
        mla_mm2: None,
        reference_area_mm2: None,
        flow_grade: b.flow_grade,
        flow_known: b.flow_grade.is_some(),
        arrival_ms: b.arrival_ms,
        distal_end: Some(b.distal_end),
        cutoff: false,
        distal_vessel_visible: !b.children.is_empty(),
        continuation_gap_mm: None,
        distal_opacity_ratio: None,
        densitometric_ds_pct: None,
        centreline_contrast_ratio_min,
        low_contrast_samples,
        stump_contrast_ratio: None,
        beyond_end_ratio: None,
        beyond_end_neck_ratio: None,
        cine_refill_ratio: None,
        stump: None,
        segment_tortuosity: None,
        local_tortuosity: None,
        distal_tortuosity,
        lesion_angle_deg: None,
        reliable_fraction,
    }
}

/// Steepest falling slope (proximal flank) and rising slope (distal flank) relative to `refd`.
fn shoulder_slopes(p: &Profile, lo: f64, mld: f64, hi: f64, refd: f64) -> (Option<f64>, Option<f64>) {
    let ok: Vec<usize> = (0..p.s.len()).filter(|&i| p.ok(i)).collect();
    let pos = |x: f64| ok.partition_point(|&i| p.s[i] < x);
    // Include one sample beyond each shoulder: the shoulder crossing lies between them.
    let a = pos(lo).saturating_sub(1);
    let m = pos(mld).min(ok.len().saturating_sub(1));
    let z = (pos(hi) + 1).min(ok.len().saturating_sub(1));
    let slope = |i: usize, j: usize| (p.d[j] - p.d[i]) / (p.s[j] - p.s[i]) / refd;
    let prox = (a..m).map(|k| -slope(ok[k], ok[k + 1])).reduce(f64::max);
    let dist = (m..z).map(|k| slope(ok[k], ok[k + 1])).reduce(f64::max);
    (prox.map(|x| x.max(0.0)), dist.map(|x| x.max(0.0)))
}

/// Symmetry index from edge distances at sample `i` (as in QCA).
fn symmetry_at(b: &Branch, i: usize, refd: f64) -> Option<f64> {
    let smp = &b.samples[i];
    if !(smp.left_mm.is_finite() && smp.right_mm.is_finite()) {
        return None;
    }
    let half = 0.5 * refd;
    let (l, r) = ((half - smp.left_mm).max(0.0), (half - smp.right_mm).max(0.0));
    Some(if l.max(r) <= 1e-9 { 1.0 } else { l.min(r) / l.max(r) })
}

fn new_lesion(vessel: Option<usize>, site: Option<Site>, ev: Evidence, rules: &Rules) -> Lesion {
    let dec = classify(&ev, rules);
    let mut ev = ev;
    ev.rule = dec.rule;
    ev.rule_text = dec.text;
    Lesion {
        id: 0,
        vessel,
        site,
        lesion_type: dec.lesion_type,
        confidence: dec.confidence,
        mld_mm: ev.mld_mm,
        reference_diameter_mm: ev.reference_diameter_mm,
        diameter_stenosis_pct: ev.diameter_stenosis_pct,
        length_mm: ev.length_mm,
        evidence: ev,
        priority: None,
        reason: String::new(),
        risk_flags: Vec::new(),
        score: 0.0,
        balloon_mm: Vec::new(),
    }
}

fn site_of(p: Point) -> Site {
    Site { row: p.row, col: p.col }
}

/// Distance (mm) from the cut-off tip at sample `tip` to the nearest free end of another
/// branch (the start of a root branch or the end of a terminal one) that lies ahead of the
/// stump and from which that branch runs on the same way: both the direction to the end and
/// the direction of the branch's first `angle_window_mm` from it within
/// `continuation_max_angle_deg` of the direction of the stump's last `angle_window_mm`.
fn continuation_gap(p: &Profile, tree: &VesselTree, tip: usize, refd: f64, rules: &Rules) -> Option<f64> {
    let det = &rules.detection;
    let mm = tree.calibration.mm_per_px;
    if mm.is_nan() || mm <= 0.0 {
        return None;
    }
    let t = p.b.samples[tip].point;
    let back = p.point_at(p.s[tip] - det.angle_window_mm);
    let dir = (t.row - back.row, t.col - back.col);
    let mut best: Option<f64> = None;
    for o in tree.branches.iter().filter(|o| o.id != p.b.id) {
        let (Some(first), Some(last)) = (o.samples.first(), o.samples.last()) else {
            continue;
        };
        // Each free end with the point `angle_window_mm` into the piece from it: a vessel
        // resuming across a gap runs on away from the stump, along its direction.
        let into_first = o
            .samples
            .iter()
            .find(|x| x.arc_mm - first.arc_mm >= det.angle_window_mm);
        let into_last = o
            .samples
            .iter()
            .rev()
            .find(|x| last.arc_mm - x.arc_mm >= det.angle_window_mm);
        let ends = [
            (o.parent.is_none()).then_some((first.point, into_first.map(|x| x.point))),
            (o.children.is_empty()).then_some((last.point, into_last.map(|x| x.point))),
        ];
        for (e, into) in ends.into_iter().flatten() {
            let v = (e.row - t.row, e.col - t.col);
            let runs_on = into.is_some_and(|q| {
                angle_between(dir, (q.row - e.row, q.col - e.col)).is_some_and(|a| a <= det.continuation_max_angle_deg)
            });
            let ahead = runs_on && angle_between(dir, v).is_some_and(|a| a <= det.continuation_max_angle_deg);
            let d = t.dist(e) * mm;
            if ahead && best.is_none_or(|b| d < b) {
                best = Some(d);
            }
        }
    }
    // The vessel may also resume from a branch point (the piece past the gap starts at a
    // junction with a side branch, not at a free end): a point of another vessel ahead whose
    // own course there, over `angle_window_mm`, runs along the stump's axis with about the
    // stump's calibre (`continuation_diameter_ratio`). A vessel the centreline stopped at
    // while crossing it runs across the axis instead.
    let b = p.b;
    let related = |o: &Branch| o.id == b.id || Some(o.id) == b.parent || b.children.contains(&o.id);
    let half = 0.5 * det.angle_window_mm;
    // Validated: 0 (off) or >= 1.
    if det.continuation_diameter_ratio < 1.0 {
        return best;
    }
    for o in tree.branches.iter().filter(|o| !related(o)) {
        let n = o.samples.len();
        for (i, x) in o.samples.iter().enumerate() {
            let d = t.dist(x.point) * mm;
            if best.is_some_and(|b| d >= b) {
                continue;
            }
            let v = (x.point.row - t.row, x.point.col - t.col);
            if !angle_between(dir, v).is_some_and(|a| a <= det.continuation_max_angle_deg) {
                continue;
            }
            let j0 = (0..i)
                .rev()
                .find(|&j| x.arc_mm - o.samples[j].arc_mm >= half)
                .unwrap_or(0);
            let j1 = (i + 1..n)
                .find(|&j| o.samples[j].arc_mm - x.arc_mm >= half)
                .unwrap_or(n - 1);
            let (q0, q1) = (o.samples[j0].point, o.samples[j1].point);
            let along = angle_between(dir, (q1.row - q0.row, q1.col - q0.col))
                .is_some_and(|a| a.min(180.0 - a) <= det.continuation_max_angle_deg);
            if !along {
                continue;
            }
            let mut dia: Vec<f64> = o.samples[j0..=j1]
                .iter()
                .map(|y| y.diameter_mm)
                .filter(|v| v.is_finite())
                .collect();
            let dia = percentile(&mut dia, 50.0);
            let k = det.continuation_diameter_ratio;
            if dia >= refd / k && dia <= refd * k {
                best = Some(d);
            }
        }
    }
    best
}

/// Whether another vessel's centreline (not the branch's parent, children or siblings) passes
/// within `detection.cutoff_clear_ahead_ref` reference diameters ahead of the tip at sample
/// `tip` (within `continuation_max_angle_deg` of the direction of the stump's last
/// `angle_window_mm`): the centreline stopped where it met another vessel (a junction or
/// crossing it was not joined to), and the lumen goes on there.
fn vessel_ahead(p: &Profile, tree: &VesselTree, tip: usize, refd: f64, rules: &Rules) -> bool {
    let det = &rules.detection;
    let mm = tree.calibration.mm_per_px;
    if det.cutoff_clear_ahead_ref <= 0.0 || mm.is_nan() || mm <= 0.0 {
        return false;
    }
    let b = p.b;
    let t = b.samples[tip].point;
    let back = p.point_at(p.s[tip] - det.angle_window_mm);
    let dir = (t.row - back.row, t.col - back.col);
    let limit_px = det.cutoff_clear_ahead_ref * refd / mm;
    let related = |o: &Branch| {
        o.id == b.id
            || Some(o.id) == b.parent
            || b.children.contains(&o.id)
            || (b.parent.is_some() && o.parent == b.parent)
    };
    tree.branches.iter().filter(|o| !related(o)).any(|o| {
        o.samples.iter().any(|x| {
            t.dist(x.point) <= limit_px
                && angle_between(dir, (x.point.row - t.row, x.point.col - t.col))
                    .is_some_and(|a| a <= det.continuation_max_angle_deg)
        })
    })
}

/// Median centreline contrast over arc `[lo, hi]` and the number of measured samples.
fn raw_median(p: &Profile, lo: f64, hi: f64) -> (f64, usize) {
    let mut v: Vec<f64> = p.raw[p.range(lo, hi)]
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let n = v.len();
    (percentile(&mut v, 50.0), n)
}

/// The occlusion candidate at an abrupt branch end, if any.
fn occlusion(p: &Profile, tree: &VesselTree, probe: Option<EndProbe>, rules: &Rules) -> Option<Lesion> {
    let b = p.b;
    let det = &rules.detection;
    let beyond_end = probe.map(|x| x.beyond_ratio);
    // A neck past the end with the lumen filling again beyond it: the centreline stopped at a
    // narrowing it could not follow.
    let neck = probe
        .filter(|x| {
            det.beyond_end_neck_max_ratio > 0.0
                && x.neck_ratio <= det.beyond_end_neck_max_ratio
                && x.after_neck_ratio >= det.beyond_end_max_ratio
                && x.after_neck_ratio > x.neck_ratio
        })
        .map(|x| x.neck_ratio);
    // A branch's flow grade is its own filling: at a cut-off that is the stump's, which fills
    // normally in front of an occlusion as well. Without densitometry past the end, normal
    // filling (grade 3) is taken as no occlusion sign; with it, the contrast beyond decides.
    if b.distal_end != BranchEnd::Abrupt || (b.flow_grade == Some(3) && beyond_end.is_none()) || b.samples.is_empty() {
        return None;
    }
    let ok: Vec<usize> = (0..p.s.len()).filter(|&i| p.ok(i)).collect();
    let last = b.samples.len() - 1;
    let tip = ok.last().copied().unwrap_or(last);
    let tip_arc = p.s[tip];
    let win_start = tip_arc - det.stump_window_mm;
    let near = |x: f64| {
        ok.iter()
            .copied()
            .min_by(|&i, &j| (p.s[i] - x).abs().total_cmp(&(p.s[j] - x).abs()))
    };
    // Reference: the running reference where the stump window begins; from the parent's end
    // when the branch has no measured diameter (orifice occlusion).
    let refd = match near(win_start) {
        Some(i) => p.reference[i],
        None => {
            let parent = b.parent.and_then(|q| tree.branches.get(q))?;
            let mut d: Vec<f64> = parent
                .samples
                .iter()
                .rev()
                .take_while(|x| x.arc_mm >= parent.length_mm - det.reference_window_mm)
                .filter(|x| x.reliable && x.diameter_mm.is_finite())
                .map(|x| x.diameter_mm)
                .collect();
            percentile(&mut d, det.reference_percentile)
        }
    };
    if refd.is_nan() || refd <= 0.0 || refd < det.min_reference_mm {
        return None;
    }
    let neck = neck.filter(|_| refd >= det.beyond_end_neck_min_reference_mm);
    // The vessel goes on filling about as well past the end, with no neck on the way: the
    // centreline broke on a patent lumen, not on a lesion.
    if neck.is_none() && probe.is_some_and(|x| x.fan_ratio.max(x.beyond_ratio) >= det.beyond_end_max_ratio) {
        return None;
    }
    // A vessel resuming along the stump's axis makes it a narrowing across a gap, not a
    // junction or crossing the centreline stopped at.
    let resumes = continuation_gap(p, tree, tip, refd, rules).is_some_and(|g| g <= det.continuation_max_gap_ref * refd);
    if !resumes && vessel_ahead(p, tree, tip, refd, rules) {
        return None;
    }
    let visible_mm = tip_arc - p.s[0];
    let stump = if b.length_mm.min(visible_mm) <= det.orifice_max_stump_mm || ok.is_empty() {
        StumpShape::Orifice
    } else {
        let d_start = near(win_start).map_or(f64::NAN, |i| p.d[i]);
        if p.d[tip] / d_start <= det.pointed_max_tip_ratio {
            StumpShape::Pointed
        } else {
            StumpShape::Round
        }
    };
    // Taper: from where the diameter last fell below the shoulder fraction to the tip.
    let mut taper_start = tip_arc;
    for &i in ok.iter().rev() {
        if p.d[i] < det.shoulder_fraction * refd {
            taper_start = p.s[i];
        } else {
            break;
        }
    }
    let mut ev = base_evidence(p, tree, (win_start.max(p.s[0]), tip_arc), (win_start, tip_arc), rules);
    ev.diameter_stenosis_pct = 100.0;
    ev.area_stenosis_pct = 100.0;
    ev.mld_mm = 0.0;
    ev.reference_diameter_mm = refd;
    ev.length_mm = tip_arc - taper_start;
    ev.arc_mm = tip_arc;
    ev.start_mm = taper_start;
    ev.end_mm = tip_arc;
    ev.focal = ev.length_mm <= rules.classification.ring_max_length_ref * refd;
    ev.proximal_shoulder_slope_per_mm = shoulder_slopes(p, win_start, tip_arc, tip_arc, refd).0;
    ev.cutoff = true;
    // The branch's own flow grade times the stump's filling, not the filling past the cut-off,
    // where no vessel was traced to time (on 18 development cines, stumps graded 0 ended 3
    // occlusions, 5 subtotals and 4 false cut-offs alike). The flow past it is decided below
    // from the probe.
    let cine = b.flow_grade.is_some();
    ev.flow_grade = None;
    ev.flow_known = false;
    ev.stump = Some(stump);
    ev.continuation_gap_mm = continuation_gap(p, tree, tip, refd, rules);
    ev.beyond_end_ratio = beyond_end;
    ev.beyond_end_neck_ratio = neck;
    // A neck that still carries contrast, with the vessel past it filling as a patent one does:
    // the centreline stopped at a narrowing whose lumen the segmentation lost, not at a
    // near-occlusion. Its stenosis is the neck's densitometric one (a round lumen's contrast
    // grows with its diameter); below the subtotal threshold it is typed as a narrowing.
    if let Some(nr) = neck
        && beyond_end.is_some_and(|r| r >= det.beyond_end_max_ratio)
    {
        let dds = 100.0 * (1.0 - nr).clamp(0.0, 1.0);
        if dds < rules.classification.subtotal_min_ds_pct {
            ev.diameter_stenosis_pct = dds;
            ev.area_stenosis_pct = 100.0 * (1.0 - nr * nr);
            ev.densitometric_ds_pct = Some(dds);
            ev.mld_mm = nr * refd;
        }
    }
    // The straight probe saw a vessel past the tip.
    let min_ratio = if cine {
        det.cine_beyond_end_min_ratio
    } else {
        det.beyond_end_min_ratio
    };
    let beyond_seen = beyond_end.is_some_and(|r| r >= min_ratio);
    if beyond_seen {
        ev.distal_vessel_visible = true;
    }
    if ev
        .continuation_gap_mm
        .is_some_and(|g| g <= rules.detection.continuation_max_gap_ref * refd)
    {
        ev.distal_vessel_visible = true;
    }
    // A filled column ends at full density; contrast fading over the last millimetre is
    // contrast thinning out into a vessel that goes on.
    let (tip_c, n_tip) = raw_median(p, tip_arc - 1.0, tip_arc);
    let (base_c, n_base) = raw_median(p, win_start - 2.0, win_start);
    if n_tip >= 3 && n_base >= 3 && base_c > 0.0 {
        ev.stump_contrast_ratio = Some(tip_c / base_c);
        if tip_c < det.cutoff_fade_ratio * base_c {
            ev.distal_vessel_visible = true;
        }
    }
    // In a cine, a vessel refilling past the stump on the run with the still anatomy taken
    // out: contrast passed the lesion, late or faint, where a single frame shows it below the
    // background's structure.
    if cine && let Some(r) = probe.and_then(|x| x.refill_ratio) {
        ev.cine_refill_ratio = Some(r);
        if r >= det.cine_refill_min_ratio {
            ev.distal_vessel_visible = true;
        }
    }
    // In a cine the probe looked past the tip on each pixel's fullest filling over the run
    // (see [`detect_with_probes`]): nothing there is no opacification beyond the cut-off for
    // the whole run, flow grade 0. A vessel seen there filled, at a time not measured.
    if cine && probe.is_some() && !ev.distal_vessel_visible {
        ev.flow_grade = Some(0);
        ev.flow_known = true;
    }
    // With the vessel visible past it, the lesion is the near-occlusion whose lumen the
    // centreline could not follow: its narrowest point lies along the probe, past the tip.
    // (Only where the probe itself saw that vessel: a stump fading at its tip says nothing of
    // where.)
    let seen_past = neck.is_some() || beyond_seen;
    // Otherwise (or where the probe's lowest stretch runs on to its far end, locating no
    // neck) the lesion is where the opacified column ends, which the skeleton and the
    // measured profile stop short of.
    let site = probe
        .and_then(|x| x.neck_site.filter(|_| seen_past).or(x.end_site))
        .unwrap_or_else(|| site_of(b.samples[tip].point));
    Some(new_lesion(Some(b.id), Some(site), ev, rules))
}

/// Centerline points over arc `[lo, hi]` of the profile's branch, continued across its
/// junctions when the window reaches past them: proximally into the parent, distally into the
/// child that continues most straight, each only when the junction itself turns less than
/// `max_turn_deg` (directions over `dir_mm` on each side; a sharper turn is a side branch, not
/// the same vessel). A winding is often split into several branches where other vessels
/// cross it.
fn path_around(
    tree: &VesselTree,
    p: &Profile,
    lo: f64,
    hi: f64,
    dir_mm: f64,
    max_turn_deg: f64,
    (own_first, own_centre, mm_per_px): (usize, &[Point], f64),
) -> Vec<Point> {
    let b = p.b;
    let (first, last) = (p.s[0], p.s[p.s.len() - 1]);
    let vec = |a: Point, z: Point| (z.row - a.row, z.col - a.col);
    // Direction of a branch's first or last `dir_mm`.
    let start_dir = |c: &Branch| -> Option<(f64, f64)> {
        let a = c.samples.first()?;
        let z = c.samples.iter().find(|x| x.arc_mm >= dir_mm).or(c.samples.last())?;
        Some(vec(a.point, z.point))
    };
    let end_dir = |c: &Branch| -> Option<(f64, f64)> {
        let z = c.samples.last()?;
        let a = c
            .samples
            .iter()
            .rev()
            .find(|x| x.arc_mm <= z.arc_mm - dir_mm)
            .or(c.samples.first())?;
        Some(vec(a.point, z.point))
    };
    let turn = |x: Option<(f64, f64)>, y: Option<(f64, f64)>| x.zip(y).and_then(|(x, y)| angle_between(x, y));
    let mut pts: Vec<Point> = Vec::new();
    if lo < first
        && let Some(par) = b.parent.and_then(|q| tree.branches.get(q))
        && let Some(end) = par.samples.last()
        && turn(end_dir(par), start_dir(b)).is_some_and(|a| a < max_turn_deg)
    {
        let from = end.arc_mm - (first - lo);
        pts.extend(lumen_centre(par, mm_per_px, None, (from, f64::INFINITY)).1);
    }
    let own = p.range(lo, hi);
    pts.extend_from_slice(&own_centre[own.start - own_first..own.end - own_first]);
    if hi > last {
        let straightest = b
            .children
            .iter()
            .filter_map(|&c| tree.branches.get(c))
            .filter_map(|c| turn(end_dir(b), start_dir(c)).map(|a| (a, c)))
            .filter(|(a, _)| *a < max_turn_deg)
            .min_by(|x, y| x.0.total_cmp(&y.0));
        if let Some((_, c)) = straightest {
            let to = hi - last;
            pts.extend(lumen_centre(c, mm_per_px, None, (f64::NEG_INFINITY, to)).1);
        }
    }
    pts
}

/// Half-width (mm of arc) of the chord that gives the centreline's direction in
/// [`lumen_centre`].
const CENTRE_TANGENT_HALF_MM: f64 = 0.5;
/// Gaussian sigma of the lumen-centre offset along the arc in [`lumen_centre`], in calibres.
const CENTRE_SMOOTH_CALIBRES: f64 = 0.25;

/// Approximately Gaussian smoothing of `v` with `sigma` in samples: two passes of a centred
/// running mean (the window shrinks at the ends), O(n) whatever the sigma.
fn smooth_samples(v: &mut [f64], sigma: f64) {
    // Two boxes of width w = 2r + 1 have variance (w² - 1) / 6.
    let r = (((6.0 * sigma * sigma + 1.0).sqrt() - 1.0) / 2.0).round() as usize;
    if r == 0 || v.len() < 2 {
        return;
    }
    let n = v.len();
    let mut sum = vec![0.0; n + 1];
    for _ in 0..2 {
        for i in 0..n {
            sum[i + 1] = sum[i] + v[i];
        }
        for (i, x) in v.iter_mut().enumerate() {
            let (a, z) = (i.saturating_sub(r), (i + r + 1).min(n));
            *x = (sum[z] - sum[a]) / (z - a) as f64;
        }
    }
}

/// Centre of the measured lumen at the samples of `b` whose arc lies within `arc_mm`: the
/// centreline point moved along its left normal to the midpoint of the two edges. The
/// skeleton of the mask takes a smoothed course through a winding (on the phantoms its swings
/// read 0.5-0.7 of the true ones), while the edges, found on the image, follow the lumen.
/// Samples without reliable edges take the offset interpolated between their measured
/// neighbours (held beyond the last); so do those within `skip` (arc mm): a lesion's own
/// lumen, whose centre an eccentric narrowing shifts sideways and back (a jog that reads as
/// bends). Without measured samples the centreline stays. Returns the index of the first
/// sample and one point per sample from there.
fn lumen_centre(b: &Branch, mm_per_px: f64, skip: Option<(f64, f64)>, arc_mm: (f64, f64)) -> (usize, Vec<Point>) {
    let all = &b.samples;
    let measured = |x: &vesselkit_core::ProfileSample| {
        x.reliable
            && x.left_mm.is_finite()
            && x.right_mm.is_finite()
            && x.left_mm > 0.0
            && x.right_mm > 0.0
            && !skip.is_some_and(|(a, z)| x.arc_mm >= a && x.arc_mm <= z)
    };
    let last = all.partition_point(|x| x.arc_mm <= arc_mm.1);
    let first = all.partition_point(|x| x.arc_mm < arc_mm.0).min(last);
    // The smoothing scale: a quarter of the calibre over the asked range (a winding's period
    // is two to three calibres and keeps most of its swing).
    let mut d: Vec<f64> = all[first..last]
        .iter()
        .filter(|x| measured(x) && x.diameter_mm.is_finite())
        .map(|x| x.diameter_mm)
        .collect();
    let sigma_mm = if d.is_empty() {
        0.0
    } else {
        let mid = d.len() / 2;
        CENTRE_SMOOTH_CALIBRES * *d.select_nth_unstable_by(mid, f64::total_cmp).1
    };
    // Work on the range widened by the smoothing and tangent reach, then cut it back.
    let margin = 3.0 * sigma_mm + CENTRE_TANGENT_HALF_MM;
    let lo = all.partition_point(|x| x.arc_mm < arc_mm.0 - margin).min(first);
    let hi = all.partition_point(|x| x.arc_mm <= arc_mm.1 + margin).max(last);
    let smp = &all[lo..hi];
    let n = smp.len();
    let known: Vec<usize> = (0..n).filter(|&i| measured(&smp[i])).collect();
    if known.is_empty() || mm_per_px.is_nan() || mm_per_px <= 0.0 {
        return (first, all[first..last].iter().map(|x| x.point).collect());
    }
    let off_at = |i: usize| 0.5 * (smp[i].left_mm - smp[i].right_mm) / mm_per_px;
    let mut off = vec![0.0; n];
    let mut k = 0;
    for (i, o) in off.iter_mut().enumerate() {
        while k + 1 < known.len() && known[k + 1] <= i {
            k += 1;
        }
        let (a, z) = (known[k], known.get(k + 1).copied());
        *o = match z {
            _ if i <= a => off_at(a),
            Some(z) => {
                let t = (smp[i].arc_mm - smp[a].arc_mm) / (smp[z].arc_mm - smp[a].arc_mm).max(1e-12);
                off_at(a) + t * (off_at(z) - off_at(a))
            }
            None => off_at(a),
        };
    }
    // Edge noise makes the centre jitter from sample to sample, and at a 1 mm step even a
    // small jitter reads as swings of the heading.
    if n >= 2 {
        let spacing = (smp[n - 1].arc_mm - smp[0].arc_mm) / (n - 1) as f64;
        if spacing > 0.0 {
            smooth_samples(&mut off, sigma_mm / spacing);
        }
    }
    let (mut ta, mut tz) = (0, 0);
    let pts = (first - lo..last - lo)
        .map(|i| {
            let s = smp[i].arc_mm;
            while smp[ta].arc_mm < s - CENTRE_TANGENT_HALF_MM {
                ta += 1;
            }
            while tz + 1 < n && smp[tz + 1].arc_mm <= s + CENTRE_TANGENT_HALF_MM {
                tz += 1;
            }
            let (a, z) = (smp[ta].point, smp[tz.max(i)].point);
            let (tr, tc) = (z.row - a.row, z.col - a.col);
            let len = tr.hypot(tc);
            let p = smp[i].point;
            if len.is_nan() || len <= 0.0 {
                return p;
            }
            // Left normal (-d_col, d_row), as the profile measures `left_mm` along it.
            Point::new(p.row - tc / len * off[i], p.col + tr / len * off[i])
        })
        .collect();
    (first, pts)
}

/// Centreline contrast per branch for densitometric candidates: measured, positive values
/// clear of junctions by `detection.dens_junction_clear_ref` branch diameters, else NaN.
fn clean_raw(tree: &VesselTree, opacity: &[Vec<f64>], rules: &Rules) -> Vec<Vec<f64>> {
    let k = rules.detection.dens_junction_clear_ref;
    tree.branches
        .iter()
        .zip(opacity)
        .map(|(b, o)| {
            let n = b.samples.len();
            if o.len() != n || n == 0 {
                return vec![f64::NAN; n];
            }
            let mut d: Vec<f64> = b
                .samples
                .iter()
                .map(|x| x.diameter_mm)
                .filter(|x| x.is_finite() && *x > 0.0)
                .collect();
            let clear = k * percentile(&mut d, 50.0);
            let (first, last) = (b.samples[0].arc_mm, b.samples[n - 1].arc_mm);
            b.samples
                .iter()
                .zip(o)
                .map(|(x, &v)| {
                    let near = clear.is_nan()
                        || (b.parent.is_some() && x.arc_mm - first < clear)
                        || (!b.children.is_empty() && last - x.arc_mm < clear);
                    if v.is_finite() && v > 0.0 && !near { v } else { f64::NAN }
                })
                .collect()
        })
        .collect()
}

/// Centreline contrast over arc `[lo, hi]` of branch `b` (measured values), continued into the
/// parent where `lo` lies before the branch start and into the brightest child where `hi`
/// lies past its end: a narrowing next to a junction has its normal lumen on the far side.
fn raw_values(tree: &VesselTree, all: &[Vec<f64>], p: &Profile, lo: f64, hi: f64) -> Vec<f64> {
    let b = p.b;
    let (first, last) = (p.s[0], p.s[p.s.len() - 1]);
    let finite = |o: &[f64], c: &Branch, a: f64, z: f64| -> Vec<f64> {
        c.samples
            .iter()
            .zip(o)
            .filter(|(x, v)| x.arc_mm >= a && x.arc_mm <= z && v.is_finite() && **v > 0.0)
            .map(|(_, &v)| v)
            .collect()
    };
    let mut v: Vec<f64> = p.raw[p.range(lo, hi)]
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if lo < first
        && let Some(par) = b.parent.and_then(|q| tree.branches.get(q))
        && let Some(o) = all.get(par.id)
        && o.len() == par.samples.len()
    {
        let from = par.length_mm - (first - lo);
        let to = par.length_mm - (first - hi).max(0.0);
        v.extend(finite(o, par, from, to));
    }
    if hi > last {
        let best = b
            .children
            .iter()
            .filter_map(|&c| tree.branches.get(c))
            .filter_map(|c| {
                let o = all.get(c.id).filter(|o| o.len() == c.samples.len())?;
                let mut w = finite(o, c, (lo - last).max(0.0), hi - last);
                let med = percentile(&mut w, 50.0);
                (!w.is_empty()).then_some((med, w))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, w)) = best {
            v.extend(w);
        }
    }
    v
}

/// A densitometric narrowing: the deepest centreline contrast of a candidate run, its ratio
/// to the contrast before it, and the extent over which the contrast stays in the lower half
/// of the dip.
#[derive(Debug, Clone, Copy)]
struct DensDip {
    min_i: usize,
    ratio: f64,
    extent: (f64, f64),
}

/// Checks a densitometric run. The run is where the centreline contrast (median of three
/// samples) stays below `dens_run_ratio` of its running reference around its deepest point;
/// the narrowing is the first local minimum in it that reaches the run's typical level (past
/// a near-occlusion the diluted vessel stays low, and its noise must not move the site
/// downstream). Reported when that minimum is at most `dens_max_ratio` of the contrast before
/// the run and the vessel beyond it keeps at least `dens_min_distal_ratio` of that contrast
/// and no less than the minimum itself (it goes on rather than ending), each side measured on
/// `min_reference_samples` (at least three) samples.
fn dens_dip(p: &Profile, tree: &VesselTree, all: &[Vec<f64>], seg: Segment, rules: &Rules) -> Option<DensDip> {
    let det = &rules.detection;
    let m = det.qca_margin_mm;
    let idx: Vec<usize> = p.range(seg.start, seg.end).filter(|&i| p.raw[i].is_finite()).collect();
    if idx.is_empty() {
        return None;
    }
    let med: Vec<f64> = (0..idx.len())
        .map(|k| {
            let mut w = [
                p.raw[idx[k.saturating_sub(1)]],
                p.raw[idx[k]],
                p.raw[idx[(k + 1).min(idx.len() - 1)]],
            ];
            w.sort_by(f64::total_cmp);
            w[1]
        })
        .collect();
    let low = |k: usize| med[k] < det.dens_run_ratio * p.raw_ref[idx[k]];
    let k0 = (0..med.len()).min_by(|&a, &b| med[a].total_cmp(&med[b]))?;
    let (mut a, mut z) = (k0, k0);
    while a > 0 && low(a - 1) {
        a -= 1;
    }
    while z + 1 < med.len() && low(z + 1) {
        z += 1;
    }
    let mut level: Vec<f64> = med[a..=z].to_vec();
    let level = percentile(&mut level, 50.0);
    let mut k = (a..=z).find(|&k| med[k] <= level)?;
    while k < z && med[k + 1] < med[k] {
        k += 1;
    }
    let min = med[k];
    let need = det.min_reference_samples.max(3);
    let start = p.s[idx[a]];
    let mut before = raw_values(tree, all, p, start - m, start - MARKER_WINDOW_MM);
    // Beyond the narrowing rather than the run: the diluted vessel may stay in the run.
    let from = p.s[idx[k]] + det.dens_distal_gap_mm;
    let mut after = raw_values(tree, all, p, from, from + m);
    if before.len() < need || after.len() < need {
        return None;
    }
    let prox = percentile(&mut before, 50.0);
    let dist = percentile(&mut after, 50.0);
    let ok = prox > 0.0 && min / prox <= det.dens_max_ratio && dist >= det.dens_min_distal_ratio * prox && min <= dist;
    if !ok {
        return None;
    }
    let half = min + 0.5 * (prox.min(dist) - min);
    let (mut lo, mut hi) = (k, k);
    while lo > 0 && med[lo - 1] <= half {
        lo -= 1;
    }
    while hi + 1 < med.len() && med[hi + 1] <= half {
        hi += 1;
    }
    Some(DensDip {
        min_i: idx[k],
        ratio: min / prox,
        extent: (p.s[idx[lo]], p.s[idx[hi]]),
    })
}

/// Measures one merged candidate segment; `None` when it does not hold up under QCA.
fn measure_segment(
    p: &Profile,
    tree: &VesselTree,
    all: &[Vec<f64>],
    seg: Segment,
    bounds: (f64, f64),
    rules: &Rules,
) -> Result<Option<Lesion>> {
    let b = p.b;
    let det = &rules.detection;
    let lo = (seg.start - det.qca_margin_mm).max(bounds.0);
    let hi = (seg.end + det.qca_margin_mm).min(bounds.1);
    let r = p.range(lo, hi);
    let measured = r.clone().filter(|&i| p.ok(i)).count();
    if measured < 3 {
        // Too little measured lumen to give numbers; not reported.
        return Ok(None);
    }
    let s = &p.s[r.clone()];
    let d = &p.d[r.clone()];
    let edges_ok = r
        .clone()
        .filter(|&i| p.ok(i))
        .all(|i| b.samples[i].left_mm.is_finite() && b.samples[i].right_mm.is_finite());
    let left: Vec<f64> = b.samples[r.clone()].iter().map(|x| x.left_mm).collect();
    let right: Vec<f64> = b.samples[r.clone()].iter().map(|x| x.right_mm).collect();
    let span = hi - lo;
    let need = 0.05 * span + MARKER_WINDOW_MM;
    let method =
        if det.reference_method == ReferenceMethod::Interpolated && (seg.start - lo < need || hi - seg.end < need) {
            // The interpolated markers would fall inside the narrowing (ostial or end lesion).
            ReferenceMethod::Computed
        } else {
            det.reference_method
        };
    let opts = QcaOptions {
        reference: method,
        markers: (0.05, 0.95),
        marker_window_mm: MARKER_WINDOW_MM,
        shoulder_fraction: det.shoulder_fraction,
    };
    let q = match qca(s, d, edges_ok.then_some((left.as_slice(), right.as_slice())), &opts) {
        Ok(q) => q,
        // A window whose reconstructed reference is not a lumen (a fit through zero-width or
        // scattered samples going to or below zero) cannot be measured: the candidate is not
        // reported rather than failing the whole tree.
        Err(vesselkit_core::CoreError::Invalid {
            field: "reference_diameter",
            ..
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let min_ds = if seg.shallow {
        rules.classification.web_min_ds_pct
    } else {
        det.min_ds_pct
    };
    let narrowing = seg.narrowing && q.diameter_stenosis_pct >= min_ds;
    let dip = if seg.dens {
        dens_dip(p, tree, all, seg, rules)
    } else {
        None
    };
    if !narrowing && !seg.defect && dip.is_none() {
        return Ok(None);
    }
    // The densitometric numbers stand where the edges did not measure a narrowing: the edges
    // of a lumen near the resolution limit are bridged by the blur [Q10]. Where they did, the
    // geometric numbers stand (with lesions drawn at their true depth, a deeper density dip
    // over-read the MLD by 0.5 mm on tortuous and 1.8 mm on web lesions: lucent bands,
    // windings and a neighbour in the background ring lower the centreline contrast too).
    // Nor where the profile resolves lucent bands (two or more channels over
    // `web_min_samples`): a web's bands take contrast off the centreline without narrowing
    // the lumen, and the dip reads them as a near-occlusion.
    let banded =
        seg.defect && defect_sign(p, p.range(seg.start, seg.end), rules).0 >= rules.classification.web_min_samples;
    let dens = dip.filter(|_| !narrowing && !banded);

    let (mld_i, mld, refd, ds, extent, length, symmetry) = if let Some(dd) = dens {
        let i = dd.min_i;
        let near = r
            .clone()
            .filter(|&j| p.ok(j) && p.reference[j] > 0.0)
            .min_by(|&a, &b| (p.s[a] - p.s[i]).abs().total_cmp(&(p.s[b] - p.s[i]).abs()));
        let refd = near.map_or(q.reference_diameter_mm, |j| p.reference[j]);
        (
            i,
            refd * dd.ratio,
            refd,
            100.0 * (1.0 - dd.ratio),
            dd.extent,
            dd.extent.1 - dd.extent.0,
            None,
        )
    } else if narrowing {
        let e = (q.lesion_start_mm.min(seg.start), q.lesion_end_mm.max(seg.end));
        let sym = q.symmetry.is_finite().then_some(q.symmetry);
        (
            r.start + q.mld_index,
            q.mld_mm,
            q.reference_diameter_mm,
            q.diameter_stenosis_pct,
            e,
            q.lesion_length_mm,
            sym,
        )
    } else {
        // Web sign without narrowing: the narrowest measured sample inside the web run, against
        // the running reference there.
        let wr = p.range(seg.start, seg.end);
        let i = wr
            .clone()
            .filter(|&i| p.ok(i))
            .min_by(|&i, &j| p.ratio(i).total_cmp(&p.ratio(j)));
        let i = i.unwrap_or(r.start + q.mld_index);
        let refd = if p.reference[i] > 0.0 {
            p.reference[i]
        } else {
            q.reference_diameter_mm
        };
        let mld = if p.ok(i) { p.d[i] } else { q.mld_mm };
        (
            i,
            mld,
            refd,
            diameter_stenosis_pct(mld, refd),
            (seg.start, seg.end),
            seg.end - seg.start,
            symmetry_at(b, i, refd),
        )
    };

    if refd.is_nan() || refd < det.min_reference_mm {
        // Below the smallest vessel reported (or no reference at all).
        return Ok(None);
    }
    if ds < 0.0 {
        // A band sign where the lumen is wider than its reference everywhere: a crossing or
        // junction bulge, not a defect inside one lumen.
        return Ok(None);
    }
    if length < det.min_length_mm && !seg.shallow && dip.is_none() {
        // A dip over a few samples: edge noise, not a measurable narrowing. (A mild narrowing
        // already had to stay flat over `web_plateau_min_mm` to become a candidate.)
        return Ok(None);
    }
    let measured_in = |a: f64, z: f64| p.range(a, z).filter(|&i| p.ok(i)).count();
    // Where the window runs past the branch's start or end, the lumen goes on in the parent
    // or a child: their measured samples within one QCA margin of the junction count too.
    let m = det.qca_margin_mm;
    let (first, last_arc) = (p.s[0], p.s[p.s.len() - 1]);
    let ok_in = |c: &Branch, a: f64, z: f64| {
        c.samples
            .iter()
            .filter(|x| x.arc_mm >= a && x.arc_mm <= z && x.reliable && x.diameter_mm.is_finite())
            .count()
    };
    let before = if seg.start - m < first {
        b.parent
            .and_then(|q| tree.branches.get(q))
            .map_or(0, |par| ok_in(par, par.length_mm - m, f64::INFINITY))
    } else {
        0
    };
    let after = if seg.end + m > last_arc {
        b.children
            .iter()
            .filter_map(|&c| tree.branches.get(c))
            .map(|c| ok_in(c, f64::NEG_INFINITY, m))
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    // A densitometric narrowing was measured against the contrast on both sides instead.
    if dip.is_none()
        && (measured_in(lo, extent.0 - MARKER_WINDOW_MM) + before < det.min_reference_samples
            || measured_in(extent.1 + MARKER_WINDOW_MM, hi) + after < det.min_reference_samples)
    {
        // No measured normal lumen on one side: the dip cannot be told from the vessel
        // branching, crossing or ending there.
        return Ok(None);
    }
    let mut ev = base_evidence(p, tree, extent, (lo, hi), rules);
    let er = p.range(extent.0, extent.1);
    let extent_reliable = if er.is_empty() {
        0.0
    } else {
        er.clone().filter(|&i| p.ok(i) || (banded && p.web_ok[i])).count() as f64 / er.len() as f64
    };
    if extent_reliable < det.min_reliable_fraction && dip.is_none() {
        // Mostly unmeasured junction, overlap or border samples: the narrowing or band is
        // more likely a measurement artefact than a lesion. (Flagged samples that read narrow
        // were admitted as measured, see `admit_narrow_unreliable`.)
        return Ok(None);
    }
    // A mild narrowing that only its flat shape made a candidate: too shallow for the edge
    // noise, or one edge only, is not reported.
    if seg.shallow
        && !seg.defect
        && dip.is_none()
        && ds < rules.classification.web_plateau_max_ds_pct
        && (refd - mld < det.shallow_min_depth_mm || symmetry.is_some_and(|s| s < det.shallow_min_symmetry))
    {
        return Ok(None);
    }
    ev.diameter_stenosis_pct = ds;
    ev.area_stenosis_pct = area_stenosis_pct(mld, refd);
    ev.mld_mm = mld;
    ev.reference_diameter_mm = refd;
    ev.length_mm = length;
    ev.arc_mm = p.s[mld_i];
    ev.symmetry = symmetry;
    ev.focal = length <= rules.classification.ring_max_length_ref * refd;
    ev.plateau_mm = p.plateau_mm(extent.0, extent.1, det.shoulder_fraction);
    let (ps, dsl) = shoulder_slopes(p, extent.0, p.s[mld_i], extent.1, refd);
    ev.proximal_shoulder_slope_per_mm = ps;
    ev.distal_shoulder_slope_per_mm = dsl;
    let last_ok = (0..p.s.len())
        .rev()
        .find(|&i| p.ok(i))
        .map_or(f64::NEG_INFINITY, |i| p.s[i]);
    ev.distal_vessel_visible |= last_ok > extent.1;

    // Lesion angulation: centerline direction before and after the lesion.
    let w = det.angle_window_mm;
    let (first, lastarc) = (p.s[0], p.s[p.s.len() - 1]);
    if extent.0 - first >= 0.5 * w && lastarc - extent.1 >= 0.5 * w {
        let a0 = p.point_at((extent.0 - w).max(first));
        let a1 = p.point_at(extent.0);
        let b0 = p.point_at(extent.1);
        let b1 = p.point_at((extent.1 + w).min(lastarc));
        ev.lesion_angle_deg = angle_between((a1.row - a0.row, a1.col - a0.col), (b1.row - b0.row, b1.col - b0.col));
    }
    // Tortuosity from the lesion to the end of the branch, and around it.
    (ev.segment_tortuosity, ev.local_tortuosity) = segment_tortuosity(tree, p, extent, refd, rules);
    // Filling before vs beyond the lesion, over one QCA margin clear of its shoulders.
    let m = det.qca_margin_mm;
    if let (Some(before), Some(after)) = (
        p.opacity_in(extent.0 - m, extent.0),
        p.opacity_in(extent.1, extent.1 + m),
    ) {
        ev.distal_opacity_ratio = Some(after / before);
    } else if dens.is_some()
        && let (Some(before), Some(after)) = (
            p.opacity_any_in(extent.0 - m, extent.0),
            p.opacity_any_in(extent.1, extent.1 + m),
        )
    {
        // The samples around a near-occlusion are often flagged (a junction nearby, lopsided
        // edges); their contrast per mm still tells the filling.
        ev.distal_opacity_ratio = Some(after / before);
    }
    ev.densitometric_ds_pct = dip.map(|d| 100.0 * (1.0 - d.ratio));
    // Where the edges measured a narrowing and the contrast dips there too, both read a lumen
    // near the resolution limit, with opposite errors: the blur widens the edges of a narrow
    // lumen, and the background ring and blur take contrast off it. Their mean stands (on 19
    // development rings with both: edges +0.11 +- 0.28 mm, contrast -0.11 +- 0.17, mean
    // 0.00 +- 0.16). Not where the vessel winds: the winding takes contrast off as well
    // (contrast -0.50 mm on 27 tortuous lesions), and the edges alone stand.
    if let Some(dd) = dip.filter(|_| narrowing && !banded && !is_tortuous(&ev, rules)) {
        let m = 0.5 * (mld + refd * dd.ratio.max(0.0));
        ev.mld_mm = m;
        ev.diameter_stenosis_pct = diameter_stenosis_pct(m, refd);
        ev.area_stenosis_pct = area_stenosis_pct(m, refd);
    }
    let lesion = new_lesion(Some(b.id), Some(site_of(b.samples[mld_i].point)), ev, rules);
    if ds < det.min_ds_pct
        && ((!seg.defect
            && !matches!(
                lesion.evidence.rule,
                RuleFired::BPlateau | RuleFired::BCentrelineContrast
            ))
            || lesion.evidence.rule == RuleFired::Fallback)
    {
        // Kept below the detection threshold only for a web sign, which the measured lesion
        // does not show (no type rule fired).
        return Ok(None);
    }
    Ok(Some(lesion))
}

fn detect_branch(
    bi: usize,
    tree: &VesselTree,
    all: &[Vec<f64>],
    opacity: Option<&[f64]>,
    probe: Option<EndProbe>,
    rules: &Rules,
) -> Result<Vec<Lesion>> {
    let b = &tree.branches[bi];
    if b.samples.is_empty() {
        return Ok(Vec::new());
    }
    let p = Profile::new(bi, b, opacity, all.get(bi).map(|v| v.as_slice()), rules)?;
    let mut out = Vec::new();
    let occ = occlusion(&p, tree, probe, rules);
    let mut segs = candidate_segments(&p, rules, tree.calibration.is_calibrated());
    if let Some(o) = &occ {
        // Narrowing into the stump is part of the occlusion; a run that starts before it is
        // measured up to it (a narrowing whose distal vessel stays thinner runs on to the end).
        let cut = o
            .evidence
            .start_mm
            .min(o.evidence.arc_mm - rules.detection.stump_window_mm)
            - rules.detection.merge_gap_mm;
        segs.retain(|sg| sg.start < cut);
        for sg in &mut segs {
            sg.end = sg.end.min(cut);
        }
    }
    let (first, last) = (p.s[0], p.s[p.s.len() - 1]);
    for k in 0..segs.len() {
        let lo = if k > 0 { segs[k - 1].end } else { first };
        let hi = if k + 1 < segs.len() { segs[k + 1].start } else { last };
        if let Some(l) = measure_segment(&p, tree, all, segs[k], (lo, hi), rules)? {
            out.push(l);
        }
    }
    out.extend(occ);
    Ok(out)
}

/// Detects and classifies lesions over the whole vessel tree. Ids are assigned in branch order,
/// proximal to distal; lesions are not ranked yet (see [`crate::rank`]).
pub fn detect(tree: &VesselTree, rules: &Rules) -> Result<Vec<Lesion>> {
    detect_with_opacity(tree, &[], &[], rules)
}

/// [`detect`] with densitometry: `opacity[branch][sample]` is the contrast (e.g. log
/// attenuation against the local background) at each profile sample, NaN where not measured;
/// it gives the distal filling of each narrowing ([`Evidence::distal_opacity_ratio`]).
/// `beyond_end[branch]` is the contrast found past the branch's distal end relative to its
/// last millimetres ([`Evidence::beyond_end_ratio`]). Empty slices mean not measured.
pub fn detect_with_opacity(
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    beyond_end: &[Option<f64>],
    rules: &Rules,
) -> Result<Vec<Lesion>> {
    if !beyond_end.is_empty() && beyond_end.len() != tree.branches.len() {
        return Err(LesionError::invalid(
            "beyond_end",
            format!("{} values for {} branches", beyond_end.len(), tree.branches.len()),
        ));
    }
    let probes: Vec<Option<EndProbe>> = beyond_end.iter().map(|r| r.map(EndProbe::flat)).collect();
    detect_with_probes(tree, opacity, &probes, rules)
}

/// [`detect_with_opacity`] with the whole probe past each branch end (`probes[branch]`, see
/// [`EndProbe`]): a neck followed by a filled lumen makes a cut-off of an end whose
/// continuation otherwise fills like a patent vessel. Empty means not measured. When the tree
/// carries flow grades (a cine), the probes are expected on the run's peak opacification (each
/// pixel's fullest filling, `vesselkit_angio::peak_opacification`), with their `refill_ratio`
/// read on the run with the still anatomy subtracted (`vesselkit::cine_end_probes`): a cut-off
/// with nothing past it there, and no refill from `detection.cine_refill_min_ratio`, gets
/// flow grade 0.
pub fn detect_with_probes(
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    probes: &[Option<EndProbe>],
    rules: &Rules,
) -> Result<Vec<Lesion>> {
    rules.validate()?;
    if !probes.is_empty() && probes.len() != tree.branches.len() {
        return Err(LesionError::invalid(
            "probes",
            format!("{} probes for {} branches", probes.len(), tree.branches.len()),
        ));
    }
    if !opacity.is_empty() && opacity.len() != tree.branches.len() {
        return Err(LesionError::invalid(
            "opacity",
            format!(
                "{} branches of values for {} branches",
                opacity.len(),
                tree.branches.len()
            ),
        ));
    }
    for (i, b) in tree.branches.iter().enumerate() {
        if b.id != i {
            return Err(LesionError::invalid(
                format!("branches[{i}].id"),
                format!("branch ids must equal their index, got {}", b.id),
            ));
        }
    }
    let clean = clean_raw(tree, opacity, rules);
    let mut all = Vec::new();
    for bi in 0..tree.branches.len() {
        all.extend(detect_branch(
            bi,
            tree,
            &clean,
            opacity.get(bi).map(|v| v.as_slice()),
            probes.get(bi).copied().flatten(),
            rules,
        )?);
    }
    let along_paths = path_lesions(tree, opacity, &all, rules)?;
    all.extend(along_paths);
    let mut lesions = suppress_duplicates(all, tree, rules);
    lesions.sort_by(|a, b| {
        a.vessel
            .cmp(&b.vessel)
            .then(a.evidence.arc_mm.total_cmp(&b.evidence.arc_mm))
    });
    for (i, l) in lesions.iter_mut().enumerate() {
        l.id = i;
    }
    Ok(lesions)
}

/// Narrowings along vessel paths (see [`crate::paths`]) that the per-branch pass did not
/// report: a stretch between two side-branch junctions is measured with the vessel on both
/// sides as its reference. Each is reported on the branch holding its narrowest point, with
/// its arcs on that branch and its tortuosity and flow from the branch, and only when
///
/// - its site is farther than `nms_distance_mm` from every lesion already found, and it does
///   not lie in the stump of a cut-off on that branch;
/// - it narrows by `min_ds_pct` against the smaller of the median lumen before and after it
///   (over one QCA margin, `min_reference_samples` on each side): the vessel may step down in
///   calibre at a side branch, and the step alone is no lesion.
fn path_lesions(tree: &VesselTree, opacity: &[Vec<f64>], found: &[Lesion], rules: &Rules) -> Result<Vec<Lesion>> {
    let det = &rules.detection;
    let limit_px = det.nms_distance_mm / tree.calibration.mm_per_px.max(1e-12);
    let mut out: Vec<Lesion> = Vec::new();
    for path in crate::paths::build(tree, rules) {
        let pb = &path.branch;
        let op: Option<Vec<f64>> = (!opacity.is_empty()).then(|| {
            path.origin
                .iter()
                .map(|&(b, i)| opacity.get(b).and_then(|o| o.get(i)).copied().unwrap_or(f64::NAN))
                .collect()
        });
        let p = Profile::new(pb.id, pb, op.as_deref(), None, rules)?;
        let segs = candidate_segments(&p, rules, tree.calibration.is_calibrated());
        let (first, last) = (p.s[0], p.s[p.s.len() - 1]);
        // Interior junctions: where the path differs from its branches.
        let junctions: Vec<f64> = path.members[1..].iter().map(|m| m.first_mm).collect();
        for k in 0..segs.len() {
            let lo = if k > 0 { segs[k - 1].end } else { first };
            let hi = if k + 1 < segs.len() { segs[k + 1].start } else { last };
            // A narrowing whose QCA window stays inside one branch was measured the same
            // way by the branch pass.
            let (a, z) = (segs[k].start - det.qca_margin_mm, segs[k].end + det.qca_margin_mm);
            if !junctions.iter().any(|&j| j >= a && j <= z) {
                continue;
            }
            let Some(l) = measure_segment(&p, tree, &[], segs[k], (lo, hi), rules)? else {
                continue;
            };
            let ev = &l.evidence;
            let side = |a: f64, z: f64| {
                let mut v: Vec<f64> = p.range(a, z).filter(|&i| p.ok(i)).map(|i| p.d[i]).collect();
                (!v.is_empty() && v.len() >= det.min_reference_samples).then(|| percentile(&mut v, 50.0))
            };
            let (Some(prox), Some(dist)) = (
                side(ev.start_mm - det.qca_margin_mm, ev.start_mm - MARKER_WINDOW_MM),
                side(ev.end_mm + MARKER_WINDOW_MM, ev.end_mm + det.qca_margin_mm),
            ) else {
                continue;
            };
            if diameter_stenosis_pct(ev.mld_mm, prox.min(dist)) < det.min_ds_pct {
                continue;
            }
            let m = path.member_at(ev.arc_mm);
            let Some(b) = tree.branches.get(m.branch) else {
                continue;
            };
            let near = |k: &Lesion| match (k.site, l.site) {
                (Some(a), Some(c)) => (a.row - c.row).hypot(a.col - c.col) <= limit_px,
                _ => false,
            };
            let arc = ev.arc_mm - m.offset_mm;
            let in_stump = |k: &Lesion| {
                k.evidence.cutoff
                    && k.vessel == Some(b.id)
                    && arc >= k.evidence.start_mm.min(k.evidence.arc_mm - det.stump_window_mm) - det.merge_gap_mm
            };
            if found.iter().chain(&out).any(|k| near(k) || in_stump(k)) {
                continue;
            }
            let bp = Profile::new(b.id, b, None, None, rules)?;
            let (b_first, b_last) = (bp.s[0], bp.s[bp.s.len() - 1]);
            let mut ev = ev.clone();
            ev.arc_mm = arc;
            ev.start_mm = (ev.start_mm - m.offset_mm).clamp(b_first, b_last);
            ev.end_mm = (ev.end_mm - m.offset_mm).clamp(b_first, b_last);
            // The joined path kinks at its junctions: tortuosity comes from the tree itself.
            (ev.segment_tortuosity, ev.local_tortuosity) =
                segment_tortuosity(tree, &bp, (ev.start_mm, ev.end_mm), ev.reference_diameter_mm, rules);
            ev.distal_tortuosity = distal_tortuosity(tree, b.id);
            ev.flow_grade = b.flow_grade;
            ev.flow_known = b.flow_grade.is_some();
            ev.arrival_ms = b.arrival_ms;
            ev.distal_end = Some(b.distal_end);
            out.push(new_lesion(Some(b.id), l.site, ev, rules));
        }
    }
    Ok(out)
}

/// Drops cut-offs whose tip lies within `detection.edge_margin_mm` of the edge of a
/// `rows × cols` px field (the vessel may simply leave the field there) and renumbers the ids
/// in order. Call before ranking.
pub fn drop_edge_cutoffs(lesions: &mut Vec<Lesion>, field_px: (usize, usize), tree: &VesselTree, rules: &Rules) {
    let m = rules.detection.edge_margin_mm / tree.calibration.mm_per_px.max(1e-12);
    let (rows, cols) = (field_px.0 as f64, field_px.1 as f64);
    lesions.retain(|l| match (l.evidence.cutoff, l.site) {
        (true, Some(s)) => s.row >= m && s.col >= m && s.row <= rows - 1.0 - m && s.col <= cols - 1.0 - m,
        _ => true,
    });
    for (i, l) in lesions.iter_mut().enumerate() {
        l.id = i;
    }
}

/// Non-maximum suppression between branches: a lesion at a bifurcation is seen in the
/// profiles of the branches that meet there (parent/child or siblings), and a cut-off is seen
/// from both pieces of the vessel its gap broke, which the tree does not relate (on the
/// development seeds 16 of 559 detections were such second sightings of one near-occlusion,
/// a cut-off facing a cut-off or the far piece's narrowing across the gap). Within
/// `nms_distance_mm` the more severe one is kept.
fn suppress_duplicates(mut all: Vec<Lesion>, tree: &VesselTree, rules: &Rules) -> Vec<Lesion> {
    let limit_px = rules.detection.nms_distance_mm / tree.calibration.mm_per_px.max(1e-12);
    let parent = |v: Option<usize>| v.and_then(|i| tree.branches.get(i)).and_then(|b| b.parent);
    let related = |a: &Lesion, b: &Lesion| {
        a.vessel != b.vessel
            && (parent(a.vessel) == b.vessel
                || parent(b.vessel) == a.vessel
                || (parent(a.vessel).is_some() && parent(a.vessel) == parent(b.vessel))
                || a.evidence.cutoff
                || b.evidence.cutoff)
    };
    all.sort_by(|a, b| {
        b.diameter_stenosis_pct
            .total_cmp(&a.diameter_stenosis_pct)
            .then(b.confidence.total_cmp(&a.confidence))
    });
    let mut kept: Vec<Lesion> = Vec::new();
    for l in all {
        let dup = kept.iter().any(|k| {
            related(k, &l)
                && match (k.site, l.site) {
                    (Some(a), Some(b)) => (a.row - b.row).hypot(a.col - b.col) <= limit_px,
                    _ => false,
                }
        });
        if !dup {
            kept.push(l);
        }
    }
    kept
}

/// Detects lesions in an OCT pullback from its lumen-area profile (one value per frame,
/// proximal or distal first as acquired) and the lumen channel count per frame (0 = not
/// measured). References are the largest lumen within `detection.reference_window_mm` on each
/// side of the narrowing (IVOCT convention [O1]); diameters are area-equivalent
/// (`2·sqrt(A/π)`). Typed web where ≥ `web_min_channels` channels on ≥ `web_min_samples`
/// frames, else subtotal when the area stenosis reaches the area equivalent of
/// `subtotal_min_ds_pct`, else ring.
pub fn detect_oct(area_mm2: &[f64], channels: &[u32], frame_spacing_mm: f64, rules: &Rules) -> Result<Vec<Lesion>> {
    rules.validate()?;
    if !(frame_spacing_mm.is_finite() && frame_spacing_mm > 0.0) {
        return Err(LesionError::invalid(
            "frame_spacing_mm",
            format!("must be finite and > 0, got {frame_spacing_mm}"),
        ));
    }
    if channels.len() != area_mm2.len() {
        return Err(LesionError::invalid(
            "channels",
            format!("{} channel counts for {} frames", channels.len(), area_mm2.len()),
        ));
    }
    if let Some(i) = area_mm2.iter().position(|&a| a < 0.0 || a == f64::INFINITY) {
        return Err(LesionError::invalid(
            format!("area_mm2[{i}]"),
            format!("must be >= 0 and finite or NaN (not measured), got {}", area_mm2[i]),
        ));
    }
    let det = &rules.detection;
    let c = &rules.classification;
    let n = area_mm2.len();
    // At most the whole pullback (a tiny spacing must not overflow the index arithmetic).
    let w = ((det.reference_window_mm / frame_spacing_mm).round() as usize).min(n);
    let ok = |i: usize| area_mm2[i].is_finite();
    let max_in = |lo: usize, hi: usize| {
        (lo..hi.min(n))
            .filter(|&i| ok(i))
            .map(|i| area_mm2[i])
            .fold(f64::NAN, f64::max)
    };
    // Running reference area: the upper percentile within the window, as for diameters.
    let frames: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let reference = running_percentile(&frames, area_mm2, w as f64, det.reference_percentile);
    // Shoulder and thresholds in area terms (area ∝ diameter²).
    let shoulder = det.shoulder_fraction.powi(2);
    let max_ratio = (1.0 - det.min_ds_pct / 100.0).powi(2);
    let web = |i: usize| channels[i] >= c.web_min_channels as u32;
    let below = |i: usize| ok(i) && reference[i] > 0.0 && area_mm2[i] / reference[i] < shoulder;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        if below(i) || web(i) {
            let start = i;
            while i + 1 < n && (below(i + 1) || web(i + 1)) {
                i += 1;
            }
            runs.push((start, i));
        }
        i += 1;
    }
    let gap = ((det.merge_gap_mm / frame_spacing_mm).floor() as usize).min(n);
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        match merged.last_mut() {
            Some(m) if r.0 - m.1 <= gap + 1 => m.1 = r.1,
            _ => merged.push(r),
        }
    }
    let mut out = Vec::new();
    for (a, z) in merged {
        let Some(mla_i) = (a..=z)
            .filter(|&i| ok(i))
            .min_by(|&i, &j| area_mm2[i].total_cmp(&area_mm2[j]))
        else {
            continue;
        };
        let prox = max_in(a.saturating_sub(w), a);
        let dist = max_in(z + 1, z + 1 + w);
        let ref_area = match (prox.is_finite(), dist.is_finite()) {
            (true, true) => 0.5 * (prox + dist),
            (true, false) => prox,
            (false, true) => dist,
            (false, false) => reference[mla_i],
        };
        if ref_area.is_nan() || ref_area <= 0.0 {
            continue;
        }
        let mla = area_mm2[mla_i];
        let multi = longest_run((a..=z).map(web));
        let is_web = multi >= c.web_min_samples;
        if mla / ref_area > max_ratio && !is_web {
            continue;
        }
        let as_pct = (1.0 - mla / ref_area) * 100.0;
        let mld = 2.0 * (mla / std::f64::consts::PI).sqrt();
        let refd = 2.0 * (ref_area / std::f64::consts::PI).sqrt();
        let ds = diameter_stenosis_pct(mld, refd);
        let sub_as = area_stenosis_pct(1.0 - c.subtotal_min_ds_pct / 100.0, 1.0);
        let channels_max = (a..=z).map(|i| channels[i]).max().unwrap_or(0);
        let (t, rule, text) = if is_web {
            (
                LesionType::Web,
                RuleFired::OctChannels,
                format!("B: {channels_max} lumen channels over {multi} frames"),
            )
        } else if as_pct >= sub_as {
            (
                LesionType::Subtotal,
                RuleFired::OctNearOcclusion,
                format!("C: area stenosis {as_pct:.1}% >= {sub_as:.1}% (flow not measured by OCT)"),
            )
        } else {
            (
                LesionType::Ring,
                RuleFired::OctNarrowing,
                format!("A: single-lumen narrowing, area stenosis {as_pct:.1}%"),
            )
        };
        let length = (z - a + 1) as f64 * frame_spacing_mm;
        let confidence = match rule {
            RuleFired::OctChannels => {
                0.5 + 0.5 * ((multi - c.web_min_samples) as f64 / c.web_min_samples as f64).min(1.0)
            }
            RuleFired::OctNearOcclusion => 0.5 + 0.5 * ((as_pct - sub_as) / (100.0 - sub_as).max(1e-6)).clamp(0.0, 1.0),
            // Ring from OCT alone cannot see the angiographic shape: the focal criterion is
            // the only margin available.
            _ => {
                let max_len = c.ring_max_length_ref * refd;
                0.5 + 0.5 * ((max_len - length) / max_len).clamp(0.0, 1.0)
            }
        };
        let ev = Evidence {
            modality: Modality::Oct,
            rule,
            rule_text: text,
            diameter_stenosis_pct: ds,
            area_stenosis_pct: as_pct,
            mld_mm: mld,
            reference_diameter_mm: refd,
            length_mm: length,
            arc_mm: mla_i as f64 * frame_spacing_mm,
            start_mm: a as f64 * frame_spacing_mm,
            end_mm: z as f64 * frame_spacing_mm,
            proximal_shoulder_slope_per_mm: None,
            distal_shoulder_slope_per_mm: None,
            symmetry: None,
            focal: length <= c.ring_max_length_ref * refd,
            channels_max,
            multichannel_samples: multi,
            lucent_bands: channels_max.saturating_sub(1),
            plateau_mm: None,
            density_ratio_min: None,
            low_density_samples: 0,
            mla_mm2: Some(mla),
            reference_area_mm2: Some(ref_area),
            flow_grade: None,
            flow_known: false,
            arrival_ms: None,
            distal_end: None,
            cutoff: false,
            distal_vessel_visible: true,
            continuation_gap_mm: None,
            distal_opacity_ratio: None,
            densitometric_ds_pct: None,
            centreline_contrast_ratio_min: None,
            low_contrast_samples: 0,
            stump_contrast_ratio: None,
            beyond_end_ratio: None,
            beyond_end_neck_ratio: None,
            cine_refill_ratio: None,
            stump: None,
            segment_tortuosity: None,
            local_tortuosity: None,
            distal_tortuosity: None,
            lesion_angle_deg: None,
            reliable_fraction: (a..=z).filter(|&i| ok(i)).count() as f64 / (z - a + 1) as f64,
        };
        out.push(Lesion {
            id: out.len(),
            vessel: None,
            site: None,
            lesion_type: t,
            confidence,
            mld_mm: mld,
            reference_diameter_mm: refd,
            diameter_stenosis_pct: ds,
            length_mm: length,
            evidence: ev,
            priority: None,
            reason: String::new(),
            risk_flags: Vec::new(),
            score: 0.0,
            balloon_mm: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two unrelated straight branches (separate pieces of the tree), 0.2 mm/px.
    fn two_pieces() -> VesselTree {
        let sample = |point: Point, arc_mm: f64| vesselkit_core::ProfileSample {
            point,
            arc_mm,
            diameter_mm: 3.0,
            left_mm: 1.5,
            right_mm: 1.5,
            channels: 1,
            density_ratio: 1.0,
            reliable: true,
        };
        let piece = |id: usize, from: Point, to: Point| Branch {
            id,
            parent: None,
            children: Vec::new(),
            samples: vec![sample(from, 0.0), sample(to, from.dist(to) * 0.2)],
            length_mm: from.dist(to) * 0.2,
            distal_end: BranchEnd::Abrupt,
            tortuosity: Tortuosity::default(),
            arrival_ms: None,
            flow_grade: None,
        };
        VesselTree {
            branches: vec![
                piece(0, Point::new(50.0, 0.0), Point::new(50.0, 48.0)),
                piece(1, Point::new(50.0, 100.0), Point::new(50.0, 52.0)),
            ],
            root: Some(0),
            calibration: vesselkit_core::Calibration::user(0.2).unwrap(),
        }
    }

    fn lesion_at(t: &VesselTree, vessel: usize, col: f64, cutoff: bool, ds: f64) -> Lesion {
        let rules = Rules::default();
        let p = Profile::new(vessel, &t.branches[vessel], None, None, &rules).unwrap();
        let mut ev = base_evidence(&p, t, (1.0, 2.0), (0.0, 3.0), &rules);
        ev.cutoff = cutoff;
        ev.diameter_stenosis_pct = ds;
        ev.reference_diameter_mm = 3.0;
        ev.mld_mm = 3.0 * (1.0 - ds / 100.0);
        new_lesion(Some(vessel), Some(Site { row: 50.0, col }), ev, &rules)
    }

    #[test]
    fn a_cut_off_seen_from_both_pieces_of_its_vessel_is_one_lesion() {
        let t = two_pieces();
        let rules = Rules::default();
        let kept = |a: Lesion, b: Lesion| suppress_duplicates(vec![a, b], &t, &rules);
        // The stump's cut-off and the far piece's, 0.4 mm apart across the gap.
        let k = kept(lesion_at(&t, 0, 49.0, true, 100.0), lesion_at(&t, 1, 51.0, true, 100.0));
        assert_eq!(k.len(), 1);
        // A cut-off and a narrowing measured on the far piece next to the gap: the cut-off stays.
        let k = kept(lesion_at(&t, 1, 55.0, false, 60.0), lesion_at(&t, 0, 49.0, true, 100.0));
        assert_eq!(k.len(), 1);
        assert!(k[0].evidence.cutoff);
        // Farther apart than `nms_distance_mm` (3 mm = 15 px): two lesions.
        let k = kept(lesion_at(&t, 0, 30.0, true, 100.0), lesion_at(&t, 1, 51.0, true, 100.0));
        assert_eq!(k.len(), 2);
        // Two narrowings on unrelated branches (vessels crossing in projection) both stand.
        let k = kept(lesion_at(&t, 0, 47.0, false, 60.0), lesion_at(&t, 1, 53.0, false, 55.0));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn running_percentile_matches_a_sort_per_window() {
        let pos: Vec<f64> = (0..300)
            .map(|i| i as f64 * 0.1 + (i as f64 * 0.37).sin() * 0.01)
            .collect();
        let v: Vec<f64> = (0..300)
            .map(|i| {
                if i % 17 == 0 {
                    f64::NAN
                } else {
                    (i as f64 * 1.3).sin() * 2.0 + 3.0
                }
            })
            .collect();
        // Also with many ties (values rounded to 0.5) and a window too short to hold any value.
        let tied: Vec<f64> = v.iter().map(|x| (x * 2.0).round() / 2.0).collect();
        for (v, half) in [(&v, 2.5), (&tied, 2.5), (&tied, 0.04)] {
            for p in [0.0, 50.0, 90.0, 100.0] {
                let fast = running_percentile(&pos, v, half, p);
                for i in 0..pos.len() {
                    let mut w: Vec<f64> = (0..pos.len())
                        .filter(|&j| (pos[j] - pos[i]).abs() <= half && v[j].is_finite())
                        .map(|j| v[j])
                        .collect();
                    let want = percentile(&mut w, p);
                    assert!(
                        (fast[i] - want).abs() < 1e-12 || (fast[i].is_nan() && want.is_nan()),
                        "p {p} half {half} at {i}: {} vs {want}",
                        fast[i]
                    );
                }
            }
        }
    }

    #[test]
    fn noisy_straight_line_has_no_bends() {
        // Centerline jitter of ±0.5 px flips the sign of the local turning every few samples;
        // without hysteresis each flip would end a bend.
        let line: Vec<Point> = (0..400)
            .map(|i| Point::new(0.5 * ((i * 7919) % 13) as f64 / 12.0 - 0.25, i as f64 * 0.5))
            .collect();
        let t = tortuosity_of(&line, 5.0, 0.2, 45.0).unwrap();
        assert_eq!(t.bends, 0, "{t:?}");
        assert!(t.max_bend_deg < 15.0, "{t:?}");
        // Two opposite 60° turns joined by straight runs: two bends of 60°, one inflection.
        let mut zig: Vec<Point> = (0..100).map(|i| Point::new(0.0, i as f64)).collect();
        let (s, c) = (60f64.to_radians().sin(), 60f64.to_radians().cos());
        for i in 1..=100 {
            zig.push(Point::new(i as f64 * s, 99.0 + i as f64 * c));
        }
        let end = zig[zig.len() - 1];
        for i in 1..=100 {
            zig.push(Point::new(end.row, end.col + i as f64));
        }
        let t = tortuosity_of(&zig, 1.0, 0.1, 45.0).unwrap();
        assert_eq!(t.bends, 2, "{t:?}");
        assert!((t.max_bend_deg - 60.0).abs() < 1.0, "{t:?}");
        assert!((t.icm - 2.0 * t.dm).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn tortuosity_of_straight_line_and_half_circle() {
        let line: Vec<Point> = (0..50).map(|i| Point::new(0.0, i as f64)).collect();
        let t = tortuosity_of(&line, 1.0, 0.1, 45.0).unwrap();
        assert!((t.dm - 1.0).abs() < 1e-12 && t.bends == 0 && t.soam_rad_per_mm == 0.0);
        // Half circle of radius 20 px: DM = pi/2, one bend of about 180°, SOAM = pi / length.
        let arc: Vec<Point> = (0..=400)
            .map(|i| {
                let a = std::f64::consts::PI * i as f64 / 400.0;
                Point::new(20.0 * a.sin(), -20.0 * a.cos())
            })
            .collect();
        let t = tortuosity_of(&arc, 0.5, 0.1, 45.0).unwrap();
        assert!((t.dm - std::f64::consts::FRAC_PI_2).abs() < 0.01, "{t:?}");
        assert_eq!(t.bends, 1);
        assert!((t.max_bend_deg - 180.0).abs() < 3.0, "{t:?}");
        let length_mm = 20.0 * std::f64::consts::PI * 0.1;
        assert!(
            (t.soam_rad_per_mm - t.max_bend_deg.to_radians() / length_mm).abs() < 1e-3,
            "{t:?}"
        );
    }
}
