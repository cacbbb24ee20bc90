//! Where the time of one frame goes: stage timings and profile sizes on a phantom angiogram.
//! `cargo run --release -p vesselkit-angio --example stage_time [SEED] [SIZE_PX]`

use std::time::Instant;
use vesselkit_angio::{AngioOptions, analyze_view, centerlines, segment};
use vesselkit_phantom::{AngioParams, generate_angio};

fn main() {
    let arg = |i: usize| std::env::args().nth(i).and_then(|s| s.parse::<u64>().ok());
    let seed = arg(1).unwrap_or(1);
    let size = arg(2).unwrap_or(512) as usize;
    let params = AngioParams {
        rows: size,
        cols: size,
        ..AngioParams::default()
    };
    let Ok(p) = generate_angio(&params, seed) else {
        eprintln!("phantom generation failed");
        return;
    };
    let opts = AngioOptions::for_scale(p.calibration().mm_per_px);
    let t = Instant::now();
    let Ok(seg) = segment(p.image.view(), &opts.segment) else {
        return;
    };
    let t_seg = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let Ok(cl) = centerlines(&seg.mask, &opts.centerline) else {
        return;
    };
    let t_cl = t.elapsed().as_secs_f64() * 1e3;
    let pts: usize = cl.branches.iter().map(|b| b.points.len()).sum();
    let hints: Vec<f32> = cl.branches.iter().flat_map(|b| b.radius_px.iter().copied()).collect();
    let max_hint = hints.iter().copied().fold(0f32, f32::max);
    let mean_hint = hints.iter().sum::<f32>() / hints.len().max(1) as f32;
    println!(
        "segment {t_seg:.1} ms, centerlines {t_cl:.1} ms: {} branches, {pts} points, radius hint mean {mean_hint:.1} max {max_hint:.1} px",
        cl.branches.len()
    );
    let runs = 5;
    let (cpu0, t0) = (cpu_ms(), Instant::now());
    for _ in 0..runs {
        let Ok(r) = analyze_view(p.image.view(), &p.calibration(), &opts) else {
            return;
        };
        println!("{:?}", r.timings_ms);
    }
    let wall = t0.elapsed().as_secs_f64() * 1e3 / runs as f64;
    match (cpu0, cpu_ms()) {
        (Some(a), Some(b)) => println!(
            "per frame: wall {wall:.1} ms, CPU {:.1} ms (all threads; robust to other load)",
            (b - a) / runs as f64
        ),
        _ => println!("per frame: wall {wall:.1} ms"),
    }
}

/// Process CPU time (user + system, all threads) from /proc/self/stat, ms; Linux only.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0) // USER_HZ is 100 on Linux
}
