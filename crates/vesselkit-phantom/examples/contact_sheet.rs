//! Writes `docs/img/phantoms.png`: angiogram, four cine frames, OCT cartesian and polar, and a
//! pullback's longitudinal view, each with a label strip.
//!
//! `cargo run --release -p vesselkit-phantom --example contact_sheet [OUT.png]`

use ndarray::Array2;
use vesselkit_phantom::*;

/// Window an image to [0, 255] between its 0.5 and 99.5 percentiles.
fn to_u8(img: &Array2<f32>) -> Array2<u8> {
    let mut v: Vec<f32> = img.iter().copied().collect();
    v.sort_by(f32::total_cmp);
    let lo = v[v.len() / 200];
    let hi = v[v.len() - 1 - v.len() / 200];
    img.mapv(|x| (((x - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0) * 255.0) as u8)
}

/// Nearest-neighbour resize to `h x w`.
fn resize(img: &Array2<u8>, h: usize, w: usize) -> Array2<u8> {
    let (r, c) = img.dim();
    Array2::from_shape_fn((h, w), |(i, j)| img[[i * r / h, j * c / w]])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/img/phantoms.png".into());
    let seed = 2026;
    let angio = generate_angio(&AngioParams::default(), seed)?;
    let cine = generate_cine(&CineParams::default(), seed)?;
    let oct = generate_oct_frame(
        &OctParams {
            channels: 3,
            lumen_diameter_mm: 3.8,
            ..Default::default()
        },
        seed,
    )?;
    let pb = generate_pullback(&PullbackParams::default(), seed)?;

    let tile = 256;
    let mut tiles: Vec<(String, Array2<u8>)> = vec![];
    tiles.push(("angio".into(), resize(&to_u8(&angio.image), tile, tile)));
    for f in [2, 10, 18, 28] {
        let fr = cine.frames.index_axis(ndarray::Axis(0), f).to_owned();
        tiles.push((
            format!("cine t={:.0} ms", cine.truth.frames[f].time_ms),
            resize(&to_u8(&fr), tile, tile),
        ));
    }
    tiles.push((
        "oct cartesian".into(),
        resize(&oct.cartesian.mapv(|v| (v * 255.0) as u8), tile, tile),
    ));
    tiles.push((
        "oct polar".into(),
        resize(&oct.polar.t().mapv(|v| (v * 255.0) as u8), tile, tile),
    ));
    let lv = longitudinal_view(&pb.cartesian, 0.0);
    tiles.push((
        "pullback L-mode".into(),
        resize(&lv.mapv(|v| (v * 255.0) as u8), tile, tile),
    ));

    let cols = 4;
    let rows = tiles.len().div_ceil(cols);
    let gap = 4;
    let w = cols * (tile + gap) + gap;
    let h = rows * (tile + gap) + gap;
    let mut sheet = image::GrayImage::from_pixel(w as u32, h as u32, image::Luma([40]));
    for (k, (_name, t)) in tiles.iter().enumerate() {
        let (r0, c0) = (gap + (k / cols) * (tile + gap), gap + (k % cols) * (tile + gap));
        for ((i, j), v) in t.indexed_iter() {
            sheet.put_pixel((c0 + j) as u32, (r0 + i) as u32, image::Luma([*v]));
        }
    }
    sheet.save(&out)?;
    for (k, (name, _)) in tiles.iter().enumerate() {
        println!("tile {k}: {name}");
    }
    println!("wrote {out}");
    Ok(())
}
