//! Lumen, metrics, guidewire, channels and pullback on synthetic frames with exact truth.

use ndarray::{Array3, Axis};
use std::f64::consts::{PI, TAU};
use vesselkit_oct::synthetic::{SeptumSpec, SyntheticSpec};
use vesselkit_oct::{
    CartesianGrid, OctGeometry, OctOptions, PullbackOptions, dice, oct_lumen, oct_pullback, polar_to_cartesian,
};

const SIZE: usize = 400;
const MM: f64 = 0.01;

fn opts() -> OctOptions {
    OctOptions {
        mm_per_px: MM,
        ..Default::default()
    }
}

/// Dice and relative area error of the detected outer contour against the truth outline.
fn score(spec: &SyntheticSpec) -> (f64, f64, vesselkit_oct::OctFrameResult) {
    let (img, truth) = spec.cartesian(SIZE, MM);
    let res = oct_lumen(img.view(), &opts()).expect("lumen");
    let mask = res.outline_mask(SIZE, SIZE);
    let d = dice(&mask, &truth);
    let area_err = (res.metrics.outline_area_mm2 - spec.lumen_area_mm2()).abs() / spec.lumen_area_mm2();
    if spec.septa.is_empty() {
        // Without septa the lumen is the outline.
        assert_eq!(res.metrics.area_mm2, res.metrics.outline_area_mm2);
        assert_eq!(res.lumen_mask(SIZE, SIZE), mask);
    }
    (d, area_err, res)
}

#[test]
fn round_lumen() {
    let spec = SyntheticSpec::default();
    let (d, e, res) = score(&spec);
    assert!(d >= 0.98, "dice {d}");
    assert!(e <= 0.02, "area error {e}");
    assert_eq!(res.n_channels(), 1);
    assert!(res.septa.is_empty());
    assert!(res.guidewire_shadow.is_none());
    // The catheter search starts just outside the 0.45 mm sheath.
    assert!(
        res.catheter_radius_mm > 0.44 && res.catheter_radius_mm < 0.6,
        "{}",
        res.catheter_radius_mm
    );
    // A circle of 1.5 mm radius: diameters 3 mm, eccentricity ~0.
    let m = &res.metrics;
    assert!((m.min_diameter_mm - 3.0).abs() < 0.06, "{m:?}");
    assert!((m.max_diameter_mm - 3.0).abs() < 0.06, "{m:?}");
    assert!(m.eccentricity < 0.03, "{m:?}");
}

#[test]
fn eccentric_and_irregular_lumens() {
    let shapes = [
        ((0.3, -0.2), 1.3, vec![(2, 0.25, 0.3)]),
        ((-0.4, 0.1), 1.4, vec![(3, 0.12, 1.0), (5, 0.04, 0.2)]),
        ((0.0, 0.5), 1.2, vec![(2, 0.15, 0.0), (4, 0.06, 2.0)]),
        ((0.2, 0.2), 0.9, vec![(1, 0.1, 0.5)]),
    ];
    for (i, (off, r, h)) in shapes.into_iter().enumerate() {
        let spec = SyntheticSpec {
            lumen_offset_mm: off,
            lumen_radius_mm: r,
            harmonics: h,
            speckle: 0.7,
            seed: 10 + i as u64,
            ..Default::default()
        };
        let (d, e, _) = score(&spec);
        assert!(d >= 0.98, "shape {i}: dice {d}");
        assert!(e <= 0.02, "shape {i}: area error {e}");
    }
}

#[test]
fn ellipse_diameters_and_eccentricity() {
    // r(phi) = R (1 + a cos 2 phi) is close to an ellipse with semi-axes R(1 +- a).
    let spec = SyntheticSpec {
        lumen_radius_mm: 1.4,
        harmonics: vec![(2, 0.2, 0.0)],
        ..Default::default()
    };
    let (_, _, res) = score(&spec);
    let m = &res.metrics;
    assert!((m.max_diameter_mm - 2.0 * 1.4 * 1.2).abs() < 0.08, "{m:?}");
    assert!((m.min_diameter_mm - 2.0 * 1.4 * 0.8).abs() < 0.08, "{m:?}");
    let ecc = (1.2 - 0.8) / 1.2;
    assert!((m.eccentricity - ecc).abs() < 0.03, "{m:?}");
}

#[test]
fn guidewire_shadow_is_found_and_bridged() {
    let gw = 1.0; // radians
    let spec = SyntheticSpec {
        lumen_radius_mm: 1.4,
        harmonics: vec![(2, 0.1, 0.4)],
        guidewire_angle: Some(gw),
        seed: 7,
        ..Default::default()
    };
    let (d, e, res) = score(&spec);
    assert!(d >= 0.98, "dice {d}");
    assert!(e <= 0.02, "area error {e}");
    let (s, end) = res.guidewire_shadow.expect("guidewire found");
    assert!(s < gw && gw < end, "shadow ({s}, {end}) does not cover {gw}");
    assert!(end - s < 0.6, "shadow too wide: ({s}, {end})");
    // The points inside the shadow are flagged as interpolated.
    let n = res.interpolated.len();
    let idx = (gw / TAU * n as f64).round() as usize;
    assert!(res.interpolated[idx]);
    assert!(res.interpolated.iter().filter(|&&f| f).count() < n / 8);
    assert_eq!(res.n_channels(), 1, "the wire must not be read as a septum");
}

#[test]
fn polar_input_with_geometry() {
    let g = OctGeometry {
        a_line_spacing_mm: 0.0134,
        z_offset_px: 4.0,
        refractive_index: 1.34,
        refractive_index_applied: false,
    };
    let spec = SyntheticSpec {
        lumen_offset_mm: (0.2, -0.3),
        lumen_radius_mm: 1.3,
        harmonics: vec![(3, 0.08, 0.0)],
        guidewire_angle: Some(4.0),
        ..Default::default()
    };
    let polar = spec.polar(504, 300, &g);
    let o = OctOptions {
        polar: Some(g),
        ..Default::default()
    };
    let res = oct_lumen(polar.view(), &o).unwrap();
    let grid = CartesianGrid::fitting(&g, 300).unwrap();
    assert_eq!(res.grid, grid);
    assert!((grid.mm_per_px - 0.01).abs() < 1e-12);
    let truth = ndarray::Array2::from_shape_fn((grid.rows, grid.cols), |(r, c)| {
        spec.inside_lumen(
            (r as f64 - grid.center.row) * grid.mm_per_px,
            (c as f64 - grid.center.col) * grid.mm_per_px,
        )
    });
    let d = dice(&res.lumen_mask(grid.rows, grid.cols), &truth);
    let e = (res.metrics.area_mm2 - spec.lumen_area_mm2()).abs() / spec.lumen_area_mm2();
    assert!(d >= 0.98, "dice {d}");
    assert!(e <= 0.02, "area error {e}");
    assert!(res.guidewire_shadow.is_some());
    // The cartesian view of the same data is usable for overlays.
    let cart = polar_to_cartesian(polar.view(), &g, &grid).unwrap();
    assert_eq!(cart.dim(), (grid.rows, grid.cols));
}

fn web_specs() -> Vec<(SyntheticSpec, usize)> {
    let mut v = Vec::new();
    for i in 0..24u64 {
        let t = i as f64 * 0.7;
        let septa = match i % 4 {
            // one septum: 2 channels
            0 => vec![SeptumSpec {
                normal_angle: t,
                offset_mm: 0.75,
                thickness_mm: 0.08,
            }],
            // two parallel septa: 3 channels
            1 => vec![
                SeptumSpec {
                    normal_angle: t,
                    offset_mm: 0.7,
                    thickness_mm: 0.07,
                },
                SeptumSpec {
                    normal_angle: t,
                    offset_mm: -0.7,
                    thickness_mm: 0.09,
                },
            ],
            // two parallel septa on one side: 3 channels
            2 => vec![
                SeptumSpec {
                    normal_angle: t,
                    offset_mm: 0.6,
                    thickness_mm: 0.08,
                },
                SeptumSpec {
                    normal_angle: t,
                    offset_mm: 1.05,
                    thickness_mm: 0.08,
                },
            ],
            // two perpendicular septa: 4 channels (the catheter joins what touches it)
            _ => vec![
                SeptumSpec {
                    normal_angle: t,
                    offset_mm: 0.7,
                    thickness_mm: 0.1,
                },
                SeptumSpec {
                    normal_angle: t + PI / 2.0,
                    offset_mm: 0.7,
                    thickness_mm: 0.1,
                },
            ],
        };
        let spec = SyntheticSpec {
            lumen_radius_mm: 1.6,
            harmonics: vec![(2, 0.05, t)],
            septa,
            seed: 100 + i,
            ..Default::default()
        };
        let n = spec.true_channels(0.02);
        v.push((spec, n));
    }
    v
}

#[test]
fn channels_are_counted_in_web_frames() {
    let specs = web_specs();
    let mut correct = 0;
    let mut counts = Vec::new();
    let mut lumen_errs = Vec::new();
    for (spec, truth) in &specs {
        assert!(*truth >= 2, "every web spec splits the lumen");
        let (d, _, res) = score(spec);
        assert!(d >= 0.97, "outer contour must pass over septa: dice {d}");
        // The lumen area leaves the septa out.
        let want = spec.channel_area_mm2();
        lumen_errs.push((res.metrics.area_mm2 - want) / want);
        counts.push((res.n_channels(), *truth));
        if res.n_channels() == *truth {
            correct += 1;
        }
    }
    let frac = correct as f64 / specs.len() as f64;
    assert!(
        frac >= 0.95,
        "channel count correct in {correct}/{} frames: {counts:?}",
        specs.len()
    );
    let mean_abs = lumen_errs.iter().map(|e| e.abs()).sum::<f64>() / lumen_errs.len() as f64;
    assert!(mean_abs <= 0.02, "mean |lumen area error| {mean_abs}: {lumen_errs:.3?}");
}

#[test]
fn septum_position_and_thickness() {
    let spec = SyntheticSpec {
        lumen_radius_mm: 1.6,
        septa: vec![SeptumSpec {
            normal_angle: 0.0,
            offset_mm: 0.8,
            thickness_mm: 0.08,
        }],
        speckle: 0.3,
        ..Default::default()
    };
    let (_, _, res) = score(&spec);
    assert_eq!(res.n_channels(), 2);
    assert_eq!(res.septa.len(), 1, "{:?}", res.septa);
    let s = &res.septa[0];
    // normal angle 0 = along +col: the septum is the vertical band at col offset +0.8 mm.
    let c = (SIZE as f64 - 1.0) / 2.0;
    assert!(((s.position.col - c) * MM - 0.8).abs() < 0.05, "{s:?}");
    assert!((s.thickness_mm - 0.08).abs() < 0.04, "{s:?}");
    // Chord length at offset 0.8 in a 1.6 mm circle: 2 sqrt(1.6² - 0.8²) = 2.77 mm.
    assert!((s.length_mm - 2.77).abs() < 0.3, "{s:?}");
    // The centre line is the vertical chord at col offset 0.8 mm.
    for p in [s.start, s.end] {
        assert!(((p.col - c) * MM - 0.8).abs() < 0.03, "{s:?}");
    }
    // Lumen = outline less the band: 0.08 mm x 2.77 mm = 0.22 mm² (4.4 % of 8.04 mm²).
    let want = spec.channel_area_mm2();
    assert!((spec.lumen_area_mm2() - want - 0.08 * 2.77).abs() < 0.01, "{want}");
    assert!(
        (res.metrics.area_mm2 - want).abs() / want < 0.015,
        "{} vs {want}",
        res.metrics.area_mm2
    );
    let m = res.lumen_mask(SIZE, SIZE);
    let (row_mid, col_band) = (c.round() as usize, (c + 0.8 / MM).round() as usize);
    assert!(!m[[row_mid, col_band]], "the septum is not lumen");
    assert!(
        m[[row_mid, col_band - 8]] && m[[row_mid, col_band + 8]],
        "channels on both sides are"
    );
}

#[test]
fn pullback_profile_mla_references_and_webs() {
    // 60 frames, 0.25 mm apart: radius 1.5 mm with a focal narrowing to 0.8 mm at frame 30
    // and webs (2 channels) at frames 10 and 11.
    let n = 60usize;
    let size = 256usize;
    let mm = 0.0125;
    let radius = |i: usize| {
        let x = (i as f64 - 30.0) / 4.0;
        1.5 - 0.7 * (-x * x).exp() + 0.02 * (i as f64 * 0.3).sin()
    };
    let mut frames = Array3::<f32>::zeros((n, size, size));
    let mut areas = Vec::new();
    for i in 0..n {
        let spec = SyntheticSpec {
            lumen_radius_mm: radius(i),
            septa: if i == 10 || i == 11 {
                vec![SeptumSpec {
                    normal_angle: 0.4,
                    offset_mm: 0.75,
                    thickness_mm: 0.1,
                }]
            } else {
                vec![]
            },
            seed: i as u64,
            ..Default::default()
        };
        areas.push(spec.lumen_area_mm2());
        let (img, _) = spec.cartesian(size, mm);
        frames.index_axis_mut(Axis(0), i).assign(&img);
    }
    let o = PullbackOptions {
        frame_spacing_mm: 0.25,
        frame: OctOptions {
            mm_per_px: mm,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = oct_pullback(frames.view(), &o).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.mla_frame, 30);
    assert!(
        (r.mla_mm2 - areas[30]).abs() / areas[30] < 0.03,
        "{} vs {}",
        r.mla_mm2,
        areas[30]
    );
    // References: the largest true areas within 10 mm (40 frames) on each side.
    let best = |range: std::ops::Range<usize>| range.max_by(|&a, &b| areas[a].total_cmp(&areas[b])).unwrap();
    let (p, d) = (best(0..30), best(31..60));
    let close =
        |got: Option<usize>, want: usize| got.is_some_and(|g| (areas[g] - areas[want]).abs() / areas[want] < 0.02);
    assert!(
        close(r.proximal_reference_frame, p),
        "{:?} vs {p}",
        r.proximal_reference_frame
    );
    assert!(
        close(r.distal_reference_frame, d),
        "{:?} vs {d}",
        r.distal_reference_frame
    );
    let ref_a = 0.5 * (areas[p] + areas[d]);
    let as_true = (ref_a - areas[30]) / ref_a * 100.0;
    assert!(
        (r.area_stenosis_pct - as_true).abs() < 2.0,
        "{} vs {as_true}",
        r.area_stenosis_pct
    );
    assert!((r.reference_diameter_mm - 2.0 * (ref_a / PI).sqrt()).abs() < 0.05);
    assert!(
        (r.reference_mean_diameter_mm - 3.0).abs() < 0.15,
        "{}",
        r.reference_mean_diameter_mm
    );
    // Lesion: frames whose true area is below 0.81 of the reference.
    let lesion: Vec<usize> = (0..n).filter(|&i| areas[i] < 0.81 * ref_a).collect();
    let want_len = lesion.len() as f64 * 0.25;
    assert!(
        (r.lesion_length_mm - want_len).abs() <= 0.5,
        "{} vs {want_len}",
        r.lesion_length_mm
    );
    assert_eq!(r.web_candidate_frames, vec![10, 11]);
    assert_eq!(r.profile.len(), n);
}
