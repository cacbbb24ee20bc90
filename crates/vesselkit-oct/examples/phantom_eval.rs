//! Lumen Dice, area error, channel count and septum thickness on `vesselkit-phantom` OCT frames
//! (cartesian and polar input), 10 seeds for each of 1, 2, 3 and 4 channels at the phantom's
//! default difficulty. The lumen (mask and `metrics.area_mm2`) is scored against the truth
//! without septa (what `vesselkit eval` scores), the contour against the outer outline.
//!
//! Run: `cargo run --release -p vesselkit-oct --example phantom_eval [seeds]`
//! With `OCT_DUMP=<dir>`, frames with a wrong channel count (all frames with `OCT_DUMP_ALL=1`)
//! are written there as PNG (grey image, truth septa tinted red, green = edges of the septa
//! found, magenta = contour). `OCT_ONLY=<channels>/<seed>` runs one frame.

use image::{Rgb, RgbImage};
use std::time::Instant;
use vesselkit_oct::{OctGeometry, OctOptions, contour_mask, dice, oct_lumen};
use vesselkit_phantom::{OctParams, generate_oct_frame};

struct Row {
    channels: u8,
    dice_outline: f64,
    dice_lumen: f64,
    /// `metrics.outline_area_mm2` against the outline (relative).
    area_err: f64,
    /// `metrics.area_mm2` against the lumen without septa (relative).
    lumen_area_err: f64,
    /// Pixel count of `lumen_mask` against the lumen without septa (relative).
    area_err_lumen: f64,
    found: usize,
    polar_area_err: f64,
    polar_found: usize,
    /// Mean septum thickness found (mm), if any.
    septum_mm: Option<f64>,
}

fn main() -> Result<(), String> {
    let seeds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let dump = std::env::var("OCT_DUMP").ok();
    let mut rows = Vec::new();
    let mut secs = 0.0;
    for channels in 1u8..=4 {
        for seed in 0..seeds {
            if let Ok(only) = std::env::var("OCT_ONLY")
                && only != format!("{channels}/{seed}")
            {
                continue;
            }
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
            let septum_truth_mm = p.septum_thickness_mm;
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
                dice_outline: dice(&r.outline_mask(n, n), &truth_outline),
                dice_lumen: dice(&mask, &ph.lumen_mask),
                area_err: (r.metrics.outline_area_mm2 - outline) / outline,
                lumen_area_err: (r.metrics.area_mm2 - lumen) / lumen,
                area_err_lumen: (mask_area - lumen) / lumen,
                found: r.n_channels(),
                polar_area_err: (rp.metrics.area_mm2 - lumen) / lumen,
                polar_found: rp.n_channels(),
                septum_mm: (!r.septa.is_empty())
                    .then(|| r.septa.iter().map(|s| s.thickness_mm).sum::<f64>() / r.septa.len() as f64),
            };
            println!(
                "ch {channels} seed {seed}: dice outline {:.4} lumen mask {:.4}; area err outline {:+.2}% \
                 lumen {:+.2}% (mask {:+.2}%); channels {} septa {} thickness {} (truth {septum_truth_mm:.3}); \
                 polar: lumen area err {:+.2}% channels {}",
                row.dice_outline,
                row.dice_lumen,
                100.0 * row.area_err,
                100.0 * row.lumen_area_err,
                100.0 * row.area_err_lumen,
                row.found,
                r.septa.len(),
                row.septum_mm.map_or("-".to_string(), |t| format!("{t:.3}")),
                100.0 * row.polar_area_err,
                row.polar_found
            );
            if let Some(dir) = &dump
                && (row.found != channels as usize || std::env::var_os("OCT_DUMP_ALL").is_some())
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
                // Septa: the band edges in green, truth septum pixels tinted red.
                for y in 0..n {
                    for x in 0..n {
                        if truth_outline[[y, x]] && !ph.lumen_mask[[y, x]] {
                            let px = img.get_pixel_mut(x as u32, y as u32);
                            px[0] = px[0].saturating_add(90);
                        }
                    }
                }
                for s in &r.septa {
                    let half = 0.5 * s.thickness_mm / p.cart_mm_per_px();
                    let l = s.start.dist(s.end).max(1.0);
                    let (ur, uc) = ((s.end.row - s.start.row) / l, (s.end.col - s.start.col) / l);
                    for i in 0..=(2.0 * l) as usize {
                        for side in [-half, half] {
                            let t = 0.5 * i as f64;
                            let y = s.start.row + t * ur - side * uc;
                            let x = s.start.col + t * uc + side * ur;
                            if y >= 0.0 && x >= 0.0 && (y as usize) < n && (x as usize) < n {
                                img.put_pixel(x as u32, y as u32, Rgb([0, 255, 0]));
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
        "frames {n}  mean dice outline {:.4}, lumen mask {:.4}  min dice outline {min_d:.4}  mean |area err| \
         outline {:.2}%, lumen {:.2}% (mask {:.2}%, polar {:.2}%)  channel count correct {all_ok}/{} (webs {ok}/{}, \
         polar {ok_p}/{}, single lumen {single_ok}/{seeds})  {:.2} ms/frame (cartesian, single thread)",
        mean(&|r| r.dice_outline),
        mean(&|r| r.dice_lumen),
        100.0 * mean(&|r| r.area_err.abs()),
        100.0 * mean(&|r| r.lumen_area_err.abs()),
        100.0 * mean(&|r| r.area_err_lumen.abs()),
        100.0 * mean(&|r| r.polar_area_err.abs()),
        rows.len(),
        webs.len(),
        webs.len(),
        1e3 * secs / n
    );
    for c in 1..=4u8 {
        let of: Vec<_> = rows.iter().filter(|r| r.channels == c).collect();
        let good = of.iter().filter(|r| r.found == c as usize).count();
        let k = of.len() as f64;
        let m = |f: &dyn Fn(&Row) -> f64| of.iter().map(|r| f(r)).sum::<f64>() / k;
        let worst = of.iter().map(|r| r.lumen_area_err.abs()).fold(0.0, f64::max);
        let th: Vec<f64> = of.iter().filter_map(|r| r.septum_mm).collect();
        println!(
            "  {c} channel(s): count {good}/{}  lumen area err mean {:+.2}% mean |.| {:.2}% max |.| {:.2}% \
             (mask mean |.| {:.2}%)  lumen dice {:.4}  septum thickness {}",
            of.len(),
            100.0 * m(&|r| r.lumen_area_err),
            100.0 * m(&|r| r.lumen_area_err.abs()),
            100.0 * worst,
            100.0 * m(&|r| r.area_err_lumen.abs()),
            m(&|r| r.dice_lumen),
            if th.is_empty() {
                "-".to_string()
            } else {
                format!("{:.3} mm", th.iter().sum::<f64>() / th.len() as f64)
            }
        );
    }
    Ok(())
}
