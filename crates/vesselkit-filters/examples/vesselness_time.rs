//! Times 4-scale Frangi and Jerman on the benchmark's synthetic 1024x1024 image and prints a
//! checksum-free summary plus the raw Frangi response to `OUT.f32` (for comparing versions).
//!
//! `vesselness_time [ITERS] [OUT.f32]`; run under `perf stat` for CPU time and instructions.

use ndarray::Array2;
use std::time::Instant;
use vesselkit_filters::{Method, VesselnessOptions, vesselness};

fn synthetic(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(r, c)| {
        let (y, x) = (r as f32, c as f32);
        let mut v = 200.0 + 20.0 * (x / 200.0).sin() * (y / 300.0).cos();
        for k in 0..8 {
            let centre = 60.0 + 120.0 * k as f32 + 25.0 * (x / (80.0 + 10.0 * k as f32)).sin();
            let radius = 1.5 + k as f32 * 0.7;
            let d = (y - centre).abs();
            if d < radius {
                v -= 0.3 * 2.0 * (radius * radius - d * d).sqrt() * 10.0;
            }
        }
        v + ((r * 7919 + c * 104_729) % 13) as f32 * 0.5
    })
}

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    let iters: usize = a
        .get(1)
        .map_or(Ok(5), |s| s.parse())
        .map_err(|e| format!("ITERS: {e}"))?;
    let img = synthetic(1024);
    for method in [Method::Frangi, Method::Jerman] {
        let opts = VesselnessOptions {
            method,
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..iters {
            let t = Instant::now();
            let v = vesselness(img.view(), &opts).map_err(|e| e.to_string())?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            last = Some(v);
        }
        println!("{method:?}: best of {iters}: {best:.1} ms");
        if let (Some(path), Some(v), Method::Frangi) = (a.get(2), last, method) {
            let out: Vec<u8> = v.response.iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(path, out).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(())
}
