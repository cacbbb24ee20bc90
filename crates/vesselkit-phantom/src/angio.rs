//! Single-frame X-ray angiogram of a pulmonary-artery-like tree with lesions of known geometry.
//!
//! Geometry first: a branching tree (Murray's law radii with jitter, Murray-optimal branching
//! angles with jitter, smoothly curving paths) laid out in mm; lesions modify the diameter
//! profile, split the lumen into channels (web), or stop the contrast (occlusion). Then the
//! projection: `I = I0 * vignette * exp(-background) * exp(-mu * sum of chords)`, detector blur,
//! Poisson quantum noise and Gaussian electronic noise. All truth comes from the geometry.

use crate::background::Background;
use crate::common::{fnv1a_bytes, fnv1a_f32, gaussian_blur, r4, stream};
use crate::error::{PhantomError, Result, check_range, check_size};
use crate::render::{ChordBuf, RBranch, RSample, render_branches};
use ndarray::Array2;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use vesselkit_core::{Branch, BranchEnd, Calibration, LesionType, Point, ProfileSample, Tortuosity, VesselTree};

/// Parameters of an angiographic phantom. All lengths in mm unless named otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AngioParams {
    pub rows: usize,
    pub cols: usize,
    /// Pixel spacing at the isocentre plane (patient scale).
    pub mm_per_px: f64,
    /// Diameter of the root (main trunk) vessel.
    pub trunk_diameter_mm: f64,
    /// Smallest vessel diameter drawn (terminal branches taper below it).
    pub min_diameter_mm: f64,
    /// Upper bound on the number of branches.
    pub max_branches: usize,
    /// Relative SD of the radius jitter around Murray's law.
    pub murray_jitter: f64,
    /// Lesions to place, one per entry (each on its own 2-5 mm vessel).
    pub lesions: Vec<LesionType>,
    /// 0 (easy) to 1 (hard): scales noise up, vessel contrast down and background up. The
    /// effective values are `i0 / (1 + 3 d)`, `mu * (1 - 0.5 d)`, `background * (0.6 + 0.8 d)`.
    pub difficulty: f64,
    /// Linear attenuation of contrast-filled lumen, per mm.
    pub mu_contrast_per_mm: f64,
    /// Mean detector counts per pixel of the unattenuated beam.
    pub i0_counts: f64,
    /// SD of the additive electronic noise, counts.
    pub electronic_noise_counts: f64,
    /// Full width at half maximum of the detector blur at the isocentre plane.
    pub blur_fwhm_mm: f64,
    /// Strength of the chest background (0 = flat field).
    pub background_strength: f64,
    /// Sub-samples per pixel side for the projection (1 to 4).
    pub supersample: usize,
    /// Source-to-detector distance (metadata for DICOM; SID/SOD = magnification).
    pub sid_mm: f64,
    /// Source-to-isocentre distance.
    pub sod_mm: f64,
}

impl Default for AngioParams {
    fn default() -> Self {
        Self {
            rows: 512,
            cols: 512,
            mm_per_px: 0.2,
            trunk_diameter_mm: 10.0,
            min_diameter_mm: 1.0,
            max_branches: 90,
            murray_jitter: 0.08,
            lesions: LesionType::ALL.to_vec(),
            difficulty: 0.3,
            mu_contrast_per_mm: 0.12,
            i0_counts: 3000.0,
            electronic_noise_counts: 4.0,
            blur_fwhm_mm: 0.35,
            background_strength: 1.0,
            supersample: 2,
            sid_mm: 1100.0,
            sod_mm: 800.0,
        }
    }
}

impl AngioParams {
    pub(crate) fn validate(&self) -> Result<()> {
        check_size("rows", self.rows, 64, 4096)?;
        check_size("cols", self.cols, 64, 4096)?;
        check_range("mm_per_px", self.mm_per_px, 0.05, 1.0)?;
        check_range("trunk_diameter_mm", self.trunk_diameter_mm, 2.0, 30.0)?;
        check_range(
            "min_diameter_mm",
            self.min_diameter_mm,
            0.3,
            self.trunk_diameter_mm / 2.0,
        )?;
        check_size("max_branches", self.max_branches, 1, 2000)?;
        check_range("murray_jitter", self.murray_jitter, 0.0, 0.5)?;
        check_range("difficulty", self.difficulty, 0.0, 1.0)?;
        check_range("mu_contrast_per_mm", self.mu_contrast_per_mm, 0.0, 10.0)?;
        check_range("i0_counts", self.i0_counts, 1.0, 1e6)?;
        check_range("electronic_noise_counts", self.electronic_noise_counts, 0.0, 1e4)?;
        check_range("blur_fwhm_mm", self.blur_fwhm_mm, 0.0, 5.0)?;
        check_range("background_strength", self.background_strength, 0.0, 3.0)?;
        check_size("supersample", self.supersample, 1, 4)?;
        Calibration::ermf_from_distances(self.sid_mm, self.sod_mm)?;
        if self.lesions.len() > 12 {
            return Err(PhantomError::param(
                "lesions",
                format!("at most 12, got {}", self.lesions.len()),
            ));
        }
        Ok(())
    }
    fn height_mm(&self) -> f64 {
        self.rows as f64 * self.mm_per_px
    }
    fn width_mm(&self) -> f64 {
        self.cols as f64 * self.mm_per_px
    }
}

/// One centerline station of the truth, proximal to distal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CenterlineSample {
    /// `(row, col)` in px; pixel centres are at integer positions.
    pub point: Point,
    /// Arc length from the branch start, mm.
    pub arc_mm: f64,
    /// True lumen diameter (envelope of all channels), mm.
    pub diameter_mm: f64,
    /// Diameter the vessel would have without the lesion, mm.
    pub reference_diameter_mm: f64,
    /// Relative contrast concentration at full opacification (1 normal, < 1 behind a subtotal
    /// lesion, 0 behind an occlusion: not visible).
    pub contrast: f64,
}

/// One true branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchTruth {
    pub id: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// 0 for the trunk.
    pub generation: u32,
    /// Centerline every ~0.5 mm.
    pub samples: Vec<CenterlineSample>,
    pub length_mm: f64,
    /// Path length from the root's start to this branch's start, mm (drives bolus arrival).
    pub path_start_mm: f64,
    pub distal_end: BranchEnd,
    /// Bends of >= 45 degrees along the branch (same-sign curvature runs).
    pub bends_45: u32,
    pub max_bend_deg: f64,
    /// Extra bolus delay behind a subtotal lesion upstream, ms (0 elsewhere).
    pub extra_delay_ms: f64,
}

/// One true lesion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LesionTruth {
    pub id: usize,
    pub lesion_type: LesionType,
    /// Position of the minimal lumen (the stump end for an occlusion), px.
    pub site: Point,
    pub branch: usize,
    /// Arc position of the site along the branch, mm.
    pub site_arc_mm: f64,
    pub mld_mm: f64,
    pub reference_diameter_mm: f64,
    pub diameter_stenosis_pct: f64,
    /// Shoulder-to-shoulder length where the diameter is below 90 % of the reference, mm.
    pub length_mm: f64,
    /// Full extent of the modified segment, mm.
    pub extent_mm: f64,
    /// Distal flow grade 0-3 (0 = no filling, 1-2 = slow/partial, 3 = normal).
    pub flow_grade: u8,
    /// Treatment priority, 1 = first (recommendation 9: ring/web/subtotal before
    /// occlusion/tortuous; within a group, the larger territory first).
    pub priority: u32,
    /// Lumen channels at the lesion (web: 2-3; otherwise 1; occlusion 0).
    pub channels: u8,
    /// Bends of >= 45 degrees in the branch (tortuous lesions: >= 3).
    pub bends_45: u32,
    /// Centerline length of the branch and everything below it, mm (territory fed).
    pub territory_mm: f64,
}

/// Ground truth of an angiographic phantom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AngioTruth {
    pub schema: String,
    pub notice: String,
    pub kind: String,
    pub seed: u64,
    pub params: AngioParams,
    pub rows: usize,
    pub cols: usize,
    pub mm_per_px: f64,
    /// Detector-plane spacing = mm_per_px * SID / SOD (for DICOM Imager Pixel Spacing).
    pub imager_pixel_spacing_mm: f64,
    pub sid_mm: f64,
    pub sod_mm: f64,
    pub root: usize,
    pub branches: Vec<BranchTruth>,
    pub lesions: Vec<LesionTruth>,
    /// Pixels in the vessel mask.
    pub mask_pixels: usize,
    /// FNV-1a of the image's f32 little-endian bytes, row-major.
    pub image_fnv1a: String,
    pub mask_fnv1a: String,
}

/// An angiographic phantom: the image in detector counts, the vessel mask and the truth.
#[derive(Debug, Clone)]
pub struct AngioPhantom {
    /// Detector counts, vessels dark on bright (MONOCHROME2).
    pub image: Array2<f32>,
    /// Lumen of contrast-filled vessels (pixel centre area fraction >= 0.5).
    pub mask: Array2<bool>,
    pub truth: AngioTruth,
}

impl AngioPhantom {
    /// The truth as pretty JSON.
    pub fn truth_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.truth)?)
    }
    /// Calibration of the image (Pixel Spacing at the isocentre).
    pub fn calibration(&self) -> Calibration {
        Calibration {
            mm_per_px: self.truth.mm_per_px,
            source: vesselkit_core::CalibrationSource::PixelSpacing,
            detail: Some("phantom".into()),
        }
    }
}

/// Priority group under recommendation 9: 0 for ring/web/subtotal, 1 for occlusion/tortuous.
pub fn treatment_priority_group(t: LesionType) -> u32 {
    match t {
        LesionType::Ring | LesionType::Web | LesionType::Subtotal => 0,
        LesionType::Occlusion | LesionType::Tortuous => 1,
    }
}

impl AngioTruth {
    /// The truth as a [`VesselTree`]: opacified samples only, diameters from the geometry.
    pub fn vessel_tree(&self) -> VesselTree {
        let calibration = Calibration {
            mm_per_px: self.mm_per_px,
            source: vesselkit_core::CalibrationSource::PixelSpacing,
            detail: Some("phantom truth".into()),
        };
        let branches = self
            .branches
            .iter()
            .map(|b| {
                let samples: Vec<ProfileSample> = b
                    .samples
                    .iter()
                    .filter(|s| s.contrast > 0.0)
                    .map(|s| ProfileSample {
                        point: s.point,
                        arc_mm: s.arc_mm,
                        diameter_mm: s.diameter_mm,
                        left_mm: s.diameter_mm / 2.0,
                        right_mm: s.diameter_mm / 2.0,
                        channels: 1,
                        density_ratio: 1.0,
                        reliable: true,
                    })
                    .collect();
                Branch {
                    id: b.id,
                    parent: b.parent,
                    children: b.children.clone(),
                    length_mm: b.length_mm,
                    samples,
                    distal_end: b.distal_end,
                    tortuosity: Tortuosity {
                        bends: b.bends_45,
                        max_bend_deg: b.max_bend_deg,
                        ..Default::default()
                    },
                    arrival_ms: None,
                    flow_grade: None,
                }
            })
            .collect();
        VesselTree {
            branches,
            root: Some(self.root),
            calibration,
        }
    }
}

// ---------------------------------------------------------------- topology

#[derive(Debug, Clone)]
struct Topo {
    parent: Option<usize>,
    children: Vec<usize>,
    d0: f64,
    d1: f64,
    length: f64,
    /// Heading change relative to the parent's end heading, rad.
    turn: f64,
    generation: u32,
}

fn build_topology(p: &AngioParams, rng: &mut ChaCha8Rng) -> Vec<Topo> {
    let jitter = Normal::new(0.0, p.murray_jitter.max(1e-9)).unwrap_or_else(|_| unreachable_normal());
    let side = p.height_mm().min(p.width_mm());
    let root_d = p.trunk_diameter_mm * rng.random_range(0.95..1.05);
    let mut t = vec![Topo {
        parent: None,
        children: vec![],
        d0: root_d,
        d1: root_d * rng.random_range(0.9..0.96),
        length: side * rng.random_range(0.22..0.3) + p.trunk_diameter_mm,
        turn: 0.0,
        generation: 0,
    }];
    let mut queue = std::collections::VecDeque::from([0usize]);
    while let Some(b) = queue.pop_front() {
        let r0 = t[b].d1 / 2.0;
        let can_split = t.len() + 2 <= p.max_branches && 2.0 * r0 >= 1.25 * p.min_diameter_mm;
        if !can_split {
            // Terminal: longer and fading, as small vessels do when they get too thin to see
            // (the fade itself is drawn by `layout`, see `TERMINAL_FADE_MM`).
            t[b].length *= 2.2;
            t[b].d1 = (t[b].d0 * 0.55).max(p.min_diameter_mm * 0.5);
            continue;
        }
        let alpha: f64 = rng.random_range(0.15..1.0);
        let mut ra = r0 * (1.0 / (1.0 + alpha)).cbrt() * (1.0 + jitter.sample(rng)).clamp(0.7, 1.3);
        let mut rb = r0 * (alpha / (1.0 + alpha)).cbrt() * (1.0 + jitter.sample(rng)).clamp(0.7, 1.3);
        ra = ra.max(p.min_diameter_mm / 2.0);
        rb = rb.max(p.min_diameter_mm / 2.0);
        // Murray-optimal angles (Zamir): cos(theta_a) = (r0^4 + ra^4 - rb^4) / (2 r0^2 ra^2).
        let ang = |ra: f64, rb: f64| {
            let c = (r0.powi(4) + ra.powi(4) - rb.powi(4)) / (2.0 * r0 * r0 * ra * ra);
            c.clamp(-1.0, 1.0).acos()
        };
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let ta = (ang(ra, rb) + rng.random_range(-0.12..0.12)).clamp(0.05, 1.2);
        let tb = (ang(rb, ra) + rng.random_range(-0.15..0.15)).clamp(0.35, 1.45);
        let g = t[b].generation + 1;
        for (r, turn) in [(ra, sign * ta), (rb, -sign * tb)] {
            let d = 2.0 * r;
            let id = t.len();
            t.push(Topo {
                parent: Some(b),
                children: vec![],
                d0: d,
                d1: d * rng.random_range(0.88..0.96),
                // Segmental-size vessels get room for a lesion with normal lumen around it.
                length: if (2.0..=5.5).contains(&d) {
                    d * rng.random_range(5.0..7.5)
                } else {
                    (d * rng.random_range(3.0..5.5)).max(6.0)
                },
                turn,
                generation: g,
            });
            t[b].children.push(id);
            queue.push_back(id);
        }
    }
    t
}

/// A standard normal built from valid constants cannot fail; this keeps the code panic-free.
fn unreachable_normal() -> Normal<f64> {
    // Normal::new(0, 1) only fails for a negative or NaN SD.
    match Normal::new(0.0, 1.0) {
        Ok(n) => n,
        Err(_) => unreachable!("constant standard normal"),
    }
}

// ---------------------------------------------------------------- lesion plans

#[derive(Debug, Clone)]
struct Plan {
    ty: LesionType,
    branch: usize,
    /// Lesion centre (MLD position) along the branch, mm.
    centre: f64,
    extent: f64,
    /// Diameter narrowing fraction at the centre.
    narrowing: f64,
    web_n: u8,
    web_t: f64,
    flow_grade: u8,
    distal_factor: f64,
    extra_delay_ms: f64,
    /// Winding section (start, length, period, turn per bend) for tortuous lesions.
    winding: Option<(f64, f64, f64, f64)>,
}

fn is_related(t: &[Topo], a: usize, b: usize) -> bool {
    let up = |mut x: usize, y: usize| {
        while let Some(p) = t[x].parent {
            if p == y {
                return true;
            }
            x = p;
        }
        false
    };
    a == b || up(a, b) || up(b, a)
}

/// Lesion parameters for a vessel of diameter `d` (branch and centre are set by the caller).
fn plan_params(ty: LesionType, d: f64, rng: &mut ChaCha8Rng) -> Plan {
    let mut plan = Plan {
        ty,
        branch: 0,
        centre: 0.0,
        extent: 0.0,
        narrowing: 0.0,
        web_n: 1,
        web_t: 0.0,
        flow_grade: 3,
        distal_factor: 1.0,
        extra_delay_ms: 0.0,
        winding: None,
    };
    match ty {
        LesionType::Ring => {
            plan.extent = d * rng.random_range(1.0..2.0);
            plan.narrowing = rng.random_range(0.5..0.8);
        }
        LesionType::Web => {
            plan.extent = rng.random_range(2.5..4.5);
            plan.narrowing = rng.random_range(0.15..0.3);
            plan.web_n = if rng.random_bool(0.5) { 2 } else { 3 };
            plan.web_t = rng.random_range(0.25..0.4) * (d / 3.0).clamp(0.8, 1.3);
        }
        LesionType::Subtotal => {
            plan.extent = rng.random_range(3.0..6.0);
            plan.narrowing = rng.random_range(0.9..0.97);
            plan.flow_grade = if rng.random_bool(0.5) { 1 } else { 2 };
            plan.distal_factor = if plan.flow_grade == 1 { 0.3 } else { 0.55 };
            plan.extra_delay_ms = if plan.flow_grade == 1 { 700.0 } else { 350.0 };
        }
        LesionType::Occlusion => {
            // Stump taper length: short = round/abrupt, long = pointed.
            plan.extent = rng.random_range(0.4..2.0);
            plan.narrowing = 1.0;
            plan.flow_grade = 0;
            plan.distal_factor = 0.0;
        }
        LesionType::Tortuous => {
            let period = d * rng.random_range(2.4..3.0);
            let periods = if rng.random_bool(0.5) { 2.0 } else { 2.5 };
            let turn = rng.random_range(70.0f64..100.0).to_radians();
            plan.extent = d * rng.random_range(1.0..1.6);
            plan.narrowing = rng.random_range(0.45..0.7);
            plan.winding = Some((lesion_margin(d), periods * period, period, turn));
        }
    }
    plan
}

/// Normal lumen kept on each side of a lesion, mm.
fn lesion_margin(d: f64) -> f64 {
    d + 1.0
}

fn mean_d(t: &Topo) -> f64 {
    0.5 * (t.d0 + t.d1)
}

/// Tortuous lesions need a winding path: choose their branches and winding start on a
/// layout without lesions, then lengthen the branch to hold the winding.
fn place_tortuous(p: &AngioParams, t: &mut [Topo], lay0: &Layout, rng: &mut ChaCha8Rng) -> Option<Vec<Plan>> {
    let mut cands: Vec<usize> = (1..t.len()).filter(|&i| (2.0..=5.0).contains(&mean_d(&t[i]))).collect();
    cands.shuffle(rng);
    let mut plans: Vec<Plan> = Vec::new();
    for _ in p.lesions.iter().filter(|&&ty| ty == LesionType::Tortuous) {
        let mut placed = false;
        for &c in &cands {
            if plans.iter().any(|pl| is_related(t, pl.branch, c)) {
                continue;
            }
            let d = mean_d(&t[c]);
            let mut plan = plan_params(LesionType::Tortuous, d, rng);
            plan.branch = c;
            let Some((_, wl, period, turn)) = plan.winding else {
                continue;
            };
            let m = lesion_margin(d);
            let smp = &lay0.samples[c];
            // The winding swings sideways by about a quarter period; keep that inside too.
            let rim = 3.0 + 0.3 * period;
            let valid: Vec<f64> = smp
                .iter()
                .map(|x| x.s)
                .filter(|&ws| {
                    ws >= m
                        && smp
                            .iter()
                            .filter(|x| x.s >= ws - 1.0 && x.s <= ws + wl + 1.0)
                            .all(|x| inside_image(p, x.r, x.c, rim))
                        && smp.last().is_some_and(|l| l.s >= ws + 0.6 * wl)
                })
                .collect();
            if valid.is_empty() {
                continue;
            }
            let ws = valid[rng.random_range(0..valid.len())];
            plan.winding = Some((ws, wl, period, turn));
            plan.centre = ws + 0.5 * wl;
            t[c].length = t[c].length.max(ws + wl + m);
            plans.push(plan);
            placed = true;
            break;
        }
        if !placed {
            return None;
        }
    }
    Some(plans)
}

/// Sample range `[lo, hi]` (mm along the branch) a lesion occupies, with a 1 mm rim.
fn lesion_span(pl: &Plan) -> (f64, f64) {
    match (pl.winding, pl.ty) {
        (Some((ws, wl, _, _)), _) => (ws - 1.0, ws + wl + 1.0),
        (None, LesionType::Occlusion) => (pl.centre - pl.extent - 1.0, pl.centre + 1.0),
        (None, _) => (pl.centre - 0.5 * pl.extent - 1.0, pl.centre + 0.5 * pl.extent + 1.0),
    }
}

/// Choose branches and centres of the other lesions on the laid-out tree so that each lies
/// inside the image with normal lumen on both sides.
fn place_rest(
    p: &AngioParams,
    t: &[Topo],
    lay: &Layout,
    mut plans: Vec<Plan>,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<Plan>> {
    let mut cands: Vec<usize> = (1..t.len()).filter(|&i| (2.0..=5.0).contains(&mean_d(&t[i]))).collect();
    cands.shuffle(rng);
    for &ty in p.lesions.iter().filter(|&&ty| ty != LesionType::Tortuous) {
        let mut placed = false;
        for &c in &cands {
            if plans.iter().any(|pl| is_related(t, pl.branch, c)) {
                continue;
            }
            let d = mean_d(&t[c]);
            let mut plan = plan_params(ty, d, rng);
            plan.branch = c;
            let len = t[c].length;
            let m = lesion_margin(d);
            let smp = &lay.samples[c];
            let valid: Vec<f64> = smp
                .iter()
                .map(|x| x.s)
                .filter(|&s| {
                    plan.centre = s;
                    let (lo, hi) = lesion_span(&plan);
                    lo - m >= 0.0
                        && hi + m <= len
                        && smp
                            .iter()
                            .filter(|x| x.s >= lo && x.s <= hi)
                            .all(|x| inside_image(p, x.r, x.c, 3.0))
                })
                .collect();
            if valid.is_empty() {
                continue;
            }
            plan.centre = valid[rng.random_range(0..valid.len())];
            plans.push(plan);
            placed = true;
            break;
        }
        if !placed {
            return None;
        }
    }
    Some(plans)
}

// ---------------------------------------------------------------- layout

#[derive(Debug, Clone, Copy)]
struct LSample {
    r: f64,
    c: f64,
    heading: f64,
    s: f64,
    d_ref: f64,
    d: f64,
    conc: f64,
    extra_ms: f64,
    web_w: f64,
    web_n: u8,
    web_t: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    topo_parent: Vec<Option<usize>>,
    topo_children: Vec<Vec<usize>>,
    generation: Vec<u32>,
    samples: Vec<Vec<LSample>>,
    path_start: Vec<f64>,
    plans: Vec<Plan>,
}

fn raised_cos(u: f64) -> f64 {
    if u.abs() >= 1.0 {
        0.0
    } else {
        0.5 * (1.0 + (PI * u).cos())
    }
}

/// Plateau weight for webs: ramps over the outer 30 % of the extent.
fn plateau(u: f64) -> f64 {
    let a = u.abs();
    if a >= 1.0 {
        0.0
    } else if a <= 0.6 {
        1.0
    } else {
        crate::common::smoothstep((1.0 - a) / 0.4)
    }
}

/// A terminal branch fades out over its last this many mm: its diameter falls to
/// `1 - TERMINAL_FADE_DIAMETER_LOSS` and its contrast to `1 - TERMINAL_FADE_CONTRAST_LOSS` of
/// their values where the fade begins, smoothly, as distal pulmonary vessels become too thin
/// and faint to see. Without it the picture ends in a square cut-off of a 1+ mm vessel, which
/// is what an occlusion looks like, while the truth says `BranchEnd::Taper`.
const TERMINAL_FADE_MM: f64 = 6.0;
const TERMINAL_FADE_DIAMETER_LOSS: f64 = 0.5;
/// Not quite 1: the tip still fills (a bolus arrival exists), it is just below the noise.
const TERMINAL_FADE_CONTRAST_LOSS: f64 = 0.95;

/// Where the terminal fade of branch `b` begins (mm along it); infinity when it has children
/// or ends in an occlusion. It never starts inside a lesion or the normal lumen kept around it.
fn fade_start(t: &[Topo], b: usize, plan: Option<&Plan>) -> f64 {
    if !t[b].children.is_empty() || plan.is_some_and(|pl| pl.ty == LesionType::Occlusion) {
        return f64::INFINITY;
    }
    let after_lesion = plan.map_or(0.0, |pl| lesion_span(pl).1 + lesion_margin(mean_d(&t[b])));
    (t[b].length - TERMINAL_FADE_MM).max(after_lesion).max(0.0)
}

/// Diameter and contrast factors at `s` mm along a branch of length `len` whose fade begins
/// at `from`.
fn terminal_fade(s: f64, from: f64, len: f64) -> (f64, f64) {
    if !(s > from && len > from) {
        return (1.0, 1.0);
    }
    let w = crate::common::smoothstep((s - from) / (len - from));
    (
        1.0 - TERMINAL_FADE_DIAMETER_LOSS * w,
        1.0 - TERMINAL_FADE_CONTRAST_LOSS * w,
    )
}

fn layout(p: &AngioParams, t: &[Topo], plans: Vec<Plan>, rng: &mut ChaCha8Rng) -> Layout {
    let ds = 0.5 * p.mm_per_px;
    let n = t.len();
    let mut samples: Vec<Vec<LSample>> = vec![Vec::new(); n];
    let mut path_start = vec![0.0; n];
    // Contrast factor and extra delay inherited from upstream lesions.
    let mut inherit: Vec<(f64, f64)> = vec![(1.0, 0.0); n];
    let h = p.height_mm();
    let w = p.width_mm();
    for b in 0..n {
        let (start_r, start_c, start_heading) = match t[b].parent {
            None => (
                // The trunk enters from above the field, as the main artery does from the hilum.
                -p.trunk_diameter_mm,
                w * rng.random_range(0.15..0.3),
                rng.random_range(40.0f64..60.0).to_radians(),
            ),
            Some(pa) => {
                let last = samples[pa].last().copied();
                match last {
                    Some(l) => (l.r, l.c, l.heading + t[b].turn),
                    None => (h / 2.0, w / 2.0, 0.0),
                }
            }
        };
        if let Some(pa) = t[b].parent {
            path_start[b] = path_start[pa] + t[pa].length;
        }
        let plan = plans.iter().find(|pl| pl.branch == b);
        // Smooth wiggle of the heading: two sinusoids, each lobe turns well under 45 degrees.
        let wig: Vec<(f64, f64, f64)> = (0..2)
            .map(|_| {
                (
                    rng.random_range(0.04..0.13),
                    rng.random_range(10.0..30.0),
                    rng.random_range(0.0..std::f64::consts::TAU),
                )
            })
            .collect();
        let heading_at = |s: f64| {
            let mut hd = start_heading;
            for &(a, lam, ph) in &wig {
                hd += a * ((std::f64::consts::TAU * s / lam + ph).sin() - ph.sin());
            }
            if let Some(Some((ws, wl, per, turn))) = plan.map(|pl| pl.winding)
                && s > ws
            {
                let u = (s - ws).min(wl);
                hd += 0.5 * turn * (std::f64::consts::TAU * u / per).sin();
            }
            hd
        };
        let len = t[b].length;
        let fade_from = fade_start(t, b, plan);
        let steps = (len / ds).ceil().max(1.0) as usize;
        let (mut r, mut c) = (start_r, start_c);
        let (mut conc, mut extra) = inherit[b];
        let mut out = Vec::with_capacity(steps + 1);
        for k in 0..=steps {
            let s = (k as f64 * ds).min(len);
            if k > 0 {
                let hm = heading_at(s - 0.5 * ds);
                let step = s - (k - 1) as f64 * ds;
                r += step * hm.sin();
                c += step * hm.cos();
            }
            let (fade_d, fade_c) = terminal_fade(s, fade_from, len);
            let d_ref = (t[b].d0 + (t[b].d1 - t[b].d0) * (s / len)) * fade_d;
            let mut d = d_ref;
            let (mut web_w, mut web_n, mut web_t) = (0.0, 1u8, 0.0);
            if let Some(pl) = plan {
                let u = (s - pl.centre) / (0.5 * pl.extent);
                match pl.ty {
                    LesionType::Ring | LesionType::Subtotal | LesionType::Tortuous => {
                        d = d_ref * (1.0 - pl.narrowing * raised_cos(u));
                        if pl.ty == LesionType::Subtotal && s > pl.centre {
                            conc = pl.distal_factor;
                            extra = pl.extra_delay_ms;
                        }
                    }
                    LesionType::Web => {
                        let wgt = plateau(u);
                        d = d_ref * (1.0 - pl.narrowing * wgt);
                        web_w = wgt;
                        web_n = pl.web_n;
                        web_t = pl.web_t;
                    }
                    LesionType::Occlusion => {
                        // Taper to zero over `extent` ending at the centre; nothing beyond.
                        let x = (s - (pl.centre - pl.extent)) / pl.extent;
                        if x >= 1.0 {
                            d = 0.0;
                            conc = 0.0;
                        } else if x > 0.0 {
                            d = d_ref * (1.0 - x * x).sqrt();
                        }
                    }
                }
            }
            out.push(LSample {
                r,
                c,
                heading: heading_at(s),
                s,
                d_ref,
                d,
                conc: conc * fade_c,
                extra_ms: extra,
                web_w,
                web_n,
                web_t,
            });
        }
        for &ch in &t[b].children {
            inherit[ch] = (conc, extra);
        }
        samples[b] = out;
    }
    Layout {
        topo_parent: t.iter().map(|x| x.parent).collect(),
        topo_children: t.iter().map(|x| x.children.clone()).collect(),
        generation: t.iter().map(|x| x.generation).collect(),
        samples,
        path_start,
        plans,
    }
}

/// Bends along a heading sequence: runs of same-sign turning, counted when |turn| >= min.
fn bends(headings: &[f64], min_deg: f64) -> (u32, f64) {
    let mut count = 0;
    let mut max_deg: f64 = 0.0;
    let mut run = 0.0f64;
    let mut flush = |run: f64, count: &mut u32| {
        let deg = run.abs().to_degrees();
        max_deg = max_deg.max(deg);
        if deg >= min_deg {
            *count += 1;
        }
    };
    for w in headings.windows(2) {
        let dh = w[1] - w[0];
        if dh == 0.0 {
            continue;
        }
        if run != 0.0 && dh.signum() != run.signum() {
            flush(run, &mut count);
            run = 0.0;
        }
        run += dh;
    }
    flush(run, &mut count);
    (count, max_deg)
}

fn inside_image(p: &AngioParams, r: f64, c: f64, margin_mm: f64) -> bool {
    r > margin_mm && c > margin_mm && r < p.height_mm() - margin_mm && c < p.width_mm() - margin_mm
}

/// Every lesion (with a 3 mm margin) must be inside the image.
fn lesions_visible(p: &AngioParams, lay: &Layout) -> Vec<String> {
    let mut missing = Vec::new();
    for pl in &lay.plans {
        let (lo, hi) = lesion_span(pl);
        let ok = lay.samples[pl.branch]
            .iter()
            .filter(|s| s.s >= lo && s.s <= hi)
            .all(|s| inside_image(p, s.r, s.c, 3.0));
        if !ok {
            missing.push(pl.ty.as_str().to_string());
        }
    }
    missing
}

pub(crate) fn build_geometry(p: &AngioParams, seed: u64) -> Result<Layout> {
    p.validate()?;
    const ATTEMPTS: usize = 60;
    let mut last_missing = Vec::new();
    for attempt in 0..ATTEMPTS {
        let mut rng = stream(seed, 100 + attempt as u64);
        let mut topo = build_topology(p, &mut rng);
        // Positions depend only on the topology, the branch lengths and the windings, and the
        // layout draws the same numbers each time: lay out, place, and lay out again.
        let layout_rng = rng.clone();
        let mut place_rng = stream(seed, 5000 + attempt as u64);
        let lay0 = layout(p, &topo, vec![], &mut layout_rng.clone());
        let Some(tort) = place_tortuous(p, &mut topo, &lay0, &mut place_rng) else {
            last_missing = vec!["tortuous".into()];
            continue;
        };
        let lay1 = layout(p, &topo, tort.clone(), &mut layout_rng.clone());
        let missing = lesions_visible(p, &lay1);
        if !missing.is_empty() {
            last_missing = missing;
            continue;
        }
        let Some(plans) = place_rest(p, &topo, &lay1, tort, &mut place_rng) else {
            last_missing = p.lesions.iter().map(|t| t.as_str().to_string()).collect();
            continue;
        };
        let lay = layout(p, &topo, plans, &mut layout_rng.clone());
        let missing = lesions_visible(p, &lay);
        if missing.is_empty() {
            return Ok(lay);
        }
        last_missing = missing;
    }
    Err(PhantomError::Placement {
        missing: last_missing,
        attempts: ATTEMPTS,
    })
}

// ---------------------------------------------------------------- rendering

/// Rendered chord buffers plus per-sample contrast and timing lookups.
pub(crate) struct Projected {
    pub bufs: Vec<ChordBuf>,
    /// Per branch, per sample: (contrast factor, path from root mm, extra delay ms).
    pub sample_info: Vec<Vec<(f64, f64, f64)>>,
}

pub(crate) fn project(p: &AngioParams, lay: &Layout) -> Projected {
    let s = p.mm_per_px;
    let rb: Vec<RBranch> = (0..lay.samples.len())
        .map(|b| {
            let samples: Vec<RSample> = lay.samples[b]
                .iter()
                .map(|x| RSample {
                    r: x.r / s - 0.5,
                    c: x.c / s - 0.5,
                    rad_px: x.d / 2.0 / s,
                    web_w: x.web_w,
                    web_n: x.web_n,
                    web_t_px: x.web_t / s,
                })
                .collect();
            let junction = lay.topo_parent[b].and_then(|pa| {
                let pr = lay.samples[pa].last()?.d / 2.0 / s;
                let f = samples.first()?;
                Some((f.r, f.c, 1.5 * pr + f.rad_px))
            });
            RBranch {
                samples,
                parent: lay.topo_parent[b],
                junction,
            }
        })
        .collect();
    let bufs = render_branches(&rb, p.rows, p.cols, p.supersample);
    let sample_info = (0..lay.samples.len())
        .map(|b| {
            lay.samples[b]
                .iter()
                .map(|x| (x.conc, lay.path_start[b] + x.s, x.extra_ms))
                .collect()
        })
        .collect();
    Projected { bufs, sample_info }
}

/// Sum of chord x weight on the super-sampled grid (px of path length).
pub(crate) fn path_length_map(
    p: &AngioParams,
    proj: &Projected,
    weight: impl Fn(usize, (f64, f64, f64)) -> f64,
) -> Array2<f32> {
    let ss = p.supersample;
    let mut l = Array2::<f32>::zeros((p.rows * ss, p.cols * ss));
    for (b, buf) in proj.bufs.iter().enumerate() {
        let info = &proj.sample_info[b];
        // Per-sample weights once, then a lookup per cell.
        let wts: Vec<f32> = info.iter().map(|&x| weight(b, x) as f32).collect();
        for a in 0..buf.h {
            for c in 0..buf.w {
                let o = a * buf.w + c;
                let ch = buf.chord[o];
                if ch > 0.0 {
                    let wv = wts.get(buf.idx[o] as usize).copied().unwrap_or(0.0);
                    l[[buf.i0 + a, buf.j0 + c]] += ch * wv;
                }
            }
        }
    }
    l
}

/// Vessel mask: at least half of a pixel's sub-samples inside an opacified lumen.
pub(crate) fn vessel_mask(p: &AngioParams, proj: &Projected) -> Array2<bool> {
    let ss = p.supersample;
    let mut hit = Array2::<bool>::from_elem((p.rows * ss, p.cols * ss), false);
    for (b, buf) in proj.bufs.iter().enumerate() {
        let info = &proj.sample_info[b];
        for a in 0..buf.h {
            for c in 0..buf.w {
                let o = a * buf.w + c;
                if buf.inside[o] && info.get(buf.idx[o] as usize).is_some_and(|x| x.0 > 0.0) {
                    hit[[buf.i0 + a, buf.j0 + c]] = true;
                }
            }
        }
    }
    let need = (ss * ss).div_ceil(2);
    Array2::from_shape_fn((p.rows, p.cols), |(r, c)| {
        let mut n = 0;
        for i in 0..ss {
            for j in 0..ss {
                if hit[[r * ss + i, c * ss + j]] {
                    n += 1;
                }
            }
        }
        n >= need
    })
}

/// Effective detector settings after the difficulty knob.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Detector {
    pub i0: f64,
    pub mu: f64,
    pub bg_strength: f64,
    pub blur_sigma_px: f64,
    pub e_noise: f64,
}

impl Detector {
    pub(crate) fn from_params(p: &AngioParams) -> Self {
        let d = p.difficulty;
        Self {
            i0: p.i0_counts / (1.0 + 3.0 * d),
            mu: p.mu_contrast_per_mm * (1.0 - 0.5 * d),
            bg_strength: p.background_strength * (0.6 + 0.8 * d),
            blur_sigma_px: p.blur_fwhm_mm / 2.354_82 / p.mm_per_px,
            e_noise: p.electronic_noise_counts,
        }
    }
}

/// Expected counts (before blur and noise) from a path-length map; the background is sampled
/// at a position shifted by `bg_shift_mm` (respiratory motion).
pub(crate) fn expose(
    p: &AngioParams,
    det: &Detector,
    bg: &Background,
    l_ss: &Array2<f32>,
    bg_shift_mm: (f64, f64),
) -> Array2<f32> {
    let ss = p.supersample;
    let s = p.mm_per_px;
    let k = (det.mu * s) as f32; // chords are in px
    let inv = 1.0 / (ss * ss) as f32;
    // Rows are independent and deterministic, so the parallel map changes no result.
    let rows: Vec<Vec<f32>> = (0..p.rows)
        .into_par_iter()
        .map(|r| {
            (0..p.cols)
                .map(|c| {
                    let mut t = 0.0f32;
                    for i in 0..ss {
                        for j in 0..ss {
                            t += (-k * l_ss[[r * ss + i, c * ss + j]]).exp();
                        }
                    }
                    let rm = (r as f64 + 0.5) * s - bg_shift_mm.0;
                    let cm = (c as f64 + 0.5) * s - bg_shift_mm.1;
                    let base = det.i0 * bg.vignette(rm, cm) * (-bg.attenuation(rm, cm)).exp();
                    (base as f32) * t * inv
                })
                .collect()
        })
        .collect();
    Array2::from_shape_fn((p.rows, p.cols), |(r, c)| rows[r][c])
}

/// Detector blur, then Poisson quantum noise and Gaussian electronic noise (serial RNG).
pub(crate) fn detect(det: &Detector, expected: &Array2<f32>, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let blurred = gaussian_blur(expected, det.blur_sigma_px);
    let en = Normal::new(0.0, det.e_noise.max(0.0)).unwrap_or_else(|_| unreachable_normal());
    blurred.mapv(|lam| {
        let lam = f64::from(lam).max(0.0);
        let q = if lam > 0.0 {
            Poisson::new(lam).map(|d| d.sample(rng)).unwrap_or(lam)
        } else {
            0.0
        };
        (q + en.sample(rng)) as f32
    })
}

// ---------------------------------------------------------------- truth

pub(crate) fn truth_branches(p: &AngioParams, lay: &Layout) -> Vec<BranchTruth> {
    let s = p.mm_per_px;
    let ds = 0.5 * s;
    let every = ((0.5 / ds).round() as usize).max(1);
    (0..lay.samples.len())
        .map(|b| {
            let smp = &lay.samples[b];
            let mut picked: Vec<&LSample> = smp.iter().step_by(every).collect();
            if let Some(last) = smp.last()
                && picked.last().is_none_or(|x| x.s < last.s)
            {
                picked.push(last);
            }
            let samples = picked
                .iter()
                .map(|x| CenterlineSample {
                    point: Point::new(r4(x.r / s - 0.5), r4(x.c / s - 0.5)),
                    arc_mm: r4(x.s),
                    diameter_mm: r4(x.d),
                    reference_diameter_mm: r4(x.d_ref),
                    contrast: r4(x.conc),
                })
                .collect();
            let headings: Vec<f64> = smp.iter().map(|x| x.heading).collect();
            let (b45, maxb) = bends(&headings, 45.0);
            let occluded = lay
                .plans
                .iter()
                .any(|pl| pl.branch == b && pl.ty == LesionType::Occlusion);
            let last = smp.last().copied();
            let distal_end = if occluded {
                BranchEnd::Abrupt
            } else if !lay.topo_children[b].is_empty() {
                BranchEnd::Junction
            } else if last.is_some_and(|l| !inside_image(p, l.r, l.c, 0.0)) {
                BranchEnd::Border
            } else {
                BranchEnd::Taper
            };
            BranchTruth {
                id: b,
                parent: lay.topo_parent[b],
                children: lay.topo_children[b].clone(),
                generation: lay.generation[b],
                samples,
                length_mm: r4(last.map_or(0.0, |l| l.s)),
                path_start_mm: r4(lay.path_start[b]),
                distal_end,
                bends_45: b45,
                max_bend_deg: r4(maxb),
                extra_delay_ms: smp.last().map_or(0.0, |l| l.extra_ms),
            }
        })
        .collect()
}

fn subtree_length(lay: &Layout, b: usize) -> f64 {
    let own = lay.samples[b].last().map_or(0.0, |l| l.s);
    own + lay.topo_children[b]
        .iter()
        .map(|&c| subtree_length(lay, c))
        .sum::<f64>()
}

pub(crate) fn truth_lesions(p: &AngioParams, lay: &Layout) -> Vec<LesionTruth> {
    let s = p.mm_per_px;
    let mut out: Vec<LesionTruth> = lay
        .plans
        .iter()
        .enumerate()
        .map(|(id, pl)| {
            let smp = &lay.samples[pl.branch];
            // MLD sample: smallest diameter within the lesion extent (occlusion: stump end).
            let near = |x: &&LSample| (x.s - pl.centre).abs() <= pl.extent;
            let site = if pl.ty == LesionType::Occlusion {
                smp.iter().rfind(|x| x.conc > 0.0 && x.s <= pl.centre)
            } else {
                smp.iter()
                    .filter(near)
                    .min_by(|a, b| (a.d / a.d_ref).total_cmp(&(b.d / b.d_ref)))
            };
            let site = site.copied().unwrap_or(smp[smp.len() / 2]);
            let (mld, refd) = if pl.ty == LesionType::Occlusion {
                (0.0, site.d_ref)
            } else {
                (site.d, site.d_ref)
            };
            let below: Vec<&LSample> = smp
                .iter()
                .filter(|x| (x.s - pl.centre).abs() <= pl.extent + 1.0 && x.d < 0.9 * x.d_ref && x.conc > 0.0)
                .collect();
            let mut length = match (below.first(), below.last()) {
                (Some(a), Some(b)) => b.s - a.s,
                _ => 0.0,
            };
            if pl.ty == LesionType::Occlusion {
                // Up to the stump end: the occluded remainder has no lumen to measure.
                length = below.first().map_or(0.0, |a| site.s - a.s);
            }
            let (b45, _) = bends(&smp.iter().map(|x| x.heading).collect::<Vec<_>>(), 45.0);
            LesionTruth {
                id,
                lesion_type: pl.ty,
                site: Point::new(r4(site.r / s - 0.5), r4(site.c / s - 0.5)),
                branch: pl.branch,
                site_arc_mm: r4(site.s),
                mld_mm: r4(mld),
                reference_diameter_mm: r4(refd),
                diameter_stenosis_pct: r4((1.0 - mld / refd) * 100.0),
                length_mm: r4(length),
                extent_mm: r4(pl.extent),
                flow_grade: pl.flow_grade,
                priority: 0,
                channels: match pl.ty {
                    LesionType::Web => pl.web_n,
                    LesionType::Occlusion => 0,
                    _ => 1,
                },
                bends_45: b45,
                territory_mm: r4(subtree_length(lay, pl.branch)),
            }
        })
        .collect();
    // Recommendation 9 groups first; within a group the larger territory first, then id.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| {
        treatment_priority_group(out[a].lesion_type)
            .cmp(&treatment_priority_group(out[b].lesion_type))
            .then(out[b].territory_mm.total_cmp(&out[a].territory_mm))
            .then(a.cmp(&b))
    });
    for (rank, &i) in order.iter().enumerate() {
        out[i].priority = rank as u32 + 1;
    }
    out
}

pub(crate) fn mask_hash(mask: &Array2<bool>) -> String {
    fnv1a_bytes(mask.iter().map(|&b| u8::from(b)))
}

/// Generate one angiographic frame at full opacification.
pub fn generate_angio(params: &AngioParams, seed: u64) -> Result<AngioPhantom> {
    let lay = build_geometry(params, seed)?;
    let proj = project(params, &lay);
    let det = Detector::from_params(params);
    let bg = Background::random(
        &mut stream(seed, 2),
        params.height_mm(),
        params.width_mm(),
        det.bg_strength,
    );
    let l = path_length_map(params, &proj, |_, (conc, _, _)| conc);
    let expected = expose(params, &det, &bg, &l, (0.0, 0.0));
    let image = detect(&det, &expected, &mut stream(seed, 1));
    let mask = vessel_mask(params, &proj);
    let truth = AngioTruth {
        schema: crate::TRUTH_SCHEMA.into(),
        notice: vesselkit_core::RESEARCH_NOTICE.into(),
        kind: "angio".into(),
        seed,
        params: params.clone(),
        rows: params.rows,
        cols: params.cols,
        mm_per_px: params.mm_per_px,
        imager_pixel_spacing_mm: r4(params.mm_per_px * params.sid_mm / params.sod_mm),
        sid_mm: params.sid_mm,
        sod_mm: params.sod_mm,
        root: 0,
        branches: truth_branches(params, &lay),
        lesions: truth_lesions(params, &lay),
        mask_pixels: mask.iter().filter(|&&m| m).count(),
        image_fnv1a: fnv1a_f32(image.iter()),
        mask_fnv1a: mask_hash(&mask),
    };
    Ok(AngioPhantom { image, mask, truth })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> AngioParams {
        AngioParams {
            rows: 256,
            cols: 256,
            mm_per_px: 0.3,
            max_branches: 40,
            ..Default::default()
        }
    }

    #[test]
    fn bends_counts_alternating_turns() {
        // +60, -60, +60 degrees in three runs, then a 10 degree wiggle.
        let mut h = vec![0.0];
        for (turn, n) in [(60.0f64, 10), (-60.0, 10), (60.0, 10), (-10.0, 5)] {
            for _ in 0..n {
                let last = *h.last().unwrap_or(&0.0);
                h.push(last + turn.to_radians() / n as f64);
            }
        }
        let (n, max) = bends(&h, 45.0);
        assert_eq!(n, 3);
        assert!((max - 60.0).abs() < 1e-9);
    }

    #[test]
    fn murray_and_lesion_truth_hold() {
        let p = small();
        let ph = generate_angio(&p, 7).unwrap();
        let t = &ph.truth;
        assert_eq!(t.lesions.len(), 5);
        // Murray's law within jitter at every junction.
        for b in &t.branches {
            if b.children.len() == 2 {
                let r0 = b.samples.last().unwrap().reference_diameter_mm / 2.0;
                let sum: f64 = b
                    .children
                    .iter()
                    .map(|&c| (t.branches[c].samples[0].reference_diameter_mm / 2.0).powi(3))
                    .sum();
                let ratio = sum / r0.powi(3);
                assert!((0.4..2.3).contains(&ratio), "Murray ratio {ratio}");
            }
        }
        for l in &t.lesions {
            assert!((2.0..=5.5).contains(&l.reference_diameter_mm), "{l:?}");
            match l.lesion_type {
                LesionType::Ring => {
                    assert!(l.diameter_stenosis_pct >= 49.0 && l.diameter_stenosis_pct <= 81.0);
                    assert!(l.extent_mm <= 2.0 * l.reference_diameter_mm + 1e-9);
                }
                LesionType::Web => assert!(l.channels >= 2 && l.diameter_stenosis_pct < 31.0),
                LesionType::Subtotal => {
                    assert!(l.diameter_stenosis_pct >= 90.0);
                    assert!(matches!(l.flow_grade, 1 | 2));
                }
                LesionType::Occlusion => {
                    assert_eq!(l.mld_mm, 0.0);
                    assert_eq!(l.flow_grade, 0);
                }
                LesionType::Tortuous => assert!(l.bends_45 >= 3, "{l:?}"),
            }
            if l.lesion_type != LesionType::Tortuous {
                assert!(l.bends_45 < 3, "{l:?}");
            }
        }
        // Recommendation 9: every ring/web/subtotal ranks before every occlusion/tortuous.
        let worst_first_group = t
            .lesions
            .iter()
            .filter(|l| treatment_priority_group(l.lesion_type) == 0);
        let best_second_group = t
            .lesions
            .iter()
            .filter(|l| treatment_priority_group(l.lesion_type) == 1);
        let a = worst_first_group.map(|l| l.priority).max().unwrap();
        let b = best_second_group.map(|l| l.priority).min().unwrap();
        assert!(a < b);
    }

    #[test]
    fn image_is_dark_on_vessels_and_mask_matches_geometry() {
        let p = small();
        let ph = generate_angio(&p, 3).unwrap();
        let t = &ph.truth;
        // The trunk centre is inside the mask and darker than its surroundings.
        let trunk = &t.branches[0];
        let mid = trunk.samples[trunk.samples.len() / 2];
        let (r, c) = (mid.point.row.round() as usize, mid.point.col.round() as usize);
        assert!(ph.mask[[r, c]]);
        let rad_px = mid.diameter_mm / 2.0 / p.mm_per_px;
        let off = (rad_px * 2.5) as usize;
        let inside = ph.image[[r, c]];
        let outside = if c + off < p.cols {
            ph.image[[r, c + off]]
        } else {
            ph.image[[r, c - off]]
        };
        assert!(inside < 0.75 * outside, "trunk {inside} vs background {outside}");
        // Mask area equals the sum of opacified lumen areas within a few percent (overlaps and
        // junctions make it a little smaller).
        let mut area_mm2 = 0.0;
        for b in &t.branches {
            for w in b.samples.windows(2) {
                if w[1].contrast > 0.0 && w[0].contrast > 0.0 {
                    let inside_img = |s: &CenterlineSample| {
                        s.point.row > 0.0 && s.point.col > 0.0 && s.point.row < 255.0 && s.point.col < 255.0
                    };
                    if inside_img(&w[0]) && inside_img(&w[1]) {
                        area_mm2 += (w[1].arc_mm - w[0].arc_mm) * 0.5 * (w[0].diameter_mm + w[1].diameter_mm);
                    }
                }
            }
        }
        let mask_mm2 = t.mask_pixels as f64 * p.mm_per_px * p.mm_per_px;
        assert!(
            mask_mm2 < area_mm2 * 1.05 && mask_mm2 > area_mm2 * 0.6,
            "{mask_mm2} vs {area_mm2}"
        );
    }

    #[test]
    fn terminal_ends_fade_out() {
        // The full-size field: in the small one most terminal branches leave the image.
        let p = AngioParams::default();
        let lay = build_geometry(&p, 5).unwrap();
        let proj = project(&p, &lay);
        let truth = truth_branches(&p, &lay);
        let ss = p.supersample as f64;
        let mut checked = 0;
        for b in truth
            .iter()
            .filter(|b| b.distal_end == BranchEnd::Taper && b.length_mm > 2.0 * TERMINAL_FADE_MM)
        {
            if lay.plans.iter().any(|pl| pl.branch == b.id) {
                continue;
            }
            let at = |arc: f64| {
                b.samples
                    .iter()
                    .min_by(|x, y| (x.arc_mm - arc).abs().total_cmp(&(y.arc_mm - arc).abs()))
                    .copied()
                    .unwrap()
            };
            let len = b.length_mm;
            let (before, tip) = (at(len - TERMINAL_FADE_MM), at(len));
            // Truth: the diameter halves (on top of the branch's own linear taper) and the
            // contrast falls to 5 % of where the fade begins.
            let ratio = tip.diameter_mm / before.diameter_mm;
            assert!(
                (0.35..=0.52).contains(&ratio),
                "branch {}: diameter ratio {ratio}",
                b.id
            );
            assert!(tip.contrast <= 0.06 * before.contrast && before.contrast > 0.0, "{b:?}");
            // Rendered: this branch's projected contrast (chord × concentration) along its
            // centreline falls mm by mm to near nothing over the last mm.
            let id = b.id;
            let l = path_length_map(&p, &proj, |k, (conc, _, _)| if k == id { conc } else { 0.0 });
            let drawn = |arc: f64| {
                let q = at(arc).point;
                let (r, c) = (((q.row + 0.5) * ss) as usize, ((q.col + 0.5) * ss) as usize);
                let mut m = 0.0f32;
                for i in r.saturating_sub(2)..(r + 3).min(l.nrows()) {
                    for j in c.saturating_sub(2)..(c + 3).min(l.ncols()) {
                        m = m.max(l[[i, j]]);
                    }
                }
                f64::from(m)
            };
            let inside = |arc: f64| {
                let q = at(arc).point;
                q.row > 2.0 && q.col > 2.0 && q.row < p.rows as f64 - 3.0 && q.col < p.cols as f64 - 3.0
            };
            if !inside(len - TERMINAL_FADE_MM) || !inside(len - 0.3) {
                continue;
            }
            let start = drawn(len - TERMINAL_FADE_MM);
            assert!(start > 0.0);
            let mut prev = start;
            for k in 1..=5 {
                let v = drawn(len - TERMINAL_FADE_MM + k as f64);
                assert!(v < prev, "branch {id}: {v} after {prev} at mm {k} of the fade");
                prev = v;
            }
            let last_mm = drawn(len - 0.5).max(drawn(len));
            assert!(last_mm < 0.1 * start, "branch {id}: last mm {last_mm} vs {start}");
            checked += 1;
            if checked == 3 {
                break;
            }
        }
        assert!(checked >= 2, "only {checked} terminal branches checked");
    }

    #[test]
    fn same_seed_same_bytes_different_seed_differs() {
        let p = AngioParams {
            rows: 128,
            cols: 128,
            mm_per_px: 0.5,
            lesions: vec![LesionType::Ring],
            max_branches: 20,
            ..Default::default()
        };
        let a = generate_angio(&p, 11).unwrap();
        let b = generate_angio(&p, 11).unwrap();
        let c = generate_angio(&p, 12).unwrap();
        assert_eq!(a.truth_json().unwrap(), b.truth_json().unwrap());
        assert_eq!(a.truth.image_fnv1a, b.truth.image_fnv1a);
        assert_ne!(a.truth.image_fnv1a, c.truth.image_fnv1a);
    }

    #[test]
    fn bad_params_name_the_field() {
        let p = AngioParams {
            mm_per_px: -1.0,
            ..Default::default()
        };
        let e = generate_angio(&p, 1).unwrap_err().to_string();
        assert!(e.contains("mm_per_px"), "{e}");
    }
}
