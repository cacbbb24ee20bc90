//! QCA per branch and per segment (on top of `vesselkit_core::qca`) and tortuosity of a
//! centerline (Bullitt 2003 DM / ICM / SOAM and bend counting).

use crate::error::{AngioError, Result, check_mm_per_px};
use vesselkit_core::{Branch, Point, Polyline, Qca, QcaOptions, Tortuosity, qca};

/// QCA of a whole branch from its reliable, measured samples.
pub fn qca_branch(branch: &Branch, opts: &QcaOptions) -> Result<Qca> {
    qca_segment(branch, f64::NEG_INFINITY, f64::INFINITY, opts)
}

/// QCA of the part of a branch between `start_mm` and `end_mm` of arc (inclusive), using only
/// reliable samples with a finite diameter. `mld_index` refers to `branch.samples`.
pub fn qca_segment(branch: &Branch, start_mm: f64, end_mm: f64, opts: &QcaOptions) -> Result<Qca> {
    if start_mm.is_nan() || end_mm.is_nan() || start_mm >= end_mm {
        return Err(AngioError::invalid(
            "segment",
            format!("need start_mm < end_mm, got {start_mm} .. {end_mm}"),
        ));
    }
    let idx: Vec<usize> = (0..branch.samples.len())
        .filter(|&i| {
            let s = &branch.samples[i];
            s.reliable && s.diameter_mm.is_finite() && s.arc_mm >= start_mm && s.arc_mm <= end_mm
        })
        .collect();
    if idx.len() < 3 {
        return Err(AngioError::not_found(
            "reliable diameters",
            format!(
                "branch {} has {} reliable samples in the segment; QCA needs 3",
                branch.id,
                idx.len()
            ),
        ));
    }
    let arc: Vec<f64> = idx.iter().map(|&i| branch.samples[i].arc_mm).collect();
    let d: Vec<f64> = idx.iter().map(|&i| branch.samples[i].diameter_mm).collect();
    let l: Vec<f64> = idx.iter().map(|&i| branch.samples[i].left_mm).collect();
    let r: Vec<f64> = idx.iter().map(|&i| branch.samples[i].right_mm).collect();
    let mut q = qca(&arc, &d, Some((&l, &r)), opts)?;
    q.mld_index = idx[q.mld_index];
    Ok(q)
}

/// Options of [`tortuosity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TortuosityOptions {
    /// The centerline is resampled at this arc step before measuring (metrics depend on it).
    pub step_mm: f64,
    /// A bend counts when its total direction change reaches this many degrees (45 in
    /// coronary practice).
    pub bend_threshold_deg: f64,
    /// Turning angles below this (degrees per step) neither start nor break a bend: noise floor.
    pub noise_deg: f64,
}

impl Default for TortuosityOptions {
    fn default() -> Self {
        Self {
            step_mm: 0.5,
            bend_threshold_deg: 45.0,
            noise_deg: 0.5,
        }
    }
}

/// Tortuosity of a centerline given in px with `mm_per_px`. Inflections are sign changes of the
/// turning direction; a bend is a run of same-direction turning, its angle the run's total.
pub fn tortuosity(points: &[Point], mm_per_px: f64, opts: &TortuosityOptions) -> Result<Tortuosity> {
    check_mm_per_px(mm_per_px)?;
    if !(opts.step_mm.is_finite() && opts.step_mm > 0.0) {
        return Err(AngioError::invalid(
            "step_mm",
            format!("must be > 0, got {}", opts.step_mm),
        ));
    }
    if !(opts.bend_threshold_deg.is_finite() && opts.bend_threshold_deg > 0.0) {
        return Err(AngioError::invalid(
            "bend_threshold_deg",
            format!("must be > 0, got {}", opts.bend_threshold_deg),
        ));
    }
    if !(opts.noise_deg.is_finite() && opts.noise_deg >= 0.0) {
        return Err(AngioError::invalid(
            "noise_deg",
            format!("must be >= 0, got {}", opts.noise_deg),
        ));
    }
    let line = Polyline::new(points.to_vec());
    let len_px = line.length_px();
    if points.len() < 2 || !(len_px > 0.0) {
        return Err(AngioError::invalid("points", "need a centerline of positive length"));
    }
    let r = line.resample(opts.step_mm / mm_per_px);
    let p = &r.points;
    let chord = p[0].dist(p[p.len() - 1]);
    let len_mm = len_px * mm_per_px;
    let dm = if chord > 0.0 { len_px / chord } else { f64::INFINITY };
    let mut total = 0.0;
    let noise = opts.noise_deg.to_radians();
    let mut runs: Vec<f64> = Vec::new();
    let mut cur = 0.0f64;
    let mut cur_sign = 0i8;
    for w in p.windows(3) {
        let (a, b) = (
            (w[1].row - w[0].row, w[1].col - w[0].col),
            (w[2].row - w[1].row, w[2].col - w[1].col),
        );
        if a.0.hypot(a.1) < 1e-12 || b.0.hypot(b.1) < 1e-12 {
            continue;
        }
        let th = (a.0 * b.1 - a.1 * b.0).atan2(a.0 * b.0 + a.1 * b.1);
        total += th.abs();
        let s = if th > noise {
            1
        } else if th < -noise {
            -1
        } else {
            0
        };
        if s != 0 && cur_sign != 0 && s != cur_sign {
            runs.push(cur.abs());
            cur = 0.0;
        }
        if s != 0 {
            cur_sign = s;
        }
        cur += th;
    }
    if cur_sign != 0 {
        runs.push(cur.abs());
    }
    let inflections = runs.len().saturating_sub(1);
    let threshold = opts.bend_threshold_deg.to_radians();
    Ok(Tortuosity {
        dm,
        icm: (inflections as f64 + 1.0) * dm,
        soam_rad_per_mm: total / len_mm,
        bends: runs.iter().filter(|&&a| a >= threshold).count() as u32,
        max_bend_deg: runs.iter().copied().fold(0.0, f64::max).to_degrees(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;
    use vesselkit_core::ProfileSample;

    #[test]
    fn straight_line() {
        let pts: Vec<Point> = (0..50)
            .map(|i| Point::new(3.0 + 0.3 * i as f64, 2.0 + 0.4 * i as f64))
            .collect();
        let t = tortuosity(&pts, 0.2, &TortuosityOptions::default()).unwrap();
        assert!((t.dm - 1.0).abs() < 1e-9);
        assert!(t.soam_rad_per_mm.abs() < 1e-9);
        assert_eq!(t.bends, 0);
        assert!((t.icm - 1.0).abs() < 1e-9);
    }

    #[test]
    fn circular_arc_has_analytic_soam() {
        // Radius 50 px at 0.1 mm/px = 5 mm, 120 degrees of arc: SOAM = 1 / R = 0.2 rad/mm.
        let pts: Vec<Point> = (0..=2000)
            .map(|i| {
                let a = i as f64 / 2000.0 * 2.0 * PI / 3.0;
                Point::new(50.0 * a.sin(), 50.0 * a.cos())
            })
            .collect();
        let fine = TortuosityOptions {
            step_mm: 0.05,
            ..Default::default()
        };
        let t = tortuosity(&pts, 0.1, &fine).unwrap();
        // Chords miss half the first and last chord's turning: 0.5 % here.
        assert!((t.soam_rad_per_mm - 0.2).abs() < 0.2 * 0.01, "{}", t.soam_rad_per_mm);
        // DM = arc / chord = (2 pi / 3) R / (2 R sin(pi / 3)).
        let dm = (2.0 * PI / 3.0) / (2.0 * (PI / 3.0).sin());
        assert!((t.dm - dm).abs() < 1e-4, "{}", t.dm);
        assert_eq!(t.bends, 1);
        assert!((t.max_bend_deg - 120.0).abs() < 1.5, "{}", t.max_bend_deg);
    }

    #[test]
    fn sinusoid_bends() {
        // y = A sin(2 pi x / lambda), 3 periods: 6 bends of 2 atan(2 pi A / lambda) each.
        let (a, lambda) = (10.0, 80.0);
        let pts: Vec<Point> = (0..=24_000)
            .map(|i| {
                let x = i as f64 * 0.01;
                Point::new(a * (2.0 * PI * x / lambda).sin(), x)
            })
            .collect();
        let t = tortuosity(&pts, 0.1, &TortuosityOptions::default()).unwrap();
        let bend = 2.0 * (2.0 * PI * a / lambda).atan().to_degrees(); // 76.6 deg
        assert_eq!(t.bends, 6, "{t:?}");
        assert!((t.max_bend_deg - bend).abs() < 2.0, "{} vs {bend}", t.max_bend_deg);
        assert!((t.icm - 6.0 * t.dm).abs() < 1e-9, "{t:?}");
        // A higher threshold than the bend angle counts none.
        let strict = TortuosityOptions {
            bend_threshold_deg: 80.0,
            ..Default::default()
        };
        assert_eq!(tortuosity(&pts, 0.1, &strict).unwrap().bends, 0);
    }

    #[test]
    fn qca_of_a_branch_skips_unreliable_samples() {
        let samples: Vec<ProfileSample> = (0..=400)
            .map(|i| {
                let x = i as f64 * 0.05;
                let d = if (x - 10.0).abs() < 2.0 {
                    4.0 - 1.5 * (1.0 + (PI * (x - 10.0) / 2.0).cos())
                } else {
                    4.0
                };
                ProfileSample {
                    point: Point::new(0.0, i as f64),
                    arc_mm: x,
                    diameter_mm: if i == 30 { 0.1 } else { d },
                    left_mm: d / 2.0,
                    right_mm: d / 2.0,
                    channels: 1,
                    density_ratio: 1.0,
                    reliable: i != 30,
                }
            })
            .collect();
        let b = Branch {
            id: 0,
            parent: None,
            children: vec![],
            samples,
            length_mm: 20.0,
            distal_end: vesselkit_core::BranchEnd::Taper,
            tortuosity: Tortuosity::default(),
            arrival_ms: None,
            flow_grade: None,
        };
        let q = qca_branch(&b, &QcaOptions::default()).unwrap();
        assert!((q.mld_mm - 1.0).abs() < 1e-9);
        assert_eq!(q.mld_index, 200);
        assert!((q.diameter_stenosis_pct - 75.0).abs() < 1e-6);
        assert!((q.area_stenosis_pct - 93.75).abs() < 1e-6);
        let s = qca_segment(&b, 0.0, 8.0, &QcaOptions::default()).unwrap();
        assert!((s.mld_mm - 4.0).abs() < 1e-9);
        assert!(qca_segment(&b, 5.0, 5.0, &QcaOptions::default()).is_err());
    }
}
