//! The evaluation runner: seeded phantoms (and already-loaded real images) through an injected
//! pipeline, scored against the truth. The pipeline only ever sees pixels and calibration.

use crate::metrics::{
    Confusion, DiameterBand, DiameterSample, Stat, cl_dice, diameter_bands, diameter_pairs, dice, kendall_tau_b,
    match_sites, obeys_rec9,
};
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use vesselkit_core::{Calibration, CalibrationSource, Cine, Frame, LesionType, Point, VesselTree};
use vesselkit_phantom::{
    AngioParams, AngioTruth, CineParams, LesionTruth, OctParams, PullbackParams, generate_angio, generate_cine,
    generate_oct_frame, generate_pullback,
};

/// A lesion as the pipeline reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedLesion {
    pub site: Point,
    pub lesion_type: LesionType,
    pub mld_mm: f64,
    pub diameter_stenosis_pct: f64,
    /// 1 = treat first; `None` when the pipeline does not rank.
    pub priority: Option<u32>,
}

/// What an angiography pipeline returns; every stage may be missing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AngioOutput {
    pub mask: Option<Array2<bool>>,
    pub tree: Option<VesselTree>,
    pub lesions: Option<Vec<DetectedLesion>>,
}

/// Angiography analysis under evaluation.
pub trait AngioPipeline {
    fn name(&self) -> String {
        "unnamed".into()
    }
    fn analyze(&self, frame: &Frame) -> Result<AngioOutput, String>;
    /// Cine analysis; by default the frame with the lowest mean (most contrast) is analysed.
    fn analyze_cine(&self, cine: &Cine) -> Result<AngioOutput, String> {
        let best = (0..cine.len())
            .min_by(|&a, &b| {
                let m = |i: usize| cine.frame(i).map_or(f32::MAX, |f| f.mean().unwrap_or(f32::MAX));
                m(a).total_cmp(&m(b))
            })
            .ok_or("empty cine")?;
        let view = cine.frame(best).ok_or("empty cine")?;
        let frame = Frame::new(view.to_owned(), cine.calibration.clone()).map_err(|e| e.to_string())?;
        self.analyze(&frame)
    }
}

/// OCT lumen segmentation under evaluation: cartesian frame in, lumen mask and channel count out.
pub trait OctPipeline {
    fn lumen_mask(&self, frame: ArrayView2<f32>, mm_per_px: f64) -> Result<(Array2<bool>, u32), String>;
}

/// A pipeline that does nothing: every metric reads "not available".
#[derive(Debug, Clone, Copy, Default)]
pub struct NullPipeline;

impl AngioPipeline for NullPipeline {
    fn name(&self) -> String {
        "null".into()
    }
    fn analyze(&self, _frame: &Frame) -> Result<AngioOutput, String> {
        Ok(AngioOutput::default())
    }
}

impl OctPipeline for NullPipeline {
    fn lumen_mask(&self, _frame: ArrayView2<f32>, _mm_per_px: f64) -> Result<(Array2<bool>, u32), String> {
        Err("not available".into())
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalConfig {
    /// Angiographic phantom cases (seeds `seed`, `seed + 1`, ...).
    pub cases: usize,
    pub seed: u64,
    pub angio: AngioParams,
    /// Cine cases (0 = skip).
    pub cine_cases: usize,
    pub cine: CineParams,
    /// OCT frames (channels cycle 1, 2, 3, 4).
    pub oct_cases: usize,
    pub oct: OctParams,
    /// Pullbacks (0 = skip).
    pub pullback_cases: usize,
    pub pullback: PullbackParams,
    /// A detection matches a true lesion within this distance, mm.
    pub lesion_tolerance_mm: f64,
    /// A measured centerline sample pairs with the nearest truth sample within this, px.
    pub diameter_tolerance_px: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            cases: 10,
            seed: 1,
            angio: AngioParams::default(),
            cine_cases: 2,
            cine: CineParams::default(),
            oct_cases: 8,
            oct: OctParams::default(),
            pullback_cases: 1,
            pullback: PullbackParams::default(),
            lesion_tolerance_mm: 3.0,
            diameter_tolerance_px: 2.0,
        }
    }
}

/// Lesion-level results pooled over cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LesionScores {
    /// Cases whose pipeline returned a lesion list.
    pub cases: usize,
    pub true_lesions: usize,
    pub detections: usize,
    pub matched: usize,
    pub sensitivity: Option<f64>,
    pub ppv: Option<f64>,
    /// True lesions whose approach lies inside another vessel's lumen in projection (see
    /// [`approach_overlapped`]), and how many of them were matched: the sensitivity apart from
    /// lesions that a single projection hides.
    #[serde(default)]
    pub overlapped_lesions: usize,
    #[serde(default)]
    pub overlapped_matched: usize,
    /// Measured - true MLD on matched lesions (occlusions excluded: no lumen), mm.
    pub mld_error_mm: Option<Stat>,
    /// The same on ring and web lesions only, whose lumen is wider than the blur (a subtotal
    /// lumen is sub-resolution in a single frame).
    #[serde(default)]
    pub mld_error_focal_mm: Option<Stat>,
    /// The same on matched lesions typed as their truth: the measurement apart from typing
    /// errors (a ring found as a cut-off and typed subtotal reports an MLD of 0).
    #[serde(default)]
    pub mld_error_typed_mm: Option<Stat>,
    /// Measured - true % diameter stenosis on matched lesions.
    pub ds_error_pct: Option<Stat>,
    pub confusion: Confusion,
    pub type_accuracy: Option<f64>,
    /// Recall per true type in the order ring, web, subtotal, occlusion, tortuous.
    pub recall_by_type: Vec<(LesionType, Option<f64>)>,
    /// Mean Kendall tau-b over cases with at least two ranked matched lesions.
    pub kendall_tau: Option<Stat>,
    /// Cases where the ranking of matched lesions put every true ring/web/subtotal before every
    /// true occlusion/tortuous, out of cases with ranked matches.
    pub rec9_true_types: Option<(usize, usize)>,
    /// Same rule on the pipeline's own types over all its ranked detections.
    pub rec9_predicted_types: Option<(usize, usize)>,
}

/// Angiography section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AngioScores {
    pub cases: usize,
    pub failures: usize,
    pub first_error: Option<String>,
    pub dice: Option<Stat>,
    pub cl_dice: Option<Stat>,
    pub diameter: Vec<DiameterBand>,
    /// Fraction of measurable truth stations (see `measurable_stations`) that a reliable measured
    /// sample paired with.
    pub centerline_coverage: Option<f64>,
    /// Measured - true diameter at stations of diluted contrast (distal to a subtotal lesion),
    /// all sizes; not part of the bands.
    #[serde(default)]
    pub diluted_diameter_error_mm: Option<Stat>,
    pub lesions: LesionScores,
    pub ms_per_frame: Option<Stat>,
}

/// OCT section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OctScores {
    pub frames: usize,
    pub failures: usize,
    pub first_error: Option<String>,
    pub lumen_dice: Option<Stat>,
    /// Measured - true lumen area, mm² (mask pixels x spacing²).
    pub area_error_mm2: Option<Stat>,
    /// (Measured - true) / true lumen area, %: all frames, and frames of 2 or more channels.
    #[serde(default)]
    pub area_error_pct: Option<Stat>,
    #[serde(default)]
    pub web_area_error_pct: Option<Stat>,
    pub channel_accuracy: Option<f64>,
    /// Channel count accuracy on frames of 2 or more true channels (webs) alone.
    #[serde(default)]
    pub web_channel_accuracy: Option<f64>,
    pub ms_per_frame: Option<Stat>,
    /// Pullback: measured - true area per frame, mm².
    pub pullback_area_error_mm2: Option<Stat>,
    /// Pullback: (measured - true) / true area per frame, %.
    #[serde(default)]
    pub pullback_area_error_pct: Option<Stat>,
    /// Pullback: |measured MLA frame - true MLA frame| x spacing, mm.
    pub pullback_mla_position_error_mm: Option<Stat>,
}

/// Real-data section (inputs loaded by the caller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RealScores {
    /// Per split name (e.g. "train", "test"): vessel Dice and clDice against the manual masks.
    pub angio: Vec<RealSplit>,
    pub oct: Option<RealSplit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RealSplit {
    pub name: String,
    pub cases: usize,
    pub failures: usize,
    pub first_error: Option<String>,
    pub dice: Option<Stat>,
    pub cl_dice: Option<Stat>,
    pub ms_per_frame: Option<Stat>,
}

/// Everything the runner measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EvalReport {
    pub schema: String,
    pub pipeline: String,
    pub config: Option<EvalConfig>,
    pub angio: Option<AngioScores>,
    pub cine: Option<AngioScores>,
    pub oct: Option<OctScores>,
    pub real: Option<RealScores>,
    pub notice: String,
}

impl EvalReport {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// A real angiogram with its manual vessel mask, loaded by the caller.
#[derive(Debug, Clone)]
pub struct RealAngioCase {
    pub name: String,
    /// Split label used to report separately (e.g. "train", "test").
    pub split: String,
    pub image: Array2<f32>,
    pub truth: Array2<bool>,
    /// Scale if known; otherwise the frame is passed uncalibrated.
    pub mm_per_px: Option<f64>,
}

/// A real OCT frame (cartesian) with its manual lumen mask.
#[derive(Debug, Clone)]
pub struct RealOctCase {
    pub name: String,
    pub image: Array2<f32>,
    pub truth: Array2<bool>,
    pub mm_per_px: f64,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Per-case lesion tallies, pooled afterwards.
#[derive(Default)]
struct LesionAcc {
    cases: usize,
    n_true: usize,
    n_det: usize,
    matched: usize,
    n_overlapped: usize,
    matched_overlapped: usize,
    mld: Vec<f64>,
    mld_focal: Vec<f64>,
    mld_typed: Vec<f64>,
    ds: Vec<f64>,
    confusion: Confusion,
    taus: Vec<f64>,
    rec9_true: (usize, usize),
    rec9_pred: (usize, usize),
}

impl LesionAcc {
    fn add(&mut self, truth: &AngioTruth, det: &[DetectedLesion], tolerance_mm: f64, offset_px: [f64; 2]) {
        self.cases += 1;
        self.n_true += truth.lesions.len();
        self.n_det += det.len();
        // Truth sites move with the vessels in cine frames.
        let tsites: Vec<Point> = truth
            .lesions
            .iter()
            .map(|l| Point::new(l.site.row + offset_px[0], l.site.col + offset_px[1]))
            .collect();
        let dsites: Vec<Point> = det.iter().map(|d| d.site).collect();
        let m = match_sites(&dsites, &tsites, tolerance_mm / truth.mm_per_px);
        self.matched += m.len();
        let overlapped: Vec<bool> = truth.lesions.iter().map(|l| approach_overlapped(truth, l)).collect();
        self.n_overlapped += overlapped.iter().filter(|&&o| o).count();
        self.matched_overlapped += m.iter().filter(|&&(_, j, _)| overlapped[j]).count();
        let mut ranked = Vec::new();
        for &(i, j, _) in &m {
            let (d, t) = (&det[i], &truth.lesions[j]);
            if t.lesion_type != LesionType::Occlusion && d.mld_mm.is_finite() {
                self.mld.push(d.mld_mm - t.mld_mm);
                if matches!(t.lesion_type, LesionType::Ring | LesionType::Web) {
                    self.mld_focal.push(d.mld_mm - t.mld_mm);
                }
                if d.lesion_type == t.lesion_type {
                    self.mld_typed.push(d.mld_mm - t.mld_mm);
                }
            }
            if d.diameter_stenosis_pct.is_finite() {
                self.ds.push(d.diameter_stenosis_pct - t.diameter_stenosis_pct);
            }
            self.confusion.add(t.lesion_type, d.lesion_type);
            if let Some(p) = d.priority {
                ranked.push((t.priority as f64, p as f64, t.lesion_type, p));
            }
        }
        if !ranked.is_empty() {
            let x: Vec<f64> = ranked.iter().map(|r| r.0).collect();
            let y: Vec<f64> = ranked.iter().map(|r| r.1).collect();
            if let Some(t) = kendall_tau_b(&x, &y) {
                self.taus.push(t);
            }
            let items: Vec<(LesionType, u32)> = ranked.iter().map(|r| (r.2, r.3)).collect();
            if let Some(ok) = obeys_rec9(&items) {
                self.rec9_true.1 += 1;
                self.rec9_true.0 += usize::from(ok);
            }
        }
        let own: Vec<(LesionType, u32)> = det
            .iter()
            .filter_map(|d| d.priority.map(|p| (d.lesion_type, p)))
            .collect();
        if let Some(ok) = obeys_rec9(&own) {
            self.rec9_pred.1 += 1;
            self.rec9_pred.0 += usize::from(ok);
        }
    }

    fn finish(self) -> LesionScores {
        if self.cases == 0 {
            return LesionScores::default();
        }
        LesionScores {
            cases: self.cases,
            true_lesions: self.n_true,
            detections: self.n_det,
            matched: self.matched,
            sensitivity: (self.n_true > 0).then(|| self.matched as f64 / self.n_true as f64),
            ppv: (self.n_det > 0).then(|| self.matched as f64 / self.n_det as f64),
            overlapped_lesions: self.n_overlapped,
            overlapped_matched: self.matched_overlapped,
            mld_error_mm: Stat::of(&self.mld),
            mld_error_focal_mm: Stat::of(&self.mld_focal),
            mld_error_typed_mm: Stat::of(&self.mld_typed),
            ds_error_pct: Stat::of(&self.ds),
            type_accuracy: self.confusion.accuracy(),
            recall_by_type: LesionType::ALL.iter().map(|&t| (t, self.confusion.recall(t))).collect(),
            confusion: self.confusion,
            kendall_tau: Stat::of(&self.taus),
            rec9_true_types: (self.rec9_true.1 > 0).then_some(self.rec9_true),
            rec9_predicted_types: (self.rec9_pred.1 > 0).then_some(self.rec9_pred),
        }
    }
}

fn calibration(mm_per_px: f64) -> Calibration {
    Calibration {
        mm_per_px,
        source: CalibrationSource::PixelSpacing,
        detail: Some("phantom".into()),
    }
}

/// Score one angiography output against the truth (mask and tree only for static frames).
#[derive(Default)]
struct AngioAcc {
    cases: usize,
    failures: usize,
    first_error: Option<String>,
    dice: Vec<f64>,
    cl: Vec<f64>,
    pairs: Vec<(f64, f64)>,
    diluted: Vec<f64>,
    covered: (usize, usize),
    lesions: LesionAcc,
    ms: Vec<f64>,
}

impl AngioAcc {
    fn fail(&mut self, e: String) {
        self.failures += 1;
        self.first_error.get_or_insert(e);
    }
    fn score(
        &mut self,
        out: &AngioOutput,
        truth: &AngioTruth,
        mask: Option<&Array2<bool>>,
        cfg: &EvalConfig,
        offset: [f64; 2],
    ) {
        if let (Some(m), Some(t)) = (&out.mask, mask) {
            if let Some(d) = dice(m, t) {
                self.dice.push(d);
            }
            if let Some(d) = cl_dice(m, t) {
                self.cl.push(d);
            }
        }
        if let Some(tree) = &out.tree
            && mask.is_some()
        {
            let stations = measurable_stations(truth);
            let truth_s: Vec<DiameterSample> = stations.iter().filter(|s| !s.1).map(|s| s.0).collect();
            let diluted: Vec<DiameterSample> = stations.iter().filter(|s| s.1).map(|s| s.0).collect();
            let meas: Vec<DiameterSample> = tree
                .branches
                .iter()
                .flat_map(|b| b.samples.iter())
                .filter(|s| s.reliable)
                .map(|s| DiameterSample {
                    point: s.point,
                    diameter_mm: s.diameter_mm,
                })
                .collect();
            self.pairs
                .extend(diameter_pairs(&meas, &truth_s, cfg.diameter_tolerance_px));
            self.diluted.extend(
                diameter_pairs(&meas, &diluted, cfg.diameter_tolerance_px)
                    .into_iter()
                    .map(|p| p.1),
            );
            // Coverage: truth samples with a measured sample nearby.
            let back = diameter_pairs(&truth_s, &meas, cfg.diameter_tolerance_px);
            self.covered.0 += back.len();
            self.covered.1 += truth_s.len();
        }
        if let Some(l) = &out.lesions {
            self.lesions.add(truth, l, cfg.lesion_tolerance_mm, offset);
        }
    }
    fn finish(self) -> AngioScores {
        AngioScores {
            cases: self.cases,
            failures: self.failures,
            first_error: self.first_error,
            dice: Stat::of(&self.dice),
            cl_dice: Stat::of(&self.cl),
            diameter: if self.covered.1 > 0 {
                diameter_bands(&self.pairs)
            } else {
                vec![]
            },
            centerline_coverage: (self.covered.1 > 0).then(|| self.covered.0 as f64 / self.covered.1 as f64),
            diluted_diameter_error_mm: Stat::of(&self.diluted),
            lesions: self.lesions.finish(),
            ms_per_frame: Stat::of(&self.ms),
        }
    }
}

/// Truth stations of healthy vessel where a projection diameter is defined and measurable:
/// opacified, inside the image with the whole cross-section, at least one reference diameter
/// away from a branch point (the lumen is not a cylinder there), clear of every other branch's
/// lumen in projection (overlaps and crossings, where no single-vessel edge exists), and outside
/// the modified segment of a narrowing lesion plus one reference diameter (lesions are scored by
/// their MLD instead). The flag marks stations of diluted contrast (distal to a subtotal
/// narrowing), scored apart from the fully opacified ones.
pub fn measurable_stations(truth: &AngioTruth) -> Vec<(DiameterSample, bool)> {
    let px = truth.mm_per_px;
    // All stations of all branches in a coarse grid for the overlap test.
    let max_r_px = truth
        .branches
        .iter()
        .flat_map(|b| b.samples.iter())
        .map(|s| s.diameter_mm.max(s.reference_diameter_mm) / (2.0 * px))
        .fold(0.0f64, f64::max);
    let cell = (2.0 * max_r_px + 2.0).max(4.0);
    let key = |p: Point| ((p.row / cell).floor() as i64, (p.col / cell).floor() as i64);
    // (branch index, point, radius px) per grid cell.
    type Cell = Vec<(usize, Point, f64)>;
    let mut grid: std::collections::HashMap<(i64, i64), Cell> = Default::default();
    for (bi, b) in truth.branches.iter().enumerate() {
        for s in b.samples.iter().filter(|s| s.contrast > 0.0 && s.diameter_mm > 0.0) {
            grid.entry(key(s.point))
                .or_default()
                .push((bi, s.point, s.diameter_mm / (2.0 * px)));
        }
    }
    let (rows, cols) = (truth.rows as f64, truth.cols as f64);
    let in_lesion = |branch: usize, arc_mm: f64| {
        // Every phantom lesion type narrows its segment (tortuous ones too, inside their bends).
        truth
            .lesions
            .iter()
            .any(|l| l.branch == branch && (arc_mm - l.site_arc_mm).abs() < 0.5 * l.extent_mm + l.reference_diameter_mm)
    };
    let mut out = Vec::new();
    for (bi, b) in truth.branches.iter().enumerate() {
        let has_parent = b.parent.is_some();
        let has_children = !b.children.is_empty();
        for s in &b.samples {
            if !(s.contrast > 0.0 && s.diameter_mm > 0.0) {
                continue;
            }
            if (has_parent && s.arc_mm < s.reference_diameter_mm)
                || (has_children && b.length_mm - s.arc_mm < s.reference_diameter_mm)
            {
                continue;
            }
            if in_lesion(b.id, s.arc_mm) {
                continue;
            }
            let r = s.diameter_mm.max(s.reference_diameter_mm) / (2.0 * px);
            let p = s.point;
            let margin = r + 2.0;
            if p.row < margin || p.col < margin || p.row > rows - 1.0 - margin || p.col > cols - 1.0 - margin {
                continue;
            }
            let (kr, kc) = key(p);
            let overlapped = (-1..=1).any(|dr| {
                (-1..=1).any(|dc| {
                    grid.get(&(kr + dr, kc + dc))
                        .is_some_and(|v| v.iter().any(|&(bj, q, rq)| bj != bi && p.dist(q) < r + rq + 1.0))
                })
            });
            if !overlapped {
                let diluted = s.contrast < 1.0;
                out.push((
                    DiameterSample {
                        point: p,
                        diameter_mm: s.diameter_mm,
                    },
                    diluted,
                ));
            }
        }
    }
    out
}

/// Length of a lesion's approach tested by [`approach_overlapped`], mm.
pub const APPROACH_MM: f64 = 4.0;

/// Whether a true lesion cannot be seen apart from another vessel in this projection: more
/// than half of the centerline stations over the [`APPROACH_MM`] of its branch up to its site
/// lie inside another opacified branch's lumen (centre within that lumen's radius + 1 px).
/// Stations within one reference diameter of the branch's origin are left out (they sit in the
/// junction with the parent, as in [`measurable_stations`]). A phantom child can run along its
/// parent at a small angle, so its stump or narrowing stays inside the parent's shadow: an
/// evaluation category, not a clinical one.
pub fn approach_overlapped(truth: &AngioTruth, lesion: &LesionTruth) -> bool {
    let Some(b) = truth.branches.iter().find(|b| b.id == lesion.branch) else {
        return false;
    };
    let px = truth.mm_per_px;
    let approach: Vec<Point> = b
        .samples
        .iter()
        .filter(|s| s.arc_mm >= lesion.site_arc_mm - APPROACH_MM && s.arc_mm <= lesion.site_arc_mm)
        .filter(|s| b.parent.is_none() || s.arc_mm >= s.reference_diameter_mm)
        .map(|s| s.point)
        .collect();
    if approach.is_empty() {
        return false;
    }
    let inside = |p: Point| {
        truth.branches.iter().filter(|o| o.id != b.id).any(|o| {
            o.samples
                .iter()
                .any(|q| q.contrast > 0.0 && p.dist(q.point) < q.diameter_mm / (2.0 * px) + 1.0)
        })
    };
    2 * approach.iter().filter(|&&p| inside(p)).count() > approach.len()
}

/// Run the pipeline over seeded phantoms. Generation errors are returned; pipeline errors are
/// counted as failures in the report.
pub fn run_phantoms(
    angio: &dyn AngioPipeline,
    oct: &dyn OctPipeline,
    cfg: &EvalConfig,
) -> Result<EvalReport, vesselkit_phantom::PhantomError> {
    let mut a = AngioAcc::default();
    for i in 0..cfg.cases {
        let ph = generate_angio(&cfg.angio, cfg.seed + i as u64)?;
        a.cases += 1;
        let frame = Frame::new(ph.image.clone(), calibration(ph.truth.mm_per_px))?;
        let t0 = Instant::now();
        let out = angio.analyze(&frame);
        a.ms.push(ms_since(t0));
        match out {
            Ok(o) => a.score(&o, &ph.truth, Some(&ph.mask), cfg, [0.0, 0.0]),
            Err(e) => a.fail(e),
        }
    }
    let mut c = AngioAcc::default();
    for i in 0..cfg.cine_cases {
        let ph = generate_cine(&cfg.cine, cfg.seed + 10_000 + i as u64)?;
        c.cases += 1;
        let times = ph.frame_times_ms();
        let cine = Cine::new(ph.frames.clone(), calibration(ph.truth.geometry.mm_per_px), times)?;
        let t0 = Instant::now();
        let out = angio.analyze_cine(&cine);
        c.ms.push(ms_since(t0) / cine.len().max(1) as f64);
        // Lesion sites are judged against the mean vessel offset over the run.
        let n = ph.truth.frames.len().max(1) as f64;
        let off = ph.truth.frames.iter().fold([0.0, 0.0], |acc, f| {
            [acc[0] + f.vessel_offset_px[0] / n, acc[1] + f.vessel_offset_px[1] / n]
        });
        match out {
            Ok(o) => c.score(&o, &ph.truth.geometry, None, cfg, off),
            Err(e) => c.fail(e),
        }
    }
    let oct_scores = run_oct_phantoms(oct, cfg)?;
    Ok(EvalReport {
        schema: "vesselkit.eval/1".into(),
        pipeline: angio.name(),
        config: Some(cfg.clone()),
        angio: (cfg.cases > 0).then(|| a.finish()),
        cine: (cfg.cine_cases > 0).then(|| c.finish()),
        oct: (cfg.oct_cases + cfg.pullback_cases > 0).then_some(oct_scores),
        real: None,
        notice: vesselkit_core::RESEARCH_NOTICE.into(),
    })
}

fn run_oct_phantoms(oct: &dyn OctPipeline, cfg: &EvalConfig) -> Result<OctScores, vesselkit_phantom::PhantomError> {
    let mut s = OctScores::default();
    let (mut dices, mut areas, mut ms) = (vec![], vec![], vec![]);
    let (mut areas_pct, mut web_pct) = (vec![], vec![]);
    let mut channel_ok = (0usize, 0usize);
    let mut web_ok = (0usize, 0usize);
    for i in 0..cfg.oct_cases {
        let channels = (i % 4) as u8 + 1;
        let mut p = cfg.oct.clone();
        p.channels = channels;
        if channels > 1 {
            p.lumen_diameter_mm = p.lumen_diameter_mm.max(4.0 * p.catheter_radius_mm + 0.8);
        }
        let ph = generate_oct_frame(&p, cfg.seed + 20_000 + i as u64)?;
        s.frames += 1;
        let px = p.cart_mm_per_px();
        let t0 = Instant::now();
        let out = oct.lumen_mask(ph.cartesian.view(), px);
        ms.push(ms_since(t0));
        match out {
            Ok((m, ch)) => {
                if let Some(d) = dice(&m, &ph.lumen_mask) {
                    dices.push(d);
                }
                let area = m.iter().filter(|&&v| v).count() as f64 * px * px;
                let truth_mm2 = ph.truth.frame.lumen_area_mm2;
                areas.push(area - truth_mm2);
                if truth_mm2 > 0.0 {
                    let pct = 100.0 * (area - truth_mm2) / truth_mm2;
                    areas_pct.push(pct);
                    if channels > 1 {
                        web_pct.push(pct);
                    }
                }
                let right = ch == u32::from(ph.truth.frame.channels);
                channel_ok.1 += 1;
                channel_ok.0 += usize::from(right);
                if ph.truth.frame.channels > 1 {
                    web_ok.1 += 1;
                    web_ok.0 += usize::from(right);
                }
            }
            Err(e) => {
                s.failures += 1;
                s.first_error.get_or_insert(e);
            }
        }
    }
    let (mut pb_area, mut pb_mla, mut pb_pct) = (vec![], vec![], vec![]);
    for i in 0..cfg.pullback_cases {
        let pb = generate_pullback(&cfg.pullback, cfg.seed + 30_000 + i as u64)?;
        let px = pb.truth.cart_mm_per_px;
        let mut measured = Vec::new();
        let mut failed = false;
        for (f, frame) in pb.cartesian.axis_iter(Axis(0)).enumerate() {
            let t0 = Instant::now();
            let out = oct.lumen_mask(frame, px);
            ms.push(ms_since(t0));
            match out {
                Ok((m, _)) => {
                    let a = m.iter().filter(|&&v| v).count() as f64 * px * px;
                    let truth_mm2 = pb.truth.area_mm2[f];
                    pb_area.push(a - truth_mm2);
                    if truth_mm2 > 0.0 {
                        pb_pct.push(100.0 * (a - truth_mm2) / truth_mm2);
                    }
                    measured.push(a);
                }
                Err(e) => {
                    failed = true;
                    s.failures += 1;
                    s.first_error.get_or_insert(e);
                    break;
                }
            }
        }
        if !failed && !measured.is_empty() {
            let mla = (0..measured.len())
                .min_by(|&a, &b| measured[a].total_cmp(&measured[b]))
                .unwrap_or(0);
            let dz = cfg.pullback.frame_spacing_mm;
            pb_mla.push((mla as f64 - pb.truth.mla_frame as f64).abs() * dz);
        }
    }
    s.lumen_dice = Stat::of(&dices);
    s.area_error_mm2 = Stat::of(&areas);
    s.area_error_pct = Stat::of(&areas_pct);
    s.web_area_error_pct = Stat::of(&web_pct);
    s.channel_accuracy = (channel_ok.1 > 0).then(|| channel_ok.0 as f64 / channel_ok.1 as f64);
    s.web_channel_accuracy = (web_ok.1 > 0).then(|| web_ok.0 as f64 / web_ok.1 as f64);
    s.ms_per_frame = if s.failures == s.frames + cfg.pullback_cases {
        None
    } else {
        Stat::of(&ms)
    };
    s.pullback_area_error_mm2 = Stat::of(&pb_area);
    s.pullback_area_error_pct = Stat::of(&pb_pct);
    s.pullback_mla_position_error_mm = Stat::of(&pb_mla);
    Ok(s)
}

/// Score already-loaded real images: vessel Dice/clDice per split, lumen Dice for OCT.
pub fn run_real(
    angio: &dyn AngioPipeline,
    oct: &dyn OctPipeline,
    angio_cases: &[RealAngioCase],
    oct_cases: &[RealOctCase],
) -> RealScores {
    let mut splits: Vec<RealSplit> = Vec::new();
    let mut acc: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> = Vec::new();
    for case in angio_cases {
        let k = match splits.iter().position(|s| s.name == case.split) {
            Some(k) => k,
            None => {
                splits.push(RealSplit {
                    name: case.split.clone(),
                    ..Default::default()
                });
                acc.push((vec![], vec![], vec![]));
                splits.len() - 1
            }
        };
        splits[k].cases += 1;
        let cal = match case.mm_per_px {
            Some(v) => Calibration::user(v).unwrap_or_else(|_| Calibration::uncalibrated()),
            None => Calibration::uncalibrated(),
        };
        let frame = match Frame::new(case.image.clone(), cal) {
            Ok(f) => f,
            Err(e) => {
                splits[k].failures += 1;
                splits[k].first_error.get_or_insert(format!("{}: {e}", case.name));
                continue;
            }
        };
        let t0 = Instant::now();
        let out = angio.analyze(&frame);
        acc[k].2.push(ms_since(t0));
        match out {
            Ok(o) => {
                if let Some(m) = &o.mask {
                    match dice(m, &case.truth) {
                        Some(d) => acc[k].0.push(d),
                        None => {
                            splits[k].failures += 1;
                            splits[k]
                                .first_error
                                .get_or_insert(format!("{}: mask shape differs", case.name));
                        }
                    }
                    if let Some(c) = cl_dice(m, &case.truth) {
                        acc[k].1.push(c);
                    }
                }
            }
            Err(e) => {
                splits[k].failures += 1;
                splits[k].first_error.get_or_insert(format!("{}: {e}", case.name));
            }
        }
    }
    for (s, (d, c, ms)) in splits.iter_mut().zip(acc) {
        s.dice = Stat::of(&d);
        s.cl_dice = Stat::of(&c);
        s.ms_per_frame = Stat::of(&ms);
    }
    let oct_split = (!oct_cases.is_empty()).then(|| {
        let mut s = RealSplit {
            name: "ivoct".into(),
            ..Default::default()
        };
        let (mut d, mut ms) = (vec![], vec![]);
        for case in oct_cases {
            s.cases += 1;
            let t0 = Instant::now();
            let out = oct.lumen_mask(case.image.view(), case.mm_per_px);
            ms.push(ms_since(t0));
            match out.map(|(m, _)| dice(&m, &case.truth)) {
                Ok(Some(v)) => d.push(v),
                Ok(None) => {
                    s.failures += 1;
                    s.first_error
                        .get_or_insert(format!("{}: mask shape differs", case.name));
                }
                Err(e) => {
                    s.failures += 1;
                    s.first_error.get_or_insert(format!("{}: {e}", case.name));
                }
            }
        }
        s.dice = Stat::of(&d);
        s.ms_per_frame = if s.failures == s.cases { None } else { Stat::of(&ms) };
        s
    });
    RealScores {
        angio: splits,
        oct: oct_split,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vesselkit_phantom::{BranchTruth, CenterlineSample};

    /// A straight branch of constant 2 mm diameter at 0.2 mm/px (radius 5 px).
    fn straight(id: usize, from: Point, to: Point) -> BranchTruth {
        let n = 101;
        let len_px = from.dist(to);
        BranchTruth {
            id,
            parent: None,
            children: vec![],
            generation: 0,
            samples: (0..n)
                .map(|i| {
                    let t = i as f64 / (n - 1) as f64;
                    CenterlineSample {
                        point: Point::new(from.row + t * (to.row - from.row), from.col + t * (to.col - from.col)),
                        arc_mm: t * len_px * 0.2,
                        diameter_mm: 2.0,
                        reference_diameter_mm: 2.0,
                        contrast: 1.0,
                    }
                })
                .collect(),
            length_mm: len_px * 0.2,
            path_start_mm: 0.0,
            distal_end: vesselkit_core::BranchEnd::Taper,
            bends_45: 0,
            max_bend_deg: 0.0,
            extra_delay_ms: 0.0,
        }
    }

    #[test]
    fn mld_error_is_split_by_whether_the_type_was_right() {
        let Ok(ph) = generate_angio(&AngioParams::default(), 1) else {
            panic!("phantom generation failed");
        };
        let truth = ph.truth;
        let ring = truth
            .lesions
            .iter()
            .find(|l| l.lesion_type == LesionType::Ring)
            .unwrap();
        let web = truth.lesions.iter().find(|l| l.lesion_type == LesionType::Web).unwrap();
        let det = |t: &vesselkit_phantom::LesionTruth, lesion_type, mld_mm: f64| DetectedLesion {
            site: t.site,
            lesion_type,
            mld_mm,
            diameter_stenosis_pct: 50.0,
            priority: None,
        };
        // The ring found as a ring 0.2 mm wide of its truth; the web found as a cut-off typed
        // subtotal, with no lumen.
        let found = [
            det(ring, LesionType::Ring, ring.mld_mm + 0.2),
            det(web, LesionType::Subtotal, 0.0),
        ];
        let mut acc = LesionAcc::default();
        acc.add(&truth, &found, 3.0, [0.0, 0.0]);
        let s = acc.finish();
        let all = s.mld_error_mm.unwrap();
        let typed = s.mld_error_typed_mm.unwrap();
        assert_eq!(all.n, 2);
        assert!((all.mean - 0.5 * (0.2 - web.mld_mm)).abs() < 1e-9, "{all:?}");
        assert_eq!(typed.n, 1);
        assert!((typed.mean - 0.2).abs() < 1e-9, "{typed:?}");
    }

    #[test]
    fn a_lesion_whose_approach_runs_inside_another_lumen_is_overlapped() {
        let Ok(ph) = generate_angio(&AngioParams::default(), 1) else {
            panic!("phantom generation failed");
        };
        let mut truth = ph.truth;
        // Branch 0 along row 100 (radius 5 px); branch 1 runs 3 px off its axis from col 60 to
        // 160, inside its lumen; branch 2 runs along row 140, clear of both.
        truth.branches = vec![
            straight(0, Point::new(100.0, 0.0), Point::new(100.0, 300.0)),
            straight(1, Point::new(103.0, 60.0), Point::new(103.0, 160.0)),
            straight(2, Point::new(140.0, 60.0), Point::new(140.0, 160.0)),
        ];
        let mut lesion = truth.lesions[0].clone();
        // 20 mm along the 100 px (20 mm) branch: its distal end.
        lesion.site_arc_mm = 20.0;
        lesion.branch = 1;
        assert!(approach_overlapped(&truth, &lesion));
        lesion.branch = 2;
        assert!(!approach_overlapped(&truth, &lesion));
        // 6 px off the axis, the centre lies outside the 5 px lumen + 1 px.
        truth.branches[1] = straight(1, Point::new(106.5, 60.0), Point::new(106.5, 160.0));
        lesion.branch = 1;
        assert!(!approach_overlapped(&truth, &lesion));
        // Behind an occlusion the other branch is not opacified and hides nothing.
        truth.branches[1] = straight(1, Point::new(103.0, 60.0), Point::new(103.0, 160.0));
        for q in &mut truth.branches[0].samples {
            q.contrast = 0.0;
        }
        assert!(!approach_overlapped(&truth, &lesion));
        // A lesion on a branch the truth does not hold is not overlapped.
        lesion.branch = 7;
        assert!(!approach_overlapped(&truth, &lesion));
    }

    #[test]
    fn measurable_stations_skip_crossings_and_borders() {
        let Ok(ph) = generate_angio(&AngioParams::default(), 1) else {
            panic!("phantom generation failed");
        };
        let mut truth = ph.truth;
        truth.lesions.clear();
        // A horizontal branch along row 100 from col -50 to 250 crossed by a vertical one at
        // col 150 (rows 20 to 180), in a 512 x 512 image.
        truth.branches = vec![
            straight(0, Point::new(100.0, -50.0), Point::new(100.0, 250.0)),
            straight(1, Point::new(20.0, 150.0), Point::new(180.0, 150.0)),
        ];
        let s: Vec<DiameterSample> = measurable_stations(&truth).into_iter().map(|s| s.0).collect();
        assert!(!s.is_empty());
        for d in &s {
            // Inside with the whole cross-section: radius 5 px + 2 px margin.
            assert!(d.point.col >= 7.0 && d.point.row >= 7.0, "{:?}", d.point);
            // Clear of the crossing: centre distance >= 5 + 5 + 1 px from the other centerline.
            let on_h = (d.point.row - 100.0).abs() < 1e-9;
            let gap = if on_h {
                (d.point.col - 150.0).abs()
            } else {
                (d.point.row - 100.0).abs()
            };
            assert!(gap >= 11.0 - 1.6, "{:?} gap {gap}", d.point);
        }
        // The horizontal branch keeps stations on both sides of the crossing, the part left of
        // the image is dropped: cols 7 to ~139 and ~161 to 250 at 3 px spacing.
        let h = s.iter().filter(|d| (d.point.row - 100.0).abs() < 1e-9).count();
        assert!((70..=80).contains(&h), "{h}");
        let v = s.len() - h;
        // Vertical: rows 20..180 at 1.6 px spacing minus +-11 px around row 100.
        assert!((80..=90).contains(&v), "{v}");
    }
}
