//! Write the benchmark cine (60 frames of 512 x 512, 12-bit, JPEG lossless) to a path, so that
//! other decoders (pydicom, see benches/pydicom_decode.py) can time the same file.
//!
//! `cargo run --release -p vesselkit-io --example write_bench_cine -- /tmp/bench.dcm`

use ndarray::Array3;
use vesselkit_core::{Calibration, Cine};
use vesselkit_io::{WriteSyntax, XaWriteOptions, write_xa};

/// A deterministic angiogram-like cine: smooth background, a dark vessel that fills over time,
/// and pseudo-random quantum noise, so the entropy coder has realistic work.
pub fn bench_cine(frames: usize, side: usize) -> Cine {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let a = Array3::from_shape_fn((frames, side, side), |(f, r, c)| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 41) as f32 - 20.0;
        let bg = 2600.0 + 600.0 * ((r as f32 / 90.0).sin() * (c as f32 / 70.0).cos());
        let d = (c as f32 - side as f32 / 2.0 - 40.0 * (r as f32 / 60.0).sin()).abs();
        let fill = (f as f32 / frames as f32).min(1.0);
        let vessel = if d < 6.0 && (r as f32) < fill * side as f32 {
            1400.0
        } else {
            0.0
        };
        (bg - vessel + noise).round().clamp(0.0, 4095.0)
    });
    let times = (0..frames).map(|i| i as f64 * 1000.0 / 15.0).collect();
    match Cine::new(a, Calibration::uncalibrated(), times) {
        Ok(c) => c,
        Err(e) => panic!("bench cine: {e}"),
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: write_bench_cine OUTPUT.dcm");
        std::process::exit(2);
    };
    let cine = bench_cine(60, 512);
    let opts = XaWriteOptions {
        bits_stored: 12,
        syntax: WriteSyntax::JpegLossless,
        imager_pixel_spacing_mm: Some(0.2),
        sid_mm: Some(1200.0),
        sod_mm: Some(800.0),
        ..Default::default()
    };
    if let Err(e) = write_xa(&path, &cine, &opts) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("wrote {path}: 60 x 512 x 512, 12-bit JPEG lossless, {size} bytes");
}
