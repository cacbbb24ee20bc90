//! The rule table: every threshold and weight used by detection, classification, ranking and
//! balloon planning, as data a clinician can edit (domain.md rule 7).
//!
//! Source keys in the doc comments ([R6], [Q13]...) resolve in `docs/domain.md`. Values marked
//! **UNVERIFIED** have no retrieved source: they are working defaults, not clinical facts, and
//! should be checked and tuned before any interpretation of the output.

use crate::error::{LesionError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use vesselkit_core::ReferenceMethod;

/// All thresholds and weights. Load with [`Rules::from_path`] (JSON or TOML); missing fields
/// take their defaults, unknown fields are an error (catches typos).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    pub detection: DetectionRules,
    pub classification: ClassificationRules,
    pub ranking: RankingRules,
    pub balloon: BalloonRules,
    pub session: SessionRules,
    pub endpoints: PressureEndpoints,
}

/// Finding candidate lesions along diameter profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionRules {
    /// Narrowings with a smaller % diameter stenosis are not reported. A detection sensitivity,
    /// not a clinical threshold. **UNVERIFIED** default 30.
    pub min_ds_pct: f64,
    /// Half-width of the running window of the robust reference diameter, mm. Mirrors the OCT
    /// convention of references within 10 mm of the lesion [O1].
    pub reference_window_mm: f64,
    /// Percentile (0-100) of the diameters in the window taken as the healthy reference; an upper
    /// percentile ignores the narrowing itself. Default 90.
    pub reference_percentile: f64,
    /// Shoulders are where the diameter returns to this fraction of the reference (domain.md
    /// rule 3, "e.g. 90%").
    pub shoulder_fraction: f64,
    /// Healthy margin added on each side of a narrowing before QCA of the window, mm.
    pub qca_margin_mm: f64,
    /// Reference reconstruction of the window QCA (default interpolated, markers at 5 % / 95 %,
    /// domain.md rule 3). Falls back to the computed fit when a margin is missing (ostial lesion).
    pub reference_method: ReferenceMethod,
    /// Candidate runs closer than this along a branch are merged into one lesion, mm.
    /// **UNVERIFIED** default 1.0.
    pub merge_gap_mm: f64,
    /// Non-maximum suppression across a junction: detections in a parent and child branch whose
    /// sites are closer than this (image distance) are one lesion, mm. **UNVERIFIED** default 3.0.
    pub nms_distance_mm: f64,
    /// The stump shape of an occlusion is read from the diameter taper over this last stretch
    /// of the branch, mm ("the last few mm"). **UNVERIFIED** default 3.0.
    pub stump_window_mm: f64,
    /// Stump is *pointed* when the diameter at the tip is at most this fraction of the diameter
    /// at the start of the stump window, else *round* [R3]. **UNVERIFIED** default 0.5.
    pub pointed_max_tip_ratio: f64,
    /// An abrupt end is an *orifice* occlusion when the branch is visible for at most this
    /// length from its origin (no stump) [R3], mm. **UNVERIFIED** default 2.0.
    pub orifice_max_stump_mm: f64,
    /// Length of centerline before and after the lesion whose directions give the lesion
    /// angulation, mm. **UNVERIFIED** default 3.0.
    pub angle_window_mm: f64,
    /// Resampling step of the centerline for the segment's tortuosity metrics, mm.
    pub tortuosity_step_mm: f64,
    /// A bend is a direction change of at least this many degrees (45°, [T4][Q13]).
    pub bend_threshold_deg: f64,
    /// Half-width of the centerline window around a lesion whose tortuosity is the lesion's
    /// local tortuosity, in reference diameters (a winding is several diameters long).
    /// **UNVERIFIED** default 4.
    pub tortuosity_window_ref: f64,
    /// Narrowings and cut-offs whose reference diameter is below this are not reported: BPA
    /// targets segmental and subsegmental arteries of about 2-5 mm [R15], and edges of
    /// thinner vessels are near the resolution limit [Q10]. **UNVERIFIED** default 2.0
    /// (the lower end of [R15]); 0 reports every size.
    pub min_reference_mm: f64,
    /// A cut-off is not total when another vessel resumes within this many reference
    /// diameters ahead of the stump (contrast passing a near-occlusion whose narrowest part
    /// the segmentation lost). **UNVERIFIED** default 2.5.
    pub continuation_max_gap_ref: f64,
    /// Largest angle between the stump direction and the direction to the resuming vessel,
    /// degrees. **UNVERIFIED** default 45.
    pub continuation_max_angle_deg: f64,
    /// A vessel resuming from a branch point (not from a free end) must run along the stump's
    /// axis and have a median diameter there within this factor of the stump's reference
    /// (either way): the lumen past a near-occlusion keeps the calibre before it, a
    /// neighbouring vessel that happens to lie ahead rarely does. **UNVERIFIED** default 1.33
    /// (engineering default; on the development phantoms 1.33 and 1.6 typed 397 of 466
    /// frames' lesions found alike, 1.33 with two false cut-offs fewer); 0 turns resuming
    /// from a branch point off.
    pub continuation_diameter_ratio: f64,
    /// Narrowings and web signs are reported only when at least this fraction of the profile
    /// samples over the lesion itself (shoulder to shoulder) is measured: reliable (not at a
    /// junction, overlap or border), or flagged but narrower than the shoulder inside a short
    /// flagged stretch (see `narrow_unreliable_max_mm`: the flags mark lumens that read too
    /// wide); a measurement-quality gate. Densitometric narrowings are exempt
    /// (measured on the contrast on both sides instead), and so are cut-offs (the samples at a
    /// stump tip are never reliable). **UNVERIFIED** default 0.5.
    pub min_reliable_fraction: f64,
    /// In one frame, a cut-off is not total when the contrast along its straight continuation
    /// is at least this fraction of the stump's own contrast (a faint vessel fills beyond it:
    /// "some contrast passing the lesion" [R1][R2]). **UNVERIFIED** default 0.14 (engineering
    /// default: on 120 development phantom frames 82 of the 85 occlusions found as cut-offs read
    /// below it, while 10 of the 25 near-occlusions typed occlusion at 0.2 read 0.14 to 0.19;
    /// on 80 other frames, types right 239 -> 249 of 308 found).
    pub beyond_end_min_ratio: f64,
    /// The same in a cine, where the probe reads each pixel's fullest filling over the run: a
    /// maximum over frames lifts the background's noise towards contrast, so occlusions read
    /// higher. **UNVERIFIED** default 0.2 (engineering default: on 42 phantom cines the
    /// occlusions found as cut-offs read up to 0.18, two of 27 at 0.14 or more).
    pub cine_beyond_end_min_ratio: f64,
    /// A free branch end is not a lesion at all when the contrast along its straight
    /// continuation is at least this fraction of the stump's own: the vessel goes on filling
    /// about as well as before, so the centreline broke on a patent lumen (a crossing, a faint
    /// stretch), while a near-occlusion passes only a fraction of the contrast ("delayed or
    /// poor distal filling" [R1][R2]). **UNVERIFIED** default 0.45 (engineering default; above
    /// the filling of the near-occlusions seen on the phantoms, below that of patent vessels).
    pub beyond_end_max_ratio: f64,
    /// ... unless the contrast along that continuation first falls to at most this fraction of
    /// the stump's own (median of three probe points) and only then comes back to
    /// `beyond_end_max_ratio` or more: a neck with a filled vessel past it is a narrowing the
    /// centreline could not follow (a ring, web or near-occlusion tighter than the
    /// segmentation resolves), reported as a cut-off with the distal vessel visible.
    /// **UNVERIFIED** default 0.45 (engineering default; 0 disables).
    pub beyond_end_neck_max_ratio: f64,
    /// A neck counts only past a stump whose reference diameter is at least this, mm: the
    /// contrast of a thinner vessel is too close to the noise for one dip along a line to
    /// mean a narrowing. **UNVERIFIED** default 2.5 (engineering default).
    pub beyond_end_neck_min_reference_mm: f64,
    /// Length of the straight continuation past a cut-off probed for that contrast, mm.
    /// **UNVERIFIED** default 5.
    pub beyond_end_probe_mm: f64,
    /// In a cine, a cut-off's distal vessel counts as visible (contrast passed the lesion: a
    /// near-occlusion, "delayed or poor distal filling" [R1][R2]) when a vessel refills past
    /// the stump with at least this fraction of the stump's contrast on the run with the still
    /// anatomy subtracted (`EndProbe::refill_ratio`). **UNVERIFIED** default 0.12 (engineering
    /// default: on 42 phantom cines the 29 occlusions found read -0.02 to 0.09, and the
    /// near-occlusions whose distal vessel fills within the run 0.13 to 0.53; fainter ones
    /// overlap the occlusions).
    pub cine_refill_min_ratio: f64,
    /// Narrowings and web signs are reported only with at least this many measured, reliable
    /// profile samples of lumen on *each* side, from half a millimetre past the shoulder to the
    /// end of the QCA window: a ring is a narrowing "with normal lumen on both sides", and a
    /// dip where the measured lumen stops (junction, overlap, border, the end of the branch)
    /// cannot be told from the vessel branching or ending there. Cut-offs are exempt.
    /// **UNVERIFIED** default 3 (0 disables; ostial lesions need it off).
    pub min_reference_samples: usize,
    /// Unreliable profile samples narrower than the shoulder fraction of the reference count as
    /// measured inside a stretch of at most this length between reliable samples (not next to
    /// a junction): the narrowest part of a lesion in a winding or beside a crossing is often
    /// flagged, while the flags mark lumens that read too wide, not too narrow. mm;
    /// **UNVERIFIED** default 3 (0 uses reliable samples only).
    pub narrow_unreliable_max_mm: f64,
    /// Narrowings and web signs shorter than this (shoulder to shoulder) are not reported:
    /// a dip over a few profile samples is edge noise at the scale of the detector blur, not
    /// a measurable lesion. Cut-offs are exempt. **UNVERIFIED** default 1.0 mm.
    pub min_length_mm: f64,
    /// Cut-offs whose tip lies within this distance of the edge of the image are not reported
    /// (only applied where the field size is known, see `detect::drop_edge_cutoffs`): the
    /// vessel may leave the field there. **UNVERIFIED** default 3 mm.
    pub edge_margin_mm: f64,
    /// Densitometric candidates: centreline opacity (log attenuation against the local
    /// background) below this fraction of its running reference (the `reference_percentile`
    /// of the opacity within `reference_window_mm`) starts a candidate. A near-occlusion whose
    /// lumen the blur bridges keeps wide edges but loses most of its contrast [Q10]. An
    /// image-processing parameter, **UNVERIFIED** default 0.35; 0 switches densitometric
    /// candidates off.
    pub dens_run_ratio: f64,
    /// A densitometric candidate is reported when its deepest opacity (median of three samples)
    /// is at most this fraction of the opacity before it (median over one QCA margin); its
    /// densitometric diameter stenosis is `1 − ratio` (opacity of a round lumen grows with its
    /// diameter). An image-processing parameter, **UNVERIFIED** default 0.3 (70 % DS).
    pub dens_max_ratio: f64,
    /// ... and when the vessel beyond it keeps at least this fraction of the opacity before it
    /// (median over one QCA margin): the vessel goes on, fainter or not, rather than ending.
    /// An image-processing parameter, **UNVERIFIED** default 0.1.
    pub dens_min_distal_ratio: f64,
    /// Centreline contrast within this many branch diameters (median of the branch) of a
    /// junction is not used for densitometric candidates: the background ring beside the
    /// centreline takes in the other vessel there and reads the contrast too low. An
    /// image-processing parameter, **UNVERIFIED** default 1.5.
    pub dens_junction_clear_ref: f64,
    /// The contrast beyond a densitometric candidate is measured over one QCA margin starting
    /// this far past its deepest point, mm (past a near-occlusion the diluted vessel may stay
    /// below the run threshold all the way, so the run's end is no shoulder). An
    /// image-processing parameter, **UNVERIFIED** default 1.5 (about half a near-occlusion's
    /// length).
    pub dens_distal_gap_mm: f64,
    /// A cut-off whose centreline contrast over its last millimetre is below this fraction of
    /// the contrast over the 2 mm before its stump window has distal vessel visible: a filled
    /// column ends at full density, while contrast that thins out towards the tip is passing
    /// into a vessel that goes on ("some contrast passing the lesion" [R1][R2]). An
    /// image-processing parameter, **UNVERIFIED** default 0.5; 0 switches it off.
    pub cutoff_fade_ratio: f64,
    /// A free branch end is not a cut-off when another vessel's centreline (not its parent,
    /// children or siblings) passes within this many reference diameters ahead of it (within
    /// `continuation_max_angle_deg` of its direction) and no vessel resumes along its axis
    /// (see `continuation_max_gap_ref`): the centreline stopped where it met a vessel it was
    /// not joined to (a junction or crossing), and the lumen goes on. An
    /// image-processing parameter, **UNVERIFIED** default 1.25; 0 switches it off.
    pub cutoff_clear_ahead_ref: f64,
    /// Vessel paths: a branch continues into the child whose first `angle_window_mm` turns
    /// less than this from the branch's last `angle_window_mm` (and whose calibre is close,
    /// see `path_min_calibre_ratio`); narrowings are then also sought along the joined path,
    /// where a short branch between two side-branch junctions gets its reference lumen from
    /// the vessel on both sides. Degrees; an image-processing parameter, **UNVERIFIED**
    /// default 30; 0 switches the paths off.
    pub path_max_turn_deg: f64,
    /// ... and whose calibre (the `reference_percentile` of its diameters over
    /// `reference_window_mm` from the junction) is at least this fraction of the branch's (the
    /// main vessel goes on; a side branch is smaller). **UNVERIFIED** default 0.8.
    pub path_min_calibre_ratio: f64,
    /// Flagged samples next to a junction whose edges are balanced and whose diameter is
    /// within the shoulder fraction to 1.1 times the branch's calibre count as measured normal
    /// lumen (a reference for a narrowing just past the junction); balanced ones no wider than
    /// 1.1 calibres that resolve `classification.web_min_channels` channels count as web signs
    /// (a web at a branch point). **UNVERIFIED** default on.
    pub junction_reference: bool,
    /// A mild narrowing found by its flat-lumen shape alone (no band, contrast dip or channel
    /// sign) must narrow the lumen by at least this much, mm: shallower dips are within a few
    /// standard deviations of the edge noise (about 0.16 mm on 1.5-3 mm phantom vessels).
    /// **UNVERIFIED** default 0.5 (engineering default).
    pub shallow_min_depth_mm: f64,
    /// ... and, where measured, be at least this symmetric (the smaller wall indentation over
    /// the larger): a dip in one edge only is more often that edge following a background
    /// structure than a lumen narrowing. **UNVERIFIED** default 0.3 (engineering default).
    pub shallow_min_symmetry: f64,
    /// Mild narrowings (below `min_ds_pct`) become web candidates by their shape or
    /// centreline contrast alone: a flat lumen (`classification.web_plateau_min_mm`) or a
    /// lucent band (`classification.web_contrast_max_ratio`), with no channel or
    /// densitometric sign. Off by default: on 120 development phantoms, whose webs show their
    /// channels, these candidates found no web and 23 false ones. Webs whose bands a frame
    /// cannot resolve need it on. **UNVERIFIED** default off.
    pub mild_web_candidates: bool,
}

impl Default for DetectionRules {
    fn default() -> Self {
        Self {
            min_ds_pct: 30.0,
            reference_window_mm: 10.0,
            reference_percentile: 90.0,
            shoulder_fraction: 0.9,
            qca_margin_mm: 5.0,
            reference_method: ReferenceMethod::Interpolated,
            merge_gap_mm: 1.0,
            nms_distance_mm: 3.0,
            stump_window_mm: 3.0,
            pointed_max_tip_ratio: 0.5,
            orifice_max_stump_mm: 2.0,
            angle_window_mm: 3.0,
            tortuosity_step_mm: 1.0,
            bend_threshold_deg: 45.0,
            tortuosity_window_ref: 6.0,
            min_reference_mm: 2.0,
            continuation_max_gap_ref: 2.5,
            continuation_max_angle_deg: 45.0,
            continuation_diameter_ratio: 1.33,
            min_reliable_fraction: 0.5,
            beyond_end_min_ratio: 0.14,
            cine_beyond_end_min_ratio: 0.2,
            beyond_end_max_ratio: 0.45,
            beyond_end_neck_max_ratio: 0.45,
            beyond_end_neck_min_reference_mm: 2.5,
            beyond_end_probe_mm: 5.0,
            cine_refill_min_ratio: 0.12,
            min_reference_samples: 3,
            narrow_unreliable_max_mm: 3.0,
            min_length_mm: 1.0,
            edge_margin_mm: 3.0,
            dens_run_ratio: 0.35,
            dens_max_ratio: 0.3,
            dens_min_distal_ratio: 0.1,
            dens_junction_clear_ref: 1.5,
            dens_distal_gap_mm: 1.5,
            cutoff_fade_ratio: 0.5,
            cutoff_clear_ahead_ref: 1.25,
            path_max_turn_deg: 30.0,
            path_min_calibre_ratio: 0.8,
            junction_reference: true,
            shallow_min_depth_mm: 0.5,
            shallow_min_symmetry: 0.3,
            mild_web_candidates: false,
        }
    }
}

/// Kawakami type rules (domain.md rule 6), checked in the order D → C → E → B → A.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassificationRules {
    /// C (subtotal): % diameter stenosis at or above this (domain.md rule 6, default 90).
    /// Also the near-occlusive level for OCT (converted to area stenosis).
    pub subtotal_min_ds_pct: f64,
    /// B (web): at least this many lumen channels across the profile (2: one lucent band).
    pub web_min_channels: u8,
    /// B (web): the channel or density sign must hold on at least this many consecutive samples
    /// (suppresses noise: angiographic profile samples lie 0.1 mm apart at 0.2 mm/px). **UNVERIFIED**
    /// default 3.
    pub web_min_samples: usize,
    /// B (web): densitometric / geometric area ratio below this is a filling defect [Q12].
    /// **UNVERIFIED** default 0.5 (no published cut-off retrieved). At 0.7 the sign typed no
    /// phantom web (their lucent bands read 0.7-0.8, and the channel count finds them first)
    /// while it made 14 false webs on the 120 development frames and 9 on the 80 validation
    /// frames, nearly all in the noisy band under the diaphragm; below 0.5 for the required
    /// run of samples it fires on none of those.
    pub web_max_density_ratio: f64,
    /// B (web) from the profile shape: a narrowing of at least this % diameter stenosis (and
    /// below `detection.min_ds_pct`, so not reported otherwise) is a candidate web when its lumen
    /// stays flat (see `web_plateau_min_mm`). Webs narrow the lumen only mildly; their lucent
    /// lines are often below what a single frame resolves. Calibrated images only (the lengths
    /// are physical). **UNVERIFIED** default 15.
    pub web_min_ds_pct: f64,
    /// B (web) from the profile shape: the narrowing stays in the lower half of its depth for at
    /// least this length, mm (a flat, slit-like lumen between abrupt shoulders; noise dips and
    /// smooth caliber changes are V- or bowl-shaped). **UNVERIFIED** default 0.6.
    pub web_plateau_min_mm: f64,
    /// B (web) from the profile shape applies only below this % diameter stenosis (deeper focal
    /// narrowings are rings unless a lucent band or channels are seen). **UNVERIFIED** default 35.
    pub web_plateau_max_ds_pct: f64,
    /// B (web) from densitometry: the centreline contrast per mm of measured diameter (median
    /// of three samples) falls below this fraction of its running median over
    /// `detection.reference_window_mm` on at least `web_min_samples` samples, while the edges
    /// narrow by less than `web_plateau_max_ds_pct` and the vessel beyond fills normally: a
    /// lucent band along the lumen (a filling defect [Q12]) that the edges do not show.
    /// **UNVERIFIED** default 0.6; 0 switches it off.
    pub web_contrast_max_ratio: f64,
    /// A (ring): lesion length at most this multiple of the reference diameter (domain.md
    /// rule 6, default 2).
    pub ring_max_length_ref: f64,
    /// A (ring): symmetry index (0-1, 1 = concentric) at least this. **UNVERIFIED** default 0.5.
    pub ring_min_symmetry: f64,
    /// E (tortuous): distance metric (path / chord) of the segment beyond the lesion above this.
    /// No pulmonary threshold was found (domain.md §5): **UNVERIFIED** default 1.3.
    pub tortuous_min_dm: f64,
    /// E (tortuous): at least this many bends of ≥ `detection.bend_threshold_deg` beyond the
    /// lesion (coronary definition, 3 bends ≥ 45° [T4]).
    pub tortuous_min_bends: u32,
    /// E (tortuous): lesion angulation at or above this is severe (≥ 90°, [Q13]).
    pub severe_angle_deg: f64,
    /// C from one frame (no cine): the contrast per mm of diameter beyond a narrowing is below
    /// this fraction of that before it ("delayed or poor distal filling" [R1][R2]).
    /// **UNVERIFIED** default 0.7.
    pub poor_filling_max_ratio: f64,
    /// C from one frame: only narrowings of at least this % diameter stenosis (edges under-read
    /// a near-occlusion whose lumen is below the resolution [Q10]). **UNVERIFIED** default 30 (the detection default).
    pub poor_filling_min_ds_pct: f64,
    /// Confidence is multiplied by this when flow grade is unknown (no cine) and C vs D was
    /// decided from the image alone. A design choice, default 0.7.
    pub no_cine_confidence: f64,
    /// Confidence multiplier when no rule fired and the nearest type is reported (long or
    /// asymmetric narrowing reported as ring). A design choice, default 0.4.
    pub fallback_confidence: f64,
}

impl Default for ClassificationRules {
    fn default() -> Self {
        Self {
            subtotal_min_ds_pct: 90.0,
            web_min_channels: 2,
            web_min_samples: 3,
            web_max_density_ratio: 0.5,
            web_min_ds_pct: 15.0,
            web_plateau_min_mm: 0.6,
            web_plateau_max_ds_pct: 35.0,
            web_contrast_max_ratio: 0.6,
            ring_max_length_ref: 2.0,
            ring_min_symmetry: 0.5,
            tortuous_min_dm: 1.3,
            tortuous_min_bends: 3,
            severe_angle_deg: 90.0,
            poor_filling_max_ratio: 0.7,
            poor_filling_min_ds_pct: 30.0,
            no_cine_confidence: 0.7,
            fallback_confidence: 0.4,
        }
    }
}

/// Ranking within the two treatment groups. The group order itself (ring, web, subtotal before
/// occlusion and tortuous; consensus recommendation 9 [R11]) is fixed, not a weight.
///
/// Score = (w_stenosis · DS/100 + w_territory · T/(T + territory_half_mm)) · Π(1 − penalty) over
/// the risk flags present. The weights and penalties are **UNVERIFIED** defaults: the published
/// data give which factors raise risk, not by how much to discount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingRules {
    /// Weight of the % diameter stenosis (expected haemodynamic gain).
    pub weight_stenosis: f64,
    /// Weight of the downstream territory (centerline length fed by the branch).
    pub weight_territory: f64,
    /// Territory length (mm) at which the territory term reaches half its weight.
    pub territory_half_mm: f64,
    /// Reference diameters below this are a small-vessel risk flag; BPA targets are about
    /// 2-5 mm [R15].
    pub small_vessel_mm: f64,
    pub penalty_small_vessel: f64,
    /// Lesion angulation at or above this is a risk flag (severe ≥ 90°, [Q13]; crossing depends
    /// on lesion angle [R25]).
    pub sharp_angle_deg: f64,
    pub penalty_sharp_angle: f64,
    /// Orifice stumps have the lowest success and most complications [R3].
    pub penalty_orifice_stump: f64,
    /// Round stumps have lower success than pointed ones [R3].
    pub penalty_round_stump: f64,
    /// Tortuous segment beyond the lesion (DM or bend count over the E thresholds) [R1].
    pub penalty_tortuosity: f64,
}

impl Default for RankingRules {
    fn default() -> Self {
        Self {
            weight_stenosis: 1.0,
            weight_territory: 1.0,
            territory_half_mm: 50.0,
            small_vessel_mm: 2.0,
            penalty_small_vessel: 0.3,
            sharp_angle_deg: 90.0,
            penalty_sharp_angle: 0.3,
            penalty_orifice_stump: 0.5,
            penalty_round_stump: 0.3,
            penalty_tortuosity: 0.3,
        }
    }
}

/// Staged, undersized balloon advice (domain.md rule 8; informative, not prescriptive).
///
/// Stage k (0-based) targets `reference × min(first_fraction + k · step_fraction,
/// final_fraction)`, rounded down to the catalogue; the first stage is further capped at
/// `first_session_max_mm`. Stages that round to the same size are dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalloonRules {
    /// Available balloon diameters, mm. Default: a typical catalogue (1.5 to 8.0 mm), not any
    /// one manufacturer's list.
    pub catalogue_mm: Vec<f64>,
    /// First-stage balloon-to-reference fraction. Staged undersized dilation is supported by
    /// [R10]; the fraction itself is **UNVERIFIED** (default 0.65).
    pub first_fraction: f64,
    /// Increase of the fraction per later stage. **UNVERIFIED** default 0.35.
    pub step_fraction: f64,
    /// Largest balloon-to-reference fraction aimed for. Default 1.0 (ratios > 1.0 were analysed
    /// separately in [R8]).
    pub final_fraction: f64,
    /// Number of stages (sessions) per lesion; two-session dilation is supported by [R10].
    pub max_stages: usize,
    /// Cap on the first-session balloon, mm. The "2.0 mm in the first session" rule is
    /// **UNVERIFIED** (domain.md §3; the Portuguese sizing table [R23] holds the values).
    pub first_session_max_mm: f64,
    /// Whether `first_session_max_mm` applies (a flag rather than an optional value, because
    /// TOML has no null).
    pub cap_first_session: bool,
    /// A balloon-to-vessel ratio above this is flagged [R8].
    pub max_ratio: f64,
}

impl Default for BalloonRules {
    fn default() -> Self {
        Self {
            catalogue_mm: vec![1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0],
            first_fraction: 0.65,
            step_fraction: 0.35,
            final_fraction: 1.0,
            max_stages: 2,
            first_session_max_mm: 2.0,
            cap_first_session: true,
            max_ratio: 1.0,
        }
    }
}

/// Grouping of dilations into sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionRules {
    /// At most this many vessels per session: 1-6 segmental or subsegmental arteries per
    /// session (NICE [R16]); default the upper end, 6.
    pub max_vessels_per_session: usize,
}

impl Default for SessionRules {
    fn default() -> Self {
        Self {
            max_vessels_per_session: 6,
        }
    }
}

/// Pressure end points carried into the plan notes as data (they are measured in the lab, not
/// from images).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PressureEndpoints {
    /// Dilate each lesion until distal mean PAP is below this, mmHg [R6].
    pub distal_mpap_max_mmhg: f64,
    /// End the session while PEPSI is below this [R5][R6].
    pub pepsi_max: f64,
    /// Post-BPA distal pressure above this marks reperfusion-injury risk, mmHg [R7].
    pub pd_caution_mmhg: f64,
    /// Wire FFR (Pd/Pp) threshold [R24].
    pub ffr_threshold: f64,
    /// Angiography-derived pulmonary flow reserve cut-off [R24].
    pub pfr_threshold: f64,
}

impl Default for PressureEndpoints {
    fn default() -> Self {
        Self {
            distal_mpap_max_mmhg: 35.0,
            pepsi_max: 35.4,
            pd_caution_mmhg: 19.5,
            ffr_threshold: 0.80,
            pfr_threshold: 0.77,
        }
    }
}

fn check(ok: bool, field: &str, value: impl std::fmt::Display, want: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(LesionError::rule(field, format!("must be {want}, got {value}")))
    }
}

fn positive(v: f64, field: &str) -> Result<()> {
    check(v.is_finite() && v > 0.0, field, v, "finite and > 0")
}

fn non_negative(v: f64, field: &str) -> Result<()> {
    check(v.is_finite() && v >= 0.0, field, v, "finite and >= 0")
}

fn in_range(v: f64, lo: f64, hi: f64, field: &str) -> Result<()> {
    check(
        v.is_finite() && v >= lo && v <= hi,
        field,
        v,
        &format!("in [{lo}, {hi}]"),
    )
}

fn penalty(v: f64, field: &str) -> Result<()> {
    check(v.is_finite() && (0.0..1.0).contains(&v), field, v, "in [0, 1)")
}

impl Rules {
    /// Checks every value; the error names the first bad field as `section.field`.
    pub fn validate(&self) -> Result<()> {
        let d = &self.detection;
        in_range(d.min_ds_pct, 0.0, 100.0, "detection.min_ds_pct")?;
        positive(d.reference_window_mm, "detection.reference_window_mm")?;
        in_range(d.reference_percentile, 0.0, 100.0, "detection.reference_percentile")?;
        check(
            d.shoulder_fraction.is_finite() && d.shoulder_fraction > 0.0 && d.shoulder_fraction <= 1.0,
            "detection.shoulder_fraction",
            d.shoulder_fraction,
            "in (0, 1]",
        )?;
        non_negative(d.qca_margin_mm, "detection.qca_margin_mm")?;
        non_negative(d.merge_gap_mm, "detection.merge_gap_mm")?;
        non_negative(d.nms_distance_mm, "detection.nms_distance_mm")?;
        positive(d.stump_window_mm, "detection.stump_window_mm")?;
        in_range(d.pointed_max_tip_ratio, 0.0, 1.0, "detection.pointed_max_tip_ratio")?;
        non_negative(d.orifice_max_stump_mm, "detection.orifice_max_stump_mm")?;
        positive(d.angle_window_mm, "detection.angle_window_mm")?;
        positive(d.tortuosity_step_mm, "detection.tortuosity_step_mm")?;
        in_range(d.bend_threshold_deg, 0.0, 180.0, "detection.bend_threshold_deg")?;
        positive(d.tortuosity_window_ref, "detection.tortuosity_window_ref")?;
        non_negative(d.min_reference_mm, "detection.min_reference_mm")?;
        non_negative(d.continuation_max_gap_ref, "detection.continuation_max_gap_ref")?;
        in_range(d.min_reliable_fraction, 0.0, 1.0, "detection.min_reliable_fraction")?;
        in_range(d.beyond_end_min_ratio, 0.0, 1.0, "detection.beyond_end_min_ratio")?;
        in_range(
            d.cine_beyond_end_min_ratio,
            0.0,
            1.0,
            "detection.cine_beyond_end_min_ratio",
        )?;
        check(
            d.beyond_end_max_ratio > d.beyond_end_min_ratio,
            "detection.beyond_end_max_ratio",
            d.beyond_end_max_ratio,
            "> detection.beyond_end_min_ratio",
        )?;
        check(
            d.beyond_end_max_ratio > d.cine_beyond_end_min_ratio,
            "detection.beyond_end_max_ratio",
            d.beyond_end_max_ratio,
            "> detection.cine_beyond_end_min_ratio",
        )?;
        in_range(
            d.beyond_end_neck_max_ratio,
            0.0,
            1.0,
            "detection.beyond_end_neck_max_ratio",
        )?;
        non_negative(
            d.beyond_end_neck_min_reference_mm,
            "detection.beyond_end_neck_min_reference_mm",
        )?;
        positive(d.beyond_end_probe_mm, "detection.beyond_end_probe_mm")?;
        in_range(d.cine_refill_min_ratio, 0.0, 1.0, "detection.cine_refill_min_ratio")?;
        non_negative(d.shallow_min_depth_mm, "detection.shallow_min_depth_mm")?;
        in_range(d.shallow_min_symmetry, 0.0, 1.0, "detection.shallow_min_symmetry")?;
        non_negative(d.min_length_mm, "detection.min_length_mm")?;
        non_negative(d.narrow_unreliable_max_mm, "detection.narrow_unreliable_max_mm")?;
        non_negative(d.edge_margin_mm, "detection.edge_margin_mm")?;
        in_range(d.dens_run_ratio, 0.0, 1.0, "detection.dens_run_ratio")?;
        in_range(d.dens_max_ratio, 0.0, 1.0, "detection.dens_max_ratio")?;
        in_range(d.dens_min_distal_ratio, 0.0, 1.0, "detection.dens_min_distal_ratio")?;
        non_negative(d.dens_junction_clear_ref, "detection.dens_junction_clear_ref")?;
        non_negative(d.dens_distal_gap_mm, "detection.dens_distal_gap_mm")?;
        in_range(d.cutoff_fade_ratio, 0.0, 1.0, "detection.cutoff_fade_ratio")?;
        non_negative(d.cutoff_clear_ahead_ref, "detection.cutoff_clear_ahead_ref")?;
        in_range(d.path_max_turn_deg, 0.0, 180.0, "detection.path_max_turn_deg")?;
        in_range(d.path_min_calibre_ratio, 0.0, 1.0, "detection.path_min_calibre_ratio")?;
        in_range(
            d.continuation_max_angle_deg,
            0.0,
            180.0,
            "detection.continuation_max_angle_deg",
        )?;
        check(
            d.continuation_diameter_ratio == 0.0 || d.continuation_diameter_ratio >= 1.0,
            "detection.continuation_diameter_ratio",
            d.continuation_diameter_ratio,
            "0 (off) or >= 1",
        )?;

        let c = &self.classification;
        in_range(c.subtotal_min_ds_pct, 0.0, 100.0, "classification.subtotal_min_ds_pct")?;
        in_range(c.web_min_ds_pct, 0.0, 100.0, "classification.web_min_ds_pct")?;
        non_negative(c.web_plateau_min_mm, "classification.web_plateau_min_mm")?;
        in_range(
            c.web_plateau_max_ds_pct,
            0.0,
            100.0,
            "classification.web_plateau_max_ds_pct",
        )?;
        check(
            c.web_min_channels >= 2,
            "classification.web_min_channels",
            c.web_min_channels,
            ">= 2",
        )?;
        check(
            c.web_min_samples >= 1,
            "classification.web_min_samples",
            c.web_min_samples,
            ">= 1",
        )?;
        in_range(
            c.web_max_density_ratio,
            0.0,
            1.0,
            "classification.web_max_density_ratio",
        )?;
        in_range(
            c.web_contrast_max_ratio,
            0.0,
            1.0,
            "classification.web_contrast_max_ratio",
        )?;
        positive(c.ring_max_length_ref, "classification.ring_max_length_ref")?;
        in_range(c.ring_min_symmetry, 0.0, 1.0, "classification.ring_min_symmetry")?;
        check(
            c.tortuous_min_dm.is_finite() && c.tortuous_min_dm >= 1.0,
            "classification.tortuous_min_dm",
            c.tortuous_min_dm,
            "finite and >= 1 (a straight line has DM 1)",
        )?;
        in_range(c.severe_angle_deg, 0.0, 180.0, "classification.severe_angle_deg")?;
        in_range(
            c.poor_filling_max_ratio,
            0.0,
            1.0,
            "classification.poor_filling_max_ratio",
        )?;
        in_range(
            c.poor_filling_min_ds_pct,
            0.0,
            100.0,
            "classification.poor_filling_min_ds_pct",
        )?;
        in_range(c.no_cine_confidence, 0.0, 1.0, "classification.no_cine_confidence")?;
        in_range(c.fallback_confidence, 0.0, 1.0, "classification.fallback_confidence")?;

        let r = &self.ranking;
        non_negative(r.weight_stenosis, "ranking.weight_stenosis")?;
        non_negative(r.weight_territory, "ranking.weight_territory")?;
        positive(r.territory_half_mm, "ranking.territory_half_mm")?;
        non_negative(r.small_vessel_mm, "ranking.small_vessel_mm")?;
        in_range(r.sharp_angle_deg, 0.0, 180.0, "ranking.sharp_angle_deg")?;
        penalty(r.penalty_small_vessel, "ranking.penalty_small_vessel")?;
        penalty(r.penalty_sharp_angle, "ranking.penalty_sharp_angle")?;
        penalty(r.penalty_orifice_stump, "ranking.penalty_orifice_stump")?;
        penalty(r.penalty_round_stump, "ranking.penalty_round_stump")?;
        penalty(r.penalty_tortuosity, "ranking.penalty_tortuosity")?;

        let b = &self.balloon;
        check(!b.catalogue_mm.is_empty(), "balloon.catalogue_mm", "[]", "non-empty")?;
        for &s in &b.catalogue_mm {
            positive(s, "balloon.catalogue_mm")?;
        }
        check(
            b.catalogue_mm.windows(2).all(|w| w[1] > w[0]),
            "balloon.catalogue_mm",
            format!("{:?}", b.catalogue_mm),
            "strictly increasing",
        )?;
        check(
            b.first_fraction.is_finite() && b.first_fraction > 0.0 && b.first_fraction <= b.final_fraction,
            "balloon.first_fraction",
            b.first_fraction,
            "> 0 and <= balloon.final_fraction",
        )?;
        non_negative(b.step_fraction, "balloon.step_fraction")?;
        positive(b.final_fraction, "balloon.final_fraction")?;
        check(b.max_stages >= 1, "balloon.max_stages", b.max_stages, ">= 1")?;
        positive(b.first_session_max_mm, "balloon.first_session_max_mm")?;
        positive(b.max_ratio, "balloon.max_ratio")?;

        check(
            self.session.max_vessels_per_session >= 1,
            "session.max_vessels_per_session",
            self.session.max_vessels_per_session,
            ">= 1",
        )?;

        let e = &self.endpoints;
        positive(e.distal_mpap_max_mmhg, "endpoints.distal_mpap_max_mmhg")?;
        positive(e.pepsi_max, "endpoints.pepsi_max")?;
        positive(e.pd_caution_mmhg, "endpoints.pd_caution_mmhg")?;
        in_range(e.ffr_threshold, 0.0, 1.0, "endpoints.ffr_threshold")?;
        in_range(e.pfr_threshold, 0.0, 1.0, "endpoints.pfr_threshold")?;
        Ok(())
    }

    /// Parses a JSON rule table and validates it. `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| LesionError::Parse {
            path: origin.to_string(),
            field: "(syntax)".to_string(),
            reason: e.to_string(),
        })?;
        Self::from_value(value, origin)
    }

    /// Parses a TOML rule table and validates it. `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let value: serde_json::Value = toml::from_str(text).map_err(|e| LesionError::Parse {
            path: origin.to_string(),
            field: "(syntax)".to_string(),
            reason: e.to_string(),
        })?;
        Self::from_value(value, origin)
    }

    /// Both formats go through one JSON value so that type errors report the field path.
    fn from_value(value: serde_json::Value, origin: &str) -> Result<Self> {
        let rules: Rules = serde_path_to_error::deserialize(value).map_err(|e| LesionError::Parse {
            path: origin.to_string(),
            field: e.path().to_string(),
            reason: e.inner().to_string(),
        })?;
        rules.validate().map_err(|e| match e {
            LesionError::Rule { field, reason } => LesionError::Parse {
                path: origin.to_string(),
                field,
                reason,
            },
            other => other,
        })?;
        Ok(rules)
    }

    /// Loads a rule table from a `.toml` file, or JSON for any other extension.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LesionError::Io {
            path: shown.clone(),
            source,
        })?;
        let is_toml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml {
            Self::from_toml_str(&text, &shown)
        } else {
            Self::from_json_str(&text, &shown)
        }
    }

    /// The table as pretty JSON (a template users can edit).
    pub fn to_json_pretty(&self) -> String {
        // Serialising plain structs of numbers, strings and vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The table as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| LesionError::invalid("rules", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Rules::default().validate().unwrap();
    }

    #[test]
    fn json_and_toml_round_trip() {
        let mut r = Rules::default();
        r.classification.subtotal_min_ds_pct = 85.0;
        r.balloon.cap_first_session = false;
        r.detection.reference_method = ReferenceMethod::Computed;
        let back = Rules::from_json_str(&r.to_json_pretty(), "mem").unwrap();
        assert_eq!(back, r);
        let back = Rules::from_toml_str(&r.to_toml().unwrap(), "mem").unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn partial_file_takes_defaults() {
        let r = Rules::from_json_str(r#"{"session": {"max_vessels_per_session": 3}}"#, "mem").unwrap();
        assert_eq!(r.session.max_vessels_per_session, 3);
        assert_eq!(r.classification, ClassificationRules::default());
    }

    fn field_of(e: LesionError) -> String {
        match e {
            LesionError::Parse { field, .. } => field,
            other => panic!("expected a parse error, got {other}"),
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = Rules::from_json_str(r#"{"classification": {"subtotal_min_ds_pct": 140}}"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("classification.subtotal_min_ds_pct"), "{e}");
        assert_eq!(field_of(e), "classification.subtotal_min_ds_pct");
        let e = Rules::from_json_str(r#"{"ranking": {"penalty_round_stump": "high"}}"#, "x.json").unwrap_err();
        assert_eq!(field_of(e), "ranking.penalty_round_stump");
        let e = Rules::from_json_str(r#"{"balloon": {"catalog_mm": [2.0]}}"#, "x.json").unwrap_err();
        assert!(e.to_string().contains("catalog_mm"), "{e}");
        let e = Rules::from_toml_str("[balloon]\ncatalogue_mm = [3.0, 2.0]\n", "x.toml").unwrap_err();
        assert_eq!(field_of(e), "balloon.catalogue_mm");
        let e = Rules::from_toml_str("[session]\nmax_vessels_per_session = -1\n", "x.toml").unwrap_err();
        assert_eq!(field_of(e), "session.max_vessels_per_session");
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    /// `rules/default.toml` and `rules/default.json` are the editable templates shipped with the
    /// crate; they must load and equal the built-in defaults. `REGENERATE=1` rewrites them.
    #[test]
    fn shipped_templates_match_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let d = Rules::default();
        if std::env::var_os("REGENERATE").is_some() {
            let header = "# vesselkit lesion rule table (defaults). Every value is documented on `Rules` in\n\
                          # crates/vesselkit-lesion/src/rules.rs; values marked UNVERIFIED there are working\n\
                          # defaults without a published source. Research use only.\n\n";
            std::fs::write(dir.join("default.toml"), header.to_string() + &d.to_toml().unwrap()).unwrap();
            std::fs::write(dir.join("default.json"), d.to_json_pretty() + "\n").unwrap();
        }
        assert_eq!(Rules::from_path(dir.join("default.toml")).unwrap(), d);
        assert_eq!(Rules::from_path(dir.join("default.json")).unwrap(), d);
        // A user's file with a bad value: the error names the file and the field.
        let tmp = std::env::temp_dir().join(format!("vesselkit-lesion-rules-{}.toml", std::process::id()));
        std::fs::write(&tmp, "[ranking]\nsmall_vessel_mm = 2.0\npenalty_tortuosity = 1.5\n").unwrap();
        let e = Rules::from_path(&tmp).unwrap_err();
        let _ = std::fs::remove_file(&tmp);
        let msg = e.to_string();
        assert!(
            msg.contains("ranking.penalty_tortuosity") && msg.contains(".toml"),
            "{msg}"
        );
        let e = Rules::from_path(dir.join("missing.json")).unwrap_err();
        assert!(matches!(e, LesionError::Io { .. }), "{e}");
    }
}
