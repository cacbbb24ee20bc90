//! Every scored diameter pair of the phantom eval as TSV (with the gap to the nearest other
//! lumen), and on stderr the smallest measured diameter near each narrowing lesion, to find
//! where the diameter spread comes from.
//! `cargo run --release -p vesselkit-eval --example diameter_errors [CASES] > pairs.tsv`
//! Environment overrides for experiments: `VK_BG` (background strength), `VK_I0` (detector
//! counts), `VK_DS`, `VK_DSR`, `VK_AA`, `VK_ES` (profile options: derivative sigma, sigma per
//! radius, along-vessel averaging, edge smoothing), `VK_BLUR` (blur sigma of the lumen fit, px;
//! unset: read from the image), `VK_FIT` (0 turns the lumen fit off).

use vesselkit_angio::{AngioOptions, analyze_view};
use vesselkit_eval::{EvalConfig, measurable_stations};
use vesselkit_phantom::generate_angio;

fn main() {
    let cases = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10u64);
    let mut cfg = EvalConfig::default();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = env("VK_BG") {
        cfg.angio.background_strength = v;
    }
    if let Some(v) = env("VK_I0") {
        cfg.angio.i0_counts = v;
    }
    println!("seed\trow\tcol\ttruth_d\terr\tleft\tright\tchannels\tdensity\tbranch\tdist_px\tdiluted\tgap_px");
    for i in 0..cases {
        let seed = cfg.seed + i;
        let Ok(p) = generate_angio(&cfg.angio, seed) else {
            eprintln!("phantom {seed} failed");
            continue;
        };
        let mut opts = AngioOptions::for_scale(p.calibration().mm_per_px);
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = env("VK_DS") {
            opts.profile.derivative_sigma_px = v;
        }
        if let Some(v) = env("VK_DSR") {
            opts.profile.derivative_sigma_per_radius = v;
        }
        if let Some(v) = env("VK_ES") {
            opts.profile.edge_smoothing_px = v;
        }
        if let Some(v) = env("VK_AA") {
            opts.profile.along_average_px = v;
        }
        if let Some(v) = env("VK_BLUR") {
            opts.profile.blur_sigma_px = Some(v);
        }
        if let Some(v) = env("VK_FIT") {
            opts.profile.fit_lumen = v > 0.0;
        }
        let Ok(r) = analyze_view(p.image.view(), &p.calibration(), &opts) else {
            eprintln!("analysis {seed} failed");
            continue;
        };
        let stations = measurable_stations(&p.truth);
        // Smallest measured diameter within 1 mm of each narrowing lesion's truth site.
        for l in p
            .truth
            .lesions
            .iter()
            .filter(|l| l.lesion_type != vesselkit_core::LesionType::Occlusion)
        {
            let reach_px = 1.0 / p.truth.mm_per_px;
            let min_d = r
                .tree
                .branches
                .iter()
                .flat_map(|b| b.samples.iter())
                .filter(|s| s.diameter_mm.is_finite() && s.point.dist(l.site) <= reach_px)
                .map(|s| s.diameter_mm)
                .fold(f64::INFINITY, f64::min);
            eprintln!(
                "MLD\t{seed}\t{:?}\t{:.3}\t{:.3}\t{:.3}\t{:.1}\t{:.1}",
                l.lesion_type,
                l.mld_mm,
                min_d,
                min_d - l.mld_mm,
                l.site.row,
                l.site.col
            );
        }
        let px = p.truth.mm_per_px;
        // Gap (px) from each station's lumen to the nearest lumen of another branch.
        let all: Vec<(usize, vesselkit_core::Point, f64)> = p
            .truth
            .branches
            .iter()
            .enumerate()
            .flat_map(|(bi, b)| {
                b.samples
                    .iter()
                    .filter(|s| s.contrast > 0.0 && s.diameter_mm > 0.0)
                    .map(move |s| (bi, s.point, s.diameter_mm / (2.0 * px)))
            })
            .collect();
        let gap_of = |pt: vesselkit_core::Point, d_mm: f64| -> f64 {
            let own = all.iter().filter(|x| x.1.dist(pt) < 1e-6).map(|x| x.0).next();
            all.iter()
                .filter(|x| Some(x.0) != own)
                .map(|x| x.1.dist(pt) - x.2 - d_mm / (2.0 * px))
                .fold(f64::INFINITY, f64::min)
        };
        for b in &r.tree.branches {
            for s in b.samples.iter().filter(|s| s.reliable && s.diameter_mm.is_finite()) {
                let best = stations
                    .iter()
                    .map(|(t, dil)| (t.point.dist(s.point), t, *dil))
                    .filter(|x| x.0 <= cfg.diameter_tolerance_px)
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((d, t, dil)) = best {
                    println!(
                        "{seed}\t{:.1}\t{:.1}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{}\t{:.2}\t{}\t{:.2}\t{}\t{:.1}",
                        s.point.row,
                        s.point.col,
                        t.diameter_mm,
                        s.diameter_mm - t.diameter_mm,
                        s.left_mm,
                        s.right_mm,
                        s.channels,
                        s.density_ratio,
                        b.id,
                        d,
                        dil as u8,
                        gap_of(t.point, t.diameter_mm).min(99.0)
                    );
                }
            }
        }
    }
}
