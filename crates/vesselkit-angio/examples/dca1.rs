//! Vessel Dice on the DCA1 subset (`../shared/data/xca-dca1-subset/{train,test}`).
//!
//! `cargo run --release -p vesselkit-angio --example dca1 [-- DATA_DIR]` prints Dice per image
//! and the mean per folder (`VERBOSE=1`: per image; `MASK_DIR=DIR`: write the masks). Defaults
//! were tuned on `train` only.

use std::path::Path;
use vesselkit_angio::{SegmentOptions, dice, segment};

#[path = "../tests/common/dca1_data.rs"]
mod dca1_data;
use dca1_data::load_gray;

fn main() -> Result<(), String> {
    let Some(dir) = dca1_data::dir_or_skip(std::env::args().nth(1)) else {
        return Ok(());
    };
    let mut opts = SegmentOptions::dca1();
    // Overrides for sweeps on `train`: VK_<FIELD>=value.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f32>().ok());
    if let Some(v) = env("VK_HIGH_V") {
        opts.high_vesselness = v;
    }
    if let Some(v) = env("VK_LOW_V") {
        opts.low_vesselness = v;
    }
    if let Some(v) = env("VK_HIGH_C") {
        opts.high_contrast = v;
    }
    if let Some(v) = env("VK_LOW_C") {
        opts.low_contrast = v;
    }
    if let Some(v) = env("VK_MIN_OBJ") {
        opts.min_object_px = v as usize;
    }
    if let Some(v) = env("VK_MIN_FRAC") {
        opts.min_component_fraction = v;
    }
    if let Some(v) = env("VK_BG_R") {
        opts.background_radius_px = v as usize;
    }
    if let Some(v) = env("VK_TH_SIGMA") {
        opts.tophat_sigma_px = v;
    }
    // VK_UNET=threshold: the learned mask (`LearnedMask::dca1`, or the weights in
    // VK_UNET_FILE) at that threshold.
    if let Some(t) = env("VK_UNET") {
        let model = match std::env::var_os("VK_UNET_FILE") {
            Some(p) => std::sync::Arc::new(
                vesselkit_angio::UnetModel::from_bytes(&std::fs::read(&p).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?,
            ),
            None => vesselkit_angio::UnetModel::dca1().map_err(|e| e.to_string())?,
        };
        opts.learned = Some(vesselkit_angio::LearnedMask { model, threshold: t });
    }
    let t0 = std::time::Instant::now();
    for folder in ["train", "test"] {
        let mut scores = Vec::new();
        for n in 1..=40 {
            let img_path = dir.join(folder).join(format!("{n}.png"));
            let gt_path = dir.join(folder).join(format!("{n}_gt.png"));
            if !img_path.exists() || !gt_path.exists() {
                continue;
            }
            let img = load_gray(&img_path)?;
            let gt = load_gray(&gt_path)?.mapv(|v| v > 127.0);
            let seg = segment(img.view(), &opts).map_err(|e| e.to_string())?;
            let d = dice(&seg.mask, &gt);
            if std::env::var_os("VERBOSE").is_some() {
                println!("{folder}/{n}: dice {d:.4}");
            }
            if let Some(out) = std::env::var_os("MASK_DIR") {
                let (h, w) = seg.mask.dim();
                let png = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
                    image::Luma([if seg.mask[[y as usize, x as usize]] { 255 } else { 0 }])
                });
                let path = Path::new(&out).join(format!("{folder}_{n}.png"));
                png.save(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            scores.push(d);
        }
        let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
        println!("{folder}: {} images, mean Dice {mean:.4}", scores.len());
    }
    eprintln!("{:.1} ms per image", t0.elapsed().as_secs_f64() * 1e3 / 80.0);
    Ok(())
}
