//! Lumen Dice, area error and channel count on `vesselkit-phantom` OCT frames (cartesian and
//! polar input), 10 seeds for each of 1, 2, 3 and 4 channels at the phantom's default
//! difficulty. Dice and area error are given against both truths: the outer outline (what the
//! contour measures) and the lumen mask without septa (what `vesselkit eval` scores).
//!
//! Run: `cargo run --release -p vesselkit-oct --example phantom_eval [seeds]`
//! With `OCT_DUMP=<dir>`, frames with a wrong channel count are written there as PNG
//! (grey image, green = septa found, magenta = contour).

use image::{Rgb, RgbImage};
use std::time::Instant;
use vesselkit_oct::{OctGeometry, OctOptions, contour_mask, dice, oct_lumen};
use vesselkit_phantom::{OctParams, generate_oct_frame};

struct Row {
    channels: u8,
    dice_outline: f64,
    dice_lumen: f64,
    area_err: f64,
    area_err_lumen: f64,
    found: usize,
    polar_area_err: f64,
    polar_found: usize,
}

fn main() -> Result<(), String> {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dump = std::env::var("OCT_DUMP").ok();
    let mut rows = Vec::new();
    let mut secs = 0.0;
    for channels in 1u8..=4 {
        for seed in 0..seeds {
            let mut p = OctParams {
                channels,
                ..Default::default()
            };
            if channels > 1 {
                // The smallest lumen that holds the catheter in one channel (as the eval runner).
                p.lumen_diameter_mm = p.lumen_diameter_mm.max(4.0 * p.catheter_radius_mm + 0.8);
            }
            let ph = generate_oct_frame(&p, 1000 * u64::from(channels) + seed).map_err(|e| e.to_string())?;
            let n = p.cart_size;
            let truth_outline = contour_mask(&ph.truth.frame.lumen_contour, n, n);
            let o = OctOptions {
                mm_per_px: p.cart_mm_per_px(),
                ..Default::default()
            };
            let t = Instant::now();
            let r = oct_lumen(ph.cartesian.view(), &o).map_err(|e| e.to_string())?;
            secs += t.elapsed().as_secs_f64();
            let mask = r.lumen_mask(n, n);
            let px2 = p.cart_mm_per_px().powi(2);
            let mask_area = mask.iter().filter(|&&v| v).count() as f64 * px2;
            let outline = ph.truth.frame.outline_area_mm2;
            let lumen = ph.truth.frame.lumen_area_mm2;
            // Polar input: sample j at depth (j + 0.5) * spacing.
            let g = OctGeometry {
                a_line_spacing_mm: p.mm_per_sample(),
                z_offset_px: 0.5,
                refractive_index: 1.0,
                refractive_index_applied: true,
            };
            let op = OctOptions {
                polar: Some(g),
                ..Default::default()
            };
            let rp = oct_lumen(ph.polar.view(), &op).map_err(|e| e.to_string())?;
            let row = Row {
                channels,
                dice_outline: dice(&mask, &truth_outline),
                dice_lumen: dice(&mask, &ph.lumen_mask),
                area_err: (r.metrics.area_mm2 - outline) / outline,
                area_err_lumen: (mask_area - lumen) / lumen,
                found: r.n_channels(),
                polar_area_err: (rp.metrics.area_mm2 - outline) / outline,
                polar_found: rp.n_channels(),
            };
            println!(
                "ch {channels} seed {seed}: dice {:.4} (lumen mask {:.4}) area err {:+.2}% (lumen mask {:+.2}%) \
                 channels {} (polar: area err {:+.2}% channels {})",
                row.dice_outline,
                row.dice_lumen,
                100.0 * row.area_err,
                100.0 * row.area_err_lumen,
                row.found,
                100.0 * row.polar_area_err,
                row.polar_found
            );
            if let Some(dir) = &dump
                && row.found != channels as usize
            {
                let mut img = RgbImage::from_fn(n as u32, n as u32, |x, y| {
                    let v = (ph.cartesian[[y as usize, x as usize]].clamp(0.0, 1.0) * 255.0) as u8;
                    Rgb([v, v, v])
                });
                for pt in &r.contour.points {
                    let (y, x) = (pt.row.round() as u32, pt.col.round() as u32);
                    if x < n as u32 && y < n as u32 {
                        img.put_pixel(x, y, Rgb([255, 0, 255]));
                    }
                }
                for s in &r.septa {
                    let (y, x) = (s.position.row.round() as u32, s.position.col.round() as u32);
                    for d in 0..5u32 {
                        for (xx, yy) in [(x + d, y), (x, y + d)] {
                            if xx >= 2 && yy >= 2 && xx - 2 < n as u32 && yy - 2 < n as u32 {
                                img.put_pixel(xx - 2, yy - 2, Rgb([0, 255, 0]));
                            }
                        }
                    }
                }
                // Crop to the lumen with a margin and enlarge twice.
                let (mut r0, mut r1, mut c0, mut c1) = (n as f64, 0.0f64, n as f64, 0.0f64);
                for pt in &r.contour.points {
                    r0 = r0.min(pt.row);
                    r1 = r1.max(pt.row);
                    c0 = c0.min(pt.col);
                    c1 = c1.max(pt.col);
                }
                let (r0, c0) = ((r0 - 30.0).max(0.0) as u32, (c0 - 30.0).max(0.0) as u32);
                let (r1, c1) = (
                    (r1 + 30.0).min(n as f64 - 1.0) as u32,
                    (c1 + 30.0).min(n as f64 - 1.0) as u32,
                );
                let img = RgbImage::from_fn(2 * (c1 - c0), 2 * (r1 - r0), |x, y| {
                    *img.get_pixel(c0 + x / 2, r0 + y / 2)
                });
                let path = format!("{dir}/ch{channels}_seed{seed}_found{}.png", row.found);
                img.save(&path).map_err(|e| e.to_string())?;
            }
            rows.push(row);
        }
    }
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let min_d = rows.iter().map(|r| r.dice_outline).fold(1.0, f64::min);
    let webs: Vec<_> = rows.iter().filter(|r| r.channels > 1).collect();
    let ok = webs.iter().filter(|r| r.found == r.channels as usize).count();
    let ok_p = webs.iter().filter(|r| r.polar_found == r.channels as usize).count();
    let all_ok = rows.iter().filter(|r| r.found == r.channels as usize).count();
    let single_ok = rows.iter().filter(|r| r.channels == 1 && r.found == 1).count();
    println!(
        "frames {n}  mean dice {:.4} (lumen mask {:.4})  min dice {min_d:.4}  mean |area err| {:.2}% \
         (lumen mask {:.2}%, polar {:.2}%)  channel count correct {all_ok}/{} (webs {ok}/{}, polar {ok_p}/{}, \
         single lumen {single_ok}/{seeds})  {:.2} ms/frame (cartesian, single thread)",
        mean(&|r| r.dice_outline),
        mean(&|r| r.dice_lumen),
        100.0 * mean(&|r| r.area_err.abs()),
        100.0 * mean(&|r| r.area_err_lumen.abs()),
        100.0 * mean(&|r| r.polar_area_err.abs()),
        rows.len(),
        webs.len(),
        webs.len(),
        1e3 * secs / n
    );
    for c in 2..=4u8 {
        let of: Vec<_> = rows.iter().filter(|r| r.channels == c).collect();
        let good = of.iter().filter(|r| r.found == c as usize).count();
        println!("  {c} channels: {good}/{} correct", of.len());
    }
    Ok(())
}
