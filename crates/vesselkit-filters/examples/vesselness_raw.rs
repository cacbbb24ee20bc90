//! Vesselness of a raw little-endian f32 image, for comparisons with other tools.
//!
//! `vesselness_raw IN.f32 ROWS COLS OUT.f32 [frangi|jerman|sato] [dark|bright]` with sigmas 1-4.

use ndarray::Array2;
use vesselkit_filters::{Method, Polarity, VesselnessOptions, vesselness};

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        return Err("usage: vesselness_raw IN.f32 ROWS COLS OUT.f32 [method] [dark|bright]".into());
    }
    let rows: usize = a[2].parse().map_err(|e| format!("ROWS: {e}"))?;
    let cols: usize = a[3].parse().map_err(|e| format!("COLS: {e}"))?;
    let bytes = std::fs::read(&a[1]).map_err(|e| format!("{}: {e}", a[1]))?;
    if bytes.len() != rows * cols * 4 {
        return Err(format!("{} bytes for {rows} x {cols} f32", bytes.len()));
    }
    let px: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let img = Array2::from_shape_vec((rows, cols), px).map_err(|e| e.to_string())?;
    let opts = VesselnessOptions {
        method: Method::parse(a.get(5).map_or("frangi", String::as_str)).map_err(|e| e.to_string())?,
        polarity: if a.get(6).is_some_and(|p| p == "bright") {
            Polarity::BrightOnDark
        } else {
            Polarity::DarkOnBright
        },
        ..Default::default()
    };
    let v = vesselness(img.view(), &opts).map_err(|e| e.to_string())?;
    let out: Vec<u8> = v.response.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&a[4], out).map_err(|e| format!("{}: {e}", a[4]))
}
