//! Lumen Dice, area error and channel count on `vesselkit-phantom` OCT frames (cartesian and
//! polar input). Run: `cargo run --release -p vesselkit-oct --example phantom_eval`

use vesselkit_oct::{OctGeometry, OctOptions, contour_mask, dice, oct_lumen};
use vesselkit_phantom::{OctParams, generate_oct_frame};

fn main() -> Result<(), String> {
    let mut rows = Vec::new();
    for channels in 1u8..=4 {
        for seed in 0..10u64 {
            let p = OctParams {
                channels,
                lumen_diameter_mm: if channels > 1 { 3.4 } else { 3.2 },
                ..Default::default()
            };
            let ph = generate_oct_frame(&p, seed).map_err(|e| e.to_string())?;
            let truth_outline = contour_mask(&ph.truth.frame.lumen_contour, p.cart_size, p.cart_size);
            let o = OctOptions {
                mm_per_px: p.cart_mm_per_px(),
                ..Default::default()
            };
            let r = oct_lumen(ph.cartesian.view(), &o).map_err(|e| e.to_string())?;
            let d = dice(&r.lumen_mask(p.cart_size, p.cart_size), &truth_outline);
            let ae = (r.metrics.area_mm2 - ph.truth.frame.outline_area_mm2) / ph.truth.frame.outline_area_mm2;
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
            let aep = (rp.metrics.area_mm2 - ph.truth.frame.outline_area_mm2) / ph.truth.frame.outline_area_mm2;
            println!(
                "ch {channels} seed {seed}: dice {d:.4} area err {:+.2}% channels {} (polar: area err {:+.2}% channels {})",
                100.0 * ae,
                r.n_channels(),
                100.0 * aep,
                rp.n_channels()
            );
            rows.push((channels, d, ae, r.n_channels(), aep, rp.n_channels()));
        }
    }
    let n = rows.len() as f64;
    let mean_d = rows.iter().map(|r| r.1).sum::<f64>() / n;
    let min_d = rows.iter().map(|r| r.1).fold(1.0, f64::min);
    let mae = rows.iter().map(|r| r.2.abs()).sum::<f64>() / n;
    let mae_p = rows.iter().map(|r| r.4.abs()).sum::<f64>() / n;
    let webs: Vec<_> = rows.iter().filter(|r| r.0 > 1).collect();
    let ok = webs.iter().filter(|r| r.3 == r.0 as usize).count();
    let ok_p = webs.iter().filter(|r| r.5 == r.0 as usize).count();
    let single_ok = rows.iter().filter(|r| r.0 == 1 && r.3 == 1).count();
    println!(
        "frames {n}  mean dice {mean_d:.4}  min dice {min_d:.4}  mean |area err| {:.2}% (polar {:.2}%)  \
         web channel count correct {ok}/{} (polar {ok_p}/{})  single-lumen correct {single_ok}/10",
        100.0 * mae,
        100.0 * mae_p,
        webs.len(),
        webs.len()
    );
    Ok(())
}
