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

use ndarray::{Array2, ArrayView3, Axis};
use std::time::Instant;
use vesselkit_angio::{AngioOptions, AngioResult};
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
    /// background window from physical vessel radii (0.5 to 6 mm) instead of pixels.
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

/// Analyse a single frame or a cine run.
///
/// A cine is measured on its best-opacified frame (or `opts.frame`), and its time course gives
/// each branch a contrast arrival time and a flow grade; a single frame has no flow information,
/// which the lesion evidence says.
pub fn analyze(cine: &Cine, opts: &Options) -> Result<Analysis> {
    let t0 = Instant::now();
    let n = cine.len();
    let scaled;
    let angio_opts = if opts.auto_scale && cine.calibration.is_calibrated() && opts.angio == AngioOptions::default() {
        scaled = AngioOptions::for_scale(cine.calibration.mm_per_px);
        &scaled
    } else {
        &opts.angio
    };
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
            (r.frame, r.best_frame)
        }
        None => (
            vesselkit_angio::analyze_view(cine.frames.index_axis(Axis(0), 0), &cine.calibration, angio_opts)?,
            0,
        ),
    };
    let t_angio = ms(t0);
    let t1 = Instant::now();
    let assessment = vesselkit_lesion::assess(&angio.tree, &opts.rules, &opts.plan)?;
    let t_lesion = ms(t1);

    let (rows, cols) = (cine.frames.len_of(Axis(1)), cine.frames.len_of(Axis(2)));
    let input = InputInfo {
        path: None,
        modality: None,
        rows,
        cols,
        frames: n,
        frame_used: Some(frame_used),
    };
    let mut report = build_report(input, &angio.tree, &assessment);
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
