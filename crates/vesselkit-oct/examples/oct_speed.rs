//! Time `oct_lumen` on the bench frame (750x750 synthetic, guidewire) in a loop, for profiling;
//! with `web`, on a four-channel phantom web frame (512x512) instead. Prints wall time per
//! frame (mean and minimum) and process CPU time per frame.
//!
//! Run: `cargo run --release -p vesselkit-oct --example oct_speed [iterations] [web]`

use std::time::Instant;
use vesselkit_oct::synthetic::SyntheticSpec;
use vesselkit_oct::{OctOptions, oct_lumen};

const MM: f64 = 1.0 / 149.4;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (Linux); 0 elsewhere.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() -> Result<(), String> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let spec = SyntheticSpec {
        lumen_offset_mm: (0.1, -0.15),
        lumen_radius_mm: 1.2 + 0.2 * 0.3f64.sin(),
        harmonics: vec![(2, 0.12, 0.3), (3, 0.05, 1.0)],
        guidewire_angle: Some(1.0),
        seed: 3,
        ..Default::default()
    };
    let (mut frame, _) = spec.cartesian(750, MM);
    let mut opts = OctOptions {
        mm_per_px: MM,
        ..Default::default()
    };
    // `web`: a four-channel phantom web frame (512x512) instead.
    if std::env::args().nth(2).as_deref() == Some("web") {
        let mut p = vesselkit_phantom::OctParams {
            channels: 4,
            ..Default::default()
        };
        p.lumen_diameter_mm = p.lumen_diameter_mm.max(4.0 * p.catheter_radius_mm + 0.8);
        let ph = vesselkit_phantom::generate_oct_frame(&p, 4005).map_err(|e| e.to_string())?;
        frame = ph.cartesian;
        opts.mm_per_px = p.cart_mm_per_px();
    }
    let mut best = f64::INFINITY;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    for _ in 0..n {
        let t = Instant::now();
        let r = oct_lumen(frame.view(), &opts).map_err(|e| e.to_string())?;
        std::hint::black_box(r);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let wall = t0.elapsed().as_secs_f64() / n as f64;
    let cpu = (cpu_seconds() - c0) / n as f64;
    println!(
        "{n} frames: wall {:.3} ms/frame (min {:.3}), cpu {:.3} ms/frame",
        1e3 * wall,
        1e3 * best,
        1e3 * cpu
    );
    Ok(())
}
