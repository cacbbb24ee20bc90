//! Cine run: the same tree over time with a contrast bolus travelling from the root.
//!
//! The concentration at a point with path length `s` from the root is a gamma variate
//! `c(tau) = (tau / t_peak)^alpha * exp(alpha * (1 - tau / t_peak))` of
//! `tau = t - t_injection - s / velocity - extra_delay`, times the point's contrast factor
//! (reduced and delayed behind a subtotal lesion, zero behind an occlusion). Cardiac and
//! respiratory motion translate the vessels (both) and the background (respiration only).

use crate::angio::{
    AngioParams, AngioTruth, Detector, build_geometry, detect, expose, mask_hash, path_length_map, project,
    truth_branches, truth_lesions,
};
use crate::background::Background;
use crate::common::{bilinear, fnv1a_f32, r4, stream};
use crate::error::{Result, check_range, check_size};
use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;

/// Parameters of a cine phantom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CineParams {
    pub angio: AngioParams,
    pub frames: usize,
    /// DICOM Frame Time (0018,1063); 66.7 ms is 15 frames per second.
    pub frame_time_ms: f64,
    /// Time from the first frame to bolus arrival at the root.
    pub injection_ms: f64,
    /// Bolus front speed along the tree, mm per ms.
    pub velocity_mm_per_ms: f64,
    /// Gamma-variate time from local arrival to peak concentration.
    pub time_to_peak_ms: f64,
    /// Gamma-variate shape (larger = sharper bolus).
    pub gamma_alpha: f64,
    /// Peak cardiac translation of the vessels, px.
    pub cardiac_amplitude_px: f64,
    pub heart_rate_bpm: f64,
    /// Peak respiratory translation of vessels and background, px.
    pub respiratory_amplitude_px: f64,
    pub respiratory_period_ms: f64,
}

impl Default for CineParams {
    fn default() -> Self {
        Self {
            angio: AngioParams::default(),
            frames: 30,
            frame_time_ms: 1000.0 / 15.0,
            injection_ms: 100.0,
            velocity_mm_per_ms: 0.12,
            time_to_peak_ms: 600.0,
            gamma_alpha: 2.5,
            cardiac_amplitude_px: 1.0,
            heart_rate_bpm: 75.0,
            respiratory_amplitude_px: 2.0,
            respiratory_period_ms: 4000.0,
        }
    }
}

impl CineParams {
    fn validate(&self) -> Result<()> {
        self.angio.validate()?;
        check_size("frames", self.frames, 1, 1000)?;
        check_range("frame_time_ms", self.frame_time_ms, 1.0, 10_000.0)?;
        check_range("injection_ms", self.injection_ms, 0.0, 60_000.0)?;
        check_range("velocity_mm_per_ms", self.velocity_mm_per_ms, 1e-3, 10.0)?;
        check_range("time_to_peak_ms", self.time_to_peak_ms, 10.0, 60_000.0)?;
        check_range("gamma_alpha", self.gamma_alpha, 0.5, 20.0)?;
        check_range("cardiac_amplitude_px", self.cardiac_amplitude_px, 0.0, 50.0)?;
        check_range("heart_rate_bpm", self.heart_rate_bpm, 20.0, 250.0)?;
        check_range("respiratory_amplitude_px", self.respiratory_amplitude_px, 0.0, 50.0)?;
        check_range("respiratory_period_ms", self.respiratory_period_ms, 500.0, 60_000.0)?;
        Ok(())
    }

    /// Relative concentration at `tau` ms after local arrival (peak 1 at `time_to_peak_ms`).
    pub fn bolus(&self, tau_ms: f64) -> f64 {
        if tau_ms <= 0.0 {
            return 0.0;
        }
        let x = tau_ms / self.time_to_peak_ms;
        (x.powf(self.gamma_alpha) * (self.gamma_alpha * (1.0 - x)).exp()).min(1.0)
    }

    /// Bolus onset at a point with path length `path_mm` and extra delay `extra_ms`.
    pub fn arrival_ms(&self, path_mm: f64, extra_ms: f64) -> f64 {
        self.injection_ms + path_mm / self.velocity_mm_per_ms + extra_ms
    }

    /// Vessel translation (cardiac + respiratory) and background translation at `t`, px.
    pub fn motion_px(&self, t_ms: f64) -> ((f64, f64), (f64, f64)) {
        let ph_c = TAU * t_ms * self.heart_rate_bpm / 60_000.0;
        let ph_r = TAU * t_ms / self.respiratory_period_ms;
        let resp = (
            self.respiratory_amplitude_px * ph_r.sin(),
            0.3 * self.respiratory_amplitude_px * ph_r.sin(),
        );
        let card = (
            self.cardiac_amplitude_px * ph_c.sin(),
            0.7 * self.cardiac_amplitude_px * (ph_c + 0.8).sin(),
        );
        ((resp.0 + card.0, resp.1 + card.1), resp)
    }
}

/// Per-frame truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CineFrameTruth {
    pub index: usize,
    pub time_ms: f64,
    /// Translation of the vessels relative to the geometry truth, px (row, col).
    pub vessel_offset_px: [f64; 2],
    /// Translation of the background, px.
    pub background_offset_px: [f64; 2],
    pub image_fnv1a: String,
}

/// Per-branch bolus timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchArrival {
    pub branch: usize,
    /// Bolus onset at the branch start, ms from the first frame (None: never fills).
    pub arrival_start_ms: Option<f64>,
    /// Bolus onset at the distal end of the branch (None: never fills, e.g. behind an occlusion).
    pub arrival_end_ms: Option<f64>,
    /// Relative concentration at the distal end at peak (0 = no filling).
    pub peak_contrast: f64,
}

/// Truth of a cine phantom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CineTruth {
    /// Geometry at zero motion; its `image_fnv1a` is the hash of the whole `[frames, rows,
    /// cols]` stack and its mask is the fully opacified lumen at zero motion.
    pub geometry: AngioTruth,
    pub params: CineParams,
    pub frame_time_ms: f64,
    pub frames: Vec<CineFrameTruth>,
    pub arrivals: Vec<BranchArrival>,
    /// Delay from onset until the concentration first reaches 10 % of its peak, ms (the
    /// visible arrival lags the onset by this much everywhere).
    pub onset_to_10pct_ms: f64,
}

/// A cine phantom: `[frames, rows, cols]` detector counts, the zero-motion mask and the truth.
#[derive(Debug, Clone)]
pub struct CinePhantom {
    pub frames: Array3<f32>,
    pub mask: Array2<bool>,
    pub truth: CineTruth,
}

impl CinePhantom {
    pub fn truth_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.truth)?)
    }
    /// Frame times from 0, ms.
    pub fn frame_times_ms(&self) -> Vec<f64> {
        self.truth.frames.iter().map(|f| f.time_ms).collect()
    }
}

/// Generate a cine run.
pub fn generate_cine(params: &CineParams, seed: u64) -> Result<CinePhantom> {
    params.validate()?;
    let p = &params.angio;
    let lay = build_geometry(p, seed)?;
    let proj = project(p, &lay);
    let det = Detector::from_params(p);
    let bg = Background::random(
        &mut stream(seed, 2),
        p.rows as f64 * p.mm_per_px,
        p.cols as f64 * p.mm_per_px,
        det.bg_strength,
    );
    let ss = p.supersample as f64;
    let rendered: Vec<(Array2<f32>, CineFrameTruth)> = (0..params.frames)
        .into_par_iter()
        .map(|f| {
            let t = f as f64 * params.frame_time_ms;
            let l = path_length_map(p, &proj, |_, (conc, path, extra)| {
                conc * params.bolus(t - params.arrival_ms(path, extra))
            });
            let (mv, mb) = params.motion_px(t);
            let shifted = if mv.0.abs() + mv.1.abs() > 0.0 {
                Array2::from_shape_fn(l.dim(), |(i, j)| {
                    bilinear(&l, i as f64 - mv.0 * ss, j as f64 - mv.1 * ss)
                })
            } else {
                l
            };
            let expected = expose(p, &det, &bg, &shifted, (mb.0 * p.mm_per_px, mb.1 * p.mm_per_px));
            let img = detect(&det, &expected, &mut stream(seed, 1000 + f as u64));
            let ft = CineFrameTruth {
                index: f,
                time_ms: r4(t),
                vessel_offset_px: [r4(mv.0), r4(mv.1)],
                background_offset_px: [r4(mb.0), r4(mb.1)],
                image_fnv1a: fnv1a_f32(img.iter()),
            };
            (img, ft)
        })
        .collect();
    let mut frames = Array3::<f32>::zeros((params.frames, p.rows, p.cols));
    let mut frame_truth = Vec::with_capacity(params.frames);
    for (f, (img, ft)) in rendered.into_iter().enumerate() {
        frames.index_axis_mut(Axis(0), f).assign(&img);
        frame_truth.push(ft);
    }
    let mask = crate::angio::vessel_mask(p, &proj);
    let branches = truth_branches(p, &lay);
    let arrivals = branches
        .iter()
        .map(|b| {
            let first = b.samples.first();
            let last = b.samples.last();
            let at = |s: Option<&crate::angio::CenterlineSample>, extra: f64| {
                s.filter(|x| x.contrast > 0.0)
                    .map(|x| r4(params.arrival_ms(b.path_start_mm + x.arc_mm, extra)))
            };
            let start_extra = if b.samples.first().is_some_and(|s| s.contrast < 1.0) {
                b.extra_delay_ms
            } else {
                0.0
            };
            BranchArrival {
                branch: b.id,
                arrival_start_ms: at(first, start_extra),
                arrival_end_ms: at(last, b.extra_delay_ms),
                peak_contrast: last.map_or(0.0, |x| x.contrast),
            }
        })
        .collect();
    // Onset to 10 % of peak, by bisection on the rising limb.
    let (mut lo, mut hi) = (0.0, params.time_to_peak_ms);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if params.bolus(mid) < 0.1 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let geometry = AngioTruth {
        schema: crate::TRUTH_SCHEMA.into(),
        notice: vesselkit_core::RESEARCH_NOTICE.into(),
        kind: "cine".into(),
        seed,
        params: p.clone(),
        rows: p.rows,
        cols: p.cols,
        mm_per_px: p.mm_per_px,
        imager_pixel_spacing_mm: r4(p.mm_per_px * p.sid_mm / p.sod_mm),
        sid_mm: p.sid_mm,
        sod_mm: p.sod_mm,
        root: 0,
        branches,
        lesions: truth_lesions(p, &lay),
        mask_pixels: mask.iter().filter(|&&m| m).count(),
        image_fnv1a: fnv1a_f32(frames.iter()),
        mask_fnv1a: mask_hash(&mask),
    };
    Ok(CinePhantom {
        frames,
        mask,
        truth: CineTruth {
            geometry,
            params: params.clone(),
            frame_time_ms: params.frame_time_ms,
            frames: frame_truth,
            arrivals,
            onset_to_10pct_ms: r4(hi),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vesselkit_core::LesionType;

    fn small() -> CineParams {
        CineParams {
            angio: AngioParams {
                rows: 160,
                cols: 160,
                mm_per_px: 0.45,
                max_branches: 30,
                supersample: 1,
                ..Default::default()
            },
            frames: 12,
            frame_time_ms: 160.0,
            ..Default::default()
        }
    }

    #[test]
    fn bolus_peaks_at_time_to_peak() {
        let p = CineParams::default();
        assert_eq!(p.bolus(0.0), 0.0);
        assert!((p.bolus(p.time_to_peak_ms) - 1.0).abs() < 1e-12);
        assert!(p.bolus(300.0) < 1.0 && p.bolus(900.0) < 1.0);
    }

    #[test]
    fn arrivals_follow_path_and_lesions() {
        let p = small();
        let c = generate_cine(&p, 5).unwrap();
        let t = &c.truth;
        assert_eq!(c.frames.dim(), (12, 160, 160));
        assert!((t.frames[3].time_ms - 480.0).abs() < 1e-9);
        for l in &t.geometry.lesions {
            let b = &t.geometry.branches[l.branch];
            let a = &t.arrivals[l.branch];
            match l.lesion_type {
                LesionType::Occlusion => assert!(a.arrival_end_ms.is_none()),
                LesionType::Subtotal => {
                    // Delayed beyond what path length alone predicts, and fainter.
                    let plain = p.arrival_ms(b.path_start_mm + b.length_mm, 0.0);
                    assert!(a.arrival_end_ms.unwrap() > plain + 300.0);
                    assert!(a.peak_contrast < 0.6);
                }
                _ => {
                    let plain = p.arrival_ms(b.path_start_mm + b.length_mm, 0.0);
                    assert!((a.arrival_end_ms.unwrap() - plain).abs() < 1e-3);
                }
            }
        }
        // Children fill after parents.
        for b in &t.geometry.branches {
            if let (Some(pa), Some(s)) = (b.parent, t.arrivals[b.id].arrival_start_ms) {
                assert!(s >= t.arrivals[pa].arrival_start_ms.unwrap() - 1e-9);
            }
        }
    }

    #[test]
    fn trunk_darkens_when_the_bolus_arrives() {
        let p = small();
        let c = generate_cine(&p, 9).unwrap();
        let t = &c.truth.geometry;
        let trunk = &t.branches[0];
        let mid = trunk.samples[trunk.samples.len() / 2];
        // Average a 3x3 patch at the trunk centre, following the vessel motion.
        let at = |f: usize| {
            let off = c.truth.frames[f].vessel_offset_px;
            let r = (mid.point.row + off[0]).round() as usize;
            let col = (mid.point.col + off[1]).round() as usize;
            let mut s = 0.0;
            for dr in 0..3 {
                for dc in 0..3 {
                    s += c.frames[[f, r + dr - 1, col + dc - 1]];
                }
            }
            s / 9.0
        };
        // Frame 0 precedes injection arrival; at ~peak the trunk is much darker.
        let peak_t = p.injection_ms + (trunk.path_start_mm + mid.arc_mm) / p.velocity_mm_per_ms + p.time_to_peak_ms;
        let pf = ((peak_t / p.frame_time_ms).round() as usize).min(p.frames - 1);
        assert!(at(pf) < 0.8 * at(0), "peak {} vs before {}", at(pf), at(0));
    }
}
