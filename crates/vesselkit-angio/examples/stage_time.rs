//! Where the time of one frame goes: per-stage wall clock (minimum over runs) and CPU time (all
//! threads, mean over runs) on a phantom angiogram, plus result fingerprints so that a speed
//! change can be checked for equivalence.
//! `cargo run --release -p vesselkit-angio --example stage_time [SEED] [SIZE_PX] [RUNS]`; seed 0
//! times the synthetic tree of `benches/analyze.rs` with default options instead.
//! `STAGE_TIME_SAVE=FILE` writes the input image (raw little-endian f32, row-major) and
//! `STAGE_TIME_IMAGE=FILE` reads one instead of generating it (same SIZE_PX; calibration and
//! options of the seed), so that two builds can be compared on identical input.

use ndarray::Array2;

#[path = "../benches/common/bench_tree.rs"]
mod bench_tree;
use std::time::Instant;
use vesselkit_angio::{AngioOptions, analyze_view, build_tree, centerlines, mask, segment, skeletonize};
use vesselkit_core::Calibration;
use vesselkit_phantom::{AngioParams, generate_angio};

fn main() {
    let arg = |i: usize| std::env::args().nth(i).and_then(|s| s.parse::<u64>().ok());
    let seed = arg(1).unwrap_or(1);
    let size = arg(2).unwrap_or(512) as usize;
    let runs = arg(3).unwrap_or(7).max(1) as usize;
    let params = AngioParams {
        rows: size,
        cols: size,
        ..AngioParams::default()
    };
    let (image, cal, opts) = if seed == 0 {
        let Ok(cal) = Calibration::user(0.2) else { return };
        (bench_tree(size), cal, AngioOptions::default())
    } else {
        let Ok(p) = generate_angio(&params, seed) else {
            eprintln!("phantom generation failed");
            return;
        };
        let cal = p.calibration();
        let opts = AngioOptions::for_scale(cal.mm_per_px);
        (p.image, cal, opts)
    };
    let image = match std::env::var_os("STAGE_TIME_IMAGE") {
        Some(path) => {
            let Ok(bytes) = std::fs::read(&path) else {
                eprintln!("cannot read {path:?}");
                return;
            };
            let px: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let Ok(a) = Array2::from_shape_vec((size, size), px) else {
                eprintln!("{path:?} does not hold {size} x {size} f32 pixels");
                return;
            };
            a
        }
        None => image,
    };
    if let Some(path) = std::env::var_os("STAGE_TIME_SAVE") {
        let bytes: Vec<u8> = image.iter().flat_map(|v| v.to_le_bytes()).collect();
        if std::fs::write(&path, bytes).is_err() {
            eprintln!("cannot write {path:?}");
        }
    }
    let img = image.view();
    let Ok(seg) = segment(img, &opts.segment) else {
        eprintln!("segmentation failed");
        return;
    };
    let Ok(cl) = centerlines(&seg.mask, &opts.centerline) else {
        eprintln!("centerlines failed");
        return;
    };
    let Ok(tree) = build_tree(img, &cl, &cal, &opts) else {
        eprintln!("profiles failed");
        return;
    };
    let pts: usize = cl.branches.iter().map(|b| b.points.len()).sum();
    let skel = cl.skeleton.iter().filter(|&&v| v).count();
    let mask = seg.mask.iter().filter(|&&v| v).count();
    let diam: f64 = tree
        .branches
        .iter()
        .flat_map(|b| b.samples.iter())
        .filter(|s| s.diameter_mm.is_finite())
        .map(|s| s.diameter_mm)
        .sum();
    println!(
        "{size}x{size} seed {seed}: mask {mask} px, skeleton {skel} px, {} branches, {pts} points, diameter sum {diam:.6} mm",
        cl.branches.len()
    );
    // Exact fingerprints: equal hashes mean bit-identical masks, skeletons and centerlines.
    let h_mask = fnv(seg.mask.iter().map(|&v| v as u64));
    let h_skel = fnv(cl.skeleton.iter().map(|&v| v as u64));
    let h_pts = fnv(cl.branches.iter().flat_map(|b| {
        let pts = b.points.iter().flat_map(|p| [p.row.to_bits(), p.col.to_bits()]);
        let rad = b.radius_px.iter().map(|r| r.to_bits() as u64);
        let links = [
            b.parent.map_or(u64::MAX, |p| p as u64),
            b.start_degree as u64,
            b.end_degree as u64,
        ];
        pts.chain(rad).chain(links).collect::<Vec<_>>()
    }));
    let h_vess = fnv(seg.vesselness.iter().map(|v| v.to_bits() as u64));
    println!("hash mask {h_mask:016x} skeleton {h_skel:016x} centerlines {h_pts:016x} vesselness {h_vess:016x}");
    let mut rows = Vec::new();
    rows.push(("segment", stage(runs, || drop(segment(img, &opts.segment)))));
    rows.push((
        "centerlines",
        stage(runs, || drop(centerlines(&seg.mask, &opts.centerline))),
    ));
    rows.push(("profiles", stage(runs, || drop(build_tree(img, &cl, &cal, &opts)))));
    // Parts of the centerline stage.
    rows.push(("  distance", stage(runs, || drop(mask::distance_transform(&seg.mask)))));
    rows.push(("  skeletonize", stage(runs, || drop(skeletonize(&seg.mask)))));
    rows.push(("  label", stage(runs, || drop(mask::label(&seg.mask, true)))));
    rows.push(("analyze_view", stage(runs, || drop(analyze_view(img, &cal, &opts)))));
    for (name, (wall, cpu)) in rows {
        println!("{name:>13}: wall min {wall:7.1} ms, CPU mean {cpu:7.1} ms");
    }
}

/// FNV-1a over 64-bit words.
fn fnv(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(0xcbf2_9ce4_8422_2325, |h, w| (h ^ w).wrapping_mul(0x0100_0000_01b3))
}

/// (minimum wall ms, mean CPU ms over all threads) of `runs` calls of `f`.
fn stage(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    // `STAGE_TIME_ONLY=N` times only the N-th stage (0-based), e.g. to profile it alone.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let me = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(only) = std::env::var("STAGE_TIME_ONLY")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        && only != me
    {
        return (f64::NAN, f64::NAN);
    }
    let mut wall = f64::INFINITY;
    let c0 = cpu_ns();
    for _ in 0..runs {
        let t = Instant::now();
        f();
        wall = wall.min(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e6 / runs as f64,
        _ => f64::NAN,
    };
    (wall, cpu)
}

/// CPU time (ns) of every thread of this process, from /proc/self/task/*/schedstat; Linux only.
/// The worker threads live as long as the process, so differences are exact.
fn cpu_ns() -> Option<u64> {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let s = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The synthetic tree of `benches/analyze.rs` (full opacification).
fn bench_tree(n: usize) -> Array2<f32> {
    bench_tree::synthetic(n, 1.0)
}
