//! Output types: lesions with their evidence, the treatment plan and its sessions.
//! Field names follow the report schema of `docs/design.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vesselkit_core::{BranchEnd, LesionType, Tortuosity};

/// What the image shows along the straight continuation past a branch's distal end, each
/// value a fraction of the stump's own centreline contrast (≈ 0 where nothing fills).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EndProbe {
    /// Median contrast along the probe.
    pub beyond_ratio: f64,
    /// Lowest contrast along the probe (median of three consecutive points).
    pub neck_ratio: f64,
    /// Highest contrast past that lowest point (median of three).
    pub after_neck_ratio: f64,
    /// Highest median contrast along a fan of probes around the straight one (at least
    /// `beyond_ratio`): a vessel that goes on but bends away from the straight line.
    pub fan_ratio: f64,
    /// Image position of the middle of the lowest stretch along the probe, px: where a
    /// near-occlusion's residual lumen lies past the stump's tip. `None` when not probed, or
    /// when that stretch runs on to the probe's far end (no lumen past it locates a neck; on
    /// the development seeds such sites lay 6 mm past the tip, beyond the lesion).
    #[serde(default)]
    pub neck_site: Option<Site>,
    /// Image position where the contrast along the stump's axis, from its last centreline
    /// point on, first falls below half the stump's own, px: the end of the opacified column,
    /// which the skeleton stops short of. `None` when it does not fall along the probe.
    #[serde(default)]
    pub end_site: Option<Site>,
    /// In a cine, the contrast of a vessel refilling past the stump: the highest mean over
    /// [`REFILL_WINDOW_PX`] consecutive points of the straight probe past the stump's column
    /// end, read on the run's filling with the still anatomy taken out
    /// (`vesselkit_angio::peak_and_subtracted_opacification`). There a vessel that fills late and faint
    /// behind a near-occlusion stands out of a flat background, and nothing does behind an
    /// occlusion. `None` on a single frame.
    #[serde(default)]
    pub refill_ratio: Option<f64>,
}

/// Probe points (one per pixel) over which [`EndProbe::refill_ratio`] averages: long enough
/// that the noise of a subtracted frame averages out, short enough to fit past a
/// near-occlusion's gap within the probe.
pub const REFILL_WINDOW_PX: usize = 8;

impl EndProbe {
    /// A probe known only by its median (no neck seen).
    pub fn flat(beyond_ratio: f64) -> Self {
        Self {
            beyond_ratio,
            neck_ratio: beyond_ratio,
            after_neck_ratio: beyond_ratio,
            fan_ratio: beyond_ratio,
            neck_site: None,
            end_site: None,
            refill_ratio: None,
        }
    }

    /// The highest mean contrast over [`REFILL_WINDOW_PX`] consecutive probe points from the
    /// first whose median of three falls below `from_below` (past the stump's blurred end), of
    /// points ordered away from the end. `None` where fewer points than a window lie there.
    pub fn refill(points: &[(Site, f64)], from_below: f64) -> Option<f64> {
        let start = (0..points.len()).find(|&k| median3(points, k) < from_below)?;
        points[start..]
            .windows(REFILL_WINDOW_PX)
            .filter(|w| w.iter().all(|x| x.1.is_finite()))
            .map(|w| w.iter().map(|x| x.1).sum::<f64>() / REFILL_WINDOW_PX as f64)
            .max_by(f64::total_cmp)
    }

    /// From the image position and contrast (already a fraction of the stump's own) of each
    /// probe point, in order away from the end; `None` with fewer than three finite values.
    pub fn from_profile(points: &[(Site, f64)]) -> Option<Self> {
        let v: Vec<(Site, f64)> = points.iter().copied().filter(|x| x.1.is_finite()).collect();
        if v.len() < 3 {
            return None;
        }
        let m: Vec<f64> = (0..v.len()).map(|k| median3(&v, k)).collect();
        let k = (0..m.len()).min_by(|&a, &b| m[a].total_cmp(&m[b]))?;
        let after = m[k..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // The lowest point of a flat-bottomed neck falls anywhere along it with the noise:
        // its middle is where the residual lumen is narrowest.
        let low = |j: &usize| m[*j] <= m[k] + NECK_FLOOR_MARGIN;
        let first = (0..=k).rev().take_while(low).last().unwrap_or(k);
        let last = (k..m.len()).take_while(low).last().unwrap_or(k);
        let (a, z) = (v[first].0, v[last].0);
        let mut sorted: Vec<f64> = v.iter().map(|x| x.1).collect();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        Some(Self {
            beyond_ratio: median,
            neck_ratio: m[k],
            after_neck_ratio: after,
            fan_ratio: median,
            neck_site: (last + 1 < m.len()).then_some(Site {
                row: 0.5 * (a.row + z.row),
                col: 0.5 * (a.col + z.col),
            }),
            end_site: None,
            refill_ratio: None,
        })
    }

    /// Where a column of contrast ends along probe points ordered away from the stump's last
    /// centreline point (contrast a fraction of the stump's): the first point whose median of
    /// three falls below `below`. `None` where it does not fall along them.
    pub fn column_end(points: &[(Site, f64)], below: f64) -> Option<Site> {
        (0..points.len()).find_map(|k| (median3(points, k) < below).then_some(points[k].0))
    }
}

/// Median contrast of probe points `k - 1 ..= k + 1` (clamped at the ends): one noisy point
/// does not decide. `k` must index `v`.
fn median3(v: &[(Site, f64)], k: usize) -> f64 {
    let mut w = [v[k.saturating_sub(1)].1, v[k].1, v[(k + 1).min(v.len() - 1)].1];
    w.sort_by(f64::total_cmp);
    w[1]
}

/// Probe points within this contrast (a fraction of the stump's) of the lowest belong to the
/// neck's floor.
const NECK_FLOOR_MARGIN: f64 = 0.1;

/// Image position of a lesion, px: its MLD; for a cut-off, the end of the stump's opacified
/// column, or with a vessel visible past it, the neck where the near-occlusion's lumen is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub row: f64,
    pub col: f64,
}

/// Where the lesion was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// A branch diameter profile of an angiogram.
    Angio,
    /// An intravascular OCT lumen-area profile.
    Oct,
}

/// Occlusion stump shape (Yang 2023 [R3]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StumpShape {
    /// Tapers to a tip: highest crossing success.
    Pointed,
    /// Stays wide to a blunt end.
    Round,
    /// At the branch origin, no stump: lowest success, most complications.
    Orifice,
}

/// Which type rule decided the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleFired {
    /// D: cut-off with flow grade 0.
    DCutoffNoFlow,
    /// D without cine: cut-off with no distal vessel (image only).
    DCutoffImageOnly,
    /// D: flow grade 0 beyond a near-occlusive narrowing without a visible cut-off.
    DNoFlow,
    /// C: near-occlusive narrowing (or cut-off) with flow grade 1-2.
    CNearOcclusionSlowFlow,
    /// C without cine: near-occlusive narrowing with visible distal vessel (image only).
    CNearOcclusionImageOnly,
    /// C without cine: a narrowing beyond which the vessel is much fainter per mm of diameter
    /// than before it (poor distal filling seen in one frame); the narrowest lumen is below
    /// what edges can resolve.
    CPoorDistalFilling,
    /// E: tortuous segment beyond the lesion or severe angulation.
    ETortuous,
    /// B: lumen channels or lucent bands.
    BChannels,
    /// B: densitometric / geometric area ratio below threshold.
    BDensity,
    /// B: centreline contrast per mm of diameter falls well below the vessel's in a mild
    /// narrowing that fills normally beyond (a lucent band along the lumen).
    BCentrelineContrast,
    /// B: mild narrowing with a flat (slit-like) lumen between abrupt shoulders; the lucent
    /// bands themselves are not resolved.
    BPlateau,
    /// A: focal, symmetric narrowing without internal defect.
    ARing,
    /// No rule fired (long or asymmetric narrowing): nearest type reported, low confidence.
    Fallback,
    /// OCT: two or more lumen channels.
    OctChannels,
    /// OCT: area stenosis at the near-occlusive level.
    OctNearOcclusion,
    /// OCT: single-lumen narrowing.
    OctNarrowing,
}

/// The measured features behind a lesion's type. Optional values are `None` when not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub modality: Modality,
    /// The rule that decided the type, and a short human description of why.
    pub rule: RuleFired,
    pub rule_text: String,
    pub diameter_stenosis_pct: f64,
    /// Circular area stenosis from diameters (angio) or measured area stenosis (OCT).
    pub area_stenosis_pct: f64,
    pub mld_mm: f64,
    pub reference_diameter_mm: f64,
    pub length_mm: f64,
    /// Position of the MLD (or stump tip) along the branch or pullback, mm.
    pub arc_mm: f64,
    /// Shoulder positions along the branch or pullback, mm.
    pub start_mm: f64,
    pub end_mm: f64,
    /// Steepest diameter slope on the proximal / distal flank, divided by the reference
    /// diameter, 1/mm (shoulder abruptness; larger = more abrupt).
    pub proximal_shoulder_slope_per_mm: Option<f64>,
    pub distal_shoulder_slope_per_mm: Option<f64>,
    /// QCA symmetry index in [0, 1] (1 = concentric); `None` without edge positions.
    pub symmetry: Option<f64>,
    /// Length ≤ `ring_max_length_ref` × reference.
    pub focal: bool,
    /// Most lumen channels seen across one profile in the lesion (0 = not measured).
    pub channels_max: u32,
    /// Longest run of consecutive samples with ≥ `web_min_channels` channels.
    pub multichannel_samples: usize,
    /// Lucent bands inside the lumen (channels − 1 at the worst profile).
    pub lucent_bands: u32,
    /// Length over which the narrowing stays in the lower half of its depth (median of three
    /// samples), mm: long for a flat, slit-like web lumen, short for a V-shaped dip. `None`
    /// when not measured (cut-offs, OCT).
    #[serde(default)]
    pub plateau_mm: Option<f64>,
    /// Smallest densitometric / geometric ratio in the lesion.
    pub density_ratio_min: Option<f64>,
    /// Longest run of consecutive samples with density ratio below `web_max_density_ratio`.
    pub low_density_samples: usize,
    /// OCT: minimal lumen area and reference area, mm².
    pub mla_mm2: Option<f64>,
    pub reference_area_mm2: Option<f64>,
    /// Distal flow grade 0-3 from cine; `None` when there is no cine.
    pub flow_grade: Option<u8>,
    /// False when C vs D was decided from the image alone.
    pub flow_known: bool,
    pub arrival_ms: Option<f64>,
    /// How the branch ends (angio only).
    pub distal_end: Option<BranchEnd>,
    /// The centerline stops abruptly with no distal vessel.
    pub cutoff: bool,
    /// Vessel is visible beyond the lesion (distal samples or child branches).
    pub distal_vessel_visible: bool,
    /// Cut-off: distance from the stump tip to the nearest free vessel end ahead of it (within
    /// `continuation_max_angle_deg` of the stump direction), mm. A vessel that resumes across
    /// a short gap is contrast passing a near-occlusion that the segmentation lost.
    #[serde(default)]
    pub continuation_gap_mm: Option<f64>,
    /// Contrast per mm of diameter beyond the lesion divided by that before it (1 = same
    /// filling; < 1 = fainter distal vessel). `None` without densitometry.
    #[serde(default)]
    pub distal_opacity_ratio: Option<f64>,
    /// Densitometric diameter stenosis: 1 − the deepest centreline contrast over the contrast
    /// before the narrowing, % (a round lumen's contrast grows with its diameter). `None`
    /// where no densitometric narrowing was found.
    #[serde(default)]
    pub densitometric_ds_pct: Option<f64>,
    /// Smallest centreline contrast per mm of measured diameter in the lesion relative to its
    /// running median (median of three samples; < 1 = a lucent band along the lumen). `None`
    /// without densitometry.
    #[serde(default)]
    pub centreline_contrast_ratio_min: Option<f64>,
    /// Longest run of consecutive samples with that ratio below
    /// `classification.web_contrast_max_ratio`.
    #[serde(default)]
    pub low_contrast_samples: usize,
    /// Cut-off: centreline contrast over the stump's last millimetre relative to that just
    /// before the stump window (≈ 1 for a filled column ending at full density; low where
    /// the contrast thins out into a vessel that goes on). `None` without densitometry.
    #[serde(default)]
    pub stump_contrast_ratio: Option<f64>,
    /// Cut-off: contrast along the straight continuation past the stump relative to the
    /// stump's own (≈ 0 when nothing fills beyond). `None` without densitometry.
    #[serde(default)]
    pub beyond_end_ratio: Option<f64>,
    /// Cut-off: the lowest contrast along that continuation (median of three probe points)
    /// relative to the stump's own, when the contrast comes back after it (a neck with a
    /// filled vessel beyond, see `detection.beyond_end_neck_max_ratio`). `None` otherwise.
    #[serde(default)]
    pub beyond_end_neck_ratio: Option<f64>,
    /// Cut-off in a cine: the contrast of a vessel refilling past it over the run, relative to
    /// the stump's own, read with the still anatomy subtracted (see
    /// [`EndProbe::refill_ratio`]). `None` on a single frame.
    #[serde(default)]
    pub cine_refill_ratio: Option<f64>,
    pub stump: Option<StumpShape>,
    /// Tortuosity of the centerline from the lesion to the end of its branch.
    pub segment_tortuosity: Option<Tortuosity>,
    /// Tortuosity of the centerline around the lesion, from `tortuosity_window_ref` reference
    /// diameters before it to as far beyond it (the winding a lesion sits in).
    #[serde(default)]
    pub local_tortuosity: Option<Tortuosity>,
    /// Worst tortuosity reported for the branches below (largest DM, bends and bend): a ranking
    /// risk (the way on winds), not evidence for type E.
    pub distal_tortuosity: Option<Tortuosity>,
    /// Direction change across the lesion, degrees.
    pub lesion_angle_deg: Option<f64>,
    /// Fraction of profile samples in the lesion window whose edges were reliable.
    pub reliable_fraction: f64,
}

/// One lesion. `priority` and `reason` are set by [`crate::rank`], `balloon_mm` by
/// [`crate::assess`] from the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lesion {
    pub id: usize,
    /// Branch id in the vessel tree; `None` for an OCT pullback.
    pub vessel: Option<usize>,
    /// Image position; `None` for an OCT pullback (see `evidence.arc_mm`).
    pub site: Option<Site>,
    #[serde(rename = "type")]
    pub lesion_type: LesionType,
    /// Confidence of the type in [0, 1] (see [`crate::classify`]).
    pub confidence: f64,
    pub mld_mm: f64,
    pub reference_diameter_mm: f64,
    pub diameter_stenosis_pct: f64,
    pub length_mm: f64,
    pub evidence: Evidence,
    /// 1 = treat first; `None` until ranked.
    pub priority: Option<usize>,
    pub reason: String,
    /// Risk flags found while ranking (`small_vessel`, `sharp_angle`, `orifice_stump`,
    /// `round_stump`, `tortuosity`).
    pub risk_flags: Vec<String>,
    /// Ranking score (higher = earlier within its group).
    pub score: f64,
    /// Staged balloon diameters, mm, first session first.
    pub balloon_mm: Vec<f64>,
}

/// Extra input for planning.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanInput {
    /// OCT reference lumen diameter by lesion id, mm; preferred over the angiographic QCA
    /// reference when present.
    pub oct_reference_mm: BTreeMap<usize, f64>,
}

/// Where a plan's reference diameter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    Qca,
    Oct,
}

/// Balloon advice for one lesion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalloonAdvice {
    pub lesion: usize,
    pub reference_mm: f64,
    pub reference_source: ReferenceSource,
    /// Balloon per stage, mm.
    pub balloon_mm: Vec<f64>,
    /// Balloon-to-vessel ratio per stage.
    pub ratio: Vec<f64>,
    /// Some stage exceeds `balloon.max_ratio` [R8].
    pub oversized: bool,
    pub note: String,
}

/// One dilation in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub lesion: usize,
    pub vessel: Option<usize>,
    /// 1 = first dilation of this lesion.
    pub stage: usize,
    pub balloon_mm: f64,
}

/// One treatment session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// 1-based.
    pub index: usize,
    /// Lesion ids treated, in priority order.
    pub lesions: Vec<usize>,
    pub steps: Vec<Step>,
    pub note: String,
}

/// The staged plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub sessions: Vec<Session>,
    pub balloons: Vec<BalloonAdvice>,
    /// Pressure end points and other notes carried as data.
    pub notes: Vec<String>,
    pub endpoints: crate::rules::PressureEndpoints,
    pub notice: String,
}

/// Detection, ranking and plan in one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub lesions: Vec<Lesion>,
    pub plan: Plan,
    pub notice: String,
}
