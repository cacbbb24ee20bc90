//! Coarse parameter sweep of [`SegmentOptions`] on the DCA1 *train* folder only (mean Dice).
//!
//! `cargo run --release -p vesselkit-angio --example dca1_tune [-- DATA_DIR]`.

use vesselkit_angio::{SegmentOptions, dice, segment};

#[path = "../tests/common/dca1_data.rs"]
mod dca1_data;
use dca1_data::load_gray;

fn main() -> Result<(), String> {
    let Some(dir) = dca1_data::dir_or_skip(std::env::args().nth(1)) else {
        return Ok(());
    };
    let mut data = Vec::new();
    for n in 1..=40 {
        let ip = dir.join("train").join(format!("{n}.png"));
        let gp = dir.join("train").join(format!("{n}_gt.png"));
        if ip.exists() && gp.exists() {
            data.push((load_gray(&ip)?, load_gray(&gp)?.mapv(|v| v > 127.0)));
        }
    }
    let eval = |o: &SegmentOptions| -> Result<f64, String> {
        let mut s = 0.0;
        for (img, gt) in &data {
            s += dice(&segment(img.view(), o).map_err(|e| e.to_string())?.mask, gt);
        }
        Ok(s / data.len().max(1) as f64)
    };
    let mut best = (eval(&SegmentOptions::dca1())?, SegmentOptions::dca1());
    println!("start {:.4}", best.0);
    // Coordinate descent over a few grids.
    for _round in 0..2 {
        for field in 0..8 {
            let grid: Vec<f32> = match field {
                0 => vec![5.0, 6.0, 7.0, 8.0, 10.0, 12.0],
                1 => vec![0.5, 1.0, 1.5, 2.0],
                2 => vec![0.05, 0.1, 0.15, 0.25, 0.35],
                3 => vec![0.0, 0.01, 0.03, 0.06, 0.1],
                4 => vec![0.3, 0.4, 0.5, 0.6, 0.8],
                5 => vec![0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5],
                6 => vec![20.0, 60.0, 120.0, 200.0, 400.0],
                _ => vec![0.0, 0.02, 0.05, 0.1, 0.2],
            };
            for &g in &grid {
                let mut o = best.1.clone();
                match field {
                    0 => o.background_radius_px = g as usize,
                    1 => o.tophat_sigma_px = g,
                    2 => o.high_vesselness = g,
                    3 => o.low_vesselness = g,
                    4 => o.high_contrast = g,
                    5 => o.low_contrast = g,
                    6 => o.min_object_px = g as usize,
                    _ => o.min_component_fraction = g,
                }
                if o.low_contrast > o.high_contrast {
                    continue;
                }
                let d = eval(&o)?;
                if d > best.0 + 1e-4 {
                    best = (d, o);
                    println!("{d:.4} field {field} = {g}");
                }
            }
        }
    }
    println!("best {:.4}: {:?}", best.0, best.1);
    Ok(())
}
