//! A pullback: per-frame lumens (in parallel) and the lumen-area profile along the vessel with
//! MLA, references within a window on each side, area stenosis and lesion length
//! (domain.md §4 IV-OCT).

use crate::error::{OctError, Result, positive};
use crate::lumen::{OctFrameResult, OctOptions, oct_lumen};
use ndarray::{ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How the two reference frames are combined into one reference area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceMode {
    /// Mean of the proximal and distal reference areas (one side when only one exists).
    #[default]
    Mean,
    /// The larger of the two.
    Largest,
}

/// Options for [`oct_pullback`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullbackOptions {
    /// Distance between consecutive frames along the vessel (mm).
    pub frame_spacing_mm: f64,
    /// Options applied to every frame.
    pub frame: OctOptions,
    /// References are the largest-lumen frames within this distance on each side of the MLA
    /// frame (domain.md §4: 10 mm).
    pub reference_window_mm: f64,
    pub reference_mode: ReferenceMode,
    /// The lesion extends from the MLA frame while the area stays below this fraction of the
    /// reference area. Default 0.81 = (0.9)², i.e. the 90 % diameter shoulder rule that
    /// domain.md §6 item 3 gives as an example for QCA; adjustable, not a validated value.
    pub lesion_area_fraction: f64,
    /// Frames with at least this many channels are web candidates.
    pub web_min_channels: usize,
}

impl Default for PullbackOptions {
    fn default() -> Self {
        Self {
            frame_spacing_mm: 0.2,
            frame: OctOptions::default(),
            reference_window_mm: 10.0,
            reference_mode: ReferenceMode::Mean,
            lesion_area_fraction: 0.81,
            web_min_channels: 2,
        }
    }
}

/// One entry of the lumen-area profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileEntry {
    pub frame: usize,
    /// Position along the pullback from the first frame (mm).
    pub position_mm: f64,
    /// `None` when the frame could not be analysed.
    pub area_mm2: Option<f64>,
    pub n_channels: usize,
    /// The contour follows a side branch (not a reference candidate).
    #[serde(default)]
    pub side_branch: bool,
}

/// Result of a pullback analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullbackResult {
    /// Per-frame results; `None` where the frame failed (see `failures`).
    pub frames: Vec<Option<OctFrameResult>>,
    /// `(frame, message)` for frames that could not be analysed.
    pub failures: Vec<(usize, String)>,
    pub profile: Vec<ProfileEntry>,
    /// Frame of the minimal lumen area.
    pub mla_frame: usize,
    pub mla_mm2: f64,
    /// Largest-lumen frame within the window before / after the MLA frame, among the frames
    /// whose contour does not follow a side branch (any frame when all of them do).
    pub proximal_reference_frame: Option<usize>,
    pub distal_reference_frame: Option<usize>,
    pub reference_area_mm2: f64,
    /// Equivalent-circle diameter of the reference area, `2 sqrt(A / pi)` (mm).
    pub reference_diameter_mm: f64,
    /// Mean of `(Dmin + Dmax) / 2` over the reference frames (mm).
    pub reference_mean_diameter_mm: f64,
    /// `(ref CSA - MLA) / ref CSA * 100`.
    pub area_stenosis_pct: f64,
    /// First and last frame of the lesion around the MLA frame (inclusive).
    pub lesion_frames: (usize, usize),
    pub lesion_length_mm: f64,
    /// Frames with `web_min_channels` or more channels.
    pub web_candidate_frames: Vec<usize>,
}

/// Analyse every frame of a pullback `[frames, rows, cols]` (in parallel) and build the profile.
pub fn oct_pullback(frames: ArrayView3<f32>, opts: &PullbackOptions) -> Result<PullbackResult> {
    let spacing = positive("frame_spacing_mm", opts.frame_spacing_mm)?;
    positive("reference_window_mm", opts.reference_window_mm)?;
    if !(opts.lesion_area_fraction > 0.0 && opts.lesion_area_fraction <= 1.0) {
        return Err(OctError::invalid(
            "lesion_area_fraction",
            format!("must be in (0, 1], got {}", opts.lesion_area_fraction),
        ));
    }
    let n = frames.len_of(Axis(0));
    if n == 0 {
        return Err(OctError::shape("frames", "no frames"));
    }
    let results: Vec<Result<OctFrameResult>> = (0..n)
        .into_par_iter()
        .map(|i| oct_lumen(frames.index_axis(Axis(0), i), &opts.frame))
        .collect();
    let mut out_frames = Vec::with_capacity(n);
    let mut failures = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(f) => out_frames.push(Some(f)),
            // Options errors hit every frame alike: report them as such.
            Err(e @ (OctError::Invalid { .. } | OctError::Shape { .. })) => return Err(e),
            Err(e) => {
                failures.push((i, e.to_string()));
                out_frames.push(None);
            }
        }
    }
    summarise(out_frames, failures, spacing, opts)
}

fn summarise(
    frames: Vec<Option<OctFrameResult>>,
    failures: Vec<(usize, String)>,
    spacing: f64,
    opts: &PullbackOptions,
) -> Result<PullbackResult> {
    let area = |i: usize| frames[i].as_ref().map(|f| f.metrics.area_mm2);
    let profile: Vec<ProfileEntry> = (0..frames.len())
        .map(|i| ProfileEntry {
            frame: i,
            position_mm: i as f64 * spacing,
            area_mm2: area(i),
            n_channels: frames[i].as_ref().map_or(0, |f| f.n_channels()),
            side_branch: frames[i].as_ref().is_some_and(|f| f.side_branch),
        })
        .collect();
    let (mla_frame, mla_mm2) = (0..frames.len())
        .filter_map(|i| area(i).map(|a| (i, a)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| OctError::NoLumen("no frame of the pullback could be analysed".into()))?;
    let w = (opts.reference_window_mm / spacing).floor() as usize;
    // A side branch adds its ostium to the area: such frames are references only when the
    // window holds nothing else.
    let branch = |i: usize| frames[i].as_ref().is_some_and(|f| f.side_branch);
    let best_in = |range: std::ops::Range<usize>| {
        let best = |skip_branches: bool| {
            range
                .clone()
                .filter(|&i| !(skip_branches && branch(i)))
                .filter_map(|i| area(i).map(|a| (i, a)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        best(true).or_else(|| best(false))
    };
    let prox = best_in(mla_frame.saturating_sub(w)..mla_frame);
    let dist = best_in(mla_frame + 1..(mla_frame + w + 1).min(frames.len()));
    let reference_area_mm2 = match (prox, dist, opts.reference_mode) {
        (Some(p), Some(d), ReferenceMode::Mean) => 0.5 * (p.1 + d.1),
        (Some(p), Some(d), ReferenceMode::Largest) => p.1.max(d.1),
        (Some(x), None, _) | (None, Some(x), _) => x.1,
        (None, None, _) => mla_mm2,
    };
    let ref_frames: Vec<usize> = prox.iter().chain(dist.iter()).map(|x| x.0).collect();
    let reference_mean_diameter_mm = if ref_frames.is_empty() {
        frames[mla_frame]
            .as_ref()
            .map_or(0.0, |f| 0.5 * (f.metrics.min_diameter_mm + f.metrics.max_diameter_mm))
    } else {
        ref_frames
            .iter()
            .filter_map(|&i| frames[i].as_ref())
            .map(|f| 0.5 * (f.metrics.min_diameter_mm + f.metrics.max_diameter_mm))
            .sum::<f64>()
            / ref_frames.len() as f64
    };
    let area_stenosis_pct = if reference_area_mm2 > 0.0 {
        (reference_area_mm2 - mla_mm2) / reference_area_mm2 * 100.0
    } else {
        0.0
    };
    // Lesion: contiguous frames around the MLA below the fraction of the reference
    // (frames that failed do not stop the extent).
    let below = |i: usize| area(i).is_none_or(|a| a < opts.lesion_area_fraction * reference_area_mm2);
    let (mut first, mut last) = (mla_frame, mla_frame);
    if below(mla_frame) {
        while first > 0 && below(first - 1) {
            first -= 1;
        }
        while last + 1 < frames.len() && below(last + 1) {
            last += 1;
        }
    }
    let lesion_length_mm = if below(mla_frame) {
        (last - first + 1) as f64 * spacing
    } else {
        0.0
    };
    let web_candidate_frames = (0..frames.len())
        .filter(|&i| {
            frames[i]
                .as_ref()
                .is_some_and(|f| f.n_channels() >= opts.web_min_channels)
        })
        .collect();
    Ok(PullbackResult {
        frames,
        failures,
        profile,
        mla_frame,
        mla_mm2,
        proximal_reference_frame: prox.map(|x| x.0),
        distal_reference_frame: dist.map(|x| x.0),
        reference_area_mm2,
        reference_diameter_mm: 2.0 * (reference_area_mm2 / std::f64::consts::PI).sqrt(),
        reference_mean_diameter_mm,
        area_stenosis_pct,
        lesion_frames: (first, last),
        lesion_length_mm,
        web_candidate_frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSpec;

    /// Frames with a side branch are skipped as references; the MLA is not affected.
    #[test]
    fn side_branch_frames_are_not_references() {
        let spec = SyntheticSpec {
            lumen_radius_mm: 1.2,
            ..Default::default()
        };
        let mm = 0.0125;
        let (img, _) = spec.cartesian(256, mm);
        let opts = OctOptions {
            mm_per_px: mm,
            ..Default::default()
        };
        let one = crate::lumen::oct_lumen(img.view(), &opts).unwrap();
        assert!(!one.side_branch, "a plain round lumen has no side branch");
        // Areas: 5 mm² with a 2 mm² MLA at frame 10; frames 4 and 16 are the largest (6 and
        // 6.5 mm²) because a side branch opens there, frames 6 and 14 the largest without.
        let areas = [
            5.0, 5.0, 5.0, 5.0, 6.0, 5.0, 5.5, 5.0, 4.0, 3.0, 2.0, 3.0, 4.0, 5.0, 5.4, 5.0, 6.5, 5.0, 5.0, 5.0,
        ];
        let frames: Vec<Option<OctFrameResult>> = areas
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let mut f = one.clone();
                f.metrics.area_mm2 = a;
                f.side_branch = i == 4 || i == 16;
                Some(f)
            })
            .collect();
        let p = PullbackOptions {
            frame_spacing_mm: 0.5,
            frame: opts.clone(),
            ..Default::default()
        };
        let r = summarise(frames.clone(), vec![], 0.5, &p).unwrap();
        assert_eq!(r.mla_frame, 10);
        assert_eq!(r.proximal_reference_frame, Some(6));
        assert_eq!(r.distal_reference_frame, Some(14));
        assert!((r.reference_area_mm2 - 0.5 * (5.5 + 5.4)).abs() < 1e-12);
        assert!(r.profile[4].side_branch && !r.profile[6].side_branch);
        // When every frame of a window follows a branch, the largest of them still serves.
        let all: Vec<Option<OctFrameResult>> = frames
            .into_iter()
            .map(|f| {
                f.map(|mut f| {
                    f.side_branch = true;
                    f
                })
            })
            .collect();
        let r = summarise(all, vec![], 0.5, &p).unwrap();
        assert_eq!(r.proximal_reference_frame, Some(4));
        assert_eq!(r.distal_reference_frame, Some(16));
    }
}
