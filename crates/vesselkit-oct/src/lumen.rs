//! Lumen contour of one OCT frame: catheter and guidewire handling, then a globally optimal
//! closed boundary found by dynamic programming over angle in polar space.

use crate::channels::{Channel, ChannelInput, Septum, find_channels};
use crate::error::{OctError, Result, finite_pixels, positive};
use crate::metrics::{LumenMetrics, contour_mask, lumen_metrics};
use crate::polar::{CartesianGrid, GridSource, OctGeometry, bilinear, bilinear_polar, resample_polar};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use vesselkit_core::{Contour, Point};

/// Options for [`oct_lumen`]. Lengths are in mm so that they hold across image scales; the
/// defaults are detection settings (search ranges and filter widths), not clinical thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OctOptions {
    /// Scale of a cartesian frame (ignored for polar input, whose scale comes from `polar`).
    pub mm_per_px: f64,
    /// Catheter centre of a cartesian frame; `None` = image centre `((rows-1)/2, (cols-1)/2)`.
    pub center: Option<Point>,
    /// `Some(geometry)` when the frame is polar `[a_lines, samples]` (DICOM IVOCT);
    /// `None` for a cartesian frame (console export).
    pub polar: Option<OctGeometry>,
    /// Number of angles of the internal polar image.
    pub n_angles: usize,
    /// Radial step of the internal polar image in pixels of the analysis frame; `None` picks
    /// 1 px, coarser when needed to keep at most `max_radial_samples` samples (speed).
    pub radial_step_px: Option<f64>,
    /// Upper bound on radial samples when `radial_step_px` is `None`.
    pub max_radial_samples: usize,
    /// Outer radius of catheter and sheath (mm) when known; `None` detects the rings.
    pub catheter_radius_mm: Option<f64>,
    /// Auto-detection looks for catheter/sheath rings only inside this radius (mm).
    pub max_catheter_radius_mm: f64,
    /// Outermost radius searched for the lumen (mm); `None` = as far as the image reaches.
    pub max_radius_mm: Option<f64>,
    /// Width of the dark window inside a candidate edge (mm).
    pub edge_inner_mm: f64,
    /// Width of the bright window outside a candidate edge (mm). Wider than a septum so that
    /// thin bright structures inside the lumen score lower than the wall.
    pub edge_outer_mm: f64,
    /// Largest radial step of the boundary between neighbouring angles (in radial samples).
    pub max_step: usize,
    /// Cost per radial sample of a step between neighbouring angles (smoothness).
    pub step_penalty: f32,
    /// Extra cost of a step larger than `max_step` (a jump onto a side-branch wall or along a
    /// radial edge), in units of normalised edge strength.
    pub jump_cost: f32,
    /// Weight of the fraction of bright pixels between catheter and boundary (the lumen is
    /// dark, so a boundary beyond bright tissue is penalised).
    pub inside_bright_weight: f32,
    /// Gaussian smoothing of the final radius profile, in degrees.
    pub smooth_deg: f64,
    /// Look for a guidewire (bright spot with a dark shadow behind it).
    pub detect_guidewire: bool,
    /// An angle is in shadow when the brightest tissue behind its brightest point is darker
    /// than this fraction of the median (over all angles) of the same quantity.
    pub shadow_ratio: f32,
    /// Edges weaker than this (in normalised intensity) are treated as missing and the
    /// boundary is interpolated across them (side branches, shadows).
    pub min_edge: f32,
    /// Septum detection: a pixel inside the lumen is bright (septum) above
    /// `lumen + septum_contrast * (wall - lumen)`.
    pub septum_contrast: f32,
    /// Dark components smaller than this are not counted as channels (mm²).
    pub min_channel_area_mm2: f64,
    /// Dark components smaller than this fraction of the lumen area are not counted as
    /// channels either: the slivers left between two septa that meet at an angle, or between
    /// a septum and the wall, are a few per cent of the lumen at most.
    #[serde(default = "default_min_channel_fraction")]
    pub min_channel_fraction: f64,
    /// Side of the resampled patch used for channel analysis, in pixels.
    pub channel_patch_px: usize,
}

fn default_min_channel_fraction() -> f64 {
    0.02
}

impl Default for OctOptions {
    fn default() -> Self {
        Self {
            mm_per_px: 0.01,
            center: None,
            polar: None,
            n_angles: 256,
            radial_step_px: None,
            max_radial_samples: 192,
            catheter_radius_mm: None,
            max_catheter_radius_mm: 0.75,
            max_radius_mm: None,
            edge_inner_mm: 0.05,
            edge_outer_mm: 0.25,
            max_step: 3,
            step_penalty: 0.01,
            jump_cost: 1.0,
            inside_bright_weight: 0.5,
            smooth_deg: 2.0,
            detect_guidewire: true,
            shadow_ratio: 0.35,
            min_edge: 0.08,
            septum_contrast: 0.5,
            min_channel_area_mm2: 0.02,
            min_channel_fraction: default_min_channel_fraction(),
            channel_patch_px: 192,
        }
    }
}

/// Everything found in one frame. Coordinates are pixels of `grid` (the input image for a
/// cartesian frame, [`CartesianGrid::fitting`] for a polar one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OctFrameResult {
    /// Closed lumen contour, one point per angle, in `(row, col)` pixels of `grid`. Where the
    /// lumen (a side branch) runs out of the image with no wall in view, the contour follows
    /// the edge of the analysed disc there, as manual contours do.
    pub contour: Contour,
    /// Per contour point: true where the boundary was interpolated (guidewire shadow, missing
    /// edge) rather than seen.
    pub interpolated: Vec<bool>,
    /// Angular extent of the guidewire shadow `(start, end)` in radians in `[0, 2 pi)`,
    /// counted from +col towards +row; `end < start` means the arc wraps through 0.
    pub guidewire_shadow: Option<(f64, f64)>,
    /// Outer radius of catheter and sheath used to start the search (mm).
    pub catheter_radius_mm: f64,
    pub metrics: LumenMetrics,
    /// Dark lumen components separated by septa, largest first.
    pub channels: Vec<Channel>,
    /// Thin bright tissue bands that separate channels, one per straight piece (a hub with n
    /// arms gives n); `lumen_mask` and `metrics.area_mm2` leave them out.
    pub septa: Vec<Septum>,
    /// The pixel frame of `contour`.
    pub grid: CartesianGrid,
    /// The contour follows a side branch: it runs out to the edge of the analysed disc, or it
    /// jumps out onto a farther wall and back. The area then includes part of the branch, so
    /// a pullback does not take such a frame as a reference.
    #[serde(default)]
    pub side_branch: bool,
}

impl OctFrameResult {
    /// Number of lumen channels (1 for a plain lumen, 2+ for a web / recanalised thrombus).
    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }
    /// Boolean lumen mask `[rows, cols]`: pixel centres inside the contour and outside every
    /// septum (the union of the channels, as `metrics.area_mm2`).
    pub fn lumen_mask(&self, rows: usize, cols: usize) -> Array2<bool> {
        let mut mask = self.outline_mask(rows, cols);
        let mm = self.grid.mm_per_px;
        for s in &self.septa {
            let Some((r0, r1, c0, c1)) = septum_box(s, mm, rows, cols) else {
                continue;
            };
            for r in r0..=r1 {
                for c in c0..=c1 {
                    if s.covers(r as f64, c as f64, mm) {
                        mask[[r, c]] = false;
                    }
                }
            }
        }
        mask
    }
    /// Boolean mask `[rows, cols]` of the outer contour (septa included: the vessel's outline).
    pub fn outline_mask(&self, rows: usize, cols: usize) -> Array2<bool> {
        contour_mask(&self.contour, rows, cols)
    }
}

/// Pixel bounding box `(r0, r1, c0, c1)` (inclusive) of a septum band, clipped to the frame;
/// `None` when it lies outside or is not finite.
fn septum_box(s: &Septum, mm_per_px: f64, rows: usize, cols: usize) -> Option<(usize, usize, usize, usize)> {
    let h = 0.5 * s.thickness_mm / mm_per_px + 1.0;
    let lo_r = s.start.row.min(s.end.row) - h;
    let hi_r = s.start.row.max(s.end.row) + h;
    let lo_c = s.start.col.min(s.end.col) - h;
    let hi_c = s.start.col.max(s.end.col) + h;
    if !(lo_r.is_finite() && hi_r.is_finite() && lo_c.is_finite() && hi_c.is_finite()) || rows == 0 || cols == 0 {
        return None;
    }
    if hi_r < 0.0 || hi_c < 0.0 || lo_r > (rows - 1) as f64 || lo_c > (cols - 1) as f64 {
        return None;
    }
    let clip = |v: f64, n: usize| v.max(0.0).min((n - 1) as f64) as usize;
    Some((
        clip(lo_r.ceil(), rows),
        clip(hi_r.floor(), rows),
        clip(lo_c.ceil(), cols),
        clip(hi_c.floor(), cols),
    ))
}

/// Even-odd test of a point against a closed polygon.
fn inside_polygon(contour: &Contour, row: f64, col: f64) -> bool {
    let pts = &contour.points;
    let n = pts.len();
    let mut inside = false;
    for i in 0..n {
        let (a, b) = (pts[i], pts[(i + 1) % n]);
        if (a.row <= row && b.row > row) || (b.row <= row && a.row > row) {
            let x = a.col + (row - a.row) / (b.row - a.row) * (b.col - a.col);
            if x < col {
                inside = !inside;
            }
        }
    }
    inside
}

/// Number of pixels that [`OctFrameResult::lumen_mask`] takes out of the contour mask for the
/// septa (each pixel once). The contour is star-shaped around `center` with one `radius` per
/// angle, which decides all but the pixels next to it; those get the exact polygon test.
fn septa_pixels_inside(septa: &[Septum], contour: &Contour, radius: &[f64], center: Point, mm_per_px: f64) -> usize {
    if septa.is_empty() || radius.is_empty() {
        return 0;
    }
    let r_max = radius.iter().fold(0.0f64, |m, &r| m.max(r)) + 2.0;
    let rows = (center.row + r_max).max(0.0) as usize + 1;
    let cols = (center.col + r_max).max(0.0) as usize + 1;
    let boxes: Vec<(usize, usize, usize, usize)> = septa
        .iter()
        .filter_map(|s| septum_box(s, mm_per_px, rows, cols))
        .collect();
    let Some(r_lo) = boxes.iter().map(|b| b.0).min() else {
        return 0;
    };
    let c_lo = boxes.iter().map(|b| b.2).min().unwrap_or(0);
    let r_hi = boxes.iter().map(|b| b.1).max().unwrap_or(r_lo);
    let c_hi = boxes.iter().map(|b| b.3).max().unwrap_or(c_lo);
    let w = c_hi - c_lo + 1;
    // Pixels already counted, over the union of the boxes.
    let mut seen = vec![false; (r_hi - r_lo + 1) * w];
    let mut n = 0;
    for s in septa {
        let Some((r0, r1, c0, c1)) = septum_box(s, mm_per_px, rows, cols) else {
            continue;
        };
        for r in r0..=r1 {
            for c in c0..=c1 {
                let (y, x) = (r as f64, c as f64);
                let i = (r - r_lo) * w + (c - c_lo);
                if seen[i] || !s.covers(y, x, mm_per_px) {
                    continue;
                }
                let (dy, dx) = (y - center.row, x - center.col);
                let d = dy.hypot(dx) - crate::channels::radius_at(radius, dy.atan2(dx));
                let inside = if d.abs() < 1.5 {
                    inside_polygon(contour, y, x)
                } else {
                    d < 0.0
                };
                if inside {
                    seen[i] = true;
                    n += 1;
                }
            }
        }
    }
    n
}

/// Where intensities come from: a cartesian image or polar A-lines.
pub(crate) enum Source<'a> {
    Cart {
        img: ArrayView2<'a, f32>,
        center: Point,
    },
    /// Polar A-lines; `center` is the catheter in the analysis frame.
    Polar {
        img: ArrayView2<'a, f32>,
        z_offset: f64,
        center: Point,
    },
}

impl Source<'_> {
    /// Intensity at `(row, col)` in pixels of the analysis frame (bilinear; `None` outside).
    #[inline]
    pub(crate) fn at_px(&self, row: f64, col: f64) -> Option<f32> {
        match self {
            Source::Cart { img, .. } => bilinear(img, row, col),
            Source::Polar { img, z_offset, center } => {
                let (dr, dc) = (row - center.row, col - center.col);
                let t = dr.atan2(dc).rem_euclid(TAU);
                bilinear_polar(img, t / TAU * img.nrows() as f64, dr.hypot(dc) - z_offset)
            }
        }
    }
}

/// The internal polar image and what was learned from it.
pub(crate) struct PolarWork {
    /// Normalised (1st..99.5th percentile -> 0..1), lightly smoothed `[n_angles, n_k]`.
    pub ps: Array2<f32>,
    /// The same before smoothing.
    pub raw: Array2<f32>,
    pub dr: f64,
    pub k_min: usize,
    /// Source intensity per unit of the normalised images.
    pub scale: f32,
}

fn percentile(values: &mut [f32], q: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let idx = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(idx, f32::total_cmp);
    *v
}

/// Circular box smoothing along axis 0 (angle) and plain box along axis 1 (radius; the window
/// shrinks at the ends). Works on contiguous rows: this runs on every frame.
fn smooth_polar(p: &Array2<f32>, ha: usize, hk: usize) -> Result<Array2<f32>> {
    let (na, nk) = p.dim();
    let src = p.as_standard_layout();
    let src = src
        .as_slice()
        .ok_or_else(|| OctError::shape("polar image", "not contiguous"))?;
    let mut tmp = vec![0.0f32; na * nk];
    for (row, out) in src.chunks_exact(nk).zip(tmp.chunks_exact_mut(nk)) {
        let mut acc = 0.0f32;
        let (mut lo, mut hi) = (0usize, 0usize); // running window [lo, hi)
        for (k, o) in out.iter_mut().enumerate() {
            let want_hi = (k + hk + 1).min(nk);
            while hi < want_hi {
                acc += row[hi];
                hi += 1;
            }
            let want_lo = k.saturating_sub(hk);
            while lo < want_lo {
                acc -= row[lo];
                lo += 1;
            }
            *o = acc / (hi - lo) as f32;
        }
    }
    let out = if ha == 0 {
        tmp
    } else {
        let mut out = vec![0.0f32; na * nk];
        let inv = 1.0 / (2 * ha + 1) as f32;
        for (a, o) in out.chunks_exact_mut(nk).enumerate() {
            for d in 0..=2 * ha {
                let s = (a + na + d - ha) % na;
                for (x, &y) in o.iter_mut().zip(&tmp[s * nk..(s + 1) * nk]) {
                    *x += y;
                }
            }
            for x in o.iter_mut() {
                *x *= inv;
            }
        }
        out
    };
    Array2::from_shape_vec((na, nk), out).map_err(|e| OctError::shape("polar image", e.to_string()))
}

/// A ray is open (no wall in view up to the image edge) when at most this fraction of its
/// samples beyond the catheter is brighter than the lumen/tissue threshold (burned-in markers
/// may cross it).
const OPEN_RAY_BRIGHT_FRACTION: f32 = 0.05;
/// A guidewire's reflection is at least this bright (normalised). Its surface may be a single
/// sample thick, which the smoothing dims: a low bar, since the shadow behind is the evidence.
const GUIDEWIRE_MIN_PEAK: f32 = 0.2;
/// Longest run of bright samples (mm) an open ray may hold.
const OPEN_RAY_MAX_RUN_MM: f64 = 0.1;
/// Edge strength (normalised intensity) given to the image edge on an open ray: about a weak
/// wall, so the boundary goes out only where nothing better is seen.
const OPEN_EDGE_STRENGTH: f32 = 0.3;

/// Otsu threshold of values in [0, 1]-ish range (256 bins over their min..max), given as
/// slices (rows of the polar image, without copying them).
fn otsu<'a, I>(chunks: I) -> f32
where
    I: Iterator<Item = &'a [f32]> + Clone,
{
    // Eight independent lanes (the compiler vectorises them); values are finite here.
    let (mut lo8, mut hi8) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8]);
    for c in chunks.clone() {
        let mut it = c.chunks_exact(8);
        for q in &mut it {
            for i in 0..8 {
                lo8[i] = if q[i] < lo8[i] { q[i] } else { lo8[i] };
                hi8[i] = if q[i] > hi8[i] { q[i] } else { hi8[i] };
            }
        }
        for &v in it.remainder() {
            lo8[0] = lo8[0].min(v);
            hi8[0] = hi8[0].max(v);
        }
    }
    let mn = lo8.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    let mx = hi8.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    if mx.is_nan() || mx <= mn {
        return mn;
    }
    // Four interleaved histograms: consecutive samples often fall in the same bin, and one
    // histogram would serialise on that bin's counter.
    let mut sub = [[0u32; 256]; 4];
    let scale = 255.0 / (mx - mn);
    let mut count = 0usize;
    for c in chunks {
        count += c.len();
        let mut quads = c.chunks_exact(4);
        for q in &mut quads {
            for (h, &v) in sub.iter_mut().zip(q) {
                h[((v - mn) * scale) as usize & 255] += 1;
            }
        }
        for &v in quads.remainder() {
            sub[0][((v - mn) * scale) as usize & 255] += 1;
        }
    }
    let mut hist = [0u32; 256];
    for (i, h) in hist.iter_mut().enumerate() {
        *h = sub[0][i] + sub[1][i] + sub[2][i] + sub[3][i];
    }
    let total = count as f64;
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &h)| i as f64 * h as f64).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0f64, 0.0f64, -1.0f64, 0usize);
    for (t, &h) in hist.iter().enumerate() {
        w0 += h as f64;
        if w0 == 0.0 {
            continue;
        }
        let w1 = total - w0;
        if w1 == 0.0 {
            break;
        }
        sum0 += t as f64 * h as f64;
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    mn + (best_t as f32 + 0.5) / scale
}

/// Catheter and sheath: the outermost thin bright ring in the angular median profile within
/// `k_hi`. Returns the first radial index after it (plus a small gap), or 0 without rings.
fn detect_catheter(ps: &Array2<f32>, k_hi: usize, gap: usize) -> usize {
    let (na, nk) = ps.dim();
    let k_hi = k_hi.min(nk);
    let mut col = vec![0.0f32; na];
    let mut med = vec![0.0f32; k_hi];
    for (k, m) in med.iter_mut().enumerate() {
        for (a, v) in col.iter_mut().enumerate() {
            *v = ps[[a, k]];
        }
        *m = percentile(&mut col, 0.5);
    }
    // A ring is a run of radii where most angles are bright; it must end (drop back to dark)
    // before k_hi, which tells it from a lumen wall that merely lies close to the catheter.
    let thr = 0.3f32;
    let mut last_end = None;
    let mut in_ring = false;
    for (k, &m) in med.iter().enumerate() {
        if m >= thr {
            in_ring = true;
        } else if in_ring {
            in_ring = false;
            last_end = Some(k);
        }
    }
    match last_end {
        Some(k) => (k + gap).min(nk.saturating_sub(1)),
        None => 0,
    }
}

/// Circular runs of `true` in `flags` as `(start, len)`.
pub(crate) fn circular_runs(flags: &[bool]) -> Vec<(usize, usize)> {
    let n = flags.len();
    if flags.iter().all(|&f| f) {
        return vec![(0, n)];
    }
    let Some(first_false) = flags.iter().position(|&f| !f) else {
        return vec![];
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < n {
        let a = (first_false + i) % n;
        if flags[a] {
            let start = a;
            let mut len = 0;
            while i < n && flags[(first_false + i) % n] {
                len += 1;
                i += 1;
            }
            runs.push((start, len));
        } else {
            i += 1;
        }
    }
    runs
}

/// Guidewire: a very bright point followed by a deep shadow. Returns flagged angles and the
/// arc `(start, len)` in angle indices.
fn detect_guidewire(ps: &Array2<f32>, k_min: usize, gap: usize, ratio: f32) -> Option<(usize, usize)> {
    let (na, nk) = ps.dim();
    if k_min + gap + 2 >= nk {
        return None;
    }
    let mut peak = vec![0.0f32; na];
    let mut after = vec![0.0f32; na];
    for a in 0..na {
        let row = ps.row(a);
        let (mut kp, mut vp) = (k_min, f32::NEG_INFINITY);
        for k in k_min..nk {
            if row[k] > vp {
                vp = row[k];
                kp = k;
            }
        }
        // Brightest tissue anywhere behind the peak: a shadow has none, whereas a septum or
        // blood residue in front of the wall leaves the wall visible behind it.
        let s = (kp + gap).min(nk - 1);
        let m = row.iter().skip(s).fold(0.0f32, |m, &v| m.max(v));
        peak[a] = vp;
        after[a] = m;
    }
    let mut tmp = after.clone();
    let med = percentile(&mut tmp, 0.5);
    if med <= 0.0 {
        return None;
    }
    let flags: Vec<bool> = (0..na)
        .map(|a| after[a] < ratio * med && peak[a] > GUIDEWIRE_MIN_PEAK)
        .collect();
    let min_len = (na / 180).max(2);
    let max_len = na / 4;
    circular_runs(&flags)
        .into_iter()
        .filter(|&(_, len)| len >= min_len && len <= max_len)
        .max_by(|x, y| {
            let score = |&(s, l): &(usize, usize)| (0..l).map(|i| peak[(s + i) % na]).fold(0.0f32, f32::max);
            score(x).total_cmp(&score(y))
        })
}

/// Dynamic programming over angle. `cost[a, k]` for `k in k_min..nk`; returns one radial index
/// per angle forming a closed path (the last angle joins the first). A step of `d` samples
/// between neighbouring angles costs `pen * d` when `d <= max_step`, and `jump + pen * d`
/// beyond: long jumps (side-branch walls, radial lumen edges) are allowed but must pay off.
fn dp_closed(cost: &Array2<f32>, k_min: usize, max_step: usize, pen: f32, jump: f32) -> Vec<usize> {
    let (na, nk) = cost.dim();
    let trans = |d: usize| {
        if d <= max_step {
            pen * d as f32
        } else {
            jump + pen * d as f32
        }
    };
    let run = |start_a: usize, fixed: Option<usize>| -> Vec<usize> {
        let mut acc = vec![f32::INFINITY; nk];
        let mut back = vec![0u16; na * nk];
        for k in k_min..nk {
            match fixed {
                Some(k0) if k != k0 => {}
                _ => acc[k] = cost[[start_a, k]],
            }
        }
        let mut next = vec![f32::INFINITY; nk];
        // L1 distance transform of `acc` (slope `pen`) with its argmin: the best long jump.
        let mut g = vec![f32::INFINITY; nk];
        let mut garg = vec![0usize; nk];
        let mut best = vec![f32::INFINITY; nk];
        for step in 1..na {
            let a = (start_a + step) % na;
            g[k_min] = acc[k_min];
            garg[k_min] = k_min;
            for k in k_min + 1..nk {
                let (v0, v1) = (acc[k], g[k - 1] + pen);
                if v0 <= v1 {
                    g[k] = v0;
                    garg[k] = k;
                } else {
                    g[k] = v1;
                    garg[k] = garg[k - 1];
                }
            }
            for k in (k_min..nk - 1).rev() {
                if g[k + 1] + pen < g[k] {
                    g[k] = g[k + 1] + pen;
                    garg[k] = garg[k + 1];
                }
            }
            let crow = cost.row(a);
            let brow = &mut back[step * nk..(step + 1) * nk];
            // Best predecessor of every k: the long jump, then the steps d = -max_step..=max_step
            // in increasing order with a strict comparison (ties go to the smaller index). One
            // pass per step over contiguous slices, which the compiler vectorises.
            for k in k_min..nk {
                best[k] = g[k] + jump;
                brow[k] = garg[k] as u16;
            }
            for d in -(max_step as isize)..=(max_step as isize) {
                let w = pen * d.unsigned_abs() as f32;
                let k_lo = if d < 0 { k_min + d.unsigned_abs() } else { k_min };
                let k_hi = if d > 0 { nk.saturating_sub(d as usize) } else { nk };
                if k_lo >= k_hi {
                    continue;
                }
                let s_lo = k_lo.wrapping_add_signed(d);
                let src = &acc[s_lo..s_lo + (k_hi - k_lo)];
                for (i, ((b, arg), &v)) in best[k_lo..k_hi]
                    .iter_mut()
                    .zip(brow[k_lo..k_hi].iter_mut())
                    .zip(src)
                    .enumerate()
                {
                    let v = v + w;
                    if v < *b {
                        *b = v;
                        *arg = (s_lo + i) as u16;
                    }
                }
            }
            for k in k_min..nk {
                next[k] = best[k] + crow[k];
            }
            std::mem::swap(&mut acc, &mut next);
        }
        let mut kbest = k_min;
        let mut vbest = f32::INFINITY;
        for (k, &v) in acc.iter().enumerate().skip(k_min) {
            let v = v + fixed.map_or(0.0, |k0| trans(k.abs_diff(k0)));
            if v < vbest {
                vbest = v;
                kbest = k;
            }
        }
        let mut path = vec![0usize; na];
        let mut k = kbest;
        for step in (0..na).rev() {
            path[(start_a + step) % na] = k;
            if step > 0 {
                k = back[step * nk + k] as usize;
            }
        }
        path
    };
    let first = run(0, None);
    // The best open path is also the best closed one when it happens to close.
    if first[0].abs_diff(first[na - 1]) <= max_step {
        return first;
    }
    let a0 = na / 2;
    run(a0, Some(first[a0]))
}

/// Circular Gaussian smoothing of a profile (sigma in samples).
fn smooth_circular(v: &[f64], sigma: f64) -> Vec<f64> {
    let n = v.len();
    if sigma <= 0.0 || n < 3 {
        return v.to_vec();
    }
    let h = ((3.0 * sigma).ceil() as usize).min(n / 2);
    let w: Vec<f64> = (0..=2 * h)
        .map(|i| {
            let d = i as f64 - h as f64;
            (-0.5 * d * d / (sigma * sigma)).exp()
        })
        .collect();
    let ws: f64 = w.iter().sum();
    (0..n)
        .map(|i| (0..=2 * h).map(|j| w[j] * v[(i + n + j - h) % n]).sum::<f64>() / ws)
        .collect()
}

fn check_options(o: &OctOptions) -> Result<()> {
    if o.n_angles < 32 || o.n_angles > 4096 {
        return Err(OctError::invalid(
            "n_angles",
            format!("must be in 32..=4096, got {}", o.n_angles),
        ));
    }
    if let Some(s) = o.radial_step_px {
        positive("radial_step_px", s)?;
    }
    if o.max_radial_samples < 32 {
        return Err(OctError::invalid(
            "max_radial_samples",
            format!("must be at least 32, got {}", o.max_radial_samples),
        ));
    }
    positive("max_catheter_radius_mm", o.max_catheter_radius_mm)?;
    positive("edge_inner_mm", o.edge_inner_mm)?;
    positive("edge_outer_mm", o.edge_outer_mm)?;
    positive("min_channel_area_mm2", o.min_channel_area_mm2)?;
    if !(o.min_channel_fraction >= 0.0 && o.min_channel_fraction < 1.0) {
        return Err(OctError::invalid(
            "min_channel_fraction",
            format!("must be in [0, 1), got {}", o.min_channel_fraction),
        ));
    }
    if let Some(r) = o.catheter_radius_mm {
        positive("catheter_radius_mm", r)?;
    }
    if let Some(r) = o.max_radius_mm {
        positive("max_radius_mm", r)?;
    }
    if o.max_step == 0 || o.max_step > 64 {
        return Err(OctError::invalid(
            "max_step",
            format!("must be in 1..=64, got {}", o.max_step),
        ));
    }
    for (f, v) in [
        ("step_penalty", o.step_penalty),
        ("jump_cost", o.jump_cost),
        ("inside_bright_weight", o.inside_bright_weight),
        ("min_edge", o.min_edge),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(OctError::invalid(f, format!("must be finite and >= 0, got {v}")));
        }
    }
    if !(o.shadow_ratio > 0.0 && o.shadow_ratio < 1.0) {
        return Err(OctError::invalid(
            "shadow_ratio",
            format!("must be in (0, 1), got {}", o.shadow_ratio),
        ));
    }
    if !(o.septum_contrast > 0.0 && o.septum_contrast < 1.0) {
        return Err(OctError::invalid(
            "septum_contrast",
            format!("must be in (0, 1), got {}", o.septum_contrast),
        ));
    }
    if !o.smooth_deg.is_finite() || o.smooth_deg < 0.0 {
        return Err(OctError::invalid(
            "smooth_deg",
            format!("must be finite and >= 0, got {}", o.smooth_deg),
        ));
    }
    if o.channel_patch_px < 16 || o.channel_patch_px > 4096 {
        return Err(OctError::invalid(
            "channel_patch_px",
            format!("must be in 16..=4096, got {}", o.channel_patch_px),
        ));
    }
    Ok(())
}

/// Find the lumen of one OCT frame and measure it.
///
/// `frame` is cartesian (console export, catheter at `opts.center`) unless `opts.polar` is set,
/// in which case it is polar `[a_lines, samples]`. Intensities: any linear or log scale with a
/// dark lumen and bright wall (convert RGB exports to luminance first). The pixels the analysis
/// reads (the disc around the catheter out to the search radius) must be finite; corners
/// outside it are not looked at.
pub fn oct_lumen(frame: ArrayView2<f32>, opts: &OctOptions) -> Result<OctFrameResult> {
    check_options(opts)?;
    let (rows, cols) = frame.dim();
    if rows < 16 || cols < 16 {
        return Err(OctError::shape(
            "frame",
            format!("{rows} x {cols}; need at least 16 x 16"),
        ));
    }
    // The analysis frame: where radii are measured and the contour lives.
    let (src, grid, r_limit) = match &opts.polar {
        None => {
            positive("mm_per_px", opts.mm_per_px)?;
            let center = opts
                .center
                .unwrap_or(Point::new((rows - 1) as f64 / 2.0, (cols - 1) as f64 / 2.0));
            if !(center.row.is_finite() && center.col.is_finite())
                || center.row < 0.0
                || center.col < 0.0
                || center.row > (rows - 1) as f64
                || center.col > (cols - 1) as f64
            {
                return Err(OctError::invalid(
                    "center",
                    format!(
                        "({}, {}) lies outside the {rows} x {cols} frame",
                        center.row, center.col
                    ),
                ));
            }
            let r_limit = center
                .row
                .min(center.col)
                .min((rows - 1) as f64 - center.row)
                .min((cols - 1) as f64 - center.col);
            let grid = CartesianGrid {
                rows,
                cols,
                center,
                mm_per_px: opts.mm_per_px,
            };
            (Source::Cart { img: frame, center }, grid, r_limit)
        }
        Some(g) => {
            let grid = CartesianGrid::fitting(g, cols)?;
            let r_limit = (cols - 1) as f64 + g.z_offset_px;
            (
                Source::Polar {
                    img: frame,
                    z_offset: g.z_offset_px,
                    center: grid.center,
                },
                grid,
                r_limit,
            )
        }
    };
    let mm = grid.mm_per_px;
    let r_max = match opts.max_radius_mm {
        Some(r) => (r / mm).min(r_limit),
        None => r_limit,
    };
    let dr = opts
        .radial_step_px
        .unwrap_or_else(|| (r_max / opts.max_radial_samples as f64).max(1.0));
    let nk = (r_max / dr).floor() as usize;
    if nk < 16 {
        return Err(OctError::shape(
            "frame",
            format!("only {nk} radial samples fit between the catheter centre and the edge"),
        ));
    }
    let na = opts.n_angles;

    // 1. Polar resampling.
    let grid_source = match &src {
        Source::Cart { center, .. } => GridSource::Cartesian(*center),
        Source::Polar { z_offset, .. } => GridSource::Polar { z_offset: *z_offset },
    };
    let mut raw = resample_polar(&frame, grid_source, na, nk, dr)?;
    // Every pixel the analysis reads feeds the polar image with a bilinear weight, and a
    // non-finite one stays non-finite there (even times 0): checking these 50k samples
    // instead of the whole frame is the same test where it matters. The slow path names the
    // first bad pixel of the frame.
    let finite = raw
        .as_slice()
        .is_some_and(|px| px.chunks(4096).all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite())));
    if !finite {
        finite_pixels("frame", frame.iter())?;
        return Err(OctError::invalid("frame", "non-finite values in the analysed disc"));
    }
    // Every third value is plenty for two percentiles.
    let raw_px = raw
        .as_slice()
        .ok_or_else(|| OctError::shape("polar image", "not contiguous"))?;
    let mut vals: Vec<f32> = raw_px.iter().step_by(3).copied().collect();
    // The 99.5th percentile lies above the 1st: select it within the upper part left by the
    // first selection (same values as two independent selections, half the work).
    if vals.is_empty() {
        return Err(OctError::NoLumen("the frame has no samples".into()));
    }
    let rank = |q: f64| ((vals.len() - 1) as f64 * q).round() as usize;
    let (i_lo, i_hi) = (rank(0.01), rank(0.995));
    let (_, lo, upper) = vals.select_nth_unstable_by(i_lo, f32::total_cmp);
    let lo = *lo;
    let hi = if i_hi > i_lo {
        *upper.select_nth_unstable_by(i_hi - i_lo - 1, f32::total_cmp).1
    } else {
        lo
    };
    if hi.is_nan() || hi <= lo {
        return Err(OctError::NoLumen("the frame has no contrast".into()));
    }
    let inv = 1.0 / (hi - lo);
    raw.mapv_inplace(|v| (v - lo) * inv);
    let ps = smooth_polar(&raw, 1, 1)?;

    let px = |mm_len: f64| ((mm_len / mm / dr).round() as usize).max(1);

    // 2. Catheter and sheath.
    let k_min = match opts.catheter_radius_mm {
        Some(r) => ((r / mm / dr).ceil() as usize).min(nk.saturating_sub(8)),
        None => detect_catheter(&ps, px(opts.max_catheter_radius_mm), px(0.02)),
    }
    .max(1);
    if k_min + 8 >= nk {
        return Err(OctError::NoLumen("catheter fills the search range".into()));
    }
    let catheter_radius_mm = k_min as f64 * dr * mm;

    // 3. Guidewire and its shadow.
    let guide = if opts.detect_guidewire {
        detect_guidewire(&ps, k_min, px(0.25), opts.shadow_ratio)
    } else {
        None
    };
    let mut flagged = vec![false; na];
    let mut guidewire_shadow = None;
    let mut guide_arc = None;
    if let Some((s, l)) = guide {
        let margin = (na / 180).max(1);
        let s2 = (s + na - margin) % na;
        let l2 = (l + 2 * margin).min(na - 1);
        for i in 0..l2 {
            flagged[(s2 + i) % na] = true;
        }
        let start = TAU * s2 as f64 / na as f64;
        let end = TAU * ((s2 + l2) % na) as f64 / na as f64;
        guidewire_shadow = Some((start, end));
        guide_arc = Some((s2, l2));
    }

    // 4. Edge cost: bright outside minus dark inside, with a penalty for bright inside.
    let wi = px(opts.edge_inner_mm);
    let wo = px(opts.edge_outer_mm);
    // Both edge windows must fit on a ray between the catheter and the frame's edge.
    if k_min + wi + wo >= nk {
        return Err(OctError::invalid(
            "frame",
            format!(
                "rays of {nk} samples (centre to edge, {:.3} mm) are too short for the edge windows \
                 of {wi} + {wo} samples beyond a catheter of {k_min}: the frame is too small for its \
                 pixel spacing",
                nk as f64 * dr * mm
            ),
        ));
    }
    let ps_px = ps
        .as_slice()
        .ok_or_else(|| OctError::shape("polar image", "not contiguous"))?;
    let raw_px = raw
        .as_slice()
        .ok_or_else(|| OctError::shape("polar image", "not contiguous"))?;
    let bright_thr = otsu(ps_px.chunks_exact(nk).map(|row| &row[k_min..]));
    let mut cost = vec![0.0f32; na * nk];
    let mut edge = vec![0.0f32; na * nk];
    let mut prefix = vec![0.0f32; nk + 1];
    // 1/n for window lengths n (multiplications instead of divisions in the loop below).
    let recip: Vec<f32> = (0..=nk).map(|n| if n == 0 { 0.0 } else { 1.0 / n as f32 }).collect();
    let mut open = vec![false; na];
    // A wall is at least this thick; shorter bright runs on an open ray are markers or speckle.
    let open_run = px(OPEN_RAY_MAX_RUN_MM);
    for (a, ((row, prow), (erow, crow))) in raw_px
        .chunks_exact(nk)
        .zip(ps_px.chunks_exact(nk))
        .zip(edge.chunks_exact_mut(nk).zip(cost.chunks_exact_mut(nk)))
        .enumerate()
    {
        for k in 0..nk {
            prefix[k + 1] = prefix[k] + row[k];
        }
        // Edge strength: mean of the outer window minus mean of the inner one. Where both
        // windows are whole (most of the ray) this is a branch-free pass over slices.
        let lo_full = (k_min.saturating_sub(1) + wi).max(k_min);
        let hi_full = nk.saturating_sub(wo).max(lo_full);
        let edge_at = |k: usize| {
            let i0 = k.saturating_sub(wi).max(k_min.saturating_sub(1));
            let o1 = (k + wo).min(nk);
            let inner = if k > i0 {
                (prefix[k] - prefix[i0]) * recip[k - i0]
            } else {
                row[k]
            };
            (prefix[o1] - prefix[k]) * recip[o1 - k] - inner
        };
        for k in (k_min..lo_full).chain(hi_full..nk) {
            erow[k] = edge_at(k);
        }
        let (inv_i, inv_o) = (recip[wi], recip[wo]);
        for (((e, &pk), &pin), &pout) in erow[lo_full..hi_full]
            .iter_mut()
            .zip(&prefix[lo_full..hi_full])
            .zip(&prefix[lo_full - wi..hi_full - wi])
            .zip(&prefix[lo_full + wo..hi_full + wo])
        {
            *e = (pout - pk) * inv_o - (pk - pin) * inv_i;
        }
        let mut bright = 0usize;
        let (mut run, mut longest) = (0usize, 0usize);
        for k in k_min..nk {
            // Fraction of bright samples between the catheter and k (0 at k = k_min).
            let frac = bright as f32 * recip[k - k_min];
            if prow[k] > bright_thr {
                bright += 1;
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
            crow[k] = if flagged[a] {
                0.0
            } else {
                -erow[k] + opts.inside_bright_weight * frac
            };
        }
        // A ray that stays dark up to the image edge has no wall in view: the lumen (a side
        // branch, usually) runs out of the image there, and the boundary may follow the edge.
        if !flagged[a] && (bright as f32) <= OPEN_RAY_BRIGHT_FRACTION * (nk - k_min) as f32 && longest < open_run {
            open[a] = true;
        }
    }

    // An open run next to the guidewire shadow is the part of that shadow the detector missed.
    for (s, l) in circular_runs(&open) {
        if l < na && (flagged[(s + na - 1) % na] || flagged[(s + l) % na]) {
            for i in 0..l {
                open[(s + i) % na] = false;
            }
        }
    }
    for a in (0..na).filter(|&a| open[a]) {
        edge[a * nk + nk - 1] = OPEN_EDGE_STRENGTH;
        cost[a * nk + nk - 1] = -OPEN_EDGE_STRENGTH;
    }
    let cost = Array2::from_shape_vec((na, nk), cost).map_err(|e| OctError::shape("cost", e.to_string()))?;

    // 5. Globally optimal closed boundary.
    let path = dp_closed(&cost, k_min, opts.max_step, opts.step_penalty, opts.jump_cost);
    // A jump out onto a farther wall and one back (away from the guidewire shadow, where the
    // path is free to wander) bracket a side-branch ostium.
    let (mut jumps_out, mut jumps_in) = (0usize, 0usize);
    for a in 0..na {
        let b = (a + 1) % na;
        if flagged[a] || flagged[b] {
            continue;
        }
        if path[b] > path[a] + opts.max_step {
            jumps_out += 1;
        } else if path[a] > path[b] + opts.max_step {
            jumps_in += 1;
        }
    }

    // 6. Sub-sample position, weak-edge and shadow interpolation, smoothing.
    let mut radius = vec![0.0f64; na];
    for a in 0..na {
        let k = path[a];
        if edge[a * nk + k] < opts.min_edge {
            flagged[a] = true;
        }
        // Sub-sample edge: where the smoothed profile crosses half-way between the lumen just
        // inside and the brightest wall just outside (the half-maximum rule of a blurred step).
        let row = ps.row(a);
        let i0 = k.saturating_sub(wi).max(k_min);
        let lum = if k > i0 {
            row.iter().skip(i0).take(k - i0).sum::<f32>() / (k - i0) as f32
        } else {
            row[k]
        };
        let top = row
            .iter()
            .skip(k)
            .take(2 * wi + 1)
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mid = 0.5 * (lum + top);
        if open[a] && k == nk - 1 {
            radius[a] = k as f64 * dr;
            continue;
        }
        let mut pos = k as f64 - 0.5;
        let j_hi = (k + 2 * wi).min(nk - 1);
        for j in i0.max(k_min) + 1..=j_hi {
            if row[j] >= mid && row[j - 1] < mid {
                pos = (j - 1) as f64 + ((mid - row[j - 1]) / (row[j] - row[j - 1])) as f64;
                break;
            }
        }
        radius[a] = pos.max(k_min as f64) * dr;
    }
    let n_flagged = flagged.iter().filter(|&&f| f).count();
    if n_flagged * 4 > na * 3 {
        return Err(OctError::NoLumen(format!(
            "a lumen edge was seen at only {} of {na} angles",
            na - n_flagged
        )));
    }
    for (s, l) in circular_runs(&flagged) {
        let before = (s + na - 1) % na;
        let after = (s + l) % na;
        let (r0, r1) = (radius[before], radius[after]);
        for i in 0..l {
            let t = (i + 1) as f64 / (l + 1) as f64;
            radius[(s + i) % na] = r0 + (r1 - r0) * t;
        }
    }
    let sigma = opts.smooth_deg * na as f64 / 360.0;
    let radius = smooth_circular(&radius, sigma);
    // Channels are counted inside the vessel proper: where the boundary runs out to the image
    // edge, close it across the opening instead (the branch's side walls would otherwise cut
    // slivers off the lumen).
    let edge_r = (nk as f64 - 3.0) * dr;
    let at_edge: Vec<bool> = if open.iter().any(|&o| o) {
        radius.iter().map(|&r| r >= edge_r).collect()
    } else {
        vec![false; na]
    };
    let mut radius_ch = radius.clone();
    let side_branch = (jumps_out > 0 && jumps_in > 0) || at_edge.iter().any(|&e| e);
    if at_edge.iter().any(|&e| e) && !at_edge.iter().all(|&e| e) {
        for (s, l) in circular_runs(&at_edge) {
            let (r0, r1) = (radius[(s + na - 1) % na], radius[(s + l) % na]);
            for i in 0..l {
                let t = (i + 1) as f64 / (l + 1) as f64;
                radius_ch[(s + i) % na] = r0 + (r1 - r0) * t;
            }
        }
    }
    let center = grid.center;
    let contour = Contour::new(
        (0..na)
            .map(|a| {
                let t = TAU * a as f64 / na as f64;
                Point::new(center.row + radius[a] * t.sin(), center.col + radius[a] * t.cos())
            })
            .collect(),
    );

    // 7. Metrics, channels and septa.
    let metrics = lumen_metrics(&contour, mm);
    let work = PolarWork {
        ps,
        raw,
        dr,
        k_min,
        scale: hi - lo,
    };
    let (channels, septa) = find_channels(&ChannelInput {
        work: &work,
        radius: &radius_ch,
        contour: &contour,
        grid: &grid,
        guidewire: guide_arc,
        opts,
        wall_window: wo,
        src: Some(&src),
    });
    let mut metrics = metrics;
    let septa_px = septa_pixels_inside(&septa, &contour, &radius, center, mm);
    metrics.area_mm2 = metrics.outline_area_mm2 - septa_px as f64 * mm * mm;
    Ok(OctFrameResult {
        contour,
        interpolated: flagged,
        guidewire_shadow,
        catheter_radius_mm,
        metrics,
        channels,
        septa,
        grid,
        side_branch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_runs_wrap() {
        let f = [true, false, false, true, true, false, true];
        let r = circular_runs(&f);
        assert_eq!(r, vec![(3, 2), (6, 2)]);
        assert_eq!(circular_runs(&[false; 4]), vec![]);
        assert_eq!(circular_runs(&[true; 4]), vec![(0, 4)]);
    }

    #[test]
    fn otsu_splits_two_levels() {
        let v: Vec<f32> = (0..1000).map(|i| if i % 3 == 0 { 0.8 } else { 0.1 }).collect();
        let t = otsu(std::iter::once(&v[..]));
        assert!(t > 0.1 && t < 0.8, "{t}");
    }

    #[test]
    fn dp_follows_cheap_closed_path() {
        // Cost minimum at k = 20 + 5 sin(angle): the path must follow it and close.
        let (na, nk) = (90, 60);
        let truth: Vec<usize> = (0..na)
            .map(|a| (20.0 + 5.0 * (TAU * a as f64 / na as f64).sin()).round() as usize)
            .collect();
        let cost = Array2::from_shape_fn((na, nk), |(a, k)| if k == truth[a] { -1.0 } else { 0.0 });
        let p = dp_closed(&cost, 2, 2, 0.01, 1.0);
        assert_eq!(p, truth);
    }

    #[test]
    fn bad_options_name_the_field() {
        let img = Array2::<f32>::zeros((64, 64));
        let o = OctOptions {
            n_angles: 3,
            ..Default::default()
        };
        let e = oct_lumen(img.view(), &o).unwrap_err().to_string();
        assert!(e.contains("n_angles"), "{e}");
        let o = OctOptions {
            mm_per_px: -1.0,
            ..Default::default()
        };
        let e = oct_lumen(img.view(), &o).unwrap_err().to_string();
        assert!(e.contains("mm_per_px"), "{e}");
        let e = oct_lumen(img.view(), &OctOptions::default()).unwrap_err();
        assert!(matches!(e, OctError::NoLumen(_)), "{e}");
    }

    /// Small frames at fine spacing leave rays shorter than the edge windows: a named error,
    /// not an index past the end of a ray. Over a sweep of sizes and spacings every outcome is
    /// a result, and the 64 x 43 frame at 0.01 mm/px (found by calling from Python) is the
    /// named error.
    #[test]
    fn rays_shorter_than_the_edge_windows_are_an_error() {
        let textured = |r: usize, c: usize| {
            Array2::from_shape_fn((r, c), |(i, j)| {
                ((i * 37 + j * 101) % 251) as f32 + if i > r / 2 { 300.0 } else { 0.0 }
            })
        };
        let o = |mm: f64| OctOptions {
            mm_per_px: mm,
            ..Default::default()
        };
        let e = oct_lumen(textured(64, 43).view(), &o(0.01)).unwrap_err().to_string();
        assert!(e.contains("too short for the edge windows"), "{e}");
        for (r, c) in [(16, 16), (24, 24), (40, 40), (64, 43), (43, 64), (100, 20)] {
            for mm in [0.001, 0.005, 0.01, 0.02, 0.05] {
                let run = std::panic::catch_unwind(|| oct_lumen(textured(r, c).view(), &o(mm)).map(|_| ()));
                assert!(run.is_ok(), "{r} x {c} at {mm} mm/px panicked");
            }
        }
    }

    /// A non-finite pixel in the analysed disc is an error that names the pixel; one in a
    /// corner outside the disc is never read and changes nothing.
    #[test]
    fn non_finite_pixels_inside_the_disc_are_rejected() {
        let spec = crate::synthetic::SyntheticSpec::default();
        let (mut img, _) = spec.cartesian(200, 0.02);
        let o = OctOptions {
            mm_per_px: 0.02,
            ..Default::default()
        };
        let clean = oct_lumen(img.view(), &o).unwrap();
        img[[0, 0]] = f32::NAN;
        assert_eq!(oct_lumen(img.view(), &o).unwrap(), clean);
        img[[100, 130]] = f32::INFINITY;
        let e = oct_lumen(img.view(), &o).unwrap_err().to_string();
        assert!(e.contains("frame") && e.contains("pixel 0"), "{e}");
        img[[0, 0]] = 0.5;
        let e = oct_lumen(img.view(), &o).unwrap_err().to_string();
        assert!(e.contains(&format!("pixel {}", 100 * 200 + 130)), "{e}");
    }
}
