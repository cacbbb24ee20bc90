//! Test-only pipeline that answers with the truth (looked up by image hash): the runner must
//! then report perfect scores, and the null pipeline must report nothing.

use crate::runner::*;
use ndarray::{Array2, ArrayView2};
use vesselkit_core::{Cine, Frame};
use vesselkit_phantom::{AngioTruth, fnv1a_f32, generate_angio, generate_cine, generate_oct_frame, generate_pullback};

pub(crate) struct TruthPipeline {
    angio: Vec<(String, AngioTruth, Array2<bool>, [f64; 2])>,
    oct: Vec<(String, Array2<bool>, u32)>,
}

fn lesions(t: &AngioTruth, off: [f64; 2]) -> Vec<DetectedLesion> {
    t.lesions
        .iter()
        .map(|l| DetectedLesion {
            site: vesselkit_core::Point::new(l.site.row + off[0], l.site.col + off[1]),
            lesion_type: l.lesion_type,
            mld_mm: l.mld_mm,
            diameter_stenosis_pct: l.diameter_stenosis_pct,
            priority: Some(l.priority),
        })
        .collect()
}

impl TruthPipeline {
    /// Pre-generate what the runner will generate for `cfg` (same seeds).
    pub(crate) fn new(cfg: &EvalConfig) -> Self {
        let mut angio = Vec::new();
        for i in 0..cfg.cases {
            let ph = generate_angio(&cfg.angio, cfg.seed + i as u64).unwrap();
            angio.push((fnv1a_f32(ph.image.iter()), ph.truth, ph.mask, [0.0, 0.0]));
        }
        for i in 0..cfg.cine_cases {
            let ph = generate_cine(&cfg.cine, cfg.seed + 10_000 + i as u64).unwrap();
            let n = ph.truth.frames.len() as f64;
            let off = ph.truth.frames.iter().fold([0.0, 0.0], |a, f| {
                [a[0] + f.vessel_offset_px[0] / n, a[1] + f.vessel_offset_px[1] / n]
            });
            angio.push((fnv1a_f32(ph.frames.iter()), ph.truth.geometry, ph.mask, off));
        }
        let mut oct = Vec::new();
        for i in 0..cfg.oct_cases {
            let mut p = cfg.oct.clone();
            p.channels = (i % 4) as u8 + 1;
            if p.channels > 1 {
                p.lumen_diameter_mm = p.lumen_diameter_mm.max(4.0 * p.catheter_radius_mm + 0.8);
            }
            let ph = generate_oct_frame(&p, cfg.seed + 20_000 + i as u64).unwrap();
            oct.push((
                fnv1a_f32(ph.cartesian.iter()),
                ph.lumen_mask,
                u32::from(ph.truth.frame.channels),
            ));
        }
        for i in 0..cfg.pullback_cases {
            let pb = generate_pullback(&cfg.pullback, cfg.seed + 30_000 + i as u64).unwrap();
            for (f, t) in pb.truth.frames.iter().enumerate() {
                let m = pb.lumen_masks.index_axis(ndarray::Axis(0), f).to_owned();
                let img = pb.cartesian.index_axis(ndarray::Axis(0), f);
                oct.push((fnv1a_f32(img.iter()), m, u32::from(t.channels)));
            }
        }
        Self { angio, oct }
    }
}

impl AngioPipeline for TruthPipeline {
    fn name(&self) -> String {
        "truth".into()
    }
    fn analyze(&self, frame: &Frame) -> Result<AngioOutput, String> {
        let h = fnv1a_f32(frame.pixels.iter());
        let (_, t, m, off) = self.angio.iter().find(|x| x.0 == h).ok_or("unknown frame")?;
        Ok(AngioOutput {
            mask: Some(m.clone()),
            tree: Some(t.vessel_tree()),
            lesions: Some(lesions(t, *off)),
        })
    }
    fn analyze_cine(&self, cine: &Cine) -> Result<AngioOutput, String> {
        let h = fnv1a_f32(cine.frames.iter());
        let (_, t, _, off) = self.angio.iter().find(|x| x.0 == h).ok_or("unknown cine")?;
        Ok(AngioOutput {
            mask: None,
            tree: None,
            lesions: Some(lesions(t, *off)),
        })
    }
}

impl OctPipeline for TruthPipeline {
    fn lumen_mask(&self, frame: ArrayView2<f32>, _mm_per_px: f64) -> Result<(Array2<bool>, u32), String> {
        let h = fnv1a_f32(frame.iter());
        let (_, m, c) = self.oct.iter().find(|x| x.0 == h).ok_or("unknown OCT frame")?;
        Ok((m.clone(), *c))
    }
}

fn tiny() -> EvalConfig {
    let mut cfg = EvalConfig {
        cases: 2,
        cine_cases: 1,
        oct_cases: 4,
        pullback_cases: 1,
        ..Default::default()
    };
    cfg.angio.rows = 192;
    cfg.angio.cols = 192;
    cfg.angio.mm_per_px = 0.4;
    cfg.angio.max_branches = 30;
    cfg.angio.supersample = 1;
    cfg.cine.angio = cfg.angio.clone();
    cfg.cine.frames = 6;
    cfg.cine.frame_time_ms = 250.0;
    cfg.oct.alines = 128;
    cfg.oct.samples = 160;
    cfg.oct.cart_size = 128;
    cfg.pullback.oct = cfg.oct.clone();
    cfg.pullback.frames = 9;
    cfg.pullback.frame_spacing_mm = 0.5;
    cfg
}

#[test]
fn truth_pipeline_scores_perfectly() {
    let cfg = tiny();
    let tp = TruthPipeline::new(&cfg);
    let r = run_phantoms(&tp, &tp, &cfg).unwrap();
    let a = r.angio.as_ref().unwrap();
    assert_eq!(a.failures, 0, "{:?}", a.first_error);
    assert_eq!(a.dice.unwrap().mean, 1.0);
    assert_eq!(a.cl_dice.unwrap().mean, 1.0);
    // Measured stations at junctions may pair with a neighbouring branch's station; elsewhere
    // the truth pairs with itself.
    for b in &a.diameter {
        if let Some(e) = b.error {
            eprintln!("{b:?}");
            assert!(e.mean.abs() < 0.01 && e.sd < 0.1, "{b:?}");
        }
    }
    assert_eq!(a.centerline_coverage, Some(1.0));
    let l = &a.lesions;
    assert_eq!(l.true_lesions, 10);
    assert_eq!(
        (l.sensitivity, l.ppv, l.type_accuracy),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert_eq!(l.mld_error_mm.unwrap().mae, 0.0);
    assert_eq!(l.kendall_tau.unwrap().mean, 1.0);
    assert_eq!(l.rec9_true_types, Some((2, 2)));
    let c = r.cine.as_ref().unwrap();
    assert_eq!(c.lesions.sensitivity, Some(1.0));
    assert_eq!(c.dice, None);
    let o = r.oct.as_ref().unwrap();
    assert_eq!(o.failures, 0, "{:?}", o.first_error);
    assert_eq!(o.lumen_dice.unwrap().mean, 1.0);
    assert_eq!(o.channel_accuracy, Some(1.0));
    assert_eq!(o.web_channel_accuracy, Some(1.0));
    // Mask area vs geometric area: only pixelisation error.
    assert!(o.area_error_mm2.unwrap().mae < 0.05, "{:?}", o.area_error_mm2);
    // The truth mask reproduces the truth area to pixelisation, so well inside 1 %, web frames too.
    assert!(o.area_error_pct.unwrap().mae < 1.0, "{:?}", o.area_error_pct);
    assert!(o.web_area_error_pct.unwrap().n > 0);
    assert!(o.web_area_error_pct.unwrap().mae < 1.0, "{:?}", o.web_area_error_pct);
    assert!(text_has_relative_rows(&r.to_string()));
    assert_eq!(o.pullback_mla_position_error_mm.unwrap().mean, 0.0);
    let text = r.to_string();
    assert!(text.contains("vessel Dice") && text.contains("1.000"), "{text}");
    let json = r.to_json().unwrap();
    assert!(json.contains("\"sensitivity\": 1.0"), "{json}");
}

fn text_has_relative_rows(text: &str) -> bool {
    text.contains("lumen area error, relative") && text.contains("frames of 2+ channels")
}

#[test]
fn null_pipeline_reports_not_available() {
    let cfg = tiny();
    let r = run_phantoms(&NullPipeline, &NullPipeline, &cfg).unwrap();
    let a = r.angio.as_ref().unwrap();
    assert_eq!(a.dice, None);
    assert!(a.diameter.is_empty());
    assert_eq!(a.lesions.cases, 0);
    let o = r.oct.as_ref().unwrap();
    assert_eq!(o.lumen_dice, None);
    assert_eq!(o.failures, 4 + 1);
    let text = r.to_string();
    assert!(
        text.contains("vessel Dice                        not available"),
        "{text}"
    );
    assert!(
        text.contains("lumen Dice                         not available"),
        "{text}"
    );
}

#[test]
fn real_cases_are_scored_per_split() {
    struct Threshold;
    impl AngioPipeline for Threshold {
        fn analyze(&self, frame: &Frame) -> Result<AngioOutput, String> {
            Ok(AngioOutput {
                mask: Some(frame.pixels.mapv(|v| v < 0.5)),
                ..Default::default()
            })
        }
    }
    let img = Array2::from_shape_fn((20, 20), |(r, _)| if (8..12).contains(&r) { 0.0 } else { 1.0 });
    let gt = img.mapv(|v| v < 0.5);
    let mut half = gt.clone();
    for r in 10..12 {
        for c in 0..20 {
            half[[r, c]] = false;
        }
    }
    let cases = vec![
        RealAngioCase {
            name: "a".into(),
            split: "train".into(),
            image: img.clone(),
            truth: gt.clone(),
            mm_per_px: None,
        },
        RealAngioCase {
            name: "b".into(),
            split: "test".into(),
            image: img.clone(),
            truth: half,
            mm_per_px: None,
        },
    ];
    let r = run_real(&Threshold, &NullPipeline, &cases, &[]);
    assert_eq!(r.angio.len(), 2);
    assert_eq!(r.angio[0].dice.unwrap().mean, 1.0);
    // 80 predicted, 40 true, 40 overlap: 2*40/120.
    assert!((r.angio[1].dice.unwrap().mean - 2.0 / 3.0).abs() < 1e-12);
    assert!(r.oct.is_none());
}
