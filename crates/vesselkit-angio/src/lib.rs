//! Angiography: vessel segmentation, centerline tree, diameter profiles, QCA, tortuosity, cine
//! flow.
//!
//! From one frame (or a cine run) to a calibrated [`VesselTree`]: every branch carries a
//! sub-pixel lumen diameter at each centerline station (<= 0.5 px apart), its tortuosity, how it
//! ends, and (cine) contrast arrival and a flow grade. Every stage is callable on plain
//! `ArrayView2<f32>` plus `mm_per_px`. Research use only.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN along with non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod catheter;
pub mod centerline;
pub mod cine;
pub mod error;
pub mod fov;
mod lumen_fit;
pub mod mask;
pub mod measure;
pub mod profile;
pub mod segment;
pub mod unet;

pub use catheter::{CatheterWidth, calibrate_catheter, measure_catheter};
pub use centerline::{CenterlineBranch, CenterlineOptions, Centerlines, centerlines, skeletonize};
pub use cine::{
    FlowOptions, Registration, frame_registration, frame_shifts, grade_flow, mask_mean_frames, opacification_curve,
    peak_and_subtracted_opacification, peak_opacification, registered_mean,
};
pub use error::{AngioError, Result};
pub use measure::{TortuosityOptions, qca_branch, qca_segment, tortuosity};
pub use profile::{
    BLUR_SECTIONS, CrossSection, DEFAULT_BLUR_SIGMA_PX, JunctionZones, ProfileOptions, diameter_profile,
    estimate_blur_sigma_px, lines_blur_sigma_px, measure_cross_section,
};
pub use segment::{LearnedMask, SegmentOptions, Segmentation, dice, learned_probability, segment};
pub use unet::UnetModel;
pub use vesselkit_core::{QcaOptions, qca};

use ndarray::{Array2, ArrayView2};
use std::time::Instant;
use vesselkit_core::{Branch, BranchEnd, Calibration, Cine, Frame, Polyline, Tortuosity, VesselTree};

/// How the distal end of a branch is classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndOptions {
    /// An end within this many px (plus the vessel radius) of the image edge leaves the image.
    pub border_margin_px: f64,
    /// An end whose last diameters are at least this fraction of the branch median is abrupt
    /// (still wide where it stops: occlusion candidate); below it the branch tapers.
    pub abrupt_fraction: f64,
}

impl Default for EndOptions {
    fn default() -> Self {
        Self {
            border_margin_px: 3.0,
            abrupt_fraction: 0.75,
        }
    }
}

/// All options of [`analyze_frame`] and [`analyze_cine`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AngioOptions {
    pub segment: SegmentOptions,
    pub centerline: CenterlineOptions,
    pub profile: ProfileOptions,
    pub tortuosity: TortuosityOptions,
    pub ends: EndOptions,
    pub flow: FlowOptions,
    /// A user seed on the vessel of interest: keeps its component and roots the tree there.
    pub seed: Option<vesselkit_core::Point>,
}

impl AngioOptions {
    /// Defaults with scale-aware segmentation for a frame calibrated at `mm_per_px` (see
    /// [`SegmentOptions::for_scale`]); plain defaults when `mm_per_px` is not a finite value > 0.
    pub fn for_scale(mm_per_px: f64) -> Self {
        Self {
            segment: SegmentOptions::for_scale(mm_per_px).unwrap_or_default(),
            ..Self::default()
        }
    }
}

/// Wall-clock time of each stage, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    pub segment_ms: f64,
    pub centerline_ms: f64,
    pub profile_ms: f64,
    pub total_ms: f64,
}

/// Result of [`analyze_frame`].
#[derive(Debug, Clone, PartialEq)]
pub struct AngioResult {
    pub vesselness: Array2<f32>,
    /// Best vesselness sigma per pixel (px).
    pub scale_px: Array2<f32>,
    pub mask: Array2<bool>,
    pub tree: VesselTree,
    /// Blur of the imaging chain the lumen fit modelled (Gaussian sigma, px): read from the
    /// image, or as set in the options; None with the fit off.
    pub blur_sigma_px: Option<f64>,
    pub timings_ms: Timings,
}

/// Result of [`analyze_cine`].
#[derive(Debug, Clone, PartialEq)]
pub struct CineResult {
    /// Index of the frame of best opacification (the tree is measured on it).
    pub best_frame: usize,
    /// Opacification score per frame (mean top-hat contrast).
    pub opacification: Vec<f64>,
    /// Analysis of the best frame; its tree carries `arrival_ms` and `flow_grade`. Its mask,
    /// vesselness and centerlines come from the registered mean of `mask_frames`, its
    /// diameters from the best frame alone.
    pub frame: AngioResult,
    /// The frames averaged for the mask (see [`FlowOptions::mask_mean_half_width`]): the best
    /// frame and the neighbours that joined it.
    pub mask_frames: Vec<usize>,
    /// Per frame, the translation `(d_row, d_col)` px of its vessels relative to the best frame.
    pub shifts_px: Vec<(f64, f64)>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Classify how a branch ends.
fn classify_end(b: &centerline::CenterlineBranch, br: &Branch, dim: (usize, usize), o: &EndOptions) -> BranchEnd {
    if b.end_degree >= 3 || !b.children.is_empty() {
        return BranchEnd::Junction;
    }
    let Some(end) = b.points.last() else {
        return BranchEnd::Taper;
    };
    let r = b.radius_px.last().copied().unwrap_or(0.0) as f64;
    let m = o.border_margin_px + r;
    if end.row < m || end.col < m || end.row > dim.0 as f64 - 1.0 - m || end.col > dim.1 as f64 - 1.0 - m {
        return BranchEnd::Border;
    }
    let med = br.median_diameter_mm();
    if !med.is_finite() {
        return BranchEnd::Taper;
    }
    let total = br.length_mm;
    let win = (2.0 * med).max(1e-9);
    let mut last: Vec<f64> = br
        .samples
        .iter()
        .filter(|s| s.arc_mm >= total - win && s.diameter_mm.is_finite())
        .map(|s| s.diameter_mm)
        .collect();
    if last.is_empty() {
        return BranchEnd::Taper;
    }
    last.sort_by(f64::total_cmp);
    if last[last.len() / 2] >= o.abrupt_fraction * med {
        BranchEnd::Abrupt
    } else {
        BranchEnd::Taper
    }
}

/// The part of a branch whose shape is the vessel's own: a skeleton curls into the round cap
/// of a free end and bends into a junction, so one local radius is dropped at each end (the
/// whole branch when that would leave fewer than 5 points).
fn tortuosity_span(b: &centerline::CenterlineBranch) -> &[vesselkit_core::Point] {
    let n = b.points.len();
    let trim_px = |at_end: bool| -> f64 {
        let (deg, node_r, own_r) = if at_end {
            (
                b.end_degree,
                b.end_node_radius_px,
                b.radius_px.last().copied().unwrap_or(0.0),
            )
        } else {
            (
                b.start_degree,
                b.start_node_radius_px,
                b.radius_px.first().copied().unwrap_or(0.0),
            )
        };
        match deg {
            1 => own_r as f64,
            d if d >= 3 => node_r as f64,
            _ => 0.0,
        }
    };
    let arc = Polyline::new(b.points.clone()).arc_lengths_px();
    let total = arc.last().copied().unwrap_or(0.0);
    let (t0, t1) = (trim_px(false), trim_px(true));
    let lo = arc.iter().position(|&a| a >= t0).unwrap_or(0);
    let hi = arc.iter().rposition(|&a| a <= total - t1).map_or(n, |i| i + 1);
    if hi >= lo + 5 { &b.points[lo..hi] } else { &b.points }
}

/// The blur the lumen fit models on `img`: read from its widest cross-sections along the
/// centerlines, else the default.
pub fn tree_blur_sigma_px(img: ArrayView2<f32>, cl: &Centerlines, opts: &ProfileOptions) -> Result<f64> {
    let lines: Vec<(&[vesselkit_core::Point], &[f32])> = cl
        .branches
        .iter()
        .map(|b| (b.points.as_slice(), b.radius_px.as_slice()))
        .collect();
    lines_blur_sigma_px(img, &lines, opts)
}

/// Largest diameter, as a multiple of the interpolated mask diameter, that a sample inside a
/// bridged gap may read and stay reliable.
const GAP_MAX_WIDENING: f64 = 1.2;

/// Measure every centerline branch on `img`: diameter profile, length, tortuosity, end type.
pub fn build_tree(
    img: ArrayView2<f32>,
    cl: &Centerlines,
    calibration: &Calibration,
    opts: &AngioOptions,
) -> Result<VesselTree> {
    let mm = calibration.mm_per_px;
    error::check_image("image", &img)?;
    use rayon::prelude::*;
    let mut opts = opts.clone();
    if opts.profile.fit_lumen && opts.profile.blur_sigma_px.is_none() {
        opts.profile.blur_sigma_px = Some(tree_blur_sigma_px(img, cl, &opts.profile)?);
    }
    let opts = &opts;
    // The frame without its large structures, for the profiles' background check.
    let polarity = opts.profile.polarity;
    let flat = (opts.profile.background_check > 0.0
        && opts.segment.background_radius_px > 0
        && matches!(polarity, vesselkit_filters::Polarity::DarkOnBright)
        && img.iter().all(|&v| v > 0.0))
    .then(|| segment::divide_by_background(img, opts.segment.background_radius_px, polarity))
    .transpose()?;
    let branches: Vec<Branch> = cl
        .branches
        .par_iter()
        .map(|b| -> Result<Branch> {
            let zones = JunctionZones {
                start_radius_px: if b.start_degree >= 3 {
                    b.start_node_radius_px as f64
                } else {
                    0.0
                },
                end_radius_px: if b.end_degree >= 3 {
                    b.end_node_radius_px as f64
                } else {
                    0.0
                },
            };
            let mut samples = profile::diameter_profile_checked(
                img,
                flat.as_ref().map(|f| f.view()),
                &b.points,
                &b.radius_px,
                mm,
                zones,
                &opts.profile,
            )?;
            // Across a bridged gap the lumen is at most as wide as on either side (a lesion
            // narrowed it below the mask): wider edges there followed something else, such
            // as the border of a dense structure that broke the mask.
            for ((s, &gap), &r) in samples.iter_mut().zip(&b.in_gap).zip(&b.radius_px) {
                if gap && s.diameter_mm > GAP_MAX_WIDENING * 2.0 * r as f64 * mm {
                    s.reliable = false;
                }
            }
            let length_mm = Polyline::new(b.points.clone()).length_px() * mm;
            // Pixel staircases of the skeleton add spurious turning: smooth at ~6 px first.
            let tort = if length_mm > 0.0 {
                tortuosity(
                    &centerline::smooth_points(tortuosity_span(b), 6.0 / opts.centerline.step_px.max(1e-3)),
                    mm,
                    &opts.tortuosity,
                )
                .unwrap_or_default()
            } else {
                Tortuosity::default()
            };
            let mut br = Branch {
                id: b.id,
                parent: b.parent,
                children: b.children.clone(),
                samples,
                length_mm,
                distal_end: BranchEnd::Taper,
                tortuosity: tort,
                arrival_ms: None,
                flow_grade: None,
            };
            br.distal_end = classify_end(b, &br, img.dim(), &opts.ends);
            Ok(br)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(VesselTree {
        branches,
        root: cl.root,
        calibration: calibration.clone(),
    })
}

/// Segment, extract the centerline tree and measure it on one frame.
pub fn analyze_frame(frame: &Frame, opts: &AngioOptions) -> Result<AngioResult> {
    analyze_view(frame.view(), &frame.calibration, opts)
}

/// [`analyze_frame`] on a plain view with a calibration.
pub fn analyze_view(img: ArrayView2<f32>, calibration: &Calibration, opts: &AngioOptions) -> Result<AngioResult> {
    analyze_views(img, img, calibration, opts)
}

/// [`analyze_view`] with the mask and the centerlines from `seg_img` and the diameters measured
/// on `img`, in the same positions (a registered mean of a cine's frames and its best frame).
fn analyze_views(
    seg_img: ArrayView2<f32>,
    img: ArrayView2<f32>,
    calibration: &Calibration,
    opts: &AngioOptions,
) -> Result<AngioResult> {
    let t0 = Instant::now();
    let mut sopts = opts.segment.clone();
    let mut copts = opts.centerline.clone();
    if opts.seed.is_some() {
        sopts.seed = opts.seed;
        copts.seed = opts.seed;
    }
    let mut popts = opts.profile.clone();
    popts.polarity = sopts.vesselness.polarity;
    let seg = segment(seg_img, &sopts)?;
    let t_seg = ms(t0);
    let t1 = Instant::now();
    let cl = centerlines(&seg.mask, &copts)?;
    let t_cl = ms(t1);
    let t2 = Instant::now();
    if popts.fit_lumen && popts.blur_sigma_px.is_none() {
        popts.blur_sigma_px = Some(tree_blur_sigma_px(img, &cl, &popts)?);
    }
    let blur_sigma_px = popts.fit_lumen.then_some(popts.blur_sigma_px).flatten();
    let o = AngioOptions {
        profile: popts,
        ..opts.clone()
    };
    let tree = build_tree(img, &cl, calibration, &o)?;
    let t_pr = ms(t2);
    Ok(AngioResult {
        vesselness: seg.vesselness,
        scale_px: seg.scale_px,
        mask: seg.mask,
        tree,
        blur_sigma_px,
        timings_ms: Timings {
            segment_ms: t_seg,
            centerline_ms: t_cl,
            profile_ms: t_pr,
            total_ms: ms(t0),
        },
    })
}

/// Pick the best-opacified frame, analyse it, then grade contrast arrival and flow per branch
/// over the whole run.
pub fn analyze_cine(cine: &Cine, opts: &AngioOptions) -> Result<CineResult> {
    let polarity = opts.segment.vesselness.polarity;
    let (best, scores) = opacification_curve(cine.frames.view(), polarity, opts.flow.score_radius_px)?;
    let view = cine
        .frame(best)
        .ok_or_else(|| AngioError::invalid("frames", "best frame index out of range"))?; // best < len by construction
    let mut frame = analyze_view(view, &cine.calibration, opts)?;
    // Second pass: the mask and centerlines from the registered mean of the best frame and its
    // well-filled neighbours, measured on the best frame. The flow is graded once, on the
    // final tree.
    let reg = cine::frame_registration(cine.frames.view(), &frame.tree, polarity, opts.flow.max_shift_px)?;
    let pick = cine::mask_mean_frames(best, &reg.contrast, &opts.flow);
    let from_mean = pick.len() > 1;
    if from_mean {
        // Relative to the best frame's own (noise-level) shift, so the mean sits where the
        // best frame's vessels do.
        let (r0, c0) = reg.shifts_px[best];
        let rel: Vec<(f64, f64)> = reg.shifts_px.iter().map(|&(r, c)| (r - r0, c - c0)).collect();
        let mean = cine::registered_mean(cine.frames.view(), &rel, &pick)?;
        frame = analyze_views(mean.view(), view, &cine.calibration, opts)?;
    }
    // The registration holds for the final tree unless the mean made a new one.
    let known = (!from_mean).then_some(reg.shifts_px);
    let shifts_px = cine::grade_flow_registered(
        &mut frame.tree,
        cine.frames.view(),
        &cine.frame_times_ms,
        polarity,
        &opts.flow,
        known,
    )?;
    Ok(CineResult {
        best_frame: best,
        opacification: scores,
        frame,
        mask_frames: pick,
        shifts_px,
    })
}
