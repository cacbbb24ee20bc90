//! Evaluate the lumen contour on the real pullback in `shared/data/ivoct-pullback` against
//! channel 0 of its masks; print per-frame and mean Dice, and write `docs/img/oct_overlay.png`.
//!
//! Scale: the console burns distance markers into the cut-plane line about 149.4 px apart;
//! reading them as 1 mm gives 0.00669 mm/px (and a 0.9 mm = 2.7 F catheter, as expected).
//! The scale only affects mm values and the mm-based filter widths, not the Dice.
//!
//! Run: `cargo run --release -p vesselkit-oct --example ivoct_eval`

use image::{Rgb, RgbImage};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vesselkit_oct::{OctOptions, dice, oct_lumen};

const MM_PER_PX: f64 = 1.0 / 149.4;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ivoct-pullback")
}

/// Luminance (Rec. 601) of an RGB export, in [0, 1].
fn load_frame(path: &Path) -> Result<(Array2<f32>, RgbImage), String> {
    let rgb = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let lum = Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        let p = rgb.get_pixel(c as u32, r as u32);
        (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0
    });
    Ok((lum, rgb))
}

fn load_mask(path: &Path) -> Result<Array2<bool>, String> {
    let m = image::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_rgba8();
    let (w, h) = m.dimensions();
    Ok(Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
        m.get_pixel(c as u32, r as u32)[0] > 127
    }))
}

fn boundary(mask: &Array2<bool>) -> Vec<(usize, usize)> {
    let (h, w) = mask.dim();
    let mut out = Vec::new();
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            if mask[[r, c]] && (!mask[[r - 1, c]] || !mask[[r + 1, c]] || !mask[[r, c - 1]] || !mask[[r, c + 1]]) {
                out.push((r, c));
            }
        }
    }
    out
}

fn paint(img: &mut RgbImage, pts: &[(usize, usize)], color: Rgb<u8>) {
    let (w, h) = img.dimensions();
    for &(r, c) in pts {
        for dr in 0..2u32 {
            for dc in 0..2u32 {
                let (x, y) = (c as u32 + dc, r as u32 + dr);
                if x < w && y < h {
                    img.put_pixel(x, y, color);
                }
            }
        }
    }
}

fn main() -> Result<(), String> {
    let dir = data_dir();
    if !dir.exists() {
        eprintln!("{} not found; nothing to evaluate", dir.display());
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.join("img"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    let opts = OctOptions {
        mm_per_px: MM_PER_PX,
        ..Default::default()
    };
    let overlay_frames = [
        "001_1_061",
        "001_1_081",
        "001_1_090",
        "001_1_100",
        "001_1_110",
        "001_1_115",
    ];
    let mut tiles = Vec::new();
    let mut dices = Vec::new();
    let mut total_s = 0.0;
    for name in &names {
        let stem = name.trim_end_matches(".png");
        let (lum, rgb) = load_frame(&dir.join("img").join(name))?;
        let truth = load_mask(&dir.join("mask").join(format!("{stem}.tiff")))?;
        let t = Instant::now();
        let res = oct_lumen(lum.view(), &opts).map_err(|e| format!("{stem}: {e}"))?;
        total_s += t.elapsed().as_secs_f64();
        let (h, w) = lum.dim();
        let mask = res.lumen_mask(h, w);
        let d = dice(&mask, &truth);
        let ta = truth.iter().filter(|&&v| v).count() as f64 * MM_PER_PX * MM_PER_PX;
        println!(
            "{stem}  dice {d:.4}  area {:.2} mm2 (mask {ta:.2})  Dmin {:.2} Dmax {:.2} mm  channels {}  guidewire {}  side branch {}",
            res.metrics.area_mm2,
            res.metrics.min_diameter_mm,
            res.metrics.max_diameter_mm,
            res.n_channels(),
            res.guidewire_shadow.is_some(),
            res.side_branch
        );
        dices.push(d);
        if overlay_frames.contains(&stem) {
            let mut img = rgb.clone();
            paint(&mut img, &boundary(&truth), Rgb([0, 255, 0]));
            paint(&mut img, &boundary(&mask), Rgb([255, 0, 255]));
            tiles.push(img);
        }
    }
    let mean = dices.iter().sum::<f64>() / dices.len().max(1) as f64;
    let min = dices.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "frames {}  mean dice {mean:.4}  min dice {min:.4}  mean time {:.2} ms/frame (single thread, this build)",
        dices.len(),
        1e3 * total_s / dices.len().max(1) as f64
    );
    if tiles.len() == 6 {
        // 3 x 2 grid at half resolution: green = reference mask, magenta = detected lumen.
        let (tw, th) = (375u32, 375u32);
        let mut grid = RgbImage::new(3 * tw, 2 * th);
        for (i, tile) in tiles.iter().enumerate() {
            let (ox, oy) = ((i as u32 % 3) * tw, (i as u32 / 3) * th);
            for y in 0..th {
                for x in 0..tw {
                    let mut acc = [0u32; 3];
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let p = tile.get_pixel(2 * x + dx, 2 * y + dy);
                        for k in 0..3 {
                            acc[k] += p[k] as u32;
                        }
                    }
                    grid.put_pixel(
                        ox + x,
                        oy + y,
                        Rgb([(acc[0] / 4) as u8, (acc[1] / 4) as u8, (acc[2] / 4) as u8]),
                    );
                }
            }
        }
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img/oct_overlay.png");
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        grid.save(&out).map_err(|e| e.to_string())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
