//! Times 4-scale Frangi and Jerman on the benchmark's synthetic 1024x1024 image and prints a
//! checksum-free summary plus the raw Frangi response to `OUT.f32` (for comparing versions).
//!
//! `vesselness_time [ITERS] [OUT.f32|-] [exact]`; prints the best wall time and, on Linux, the
//! best CPU time of the process per call (summed over threads from `/proc/self/task/*/schedstat`,
//! which is robust to other load on the machine). `exact` computes every scale at full resolution.

use ndarray::Array2;
use std::time::Instant;
use vesselkit_filters::{Method, SamplingOptions, VesselnessOptions, vesselness_with_sampling};

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

/// CPU time (ns) of all threads of this process, or `None` where schedstat is unavailable.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    let iters: usize = a
        .get(1)
        .map_or(Ok(5), |s| s.parse())
        .map_err(|e| format!("ITERS: {e}"))?;
    let sampling = if a.get(3).is_some_and(|s| s == "exact") {
        SamplingOptions::exact()
    } else {
        SamplingOptions::default()
    };
    let img = synthetic(1024);
    for method in [Method::Frangi, Method::Jerman] {
        let opts = VesselnessOptions {
            method,
            ..Default::default()
        };
        let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
        let mut last = None;
        for _ in 0..iters {
            let cpu0 = process_cpu_ns();
            let t = Instant::now();
            let v = vesselness_with_sampling(img.view(), &opts, &sampling).map_err(|e| e.to_string())?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            if let (Some(c0), Some(c1)) = (cpu0, process_cpu_ns()) {
                best_cpu = best_cpu.min(c1.saturating_sub(c0) as f64 * 1e-6);
            }
            last = Some(v);
        }
        println!("{method:?}: best of {iters}: wall {best:.1} ms, CPU {best_cpu:.1} ms");
        if let (Some(path), Some(v), Method::Frangi) = (a.get(2).filter(|p| *p != "-"), last, method) {
            let out: Vec<u8> = v.response.iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(path, out).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(())
}
