//! vesselkit: blood-vessel analysis for X-ray angiography and intravascular OCT.
//!
//! The facade runs the whole chain with defaults: frames → vessel tree with diameters in mm →
//! lesions typed ring / web / subtotal / occlusion / tortuous with their evidence → ranking →
//! staged balloon suggestion → [`Report`]. Every stage is also callable alone through the
//! re-exported crates.
//!
//! Research use only. Not for clinical decision making.

pub use vesselkit_angio as angio;
pub use vesselkit_core as core;
pub use vesselkit_filters as filters;
pub use vesselkit_lesion as lesion;
pub use vesselkit_oct as oct;
pub use vesselkit_report as report;

pub use vesselkit_core::{Calibration, CalibrationSource, Cine, Frame, LesionType, RESEARCH_NOTICE, VesselTree};
pub use vesselkit_report::Report;

use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use std::time::Instant;
use vesselkit_angio::{AngioOptions, AngioResult};
use vesselkit_filters::Polarity;
use vesselkit_lesion::EndProbe;
use vesselkit_lesion::{Assessment, PlanInput, Rules};
use vesselkit_report::{InputInfo, LesionReport, PlanReport, SessionReport, Site, VesselReport};

/// Every error of the library, folded from the stage crates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] vesselkit_core::CoreError),
    #[error(transparent)]
    Filters(#[from] vesselkit_filters::FilterError),
    #[error(transparent)]
    Angio(#[from] vesselkit_angio::AngioError),
    #[error(transparent)]
    Oct(#[from] vesselkit_oct::OctError),
    #[error(transparent)]
    Lesion(#[from] vesselkit_lesion::LesionError),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Options of [`analyze`].
#[derive(Debug, Clone)]
pub struct Options {
    pub angio: AngioOptions,
    /// Detection, classification, ranking and balloon thresholds (loadable from a file).
    pub rules: Rules,
    /// Extra planning input, e.g. OCT reference diameters per lesion.
    pub plan: PlanInput,
    /// Analyse this frame instead of the best-opacified one (cine only).
    pub frame: Option<usize>,
    /// With a calibrated image and default angiography options, size the vesselness scales and
    /// background window from physical vessel radii (0.5 to 6 mm) instead of pixels. With an
    /// uncalibrated one and a learned mask, take the DCA1 preset the model was fitted with
    /// ([`vesselkit_angio::SegmentOptions::dca1`]: its maps are the model's inputs, and its mask
    /// clean-up is the one the DCA1 figures were measured with).
    pub auto_scale: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            angio: AngioOptions::default(),
            rules: Rules::default(),
            plan: PlanInput::default(),
            frame: None,
            auto_scale: true,
        }
    }
}

/// Everything [`analyze`] computed: the report plus the arrays behind it.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub report: Report,
    pub angio: AngioResult,
    pub assessment: Assessment,
    /// Index of the frame the tree was measured on.
    pub frame_used: usize,
}

impl Analysis {
    /// The vessel mask of the analysed frame.
    pub fn mask(&self) -> &Array2<bool> {
        &self.angio.mask
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A catheter of known size that the user marked on one frame, to take the scale from
/// (issue: catheter calibration). Use a contrast-empty catheter: filled ones measure 3.9 to
/// 15.5 % small (domain.md section 4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatheterMark {
    /// Two points along the catheter's axis, (row, col) px, at least 4 px apart; its width is
    /// measured across the segment between them.
    pub p0: vesselkit_core::Point,
    pub p1: vesselkit_core::Point,
    /// Outer size in French (1 Fr = 1/3 mm), 2 to 12.
    pub french: f64,
    /// The frame the points were marked on.
    pub frame: usize,
}

/// The scale from a marked catheter in `frames` (`[frame, row, col]`, vessels dark), with its
/// source `catheter` and the measured width in its detail. Set it as a cine's calibration to
/// replace the file's own scale: a size measured in the image, at the vessels' depth, beats a
/// nominal detector spacing.
pub fn catheter_calibration(frames: ArrayView3<f32>, mark: &CatheterMark) -> Result<Calibration> {
    let n = frames.len_of(Axis(0));
    if mark.frame >= n {
        return Err(Error::Invalid {
            field: "catheter frame",
            reason: format!("index {} but the input has {n} frame(s)", mark.frame),
        });
    }
    let frame = frames.index_axis(Axis(0), mark.frame);
    Ok(vesselkit_angio::calibrate_catheter(
        frame,
        mark.p0,
        mark.p1,
        mark.french,
    )?)
}

/// Analyse a single frame or a cine run.
///
/// A cine is measured on its best-opacified frame (or `opts.frame`), and its time course gives
/// each branch a contrast arrival time and a flow grade; a single frame has no flow information,
/// which the lesion evidence says.
pub fn analyze(cine: &Cine, opts: &Options) -> Result<Analysis> {
    let t0 = Instant::now();
    let n = cine.len();
    let scaled;
    // The cine-stage options and the learned mask do not depend on the scale: a caller who
    // sets only those keeps the scale-aware filters.
    let mut filters = opts.angio.clone();
    filters.flow = AngioOptions::default().flow;
    filters.segment.learned = None;
    let learned = &opts.angio.segment.learned;
    let preset = if !opts.auto_scale || filters != AngioOptions::default() {
        None
    } else if cine.calibration.is_calibrated() {
        Some(AngioOptions::for_scale(cine.calibration.mm_per_px))
    } else {
        learned.is_some().then(|| AngioOptions {
            segment: vesselkit_angio::SegmentOptions::dca1(),
            ..AngioOptions::default()
        })
    };
    let angio_opts = match preset {
        Some(mut s) => {
            s.flow = opts.angio.flow;
            s.segment.learned = learned.clone();
            scaled = s;
            &scaled
        }
        None => &opts.angio,
    };
    // For a cine: each frame's registration shift, to see the run's fullest filling past ends.
    let mut shifts: Option<Vec<(f64, f64)>> = None;
    let mut mask_frames = Vec::new();
    let (angio, frame_used) = match opts.frame {
        Some(i) if i >= n => {
            return Err(Error::Invalid {
                field: "frame",
                reason: format!("index {i} but the input has {n} frame(s)"),
            });
        }
        Some(i) => {
            let view = cine.frames.index_axis(Axis(0), i);
            (vesselkit_angio::analyze_view(view, &cine.calibration, angio_opts)?, i)
        }
        None if n > 1 => {
            let r = vesselkit_angio::analyze_cine(cine, angio_opts)?;
            shifts = Some(r.shifts_px);
            if r.mask_frames.len() > 1 {
                mask_frames = r.mask_frames;
            }
            (r.frame, r.best_frame)
        }
        None => (
            vesselkit_angio::analyze_view(cine.frames.index_axis(Axis(0), 0), &cine.calibration, angio_opts)?,
            0,
        ),
    };
    let t_angio = ms(t0);
    let t1 = Instant::now();
    let used = cine.frames.index_axis(Axis(0), frame_used);
    // Densitometric signs compare windows of a few mm and rest on the resolution limit in mm:
    // without a physical scale they are not measured.
    let calibrated = cine.calibration.is_calibrated();
    let opacity = if calibrated {
        branch_opacity(used, &angio.tree)
    } else {
        Vec::new()
    };
    let d = &opts.rules.detection;
    let beyond = if calibrated {
        match &shifts {
            Some(s) => cine_end_probes(
                cine.frames.view(),
                s,
                angio_opts.segment.vesselness.polarity,
                &angio.tree,
                d.angle_window_mm,
                BEYOND_END_GAP_MM,
                d.beyond_end_probe_mm,
            )?,
            None => end_probes(
                used,
                &angio.tree,
                &opacity,
                d.angle_window_mm,
                BEYOND_END_GAP_MM,
                d.beyond_end_probe_mm,
            ),
        }
    } else {
        Vec::new()
    };
    let mut lesions = vesselkit_lesion::detect_with_probes(&angio.tree, &opacity, &beyond, &opts.rules)?;
    vesselkit_lesion::drop_edge_cutoffs(&mut lesions, used.dim(), &angio.tree, &opts.rules);
    let mut assessment = vesselkit_lesion::assess_detected(lesions, &angio.tree, &opts.rules, &opts.plan)?;
    if !calibrated {
        withhold_balloons(&mut assessment);
    }
    let t_lesion = ms(t1);

    let (rows, cols) = (cine.frames.len_of(Axis(1)), cine.frames.len_of(Axis(2)));
    let input = InputInfo {
        path: None,
        modality: None,
        rows,
        cols,
        frames: n,
        frame_used: Some(frame_used),
        mask_frames,
    };
    let mut report = build_report(input, &angio.tree, &assessment);
    if !calibrated {
        report.warnings.push(UNCALIBRATED_LESION_WARNING.to_string());
    }
    report.timings_ms.insert("segment".into(), angio.timings_ms.segment_ms);
    report
        .timings_ms
        .insert("centerline".into(), angio.timings_ms.centerline_ms);
    report.timings_ms.insert("profile".into(), angio.timings_ms.profile_ms);
    report.timings_ms.insert("angio_total".into(), t_angio);
    report.timings_ms.insert("lesion".into(), t_lesion);
    report.timings_ms.insert("total".into(), ms(t0));
    Ok(Analysis {
        report,
        angio,
        assessment,
        frame_used,
    })
}

/// Plan note when the frame has no physical scale.
pub const UNCALIBRATED_PLAN_NOTE: &str = "No balloon sizes: the image has no physical scale, so diameters are in \
     pixels and a balloon in mm cannot be chosen. Give the pixel spacing (--pixel-spacing, \
     `pixel_spacing=`) or calibrate on the catheter.";

/// The report's warning on a frame without a physical scale: the lesion list there is not
/// screened as it is on a calibrated one.
pub const UNCALIBRATED_LESION_WARNING: &str = "No physical scale: the lesion rules' thresholds in mm \
     were applied to pixels, and the densitometry and the probes past branch ends that vet \
     cut-offs were not run, so every abrupt end is a cut-off; treat the lesions as unscreened \
     candidates. Give the pixel spacing (--pixel-spacing, `pixel_spacing=`) or calibrate on the \
     catheter.";

/// Balloons come from a catalogue in mm: on an uncalibrated frame (diameters in pixels) any
/// size would be made up, so the plan keeps its lesion ranking but no balloons or sessions.
fn withhold_balloons(a: &mut Assessment) {
    a.plan.balloons.clear();
    a.plan.sessions.clear();
    a.plan.notes.insert(0, UNCALIBRATED_PLAN_NOTE.to_string());
    for l in &mut a.lesions {
        l.balloon_mm.clear();
    }
}

/// Bilinear sample of `img` at `(row, col)`; `None` outside the image.
fn bilinear(img: &ArrayView2<f32>, row: f64, col: f64) -> Option<f64> {
    let (h, w) = img.dim();
    if !(row >= 0.0 && col >= 0.0 && row <= (h - 1) as f64 && col <= (w - 1) as f64) {
        return None;
    }
    let (r0, c0) = (row.floor() as usize, col.floor() as usize);
    let (r1, c1) = ((r0 + 1).min(h - 1), (c0 + 1).min(w - 1));
    let (fr, fc) = (row - r0 as f64, col - c0 as f64);
    let v = |r: usize, c: usize| img[[r, c]] as f64;
    Some((1.0 - fr) * ((1.0 - fc) * v(r0, c0) + fc * v(r0, c1)) + fr * ((1.0 - fc) * v(r1, c0) + fc * v(r1, c1)))
}

/// Densitometric contrast at every profile sample of `tree` on `img` (dark vessels on a
/// bright background, as in X-ray angiography): `ln(background / lumen)` with the lumen
/// intensity averaged over the central half of the measured diameter and the background the
/// median 2-6 px beyond both edges. NaN where the diameter is unknown, the profile leaves the
/// image or the vessel is not darker than its surroundings. By Beer-Lambert it grows with
/// diameter × iodine concentration, so its ratio per mm of diameter before and after a
/// narrowing compares how well the two segments fill.
pub fn branch_opacity(img: ArrayView2<f32>, tree: &VesselTree) -> Vec<Vec<f64>> {
    let mm = tree.calibration.mm_per_px;
    tree.branches
        .iter()
        .map(|b| {
            let n = b.samples.len();
            (0..n)
                .map(|i| {
                    let s = &b.samples[i];
                    let (a, z) = (
                        b.samples[i.saturating_sub(2)].point,
                        b.samples[(i + 2).min(n - 1)].point,
                    );
                    let (tr, tc) = (z.row - a.row, z.col - a.col);
                    let len = tr.hypot(tc);
                    let r = s.diameter_mm / (2.0 * mm);
                    if !(len > 0.0 && r.is_finite() && r > 0.0 && mm > 0.0) {
                        return f64::NAN;
                    }
                    let (nr, nc) = (-tc / len, tr / len);
                    let at = |u: f64| bilinear(&img, s.point.row + u * nr, s.point.col + u * nc);
                    let inner: Option<Vec<f64>> = [-0.25, 0.0, 0.25].iter().map(|&f| at(f * r)).collect();
                    let mut outer: Vec<f64> = Vec::with_capacity(10);
                    for k in 0..5 {
                        let u = r + 2.0 + k as f64;
                        for side in [-1.0, 1.0] {
                            match at(side * u) {
                                Some(v) => outer.push(v),
                                None => return f64::NAN,
                            }
                        }
                    }
                    let Some(inner) = inner else { return f64::NAN };
                    let lumen = inner.iter().sum::<f64>() / inner.len() as f64;
                    outer.sort_by(f64::total_cmp);
                    let bg = 0.5 * (outer[4] + outer[5]);
                    if lumen > 0.0 && bg > lumen {
                        (bg / lumen).ln()
                    } else {
                        f64::NAN
                    }
                })
                .collect()
        })
        .collect()
}

/// Distance past a branch end where the probe for a continuing vessel starts: the skeleton
/// stops about a radius short of the lumen's end, and the stump itself must not count.
const BEYOND_END_GAP_MM: f64 = 1.0;
/// Directions of the probes past a branch end relative to the stump's axis, degrees: the
/// straight one first (it alone says whether a faint vessel continues the stump), then a fan
/// that finds a vessel going on but bending away from the straight line.
const PROBE_FAN_DEG: [f64; 5] = [0.0, -20.0, 20.0, -40.0, 40.0];
/// Where the last `dir_mm` of a stump holds too few measured samples, its contrast and
/// calibre are taken over this many times `dir_mm` instead.
const STUMP_FALLBACK_WINDOWS: f64 = 3.0;
/// A stump's opacified column ends where its contrast falls below this fraction of its own
/// (half way down the blurred step).
const COLUMN_END_RATIO: f64 = 0.5;
/// A vessel refilling past a stump is read from where the straight probe's contrast has fallen
/// to this fraction of the stump's own: past the stump's blurred rounded end, whose fading
/// tail would read as a faint vessel.
const REFILL_FROM_RATIO: f64 = 0.3;
/// A probe that leaves the image counts when at least this fraction of its steps lie inside.
const PROBE_MIN_INSIDE: f64 = 0.6;

/// Contrast beyond the distal end of every branch without children, relative to its last
/// millimetres: the median of [`end_probes`]. `None` where that has none.
pub fn beyond_end_ratio(
    img: ArrayView2<f32>,
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    dir_mm: f64,
    gap_mm: f64,
    probe_mm: f64,
) -> Vec<Option<f64>> {
    end_probes(img, tree, opacity, dir_mm, gap_mm, probe_mm)
        .into_iter()
        .map(|p| p.map(|x| x.beyond_ratio))
        .collect()
}

/// What fills past the distal end of every branch without children: `ln(background / I)` at
/// each pixel step along the straight continuation of the last `dir_mm` of centerline, from
/// `gap_mm` to `gap_mm + probe_mm` past the end, over the median opacity (see
/// [`branch_opacity`]) of the last `dir_mm`, summarised as an [`EndProbe`]. Its median is near 0
/// where nothing fills beyond a cut-off and clearly positive where a fainter vessel continues
/// (contrast passing a near-occlusion that the segmentation lost). The same probe turned by
/// ±20° and ±40° gives `fan_ratio` (the highest median: a vessel that goes on but bends) and,
/// from that direction, the neck: a dip followed by full contrast is a narrowing the
/// centreline could not follow, and the middle of the neck's floor (`neck_site`). Along the
/// straight line from the end itself, `end_site` is where the stump's column of contrast
/// ends, which the skeleton stops short of. A probe stops where it leaves the image. `None` for branches
/// with children, without measured opacity over their last `3 × dir_mm`, or whose straight
/// probe has less than 60 % of its steps inside the image (a turned probe so cut is skipped).
pub fn end_probes(
    img: ArrayView2<f32>,
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    dir_mm: f64,
    gap_mm: f64,
    probe_mm: f64,
) -> Vec<Option<EndProbe>> {
    probe_ends(img, tree, opacity, dir_mm, gap_mm, probe_mm, true)
        .into_iter()
        .map(|p| p.map(|(probe, _)| probe))
        .collect()
}

/// [`end_probes`] for a registered cine run (`shifts` from [`vesselkit_angio::frame_shifts`]):
/// probed on each pixel's fullest filling over the run, where a vessel that fills late behind
/// a near-occlusion shows at its fullest, which no single frame does; and with each probe's
/// `refill_ratio` read along the same straight line on the run with the still anatomy taken
/// out ([`vesselkit_angio::peak_and_subtracted_opacification`]), where such a vessel stands
/// out of a flat background.
pub fn cine_end_probes(
    frames: ArrayView3<f32>,
    shifts: &[(f64, f64)],
    polarity: Polarity,
    tree: &VesselTree,
    dir_mm: f64,
    gap_mm: f64,
    probe_mm: f64,
) -> Result<Vec<Option<EndProbe>>> {
    let (peak, subtracted) = vesselkit_angio::peak_and_subtracted_opacification(frames, shifts, polarity)?;
    let mut probes = end_probes(
        peak.view(),
        tree,
        &branch_opacity(peak.view(), tree),
        dir_mm,
        gap_mm,
        probe_mm,
    );
    let refills = probe_ends(
        subtracted.view(),
        tree,
        &branch_opacity(subtracted.view(), tree),
        dir_mm,
        gap_mm,
        probe_mm,
        false,
    );
    let lumens = LumenIndex::new(tree);
    for ((p, r), b) in probes.iter_mut().zip(refills).zip(&tree.branches) {
        if let (Some(p), Some((_, mut straight))) = (p, r) {
            // The refill is the vessel the stump would go on into: a traced vessel crossing
            // the line fills whatever lies behind the stump, so the probe stops there.
            if let Some(k) = lumens.first_crossing(&straight, b.id) {
                straight.truncate(k);
            }
            p.refill_ratio = EndProbe::refill(&straight, REFILL_FROM_RATIO);
        }
    }
    Ok(probes)
}

/// A traced vessel crosses a probe line where the line enters its lumen (its radius plus
/// this, px: the blurred edge) ...
const CROSSING_MARGIN_PX: f64 = 2.0;
/// ... heading more than this away from the line, degrees (a vessel running along the line
/// is the stump's own continuation, a piece the tree did not join to it).
const CROSSING_MIN_ANGLE_DEG: f64 = 45.0;

/// One centreline sample for [`LumenIndex`].
struct LumenSample {
    row: f64,
    col: f64,
    radius_px: f64,
    /// Unit heading (row, col).
    heading: (f64, f64),
    branch: usize,
}

/// Every centreline sample of a tree with its lumen radius and heading, sorted by row, to find
/// the traced vessels a probe line crosses.
struct LumenIndex {
    samples: Vec<LumenSample>,
    max_radius_px: f64,
}

impl LumenIndex {
    fn new(tree: &VesselTree) -> Self {
        let mm = tree.calibration.mm_per_px;
        let mut samples = Vec::new();
        for b in &tree.branches {
            let n = b.samples.len();
            for i in 0..n {
                let d = b.samples[i].diameter_mm;
                if !(d.is_finite() && d > 0.0) {
                    continue;
                }
                let (a, z) = (
                    &b.samples[i.saturating_sub(1)].point,
                    &b.samples[(i + 1).min(n - 1)].point,
                );
                let (hr, hc) = (z.row - a.row, z.col - a.col);
                let len = hr.hypot(hc);
                if len > 0.0 {
                    let p = b.samples[i].point;
                    samples.push(LumenSample {
                        row: p.row,
                        col: p.col,
                        radius_px: 0.5 * d / mm,
                        heading: (hr / len, hc / len),
                        branch: b.id,
                    });
                }
            }
        }
        samples.sort_by(|x, y| x.row.total_cmp(&y.row));
        let max_radius_px = samples.iter().map(|s| s.radius_px).fold(0.0, f64::max);
        Self { samples, max_radius_px }
    }

    /// Index of the first probe point inside the lumen of a vessel other than branch `own`
    /// that crosses the line, if any.
    fn first_crossing(&self, points: &[(vesselkit_lesion::Site, f64)], own: usize) -> Option<usize> {
        let reach = self.max_radius_px + CROSSING_MARGIN_PX;
        let cos_max = CROSSING_MIN_ANGLE_DEG.to_radians().cos();
        (0..points.len()).find(|&k| {
            let p = points[k].0;
            let q = points[(k + 1).min(points.len() - 1)].0;
            let o = points[k.saturating_sub(1)].0;
            let (dr, dc) = (q.row - o.row, q.col - o.col);
            let len = dr.hypot(dc);
            if len <= 0.0 {
                return false;
            }
            let (ur, uc) = (dr / len, dc / len);
            let lo = self.samples.partition_point(|s| s.row < p.row - reach);
            self.samples[lo..]
                .iter()
                .take_while(|s| s.row <= p.row + reach)
                .any(|s| {
                    s.branch != own
                        && (s.row - p.row).hypot(s.col - p.col) <= s.radius_px + CROSSING_MARGIN_PX
                        && (s.heading.0 * ur + s.heading.1 * uc).abs() < cos_max
                })
        })
    }
}

/// Points along a probe line, in order away from the end: image position, contrast as a
/// fraction of the stump's own.
type ProbeLine = Vec<(vesselkit_lesion::Site, f64)>;

/// [`end_probes`] with the points of each straight probe; without `fan`, the straight probe
/// alone (no turned probes, no column end).
fn probe_ends(
    img: ArrayView2<f32>,
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    dir_mm: f64,
    gap_mm: f64,
    probe_mm: f64,
    fan: bool,
) -> Vec<Option<(EndProbe, ProbeLine)>> {
    let mm = tree.calibration.mm_per_px;
    tree.branches
        .iter()
        .zip(opacity)
        .map(|(b, op)| {
            if !b.children.is_empty() || mm.is_nan() || mm <= 0.0 {
                return None;
            }
            let last = b.samples.last()?;
            let stump = |window_mm: f64| {
                let from = last.arc_mm - window_mm;
                let tail: Vec<usize> = (0..b.samples.len()).filter(|&i| b.samples[i].arc_mm >= from).collect();
                let own: Vec<f64> = tail.iter().map(|&i| op[i]).filter(|v| v.is_finite()).collect();
                let d: Vec<f64> = tail
                    .iter()
                    .map(|&i| b.samples[i].diameter_mm)
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .collect();
                (tail, own, d)
            };
            let (tail, mut own, mut d) = stump(dir_mm);
            // The stump's axis: its last `dir_mm` in any case.
            let a = b.samples[*tail.first()?].point;
            if own.len() < 3 || d.is_empty() {
                // The profile often fails over a stump's last millimetres (the centreline runs
                // into its rounded end): its contrast and calibre come from the nearest
                // measured stretch instead.
                (_, own, d) = stump(STUMP_FALLBACK_WINDOWS * dir_mm);
            }
            if own.len() < 3 || d.is_empty() {
                return None;
            }
            own.sort_by(f64::total_cmp);
            d.sort_by(f64::total_cmp);
            let (own, d) = (own[own.len() / 2], d[d.len() / 2]);
            let (tr, tc) = (last.point.row - a.row, last.point.col - a.col);
            let len = tr.hypot(tc);
            if !(len > 0.0 && own > 0.0) {
                return None;
            }
            let (u0r, u0c) = (tr / len, tc / len);
            let r = d / (2.0 * mm);
            let steps = (probe_mm / mm).ceil() as usize;
            // Contrast across the probe line at `t` px past the end along (ur, uc), a fraction
            // of the stump's own: the lumen's centre over the median of a ring of background
            // beside it. `None` where that leaves the image; `Some(None)` where it is unusable.
            let across = |ur: f64, uc: f64, t: f64| -> Option<Option<(vesselkit_lesion::Site, f64)>> {
                let (nr, nc) = (-uc, ur);
                let (pr, pc) = (last.point.row + t * ur, last.point.col + t * uc);
                let at = |u: f64| bilinear(&img, pr + u * nr, pc + u * nc);
                let lumen = [-0.25, 0.0, 0.25].iter().map(|&f| at(f * r)).sum::<Option<f64>>()? / 3.0;
                let mut outer = [0.0; 10];
                for j in 0..5 {
                    outer[2 * j] = at(-(r + 2.0 + j as f64))?;
                    outer[2 * j + 1] = at(r + 2.0 + j as f64)?;
                }
                outer.sort_by(f64::total_cmp);
                let bg = 0.5 * (outer[4] + outer[5]);
                let site = vesselkit_lesion::Site { row: pr, col: pc };
                Some((lumen > 0.0 && bg > 0.0).then(|| (site, (bg / lumen).ln() / own)))
            };
            let probe = |deg: f64| -> Option<(EndProbe, ProbeLine)> {
                let (sn, cs) = deg.to_radians().sin_cos();
                let (ur, uc) = (u0r * cs - u0c * sn, u0r * sn + u0c * cs);
                let mut vals = Vec::with_capacity(steps + 1);
                // The probe runs until it leaves the image; a stump near the border keeps the
                // part inside when that is most of it (a short remainder reads the border's
                // shading as contrast).
                let mut inside = 0usize;
                for k in 0..=steps {
                    let Some(v) = across(ur, uc, (gap_mm + k as f64 * mm) / mm) else {
                        break;
                    };
                    inside += 1;
                    vals.extend(v);
                }
                if (inside as f64) < PROBE_MIN_INSIDE * (steps + 1) as f64 {
                    return None;
                }
                EndProbe::from_profile(&vals).map(|p| (p, vals))
            };
            let (mut best, straight) = probe(PROBE_FAN_DEG[0])?;
            if !fan {
                return Some((best, straight));
            }
            let column: Vec<(vesselkit_lesion::Site, f64)> = (0..=steps + (gap_mm / mm).ceil() as usize)
                .map_while(|k| across(u0r, u0c, k as f64))
                .flatten()
                .collect();
            best.end_site = EndProbe::column_end(&column, COLUMN_END_RATIO);
            for &deg in &PROBE_FAN_DEG[1..] {
                if let Some((p, _)) = probe(deg).filter(|(p, _)| p.beyond_ratio > best.fan_ratio) {
                    best.fan_ratio = p.beyond_ratio;
                    best.neck_ratio = p.neck_ratio;
                    best.after_neck_ratio = p.after_neck_ratio;
                    best.neck_site = p.neck_site;
                }
            }
            Some((best, straight))
        })
        .collect()
}

/// Analyse one 2-D frame.
pub fn analyze_frame(frame: &Frame, opts: &Options) -> Result<Analysis> {
    let cine = Cine::new(
        frame.pixels.clone().insert_axis(Axis(0)),
        frame.calibration.clone(),
        Vec::new(),
    )?;
    analyze(&cine, opts)
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Assemble the report from the measured tree and the lesion assessment.
pub fn build_report(input: InputInfo, tree: &VesselTree, assessment: &Assessment) -> Report {
    let mut report = Report::new(input, tree.calibration.clone());
    report.vessels = tree
        .branches
        .iter()
        .map(|b| VesselReport {
            id: b.id,
            parent: b.parent,
            children: b.children.clone(),
            length_mm: b.length_mm,
            centerline: b.samples.iter().map(|s| s.point).collect(),
            diameter_mm: b.diameters_mm(),
            distal_end: to_value(&b.distal_end).as_str().unwrap_or("unknown").to_string(),
            tortuosity: to_value(&b.tortuosity),
            flow_grade: b.flow_grade,
            arrival_ms: b.arrival_ms,
        })
        .collect();
    report.lesions = assessment
        .lesions
        .iter()
        .map(|l| lesion_report(l, assessment))
        .collect();
    report.plan = PlanReport {
        sessions: assessment
            .plan
            .sessions
            .iter()
            .map(|s| SessionReport {
                index: s.index as u32,
                lesions: s.lesions.clone(),
                note: s.note.clone(),
            })
            .collect(),
        notes: assessment.plan.notes.clone(),
    };
    report
}

fn lesion_report(l: &vesselkit_lesion::Lesion, a: &Assessment) -> LesionReport {
    let mut flags = l.risk_flags.clone();
    if let Some(b) = a.plan.balloons.iter().find(|b| b.lesion == l.id)
        && b.oversized
    {
        flags.push(format!("balloon-to-vessel ratio above 1.0: {}", b.note));
    }
    LesionReport {
        id: l.id,
        vessel: l.vessel,
        site: l.site.map_or(
            Site {
                row: f64::NAN,
                col: f64::NAN,
            },
            |s| Site { row: s.row, col: s.col },
        ),
        lesion_type: l.lesion_type,
        kawakami: l.lesion_type.kawakami(),
        confidence: l.confidence,
        mld_mm: l.mld_mm,
        reference_diameter_mm: l.reference_diameter_mm,
        diameter_stenosis_pct: l.diameter_stenosis_pct,
        length_mm: l.length_mm,
        evidence: to_value(&l.evidence),
        priority: l.priority.map_or(0, |p| p as u32),
        reason: l.reason.clone(),
        balloon_mm: l.balloon_mm.clone(),
        flags,
    }
}

/// Analyse an OCT pullback (`[frames, rows, cols]` cartesian frames) and type the lesions found
/// on its lumen-area profile. Returns the pullback result and a report whose `oct` field holds
/// the per-frame profile.
pub fn analyze_pullback(
    frames: ArrayView3<f32>,
    opts: &vesselkit_oct::PullbackOptions,
    rules: &Rules,
) -> Result<(vesselkit_oct::PullbackResult, Report)> {
    let t0 = Instant::now();
    let pb = vesselkit_oct::oct_pullback(frames, opts)?;
    let areas: Vec<f64> = pb.profile.iter().map(|p| p.area_mm2.unwrap_or(f64::NAN)).collect();
    let channels: Vec<u32> = pb.profile.iter().map(|p| p.n_channels as u32).collect();
    let lesions = vesselkit_lesion::detect_oct(&areas, &channels, opts.frame_spacing_mm, rules)?;
    let tree = VesselTree {
        branches: Vec::new(),
        root: None,
        calibration: Calibration::user(opts.frame.mm_per_px)?,
    };
    let mut lesions = lesions;
    vesselkit_lesion::rank(&mut lesions, &tree, rules)?;
    let plan = vesselkit_lesion::plan(&lesions, &PlanInput::default(), rules)?;
    let assessment = Assessment {
        lesions,
        plan,
        notice: RESEARCH_NOTICE.to_string(),
    };
    let (n, rows, cols) = frames.dim();
    let input = InputInfo {
        path: None,
        modality: Some("IVOCT".into()),
        rows,
        cols,
        frames: n,
        frame_used: None,
        mask_frames: Vec::new(),
    };
    let mut report = build_report(input, &tree, &assessment);
    report.oct = Some(serde_json::json!({
        "profile": to_value(&pb.profile),
        "failures": to_value(&pb.failures),
        "mla_frame": pb.mla_frame,
        "mla_mm2": pb.mla_mm2,
        "proximal_reference_frame": pb.proximal_reference_frame,
        "distal_reference_frame": pb.distal_reference_frame,
        "reference_area_mm2": pb.reference_area_mm2,
        "reference_diameter_mm": pb.reference_diameter_mm,
        "reference_mean_diameter_mm": pb.reference_mean_diameter_mm,
        "area_stenosis_pct": pb.area_stenosis_pct,
        "lesion_frames": [pb.lesion_frames.0, pb.lesion_frames.1],
        "lesion_length_mm": pb.lesion_length_mm,
        "web_candidate_frames": pb.web_candidate_frames,
    }));
    report.timings_ms.insert("total".into(), ms(t0));
    Ok((pb, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use vesselkit_core::{Branch, BranchEnd, Point, ProfileSample, Tortuosity};

    #[test]
    fn opacity_is_the_log_attenuation_of_the_lumen() {
        // Background 1000 counts, a 10 px wide horizontal vessel attenuating by exp(-0.5).
        let img = Array2::from_shape_fn((100, 100), |(r, _)| {
            if (45..55).contains(&r) {
                1000.0 * (-0.5f32).exp()
            } else {
                1000.0
            }
        });
        let mut branch = line_branch(0, (10..90).map(|c| Point::new(49.5, c as f64)));
        branch.samples[40].diameter_mm = f64::NAN;
        branch.distal_end = BranchEnd::Taper;
        let tree = VesselTree {
            branches: vec![branch],
            root: Some(0),
            calibration: Calibration::user(0.1).unwrap(),
        };
        let o = branch_opacity(img.view(), &tree);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].len(), 80);
        for (i, v) in o[0].iter().enumerate() {
            if i == 40 {
                assert!(v.is_nan(), "unmeasured diameter gives NaN");
            } else {
                assert!((v - 0.5).abs() < 1e-4, "sample {i}: {v}");
            }
        }
        // A cut-off at col 89 with nothing beyond it: the probe finds no contrast. A fainter
        // vessel (attenuation 0.2) continuing past a gap from col 92: ratio 0.2 / 0.5.
        let end = tree.branches[0].samples.last().unwrap().point;
        assert_eq!(end.col, 89.0);
        let wide = Array2::from_shape_fn((100, 140), |(r, c)| {
            let a: f32 = if !(45..55).contains(&r) {
                0.0
            } else if c <= 89 {
                0.5
            } else if c >= 92 {
                0.2
            } else {
                0.0
            };
            1000.0 * (-a).exp()
        });
        let cut = Array2::from_shape_fn((100, 140), |(r, c)| if c <= 89 { wide[[r, c]] } else { 1000.0 });
        for (img, want) in [(&cut, 0.0), (&wide, 0.4)] {
            let op = branch_opacity(img.view(), &tree);
            let r = beyond_end_ratio(img.view(), &tree, &op, 3.0, 1.0, 2.0);
            assert!((r[0].unwrap() - want).abs() < 1e-4, "{r:?} vs {want}");
            // The stump's column ends at its last pixel, col 89: the first probe point past
            // it is col 90 (a vessel filling at 0.4 of the stump does not carry it on).
            let p = end_probes(img.view(), &tree, &op, 3.0, 1.0, 2.0)[0].unwrap();
            assert_eq!(p.end_site.map(|s| (s.row, s.col)), Some((end.row, 90.0)), "{p:?}");
        }
        // The vessel goes on at full contrast past a 0.5 mm neck at 10 % of it (cols 100-104,
        // inside the probe from col 99): the median says patent, the probe shows the neck.
        let necked = Array2::from_shape_fn((100, 140), |(r, c)| {
            let a: f32 = if !(45..55).contains(&r) {
                0.0
            } else if (100..105).contains(&c) {
                0.05
            } else {
                0.5
            };
            1000.0 * (-a).exp()
        });
        let op = branch_opacity(necked.view(), &tree);
        let p = end_probes(necked.view(), &tree, &op, 3.0, 1.0, 2.0)[0].unwrap();
        assert!((p.beyond_ratio - 1.0).abs() < 1e-4, "{p:?}");
        assert!((p.neck_ratio - 0.1).abs() < 1e-4, "{p:?}");
        assert!((p.after_neck_ratio - 1.0).abs() < 1e-4, "{p:?}");
        // The neck's floor spans cols 100-104: the lesion sits at its middle.
        assert_eq!(p.neck_site.map(|s| (s.row, s.col)), Some((end.row, 102.0)), "{p:?}");
        let p = end_probes(wide.view(), &tree, &branch_opacity(wide.view(), &tree), 3.0, 1.0, 2.0)[0].unwrap();
        assert!((p.neck_ratio - 0.4).abs() < 1e-4, "no neck: {p:?}");
        // The vessel goes on past a gap but bends 40° away: the straight probe misses it, the
        // fan finds it at full contrast.
        let (sn, cs) = 40f64.to_radians().sin_cos();
        let bent = Array2::from_shape_fn((100, 140), |(r, c)| {
            let (dr, dc) = (r as f64 + 0.5 - 50.0, c as f64 - 92.0);
            let (along, across) = (dr * sn + dc * cs, dr * cs - dc * sn);
            let stump = c <= 89 && (45..55).contains(&r);
            let a: f32 = if stump || (along >= 0.0 && across.abs() <= 5.0) {
                0.5
            } else {
                0.0
            };
            1000.0 * (-a).exp()
        });
        let p = end_probes(bent.view(), &tree, &branch_opacity(bent.view(), &tree), 3.0, 1.0, 2.0)[0].unwrap();
        assert!(p.beyond_ratio < 0.1, "{p:?}");
        assert!(p.fan_ratio > 0.9, "{p:?}");
        // Near the border the probe keeps its part inside the image when that is most of it:
        // cut at col 115, 16 of its 21 steps remain; at col 105, 6 of them, too few.
        for (cols, want) in [(115, Some(0.4)), (105, None)] {
            let near = wide.slice(ndarray::s![.., ..cols]).to_owned();
            let r = beyond_end_ratio(near.view(), &tree, &branch_opacity(near.view(), &tree), 3.0, 1.0, 2.0)[0];
            match (r, want) {
                (Some(r), Some(w)) => assert!((r - w).abs() < 1e-4, "{cols}: {r}"),
                (r, w) => assert_eq!(r, w, "{cols}"),
            }
        }
        // The stump's last 3 mm unmeasured but one sample: its contrast comes from the 9 mm.
        let mut blind = tree.clone();
        for x in blind.branches[0].samples.iter_mut().filter(|x| x.point.col >= 60.0) {
            x.diameter_mm = f64::NAN;
        }
        let r = beyond_end_ratio(wide.view(), &blind, &branch_opacity(wide.view(), &blind), 3.0, 1.0, 2.0)[0];
        assert!((r.unwrap() - 0.4).abs() < 1e-4, "{r:?}");
        // A vessel brighter than its background (wrong polarity) gives no value.
        let inv = img.mapv(|v| 2000.0 - v);
        assert!(branch_opacity(inv.view(), &tree)[0].iter().all(|v| v.is_nan()));
    }

    /// A branch through `points`, one per pixel (0.1 mm/px, 1 mm lumen throughout).
    fn line_branch(id: usize, points: impl Iterator<Item = Point>) -> Branch {
        let samples: Vec<ProfileSample> = points
            .enumerate()
            .map(|(k, point)| ProfileSample {
                point,
                arc_mm: k as f64 * 0.1,
                diameter_mm: 1.0,
                left_mm: 0.5,
                right_mm: 0.5,
                channels: 1,
                density_ratio: 1.0,
                reliable: true,
            })
            .collect();
        Branch {
            id,
            parent: None,
            children: vec![],
            length_mm: samples.len().saturating_sub(1) as f64 * 0.1,
            samples,
            distal_end: BranchEnd::Abrupt,
            tortuosity: Tortuosity::default(),
            arrival_ms: None,
            flow_grade: None,
        }
    }

    #[test]
    fn a_vessel_refilling_past_a_stump_is_read_on_the_subtracted_run() {
        // Eight frames at 1000 counts. A stump (attenuation 0.5, rows 45-54, cols <= 89) fills
        // from frame 3; past a gap, a faint vessel (0.1, from col 95) fills in frames 5-7 only.
        // A rib (attenuation 0.4, rows 30-47, still in every frame) lies over the probe's line
        // and its background ring on one side.
        let tree = |crossing: bool| VesselTree {
            branches: {
                let mut b = vec![line_branch(0, (10..90).map(|c| Point::new(49.5, c as f64)))];
                if crossing {
                    b.push(line_branch(1, (0..50).map(|r| Point::new(r as f64, 124.5))));
                }
                b
            },
            root: Some(0),
            calibration: Calibration::user(0.1).unwrap(),
        };
        let run = |distal: bool, crossing: bool| {
            Array3::from_shape_fn((8, 100, 160), |(f, r, c)| {
                let lumen = (45..55).contains(&r);
                let mut a: f32 = if (30..48).contains(&r) { 0.4 } else { 0.0 };
                if lumen && c <= 89 && f >= 3 {
                    a += 0.5;
                }
                if lumen && c >= 95 && distal && f >= 5 {
                    a += 0.1;
                }
                if crossing && r < 55 && (120..130).contains(&c) && f >= 3 {
                    a += 0.5;
                }
                1000.0 * (-a).exp()
            })
        };
        let shifts = vec![(0.0, 0.0); 8];
        let probe = |distal: bool, crossing: bool| {
            let (frames, t) = (run(distal, crossing), tree(crossing));
            cine_end_probes(frames.view(), &shifts, Polarity::DarkOnBright, &t, 3.0, 1.0, 4.0).unwrap()[0].unwrap()
        };
        // With the still anatomy taken out the faint vessel reads 0.1 / 0.5 of the stump.
        let refill = probe(true, false).refill_ratio.unwrap();
        assert!((refill - 0.2).abs() < 1e-3, "{refill}");
        // Nothing past an occlusion, the rib notwithstanding.
        let refill = probe(false, false).refill_ratio.unwrap();
        assert!(refill.abs() < 1e-3, "{refill}");
        // A traced vessel coming down across the line 3 mm past the tip (cols 120-129, ending
        // on it) stops the probe at its edge: its contrast is not a refill.
        let refill = probe(false, true).refill_ratio.unwrap();
        assert!(refill.abs() < 1e-3, "{refill}");
        // The probe on a single frame carries no refill.
        let frames = run(true, false);
        let last = frames.index_axis(Axis(0), 7);
        let t = tree(false);
        let p = end_probes(last, &t, &branch_opacity(last, &t), 3.0, 1.0, 4.0)[0].unwrap();
        assert_eq!(p.refill_ratio, None);
    }

    #[test]
    fn uncalibrated_frames_get_no_balloon_sizes() {
        use vesselkit_phantom::{AngioParams, generate_angio};
        let ph = generate_angio(&AngioParams::default(), 1).unwrap();
        let analysed = |cal: vesselkit_core::Calibration| {
            let frame = vesselkit_core::Frame::new(ph.image.clone(), cal).unwrap();
            analyze_frame(&frame, &Options::default()).unwrap()
        };
        let mm = analysed(ph.calibration());
        assert!(!mm.assessment.lesions.is_empty());
        assert!(!mm.assessment.plan.balloons.is_empty());
        assert!(mm.assessment.lesions.iter().any(|l| !l.balloon_mm.is_empty()));
        assert!(!mm.report.plan.sessions.is_empty());

        let px = analysed(vesselkit_core::Calibration::uncalibrated());
        assert!(!px.assessment.lesions.is_empty(), "lesions are still found and ranked");
        assert!(
            px.assessment
                .lesions
                .iter()
                .all(|l| l.priority.is_some() && l.balloon_mm.is_empty())
        );
        assert!(px.assessment.plan.balloons.is_empty());
        assert!(px.report.plan.sessions.is_empty());
        assert_eq!(px.report.plan.notes[0], UNCALIBRATED_PLAN_NOTE);
        assert_eq!(px.report.warnings, vec![UNCALIBRATED_LESION_WARNING.to_string()]);
        assert!(mm.report.warnings.is_empty());
        // The JSON carries the warning only when there is one.
        assert!(px.report.to_json().contains("\"warnings\""));
        assert!(!mm.report.to_json().contains("\"warnings\""));
    }

    #[test]
    fn a_cine_report_names_the_frames_its_mask_came_from() {
        use vesselkit_phantom::{CineParams, generate_cine};
        let ph = generate_cine(&CineParams::default(), 10_001).unwrap();
        let cal = vesselkit_core::Calibration::user(ph.truth.geometry.mm_per_px).unwrap();
        let cine = Cine::new(ph.frames.clone(), cal, ph.frame_times_ms()).unwrap();
        let a = analyze(&cine, &Options::default()).unwrap();
        let (m, b) = (&a.report.input.mask_frames, a.frame_used);
        // The frame used and its neighbours (one each side by default).
        assert!(m.len() >= 2 && m.contains(&b), "{m:?} {b}");
        assert!(m.iter().all(|&k| k.abs_diff(b) <= 1), "{m:?} {b}");
        assert!(a.report.to_json().contains("\"mask_frames\""));
        // A frame chosen by the caller is analysed alone, and the JSON says nothing of a mean.
        let one = analyze(
            &cine,
            &Options {
                frame: Some(b),
                ..Options::default()
            },
        )
        .unwrap();
        assert!(one.report.input.mask_frames.is_empty());
        assert!(!one.report.to_json().contains("mask_frames"));
        // Switching the mean off alone keeps the scale-aware filters: the mask is the one of
        // the frame analysed on its own.
        let mut off = Options::default();
        off.angio.flow.mask_mean_half_width = 0;
        let off = analyze(&cine, &off).unwrap();
        assert!(off.report.input.mask_frames.is_empty());
        assert_eq!(off.frame_used, b);
        assert!(off.angio.mask == one.angio.mask);
        assert!(off.angio.mask != a.angio.mask);
    }

    #[test]
    fn the_learned_mask_keeps_the_scale_aware_filters() {
        use vesselkit_angio::{LearnedMask, SegmentOptions, segment};
        // Two dark bars of radius 3 px across a bright frame, 0.2 mm per px.
        let img = ndarray::Array2::from_shape_fn((120, 140), |(r, c)| {
            let d1 = (r as f64 - 40.0).abs();
            let d2 = (c as f64 - 0.6 * r as f64 - 60.0).abs() / (1.0f64 + 0.36).sqrt();
            let chord = |d: f64| 2.0 * (9.0 - d * d).max(0.0).sqrt();
            (200.0 - 10.0 * chord(d1) - 10.0 * chord(d2) + ((r * 7 + c * 13) % 11) as f64) as f32
        });
        let cal = vesselkit_core::Calibration::user(0.2).unwrap();
        let frame = Frame::new(img.clone(), cal).unwrap();
        let mut opts = Options::default();
        opts.angio.segment.learned = Some(LearnedMask::dca1().unwrap());
        let a = analyze_frame(&frame, &opts).unwrap();
        let want = segment(
            img.view(),
            &SegmentOptions {
                learned: Some(LearnedMask::dca1().unwrap()),
                ..SegmentOptions::for_scale(0.2).unwrap()
            },
        )
        .unwrap();
        assert!(
            a.angio.mask == want.mask,
            "the facade's mask is the learned one on scale-aware maps"
        );
        let filters = analyze_frame(&frame, &Options::default()).unwrap();
        assert!(a.angio.mask != filters.angio.mask);
        assert!(a.angio.mask.iter().filter(|&&m| m).count() > 1000);

        // Uncalibrated: the DCA1 preset the model was fitted with, whose clean-up drops a
        // short stub (under 200 px) that the pixel defaults (60 px) would keep.
        let mut stub = img.clone();
        stub.slice_mut(ndarray::s![100..106, 20..44]).mapv_inplace(|v| v - 60.0);
        let frame = Frame::new(stub.clone(), vesselkit_core::Calibration::uncalibrated()).unwrap();
        let a = analyze_frame(&frame, &opts).unwrap();
        let learned = |base: SegmentOptions| {
            let o = SegmentOptions {
                learned: Some(LearnedMask::dca1().unwrap()),
                ..base
            };
            segment(stub.view(), &o).unwrap().mask
        };
        let preset = learned(SegmentOptions::dca1());
        assert!(
            a.angio.mask == preset,
            "the facade's uncalibrated learned mask is the DCA1 preset's"
        );
        let defaults = learned(SegmentOptions::default());
        let in_stub = |m: &ndarray::Array2<bool>| m.slice(ndarray::s![96..110, 16..48]).iter().filter(|&&v| v).count();
        assert!(
            in_stub(&defaults) > 60,
            "the network sees the stub: {}",
            in_stub(&defaults)
        );
        assert_eq!(in_stub(&preset), 0);
    }
}
