//! Reliable profile samples of a phantom angiogram as TSV (row, col, diameter, left, right,
//! branch) for offline study of diameter errors.
//! `cargo run --release -p vesselkit-angio --example dump_samples SEED > samples.tsv`

use vesselkit_angio::{AngioOptions, analyze_view};
use vesselkit_phantom::{AngioParams, generate_angio};

fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1u64);
    let Ok(p) = generate_angio(&AngioParams::default(), seed) else {
        eprintln!("phantom generation failed");
        return;
    };
    let mut opts = AngioOptions::for_scale(p.calibration().mm_per_px);
    if let Some(v) = std::env::var("VK_ES").ok().and_then(|v| v.parse().ok()) {
        opts.profile.edge_smoothing_px = v;
    }
    let Ok(r) = analyze_view(p.image.view(), &p.calibration(), &opts) else {
        eprintln!("analysis failed");
        return;
    };
    println!("row\tcol\td\tleft\tright\tbranch\treliable");
    for b in &r.tree.branches {
        for s in &b.samples {
            println!(
                "{:.2}\t{:.2}\t{:.4}\t{:.4}\t{:.4}\t{}\t{}",
                s.point.row, s.point.col, s.diameter_mm, s.left_mm, s.right_mm, b.id, s.reliable as u8
            );
        }
    }
}
