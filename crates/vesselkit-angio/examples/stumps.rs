//! Does the centerline tree keep occlusion stumps and pass through narrowings? Over phantom
//! angiograms (`generate_angio`, default parameters), for every true occlusion: is there a free
//! branch end of the analysed tree within 3 mm of the stump end; for every other true lesion:
//! does the tree pass through its site (a centerline point within 1.5 mm that is at least 1 mm
//! of arc from any free end of its branch); and how many free ends lie at no true vessel end
//! (false ends).
//!
//! `cargo run --release -p vesselkit-angio --example stumps [FIRST_SEED] [LAST_SEED]`
//! (default 101..=140, the development seeds; the evaluation uses 1..=10).
//! `STUMPS_SHOW=1` prints a character crop (image, mask, tree) around every missed occlusion;
//! `STUMPS_ENDS=1` lists the false ends with the nearest truth station. `STUMPS_KEEP=0|1`,
//! `STUMPS_SPLIT=0|1` and `STUMPS_LENGTH_RADII=x` override the centerline options.

use vesselkit_angio::{AngioOptions, analyze_view};
use vesselkit_core::{BranchEnd, LesionType, Point, VesselTree};
use vesselkit_phantom::{AngioParams, AngioPhantom, generate_angio};

/// Match radius for occlusion stump ends and true vessel ends, mm.
const END_MATCH_MM: f64 = 3.0;
/// A stenosis site counts as passed when a centerline point lies this close, mm...
const PASS_MM: f64 = 1.5;
/// ...and that point is at least this far (arc) from a free end of its branch, mm.
const PASS_CLEAR_MM: f64 = 1.0;
/// Terminal truth branches fade out over their last 6 mm: a detected end anywhere on that
/// stretch (plus the match radius) is at a true end.
const FADE_MM: f64 = 6.0;

/// Free ends of a tree: `(point, branch, is_distal)`.
fn free_ends(tree: &VesselTree) -> Vec<(Point, usize, bool)> {
    let mut out = Vec::new();
    for b in &tree.branches {
        let (Some(first), Some(last)) = (b.samples.first(), b.samples.last()) else {
            continue;
        };
        if b.children.is_empty() && b.distal_end != BranchEnd::Junction {
            out.push((last.point, b.id, true));
        }
        // A branch without a parent starts at a free end (root of its component) unless its
        // start is a junction shared with siblings (a root node of degree >= 3 is rare).
        if b.parent.is_none() {
            out.push((first.point, b.id, false));
        }
    }
    out
}

/// Points where the true opacified vessel ends: the tail of every terminal branch (fade zone),
/// every occlusion stump end, and the proximal start of the root.
fn true_end_zones(p: &AngioPhantom) -> Vec<Point> {
    let t = &p.truth;
    let mut pts = Vec::new();
    for b in &t.branches {
        let vis: Vec<_> = b.samples.iter().filter(|s| s.contrast > 0.0).collect();
        let Some(last) = vis.last() else { continue };
        if b.children.is_empty() || b.distal_end == BranchEnd::Abrupt {
            pts.extend(
                vis.iter()
                    .filter(|s| s.arc_mm >= last.arc_mm - FADE_MM)
                    .map(|s| s.point),
            );
        }
        if b.parent.is_none()
            && let Some(f) = vis.first()
        {
            pts.push(f.point);
        }
    }
    pts.extend(
        t.lesions
            .iter()
            .filter(|l| l.lesion_type == LesionType::Occlusion)
            .map(|l| l.site),
    );
    pts
}

fn at_border(q: Point, rows: usize, cols: usize, margin: f64) -> bool {
    q.row < margin || q.col < margin || q.row > rows as f64 - 1.0 - margin || q.col > cols as f64 - 1.0 - margin
}

#[derive(Default)]
struct Tally {
    occl: usize,
    occl_found: usize,
    occl_abrupt: usize,
    sten: usize,
    sten_passed: usize,
    ends: usize,
    false_ends: usize,
    cases: usize,
}

fn show(p: &AngioPhantom, tree: &VesselTree, mask: &ndarray::Array2<bool>, c: Point) {
    let (rows, cols) = p.image.dim();
    let half = 22isize;
    let (r0, c0) = (c.row.round() as isize, c.col.round() as isize);
    let mut grid = vec![vec![' '; (2 * half + 1) as usize]; (2 * half + 1) as usize];
    let inside = |r: isize, q: isize| r >= 0 && q >= 0 && (r as usize) < rows && (q as usize) < cols;
    // Image darkness relative to the crop's range.
    let mut vals = Vec::new();
    for r in r0 - half..=r0 + half {
        for q in c0 - half..=c0 + half {
            if inside(r, q) {
                vals.push(p.image[[r as usize, q as usize]]);
            }
        }
    }
    let lo = vals.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = vals.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (i, r) in (r0 - half..=r0 + half).enumerate() {
        for (j, q) in (c0 - half..=c0 + half).enumerate() {
            if !inside(r, q) {
                continue;
            }
            let (ru, qu) = (r as usize, q as usize);
            let dark = (hi - p.image[[ru, qu]]) / (hi - lo).max(1e-6);
            grid[i][j] = if mask[[ru, qu]] {
                '#'
            } else if p.mask[[ru, qu]] {
                '+'
            } else if dark > 0.5 {
                ':'
            } else if dark > 0.3 {
                '.'
            } else {
                ' '
            };
        }
    }
    for b in &tree.branches {
        for s in &b.samples {
            let (i, j) = (
                s.point.row.round() as isize - r0 + half,
                s.point.col.round() as isize - c0 + half,
            );
            if (0..=2 * half).contains(&i) && (0..=2 * half).contains(&j) {
                grid[i as usize][j as usize] = char::from_digit((b.id % 36) as u32, 36).unwrap_or('o');
            }
        }
    }
    grid[half as usize][half as usize] = 'X';
    println!(
        "    crop around ({:.0}, {:.0}): # mask, + truth lumen only, :/. dark, digits branch id % 36, X site",
        c.row, c.col
    );
    for line in grid {
        println!("    |{}|", line.into_iter().collect::<String>());
    }
}

fn main() {
    let arg = |i: usize| std::env::args().nth(i).and_then(|s| s.parse::<u64>().ok());
    let first = arg(1).unwrap_or(101);
    let last = arg(2).unwrap_or(140).max(first);
    let show_missed = std::env::var_os("STUMPS_SHOW").is_some();
    let show_ends = std::env::var_os("STUMPS_ENDS").is_some();
    let mut tot = Tally::default();
    for seed in first..=last {
        let p = match generate_angio(&AngioParams::default(), seed) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("seed {seed}: phantom: {e}");
                continue;
            }
        };
        let cal = p.calibration();
        let mm = cal.mm_per_px;
        let mut opts = AngioOptions::for_scale(mm);
        // Overrides for comparing tree options on the same seeds.
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = env("STUMPS_LENGTH_RADII") {
            opts.centerline.stump_min_length_radii = v;
        }
        if let Some(v) = env("STUMPS_KEEP") {
            opts.centerline.keep_stumps = v != 0.0;
        }
        if let Some(v) = env("STUMPS_SPLIT") {
            opts.centerline.split_caliber_drops = v != 0.0;
        }
        let res = match analyze_view(p.image.view(), &cal, &opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("seed {seed}: analysis: {e}");
                continue;
            }
        };
        let tree = &res.tree;
        let (rows, cols) = p.image.dim();
        let ends = free_ends(tree);
        let zones = true_end_zones(&p);
        let mut t = Tally {
            cases: 1,
            ..Default::default()
        };
        let mut notes = Vec::new();
        for (q, bid, distal) in &ends {
            // Ends where the vessel leaves the image are not ends of the vessel: the margin is
            // the radius of the branch at that end (largest over its first or last 2 mm, since a
            // skeleton retracts from a cut end) plus 3 px.
            let b = &tree.branches[*bid];
            let near: Vec<f64> = b
                .samples
                .iter()
                .filter(|s| {
                    if *distal {
                        s.arc_mm >= b.length_mm - 2.0
                    } else {
                        s.arc_mm <= 2.0
                    }
                })
                .filter(|s| s.diameter_mm.is_finite())
                .map(|s| 0.5 * s.diameter_mm / mm)
                .collect();
            let r = near.iter().copied().fold(0.0, f64::max);
            if (*distal && b.distal_end == BranchEnd::Border) || at_border(*q, rows, cols, 3.0 + 2.0 * r) {
                continue;
            }
            t.ends += 1;
            if !zones.iter().any(|z| z.dist(*q) * mm <= END_MATCH_MM) {
                t.false_ends += 1;
                if show_ends {
                    // Where on the truth the false end lies.
                    let near = p
                        .truth
                        .branches
                        .iter()
                        .flat_map(|b| b.samples.iter().map(move |s| (b, s)))
                        .min_by(|a, b| a.1.point.dist(*q).total_cmp(&b.1.point.dist(*q)));
                    if let Some((tb, ts)) = near {
                        notes.push(format!(
                            "  false end ({:.0}, {:.0}) branch {bid}: truth branch {} at {:.1} mm ({:.1} of {:.1} mm, d {:.2} mm, contrast {:.2})",
                            q.row,
                            q.col,
                            tb.id,
                            ts.point.dist(*q) * mm,
                            ts.arc_mm,
                            tb.length_mm,
                            ts.diameter_mm,
                            ts.contrast
                        ));
                    }
                }
            }
        }
        for l in &p.truth.lesions {
            if l.lesion_type == LesionType::Occlusion {
                t.occl += 1;
                let best = ends
                    .iter()
                    .filter(|e| e.2)
                    .map(|e| (e.0.dist(l.site) * mm, e.1))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((d, bid)) if d <= END_MATCH_MM => {
                        t.occl_found += 1;
                        let end = tree.branches[bid].distal_end;
                        if end == BranchEnd::Abrupt {
                            t.occl_abrupt += 1;
                        }
                        notes.push(format!(
                            "  occlusion ({:.0}, {:.0}) len {:.1} mm: end {d:.1} mm away, {end:?}",
                            l.site.row, l.site.col, l.length_mm
                        ));
                    }
                    other => {
                        // Nearest free end of any kind (a root start may sit on the stump).
                        let any = ends
                            .iter()
                            .map(|e| (e.0.dist(l.site) * mm, e.1, e.2))
                            .min_by(|a, b| a.0.total_cmp(&b.0));
                        let any = any.map_or(String::new(), |(d, bid, distal)| {
                            let b = &tree.branches[bid];
                            format!(
                                "; nearest free end {d:.1} mm: {} of branch {bid} ({:.1} mm, parent {:?})",
                                if distal { "distal end" } else { "start" },
                                b.length_mm,
                                b.parent
                            )
                        });
                        notes.push(format!(
                            "  occlusion ({:.0}, {:.0}) len {:.1} mm ref {:.1} mm: MISSED (nearest distal end {:.1} mm{any})",
                            l.site.row,
                            l.site.col,
                            l.length_mm,
                            l.reference_diameter_mm,
                            other.map_or(f64::NAN, |o| o.0)
                        ));
                        if show_missed {
                            notes.push(String::new());
                            println!("seed {seed}:");
                            show(&p, tree, &res.mask, l.site);
                        }
                    }
                }
            } else {
                t.sten += 1;
                let passed = tree.branches.iter().any(|b| {
                    let len = b.length_mm;
                    let start_free = b.parent.is_none();
                    let end_free = b.children.is_empty() && b.distal_end != BranchEnd::Junction;
                    b.samples.iter().any(|s| {
                        s.point.dist(l.site) * mm <= PASS_MM
                            && (!start_free || s.arc_mm >= PASS_CLEAR_MM)
                            && (!end_free || s.arc_mm <= len - PASS_CLEAR_MM)
                    })
                });
                if passed {
                    t.sten_passed += 1;
                } else {
                    notes.push(format!(
                        "  {} ({:.0}, {:.0}) MLD {:.2} of {:.2} mm: tree does not pass",
                        l.lesion_type.as_str(),
                        l.site.row,
                        l.site.col,
                        l.mld_mm,
                        l.reference_diameter_mm
                    ));
                }
            }
        }
        println!(
            "seed {seed:4}: occlusions {}/{} at an end ({} abrupt), lesions passed {}/{}, false ends {}/{}",
            t.occl_found, t.occl, t.occl_abrupt, t.sten_passed, t.sten, t.false_ends, t.ends
        );
        for n in notes.iter().filter(|n| !n.is_empty()) {
            println!("{n}");
        }
        tot.occl += t.occl;
        tot.occl_found += t.occl_found;
        tot.occl_abrupt += t.occl_abrupt;
        tot.sten += t.sten;
        tot.sten_passed += t.sten_passed;
        tot.ends += t.ends;
        tot.false_ends += t.false_ends;
        tot.cases += t.cases;
    }
    println!(
        "seeds {first}..={last} ({} cases): occlusion stump at a tree end {}/{} ({} classified abrupt); \
         other lesions passed through {}/{}; false free ends {}/{} ({:.1} %)",
        tot.cases,
        tot.occl_found,
        tot.occl,
        tot.occl_abrupt,
        tot.sten_passed,
        tot.sten,
        tot.false_ends,
        tot.ends,
        100.0 * tot.false_ends as f64 / tot.ends.max(1) as f64
    );
}
