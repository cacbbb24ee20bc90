//! Vessel Dice on the DCA1 subset (`../shared/data/xca-dca1-subset/{train,test}`).
//!
//! `cargo run --release -p vesselkit-angio --example dca1 [-- DATA_DIR]` prints Dice per image
//! and the mean per folder (`VERBOSE=1`: per image; `MASK_DIR=DIR`: write the masks). Defaults
//! were tuned on `train` only.

use ndarray::Array2;
use std::path::{Path, PathBuf};
use vesselkit_angio::{SegmentOptions, dice, segment};

fn load_gray(p: &Path) -> Result<Array2<f32>, String> {
    let img = image::open(p).map_err(|e| format!("{}: {e}", p.display()))?.to_luma8();
    let (w, h) = img.dimensions();
    Ok(Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        img.get_pixel(c as u32, r as u32)[0] as f32
    }))
}

fn main() -> Result<(), String> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/xca-dca1-subset"));
    if !dir.exists() {
        eprintln!("skipping: {} not found", dir.display());
        return Ok(());
    }
    let opts = SegmentOptions::dca1();
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
    Ok(())
}
