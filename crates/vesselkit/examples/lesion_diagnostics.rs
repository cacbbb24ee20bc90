//! Lesion diagnostics on seeded phantoms: for every true lesion the nearest detection, for every
//! unmatched detection its evidence, and the pooled sensitivity / PPV / type accuracy with the
//! same greedy site matching (3 mm) as `vesselkit eval`.
//!
//! ```text
//! cargo run --release -p vesselkit --example lesion_diagnostics -- [--cases N] [--seed S]
//!     [--cine N] [--cache DIR] [--profile] [--rules FILE]
//! ```
//! `--cache DIR` stores the measured vessel trees so that later runs only redo the lesion stage
//! (delete the directory when the angiography stage changes). `--profile` prints the diameter
//! profile around each true lesion.

use std::path::PathBuf;
use vesselkit::core::{Calibration, CalibrationSource, Cine, Frame, LesionType, Point, VesselTree};
use vesselkit::lesion::{EndProbe, Lesion, PlanInput, Rules};
use vesselkit_phantom::{AngioParams, AngioTruth, CineParams, generate_angio, generate_cine};

const NAN_TAG: f64 = -9.87654321e300;

fn tag_nan(x: &mut f64) {
    if x.is_nan() {
        *x = NAN_TAG;
    }
}

fn untag_nan(x: &mut f64) {
    if *x == NAN_TAG {
        *x = f64::NAN;
    }
}

/// JSON has no NaN: tag them for the cache.
fn map_tree(t: &mut VesselTree, f: fn(&mut f64)) {
    for b in &mut t.branches {
        for s in &mut b.samples {
            f(&mut s.diameter_mm);
            f(&mut s.left_mm);
            f(&mut s.right_mm);
            f(&mut s.density_ratio);
        }
        f(&mut b.tortuosity.dm);
        f(&mut b.tortuosity.icm);
        f(&mut b.tortuosity.soam_rad_per_mm);
        f(&mut b.tortuosity.max_bend_deg);
    }
}

fn cached_tree(cache: &Option<PathBuf>, key: &str, make: impl FnOnce() -> VesselTree) -> VesselTree {
    let Some(dir) = cache else { return make() };
    let path = dir.join(format!("{key}.json"));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(mut t) = serde_json::from_str::<VesselTree>(&text)
    {
        map_tree(&mut t, untag_nan);
        return t;
    }
    let t = make();
    let mut tagged = t.clone();
    map_tree(&mut tagged, tag_nan);
    let _ = std::fs::create_dir_all(dir);
    if let Ok(s) = serde_json::to_string(&tagged) {
        let _ = std::fs::write(&path, s);
    }
    t
}

#[derive(Default)]
struct Tally {
    n_true: usize,
    n_det: usize,
    matched: usize,
    typed_ok: usize,
    /// [true type][predicted type]
    confusion: [[u32; 5]; 5],
    rec9_ok: usize,
    rec9_cases: usize,
}

fn ti(t: LesionType) -> usize {
    LesionType::ALL.iter().position(|&x| x == t).unwrap_or(0)
}

fn nearest_sample(tree: &VesselTree, p: Point) -> Option<(usize, usize, f64)> {
    let mut best: Option<(usize, usize, f64)> = None;
    for b in &tree.branches {
        for (i, s) in b.samples.iter().enumerate() {
            let d = s.point.dist(p);
            if best.is_none_or(|x| d < x.2) {
                best = Some((b.id, i, d));
            }
        }
    }
    best
}

/// The truth station nearest to `p`: branch, arc / length, how the branch ends, and the drawn
/// diameter and contrast there (tells a false positive at a vessel end from one mid-vessel).
fn nearest_truth(truth: &AngioTruth, p: Point) -> String {
    let mut best: Option<(f64, usize, usize)> = None;
    for (bi, b) in truth.branches.iter().enumerate() {
        for (i, s) in b.samples.iter().enumerate() {
            let d = s.point.dist(p);
            if best.is_none_or(|x| d < x.0) {
                best = Some((d, bi, i));
            }
        }
    }
    let Some((d, bi, i)) = best else {
        return "no truth".into();
    };
    let b = &truth.branches[bi];
    let s = &b.samples[i];
    format!(
        "truth br {bi} gen {} arc {:.1}/{:.1} {:?} children {} d {:.2} c {:.2} at {:.1} mm",
        b.generation,
        s.arc_mm,
        b.length_mm,
        b.distal_end,
        b.children.len(),
        s.diameter_mm,
        s.contrast,
        d * truth.mm_per_px
    )
}

fn describe(l: &Lesion, tree: &VesselTree, probes: &[Option<EndProbe>]) -> String {
    let ev = &l.evidence;
    if ev.cutoff
        && let Some(b) = l.vessel.and_then(|v| tree.branches.get(v))
    {
        let mut d: Vec<f64> = b
            .samples
            .iter()
            .filter(|s| s.reliable && s.diameter_mm.is_finite())
            .map(|s| s.diameter_mm)
            .collect();
        let n = d.len();
        let first = if n >= 3 {
            d[..n / 3].iter().sum::<f64>() / (n / 3) as f64
        } else {
            f64::NAN
        };
        d.sort_by(f64::total_cmp);
        let probe = probes.get(b.id).copied().flatten();
        return format!(
            "{:?} conf {:.2} CUTOFF MLD {:.2} ref {:.2} parent {:?} children {} blen {:.1} first3 {:.2} med {:.2} stump {:?} taper {:.1} rel {:.2} gap {:?} beyond {:?} neck {:?} fade {:?} probe after {} fan {} refill {} | {}",
            l.lesion_type,
            l.confidence,
            l.mld_mm,
            l.reference_diameter_mm,
            b.parent,
            b.children.len(),
            b.length_mm,
            first,
            d.get(n / 2).copied().unwrap_or(f64::NAN),
            ev.stump,
            ev.length_mm,
            ev.reliable_fraction,
            ev.continuation_gap_mm.map(|g| (g * 10.0).round() / 10.0),
            ev.beyond_end_ratio.map(|g| (g * 100.0).round() / 100.0),
            ev.beyond_end_neck_ratio.map(|g| (g * 100.0).round() / 100.0),
            ev.stump_contrast_ratio.map(|g| (g * 100.0).round() / 100.0),
            probe.map_or("-".into(), |p| format!("{:.2}", p.after_neck_ratio)),
            probe.map_or("-".into(), |p| format!("{:.2}", p.fan_ratio)),
            probe
                .and_then(|p| p.refill_ratio)
                .map_or("-".into(), |r| format!("{r:.2}")),
            ev.rule_text
        );
    }
    let b = l.vessel.and_then(|v| tree.branches.get(v));
    let (blen, bend, bflow) = b.map_or((f64::NAN, "-".to_string(), None), |b| {
        (
            b.length_mm,
            format!(
                "{:?} bT dm {:.2} b {} max {:.0}",
                b.distal_end, b.tortuosity.dm, b.tortuosity.bends, b.tortuosity.max_bend_deg
            ),
            b.flow_grade,
        )
    });
    format!(
        "{:?} conf {:.2} DS {:.0}% dDS {:?} MLD {:.2} ref {:.2} len {:.1} | br {:?} len {:.0} end {} flow {:?} arc {:.1} [{:.1},{:.1}] rel {:.2} ch {} mc {} dens {:?} low {} sym {:?} angle {:?} segDM {:?} segB {:?} loc {:?} gap {:?} opa {:?} qmin {:?} | {}",
        l.lesion_type,
        l.confidence,
        l.diameter_stenosis_pct,
        ev.densitometric_ds_pct.map(|x| x.round()),
        l.mld_mm,
        l.reference_diameter_mm,
        l.length_mm,
        l.vessel,
        blen,
        bend,
        bflow,
        ev.arc_mm,
        ev.start_mm,
        ev.end_mm,
        ev.reliable_fraction,
        ev.channels_max,
        ev.multichannel_samples,
        ev.density_ratio_min.map(|x| (x * 100.0).round() / 100.0),
        ev.low_density_samples,
        ev.symmetry.map(|x| (x * 100.0).round() / 100.0),
        ev.lesion_angle_deg.map(|x| x.round()),
        ev.segment_tortuosity.map(|t| (t.dm * 100.0).round() / 100.0),
        ev.segment_tortuosity.map(|t| t.bends),
        ev.local_tortuosity
            .map(|t| (t.bends, (t.max_bend_deg).round(), (t.dm * 100.0).round() / 100.0)),
        ev.continuation_gap_mm.map(|g| (g * 10.0).round() / 10.0),
        ev.distal_opacity_ratio.map(|g| (g * 100.0).round() / 100.0),
        ev.centreline_contrast_ratio_min.map(|g| (g * 100.0).round() / 100.0),
        ev.rule_text
    )
}

/// Prints the profile around a true lesion: arc:diameter, `u` unreliable, `cN` channels,
/// `rX` density ratio, `oN` centreline opacity ×100 (log attenuation against the background).
fn profile_around(tree: &VesselTree, opacity: &[Vec<f64>], t: &vesselkit_phantom::LesionTruth, offset: [f64; 2]) {
    let site = Point::new(t.site.row + offset[0], t.site.col + offset[1]);
    let Some((bid, i, dist_px)) = nearest_sample(tree, site) else {
        return;
    };
    let b = &tree.branches[bid];
    let s0 = b.samples[i].arc_mm;
    let half = t.extent_mm + 3.0;
    println!(
        "      profile br {bid} (parent {:?}, children {}, len {:.1}, end {:?}) around arc {:.1}, {dist_px:.1} px from the site:",
        b.parent,
        b.children.len(),
        b.length_mm,
        b.distal_end,
        s0
    );
    let mut line = String::new();
    for (k, s) in b
        .samples
        .iter()
        .enumerate()
        .filter(|(_, s)| (s.arc_mm - s0).abs() <= half)
    {
        let o = opacity.get(bid).and_then(|v| v.get(k)).copied().unwrap_or(f64::NAN);
        line.push_str(&format!(
            " {:.1}:{:.2}{}{}{}o{:.0}",
            s.arc_mm,
            s.diameter_mm,
            if s.reliable { "" } else { "u" },
            if s.channels >= 2 {
                format!("c{}", s.channels)
            } else {
                String::new()
            },
            if s.density_ratio < 0.8 {
                format!("r{:.2}", s.density_ratio)
            } else {
                String::new()
            },
            o * 100.0
        ));
    }
    println!("       {line}");
}

#[allow(clippy::too_many_arguments)]
fn score(
    name: &str,
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    probes: &[Option<EndProbe>],
    lesions: &[Lesion],
    truth: &AngioTruth,
    offset: [f64; 2],
    tally: &mut Tally,
    show_profile: bool,
) {
    let tol = 3.0 / truth.mm_per_px;
    let tsites: Vec<Point> = truth
        .lesions
        .iter()
        .map(|l| Point::new(l.site.row + offset[0], l.site.col + offset[1]))
        .collect();
    let dsites: Vec<Point> = lesions
        .iter()
        .map(|l| {
            l.site
                .map_or(Point::new(f64::NAN, f64::NAN), |s| Point::new(s.row, s.col))
        })
        .collect();
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, d) in dsites.iter().enumerate() {
        for (j, t) in tsites.iter().enumerate() {
            let dist = d.dist(*t);
            if dist <= tol {
                pairs.push((dist, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut md = vec![None; lesions.len()];
    let mut mt = vec![None; truth.lesions.len()];
    for (dist, i, j) in pairs {
        if md[i].is_none() && mt[j].is_none() {
            md[i] = Some((j, dist));
            mt[j] = Some((i, dist));
        }
    }
    tally.n_true += truth.lesions.len();
    tally.n_det += lesions.len();
    println!("== {name}: {} true, {} detected", truth.lesions.len(), lesions.len());
    let mut ranked: Vec<(LesionType, usize)> = Vec::new();
    for (j, t) in truth.lesions.iter().enumerate() {
        let br = &truth.branches[t.branch];
        let mean_d = br.samples.iter().map(|s| s.reference_diameter_mm).sum::<f64>() / br.samples.len().max(1) as f64;
        print!(
            "  T{j} {:?} site ({:.0},{:.0}) DS {:.0}% ref {:.2} len {:.1} ext {:.1} flow {} ch {} | branch d {:.1} -> ",
            t.lesion_type,
            tsites[j].row,
            tsites[j].col,
            t.diameter_stenosis_pct,
            t.reference_diameter_mm,
            t.length_mm,
            t.extent_mm,
            t.flow_grade,
            t.channels,
            mean_d
        );
        match mt[j] {
            Some((i, dist)) => {
                tally.matched += 1;
                let l = &lesions[i];
                tally.confusion[ti(t.lesion_type)][ti(l.lesion_type)] += 1;
                if l.lesion_type == t.lesion_type {
                    tally.typed_ok += 1;
                }
                if let Some(p) = l.priority {
                    ranked.push((t.lesion_type, p));
                }
                println!(
                    "{} at {:.1} mm: {}",
                    if l.lesion_type == t.lesion_type {
                        "OK"
                    } else {
                        "WRONG TYPE"
                    },
                    dist * truth.mm_per_px,
                    describe(l, tree, probes)
                );
            }
            None => {
                let near = dsites
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (i, d.dist(tsites[j])))
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                match near {
                    Some((i, d)) => println!(
                        "MISSED (nearest det {:.1} mm: {})",
                        d * truth.mm_per_px,
                        describe(&lesions[i], tree, probes)
                    ),
                    None => println!("MISSED (no detections)"),
                }
            }
        }
        if show_profile || mt[j].is_none() {
            profile_around(tree, opacity, t, offset);
        }
    }
    for (i, l) in lesions.iter().enumerate() {
        if md[i].is_none() {
            let s = dsites[i];
            println!(
                "  FP ({:.0},{:.0}) [{}] {}",
                s.row,
                s.col,
                nearest_truth(truth, Point::new(s.row - offset[0], s.col - offset[1])),
                describe(l, tree, probes)
            );
        }
    }
    // Recommendation 9 on the pipeline's own types.
    let g = |t: LesionType| matches!(t, LesionType::Occlusion | LesionType::Tortuous);
    let worst0 = lesions
        .iter()
        .filter(|l| !g(l.lesion_type))
        .filter_map(|l| l.priority)
        .max();
    let best1 = lesions
        .iter()
        .filter(|l| g(l.lesion_type))
        .filter_map(|l| l.priority)
        .min();
    tally.rec9_cases += 1;
    if match (worst0, best1) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    } {
        tally.rec9_ok += 1;
    }
}

fn summary(name: &str, t: &Tally) {
    let sens = t.matched as f64 / t.n_true.max(1) as f64;
    let ppv = t.matched as f64 / t.n_det.max(1) as f64;
    println!(
        "## {name}: sensitivity {sens:.2} ({}/{}), PPV {ppv:.2} ({}/{}), type accuracy {:.2} ({}/{}), rec9 {}/{}",
        t.matched,
        t.n_true,
        t.matched,
        t.n_det,
        t.typed_ok as f64 / t.matched.max(1) as f64,
        t.typed_ok,
        t.matched,
        t.rec9_ok,
        t.rec9_cases
    );
    println!("   confusion (rows true R W S O T, cols predicted):");
    for (k, row) in t.confusion.iter().enumerate() {
        let n: u32 = row.iter().sum();
        println!(
            "   {:?}: {:?} recall {:.2}",
            LesionType::ALL[k],
            row,
            row[k] as f64 / n.max(1) as f64
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cases = 10usize;
    let mut seed = 1u64;
    let mut cine_cases = 2usize;
    let mut cache: Option<PathBuf> = None;
    let mut show_profile = false;
    let mut rules_path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cases" => cases = args.next().ok_or("--cases N")?.parse()?,
            "--seed" => seed = args.next().ok_or("--seed S")?.parse()?,
            "--cine" => cine_cases = args.next().ok_or("--cine N")?.parse()?,
            "--cache" => cache = Some(PathBuf::from(args.next().ok_or("--cache DIR")?)),
            "--profile" => show_profile = true,
            "--rules" => rules_path = Some(PathBuf::from(args.next().ok_or("--rules FILE")?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if let Some(dir) = &cache {
        std::fs::create_dir_all(dir)?;
    }
    let opts = vesselkit::Options::default();
    let rules = match &rules_path {
        Some(p) => Rules::from_path(p)?,
        None => Rules::default(),
    };
    let cal = |mm: f64| Calibration {
        mm_per_px: mm,
        source: CalibrationSource::PixelSpacing,
        detail: Some("phantom".into()),
    };
    let mut tally = Tally::default();
    for s in seed..seed + cases as u64 {
        let ph = generate_angio(&AngioParams::default(), s)?;
        let tree = cached_tree(&cache, &format!("angio_{s}"), || {
            let frame = Frame::new(ph.image.clone(), cal(ph.truth.mm_per_px)).expect("phantom frame");
            vesselkit::analyze_frame(&frame, &opts).expect("analysis").angio.tree
        });
        let opacity = vesselkit::branch_opacity(ph.image.view(), &tree);
        let d = &rules.detection;
        let beyond = vesselkit::end_probes(
            ph.image.view(),
            &tree,
            &opacity,
            d.angle_window_mm,
            1.0,
            d.beyond_end_probe_mm,
        );
        let mut lesions = vesselkit::lesion::detect_with_probes(&tree, &opacity, &beyond, &rules)?;
        vesselkit::lesion::drop_edge_cutoffs(&mut lesions, ph.image.dim(), &tree, &rules);
        let a = vesselkit::lesion::assess_detected(lesions, &tree, &rules, &PlanInput::default())?;
        score(
            &format!("angio seed {s}"),
            &tree,
            &opacity,
            &beyond,
            &a.lesions,
            &ph.truth,
            [0.0, 0.0],
            &mut tally,
            show_profile,
        );
    }
    summary("angio", &tally);
    let mut ct = Tally::default();
    for i in 0..cine_cases {
        let s = seed + 10_000 + i as u64;
        let ph = generate_cine(&CineParams::default(), s)?;
        // The frame the tree was measured on is cached beside it: densitometry reads that frame.
        let frame_file = cache.as_ref().map(|d| d.join(format!("cine_{s}.frame")));
        let mut frame_used: Option<usize> = frame_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse().ok());
        let tree = cached_tree(&cache, &format!("cine_{s}"), || {
            let cine = Cine::new(ph.frames.clone(), cal(ph.truth.geometry.mm_per_px), ph.frame_times_ms())
                .expect("phantom cine");
            let an = vesselkit::analyze(&cine, &opts).expect("analysis");
            frame_used = Some(an.frame_used);
            if let Some(f) = &frame_file {
                let _ = std::fs::write(f, an.frame_used.to_string());
            }
            an.angio.tree
        });
        let img = ph.frames.index_axis(
            ndarray::Axis(0),
            frame_used.ok_or("frame used unknown: clear the cache")?,
        );
        let opacity = vesselkit::branch_opacity(img, &tree);
        let d = &rules.detection;
        // As the facade does: probe past the ends on the run's fullest filling.
        let polarity = vesselkit::filters::Polarity::DarkOnBright;
        let shifts = vesselkit::angio::frame_shifts(
            ph.frames.view(),
            &tree,
            polarity,
            vesselkit::angio::FlowOptions::default().max_shift_px,
        )?;
        let beyond = vesselkit::cine_end_probes(
            ph.frames.view(),
            &shifts,
            polarity,
            &tree,
            d.angle_window_mm,
            1.0,
            d.beyond_end_probe_mm,
        )?;
        let mut lesions = vesselkit::lesion::detect_with_probes(&tree, &opacity, &beyond, &rules)?;
        vesselkit::lesion::drop_edge_cutoffs(&mut lesions, img.dim(), &tree, &rules);
        let a = vesselkit::lesion::assess_detected(lesions, &tree, &rules, &PlanInput::default())?;
        let n = ph.truth.frames.len().max(1) as f64;
        let off = ph.truth.frames.iter().fold([0.0, 0.0], |acc, f| {
            [acc[0] + f.vessel_offset_px[0] / n, acc[1] + f.vessel_offset_px[1] / n]
        });
        score(
            &format!("cine seed {s}"),
            &tree,
            &opacity,
            &beyond,
            &a.lesions,
            &ph.truth.geometry,
            off,
            &mut ct,
            show_profile,
        );
    }
    if cine_cases > 0 {
        summary("cine", &ct);
    }
    Ok(())
}
