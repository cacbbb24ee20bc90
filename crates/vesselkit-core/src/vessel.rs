//! The calibrated vessel description that angiography analysis produces and lesion analysis
//! consumes. Plain data: every field is measured, none is inferred from ground truth.

use crate::calibration::Calibration;
use crate::geometry::{Point, Polyline};
use serde::{Deserialize, Serialize};

/// How a branch ends at its distal end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchEnd {
    /// Splits into child branches.
    Junction,
    /// Fades out gradually as vessels do when they get too small to see.
    Taper,
    /// Stops abruptly while still wide: a cut-off (occlusion candidate).
    Abrupt,
    /// Leaves the image.
    Border,
}

/// One measurement station on a centerline, proximal to distal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileSample {
    /// Centerline position `(row, col)` in px.
    pub point: Point,
    /// Arc length from the branch start, mm.
    pub arc_mm: f64,
    /// Lumen diameter perpendicular to the centerline, mm; NaN where it could not be measured.
    pub diameter_mm: f64,
    /// Distance from the centerline to the left and right lumen edge, mm (left = +90° from the
    /// direction of travel). NaN where not measured.
    pub left_mm: f64,
    pub right_mm: f64,
    /// Number of separate lumen channels seen across the profile (1 = one lumen; 2+ = lucent
    /// bands inside the lumen, a web sign; 0 = not measured).
    pub channels: u8,
    /// Densitometric opacity across the profile divided by the opacity a round lumen of the
    /// measured diameter would give (1 = consistent; < 1 = less contrast than the edges suggest,
    /// a filling-defect sign). NaN where not measured.
    pub density_ratio: f64,
    /// False near junctions, overlaps and image borders where edges are unreliable.
    pub reliable: bool,
}

/// Tortuosity of a centerline resampled at a fixed mm step (Bullitt 2003; bend count as in
/// coronary practice).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tortuosity {
    /// Distance metric: path length / chord length (1 for a straight line).
    pub dm: f64,
    /// Inflection count metric: (inflection points + 1) × DM.
    pub icm: f64,
    /// Sum of angles metric: total turning angle / path length, rad per mm.
    pub soam_rad_per_mm: f64,
    /// Number of bends whose direction change is at least the bend threshold (45° by default).
    pub bends: u32,
    /// Largest single bend angle, degrees.
    pub max_bend_deg: f64,
}

/// One branch of the vessel tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub id: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Measurement stations, proximal to distal.
    pub samples: Vec<ProfileSample>,
    pub length_mm: f64,
    pub distal_end: BranchEnd,
    pub tortuosity: Tortuosity,
    /// Cine: time from the first frame to contrast arrival at the distal end of the branch, ms.
    pub arrival_ms: Option<f64>,
    /// Cine: flow grade 0-3 at the distal end (0 = no opacification for the whole run).
    pub flow_grade: Option<u8>,
}

impl Branch {
    pub fn centerline(&self) -> Polyline {
        Polyline::new(self.samples.iter().map(|s| s.point).collect())
    }
    pub fn diameters_mm(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.diameter_mm).collect()
    }
    pub fn arc_mm(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.arc_mm).collect()
    }
    /// Median of the measured diameters, mm (NaN if none).
    pub fn median_diameter_mm(&self) -> f64 {
        let mut d: Vec<f64> = self
            .samples
            .iter()
            .map(|s| s.diameter_mm)
            .filter(|d| d.is_finite())
            .collect();
        if d.is_empty() {
            return f64::NAN;
        }
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    }
}

/// The vessel tree of one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VesselTree {
    pub branches: Vec<Branch>,
    /// The root branch (largest vessel or the user's seed).
    pub root: Option<usize>,
    pub calibration: Calibration,
}

impl VesselTree {
    /// Ids of all branches below `id` (not including it).
    pub fn descendants(&self, id: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.branches.get(id).map(|b| b.children.clone()).unwrap_or_default();
        while let Some(b) = stack.pop() {
            if out.contains(&b) {
                continue; // guards against malformed cyclic input
            }
            out.push(b);
            if let Some(br) = self.branches.get(b) {
                stack.extend(br.children.iter().copied());
            }
        }
        out
    }

    /// Total centerline length below and including `id`, mm: the size of the territory it feeds.
    pub fn territory_length_mm(&self, id: usize) -> f64 {
        let own = self.branches.get(id).map_or(0.0, |b| b.length_mm);
        own + self
            .descendants(id)
            .iter()
            .filter_map(|&d| self.branches.get(d))
            .map(|b| b.length_mm)
            .sum::<f64>()
    }
}
