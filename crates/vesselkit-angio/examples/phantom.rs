//! The pipeline on vesselkit-phantom angiograms: mask Dice and diameter error on reliable
//! samples matched to the nearest truth centerline sample (within 1 px).

use vesselkit_angio::{AngioOptions, analyze_view, dice};
use vesselkit_phantom::{AngioParams, generate_angio};

fn main() {
    for seed in 1..=5u64 {
        let p = match generate_angio(&AngioParams::default(), seed) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("phantom: {e}");
                return;
            }
        };
        // Scales and background window from the physical vessel sizes at the phantom's pixel size.
        // `PHANTOM_MANUAL=1` uses the earlier hand-picked scales for comparison.
        let opts = if std::env::var_os("PHANTOM_MANUAL").is_some() {
            let mut o = AngioOptions::default();
            o.segment.vesselness.sigmas_px = vec![1.0, 2.0, 4.0, 8.0];
            o.segment.background_radius_px = 30;
            o
        } else {
            AngioOptions::for_scale(p.calibration().mm_per_px)
        };
        let t = std::time::Instant::now();
        let Ok(res) = analyze_view(p.image.view(), &p.calibration(), &opts) else {
            return;
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let truth: Vec<_> = p.truth.branches.iter().flat_map(|b| b.samples.iter()).collect();
        let mut err = Vec::new();
        for b in &res.tree.branches {
            for s in b
                .samples
                .iter()
                .filter(|s| s.reliable && s.diameter_mm.is_finite())
                .step_by(4)
            {
                let best = truth
                    .iter()
                    .map(|q| (q.point.dist(s.point), q.diameter_mm))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((d, dt)) = best
                    && d < 1.0
                    && (1.0..=6.0).contains(&dt)
                {
                    err.push(s.diameter_mm - dt);
                }
            }
        }
        let n = err.len().max(1) as f64;
        let bias = err.iter().sum::<f64>() / n;
        let sd = (err.iter().map(|e| (e - bias).powi(2)).sum::<f64>() / n).sqrt();
        println!(
            "seed {seed}: Dice {:.3}, branches {}, diameter error (1-6 mm, {} samples) bias {bias:+.3} mm sd {sd:.3} mm, {ms:.0} ms",
            dice(&res.mask, &p.mask),
            res.tree.branches.len(),
            err.len()
        );
    }
}
