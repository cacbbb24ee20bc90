//! `vesselkit eval`: the vesselkit pipeline judged by the evaluation harness on seeded phantoms
//! and, with `--real`, on the real images in `../shared/data`.

use crate::CliError;
use ndarray::{Array2, ArrayView2, Axis};
use std::path::Path;
use vesselkit_core::{Cine, Frame};
use vesselkit_eval::{AngioOutput, AngioPipeline, DetectedLesion, OctPipeline, RealAngioCase, RealOctCase};

/// The full vesselkit chain, seen by the harness only through pixels and calibration.
pub struct Vesselkit {
    pub options: vesselkit::Options,
    /// Segmentation preset for real coronary frames whose scale is unknown.
    pub real_angio: vesselkit::angio::AngioOptions,
    /// Phantom frames go through 12-bit lossy JPEG at this quality before analysis.
    pub jpeg_quality: Option<u8>,
}

impl Default for Vesselkit {
    fn default() -> Self {
        let real_angio = vesselkit::angio::AngioOptions {
            segment: vesselkit::angio::SegmentOptions::dca1(),
            ..Default::default()
        };
        Self {
            options: vesselkit::Options::default(),
            real_angio,
            jpeg_quality: None,
        }
    }
}

fn output(a: vesselkit::Analysis) -> AngioOutput {
    let lesions = a
        .report
        .lesions
        .iter()
        .map(|l| DetectedLesion {
            site: vesselkit_core::Point::new(l.site.row, l.site.col),
            lesion_type: l.lesion_type,
            mld_mm: l.mld_mm,
            diameter_stenosis_pct: l.diameter_stenosis_pct,
            priority: Some(l.priority),
        })
        .collect();
    AngioOutput {
        mask: Some(a.angio.mask),
        tree: Some(a.angio.tree),
        lesions: Some(lesions),
    }
}

impl AngioPipeline for Vesselkit {
    fn name(&self) -> String {
        match self.jpeg_quality {
            Some(q) => format!(
                "vesselkit {} (phantom frames through 12-bit lossy JPEG, quality {q})",
                env!("CARGO_PKG_VERSION")
            ),
            None => format!("vesselkit {}", env!("CARGO_PKG_VERSION")),
        }
    }
    fn analyze(&self, frame: &Frame) -> Result<AngioOutput, String> {
        let archived;
        let frame = match self.jpeg_quality.filter(|_| frame.calibration.is_calibrated()) {
            Some(q) => {
                let px = vesselkit_io::jpeg12_round_trip(frame.view(), q).map_err(|e| e.to_string())?;
                archived = Frame::new(px, frame.calibration.clone()).map_err(|e| e.to_string())?;
                &archived
            }
            None => frame,
        };
        let opts = if frame.calibration.is_calibrated() {
            self.options.clone()
        } else {
            vesselkit::Options {
                angio: self.real_angio.clone(),
                ..self.options.clone()
            }
        };
        vesselkit::analyze_frame(frame, &opts)
            .map(output)
            .map_err(|e| e.to_string())
    }
    fn analyze_cine(&self, cine: &Cine) -> Result<AngioOutput, String> {
        let archived;
        let cine = match self.jpeg_quality {
            Some(q) => {
                let mut frames = cine.frames.clone();
                for mut f in frames.axis_iter_mut(Axis(0)) {
                    let px = vesselkit_io::jpeg12_round_trip(f.view(), q).map_err(|e| e.to_string())?;
                    f.assign(&px);
                }
                archived = Cine::new(frames, cine.calibration.clone(), cine.frame_times_ms.clone())
                    .map_err(|e| e.to_string())?;
                &archived
            }
            None => cine,
        };
        vesselkit::analyze(cine, &self.options)
            .map(output)
            .map_err(|e| e.to_string())
    }
}

impl OctPipeline for Vesselkit {
    fn lumen_mask(&self, frame: ArrayView2<f32>, mm_per_px: f64) -> Result<(Array2<bool>, u32), String> {
        let opts = vesselkit::oct::OctOptions {
            mm_per_px,
            ..Default::default()
        };
        let r = vesselkit::oct::oct_lumen(frame, &opts).map_err(|e| e.to_string())?;
        let (rows, cols) = frame.dim();
        Ok((r.lumen_mask(rows, cols), r.n_channels() as u32))
    }
}

fn load_gray(path: &Path) -> Result<Array2<f32>, CliError> {
    let loaded =
        vesselkit_io::read(path, &vesselkit_io::ReadOptions::default()).map_err(|e| CliError(e.to_string()))?;
    Ok(loaded.cine.frames.index_axis(Axis(0), 0).to_owned())
}

/// DCA1 images and masks (`{train,test}/N.png`, `N_gt.png`).
pub fn dca1_cases(root: &Path) -> Result<Vec<RealAngioCase>, CliError> {
    let mut cases = Vec::new();
    for split in ["train", "test"] {
        let dir = root.join("xca-dca1-subset").join(split);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".png") && !n.ends_with("_gt.png"))
            .collect();
        names.sort_by_key(|n| n.trim_end_matches(".png").parse::<u32>().unwrap_or(u32::MAX));
        for n in names {
            let stem = n.trim_end_matches(".png");
            let image = load_gray(&dir.join(&n))?;
            let truth = load_gray(&dir.join(format!("{stem}_gt.png")))?.mapv(|v| v > 127.0);
            cases.push(RealAngioCase {
                name: format!("{split}/{n}"),
                split: split.into(),
                image,
                truth,
                mm_per_px: None,
            });
        }
    }
    Ok(cases)
}

/// IVOCT frames (RGB PNG, converted to luminance) with channel 0 of their TIFF masks.
pub fn ivoct_cases(root: &Path, mm_per_px: f64) -> Result<Vec<RealOctCase>, CliError> {
    let dir = root.join("ivoct-pullback");
    let Ok(entries) = std::fs::read_dir(dir.join("img")) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut cases = Vec::new();
    for n in names {
        let stem = n.trim_end_matches(".png");
        let image = load_gray(&dir.join("img").join(&n))?;
        let mask_path = dir.join("mask").join(format!("{stem}.tiff"));
        let mask = image::open(&mask_path).map_err(|e| CliError(format!("{}: {e}", mask_path.display())))?;
        let rgba = mask.to_rgba8();
        let (w, h) = rgba.dimensions();
        let truth = Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
            rgba.get_pixel(c as u32, r as u32).0[0] > 127
        });
        cases.push(RealOctCase {
            name: n.clone(),
            image,
            truth,
            mm_per_px,
        });
    }
    Ok(cases)
}

/// How many phantoms of each kind to judge.
pub struct Counts {
    pub cases: usize,
    pub cine_cases: usize,
    pub oct_cases: usize,
    pub pullback_cases: usize,
}

pub fn run(
    counts: Counts,
    seed: u64,
    real: Option<&Path>,
    oct_mm_per_px: f64,
    jpeg_quality: Option<u8>,
    json: Option<&Path>,
) -> Result<(), CliError> {
    let pipeline = Vesselkit {
        jpeg_quality,
        ..Vesselkit::default()
    };
    let cfg = vesselkit_eval::EvalConfig {
        cases: counts.cases,
        cine_cases: counts.cine_cases,
        oct_cases: counts.oct_cases,
        pullback_cases: counts.pullback_cases,
        seed,
        ..Default::default()
    };
    let mut report = vesselkit_eval::run_phantoms(&pipeline, &pipeline, &cfg).map_err(|e| CliError(e.to_string()))?;
    if let Some(root) = real {
        let angio = dca1_cases(root)?;
        let oct = ivoct_cases(root, oct_mm_per_px)?;
        if angio.is_empty() && oct.is_empty() {
            return Err(CliError(format!(
                "--real {}: no xca-dca1-subset or ivoct-pullback data found",
                root.display()
            )));
        }
        let mut real = vesselkit_eval::run_real(&pipeline, &pipeline, &angio, &oct);
        // The same frames with the learned mask (fitted on train 1-32, so its train figure is
        // not a held-out one).
        let learned = Vesselkit {
            real_angio: vesselkit::angio::AngioOptions {
                segment: vesselkit::angio::SegmentOptions {
                    learned: Some(vesselkit::angio::LearnedMask::dca1().map_err(|e| CliError(e.to_string()))?),
                    ..pipeline.real_angio.segment.clone()
                },
                ..pipeline.real_angio.clone()
            },
            ..Vesselkit::default()
        };
        for mut s in vesselkit_eval::run_real(&learned, &learned, &angio, &[]).angio {
            s.name = format!("{}, U-Net mask", s.name);
            real.angio.push(s);
        }
        report.real = Some(real);
    }
    println!("{report}");
    if let Some(p) = json {
        let text = report.to_json().map_err(|e| CliError(e.to_string()))?;
        if p.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(p, text).map_err(|e| CliError(format!("{}: {e}", p.display())))?;
        }
    }
    Ok(())
}
