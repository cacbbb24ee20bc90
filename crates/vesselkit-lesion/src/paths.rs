//! Vessel paths through side-branch junctions.
//!
//! The centreline graph splits a vessel into a new branch at every side branch, so a short
//! stretch between two side branches has too little lumen of its own to serve as a QCA
//! reference, and its samples near both junctions are flagged unreliable. A [`Path`] joins a
//! branch with the child that continues it (nearly straight on, of similar calibre) into one
//! profile, so a narrowing there is measured against the vessel on both sides.

use crate::detect::ARC_EPS_MM;
use crate::rules::Rules;
use vesselkit_core::{Branch, VesselTree};

/// At an interior junction of a path, junction-flagged samples within this many calibres of
/// the junction are measured again (see [`balanced`]): the flag guards against the side
/// branch's opening widening the lumen, which a balanced, unflared section does not show.
pub(crate) const READMIT_REACH_CALIBRES: f64 = 1.5;
/// ... when their diameter is at most this factor of the calibre (no flare into the side
/// branch).
const READMIT_MAX_FLARE: f64 = 1.1;
/// ... and their edges lie at most this factor farther on one side than on the other.
const READMIT_MAX_ASYMMETRY: f64 = 1.5;

/// One branch of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Member {
    pub branch: usize,
    /// Path arc of the branch's arc 0, mm.
    pub offset_mm: f64,
    /// Path arc of the member's first sample, mm.
    pub first_mm: f64,
}

/// A vessel path: the joined profile as one branch (the first member's id and parent, the
/// last member's children and distal end) and its members, proximal first.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub branch: Branch,
    pub members: Vec<Member>,
    /// Branch and sample index of each path sample.
    pub origin: Vec<(usize, usize)>,
}

impl Path {
    /// The member holding path arc `arc_mm` (the first one before it starts, the last past
    /// its end).
    pub fn member_at(&self, arc_mm: f64) -> &Member {
        let k = self.members.partition_point(|m| m.first_mm <= arc_mm);
        &self.members[k.saturating_sub(1)]
    }
}

/// `p`-th percentile of the finite values (NaN when none).
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}

/// Calibre of `b` over its arc `[lo, hi]`: the `reference_percentile` of its reliable
/// diameters (as a QCA reference, so a narrowing does not lower it), or, when none is reliable
/// (a short branch between junctions), the median of those whose edges are balanced (a
/// junction's flare pushes one edge out).
fn calibre(b: &Branch, lo: f64, hi: f64, rules: &Rules) -> f64 {
    let pct = rules.detection.reference_percentile;
    let within = || b.samples.iter().filter(move |x| x.arc_mm >= lo && x.arc_mm <= hi);
    let reliable = percentile(within().filter(|x| x.reliable).map(|x| x.diameter_mm).collect(), pct);
    if reliable.is_finite() {
        return reliable;
    }
    percentile(
        within().filter(|x| even_edges(x)).map(|x| x.diameter_mm).collect(),
        50.0,
    )
}

fn direction(a: vesselkit_core::Point, z: vesselkit_core::Point) -> (f64, f64) {
    (z.row - a.row, z.col - a.col)
}

/// Direction of a branch's last `window_mm`.
fn end_direction(b: &Branch, window_mm: f64) -> Option<(f64, f64)> {
    let z = b.samples.last()?;
    let a = b
        .samples
        .iter()
        .rev()
        .find(|x| x.arc_mm <= z.arc_mm - window_mm)
        .or(b.samples.first())?;
    Some(direction(a.point, z.point))
}

/// Direction of a branch's first `window_mm`.
fn start_direction(b: &Branch, window_mm: f64) -> Option<(f64, f64)> {
    let a = b.samples.first()?;
    let z = b
        .samples
        .iter()
        .find(|x| x.arc_mm - a.arc_mm >= window_mm)
        .or(b.samples.last())?;
    Some(direction(a.point, z.point))
}

fn turn_deg(a: (f64, f64), b: (f64, f64)) -> Option<f64> {
    let (na, nb) = (a.0.hypot(a.1), b.0.hypot(b.1));
    (na > 1e-9 && nb > 1e-9).then(|| {
        ((a.0 * b.0 + a.1 * b.1) / (na * nb))
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    })
}

/// The child of `b` that continues it: the straightest one within
/// `detection.path_max_turn_deg`, with a calibre (see [`calibre`]) near the junction of at least
/// `detection.path_min_calibre_ratio` of `b`'s.
pub(crate) fn continuation(tree: &VesselTree, b: &Branch, rules: &Rules) -> Option<usize> {
    let det = &rules.detection;
    if det.path_max_turn_deg <= 0.0 {
        return None;
    }
    let w = det.angle_window_mm;
    let end = end_direction(b, w)?;
    let last = b.samples.last()?.arc_mm;
    let own = calibre(b, last - det.reference_window_mm, last, rules);
    if own.is_nan() || own <= 0.0 {
        return None;
    }
    b.children
        .iter()
        .filter_map(|&c| tree.branches.get(c))
        .filter(|c| c.id != b.id && c.samples.len() >= 2)
        .filter_map(|c| {
            let a = turn_deg(end, start_direction(c, w)?)?;
            let first = c.samples[0].arc_mm;
            let ratio = calibre(c, first, first + det.reference_window_mm, rules) / own;
            (a < det.path_max_turn_deg && ratio >= det.path_min_calibre_ratio).then_some((a, c.id))
        })
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, id)| id)
}

/// Both edges measured and balanced about the centreline (within `READMIT_MAX_ASYMMETRY`).
fn even_edges(x: &vesselkit_core::ProfileSample) -> bool {
    let (l, r) = (x.left_mm, x.right_mm);
    l > 0.0 && r > 0.0 && l.max(r) <= READMIT_MAX_ASYMMETRY * l.min(r)
}

/// Whether a flagged sample near an interior junction reads a clean lumen section: both edges
/// measured, balanced about the centreline, and no wider than the calibre allows.
pub(crate) fn balanced(x: &vesselkit_core::ProfileSample, calibre_mm: f64) -> bool {
    even_edges(x) && x.diameter_mm.is_finite() && x.diameter_mm <= READMIT_MAX_FLARE * calibre_mm
}

/// Joins the branches `chain` (each the continuation of the one before) into one path, the
/// first and last members cut to `reference_window_mm + 2 × qca_margin_mm` from their
/// junction; `None` with fewer than two members holding samples.
pub(crate) fn concat(tree: &VesselTree, chain: &[usize], rules: &Rules) -> Option<Path> {
    let branches: Vec<&Branch> = chain
        .iter()
        .filter_map(|&i| tree.branches.get(i))
        .filter(|b| !b.samples.is_empty())
        .collect();
    if branches.len() < 2 || branches.len() != chain.len() {
        return None;
    }
    let det = &rules.detection;
    let reach_mm = det.reference_window_mm + 2.0 * det.qca_margin_mm;
    let mut samples = Vec::new();
    let mut origin = Vec::new();
    let mut members = Vec::new();
    let mut junctions = Vec::new();
    let mut offset = 0.0;
    for (k, b) in branches.iter().enumerate() {
        if k > 0 {
            let prev = branches[k - 1];
            offset += prev.samples[prev.samples.len() - 1].arc_mm - b.samples[0].arc_mm;
            junctions.push(offset + b.samples[0].arc_mm);
        }
        let last_arc = samples
            .last()
            .map_or(f64::NEG_INFINITY, |x: &vesselkit_core::ProfileSample| x.arc_mm);
        let mut first_mm = None;
        // The first and last members only as far as a narrowing measured across their
        // junction can reach (the rest is the branch pass's alone).
        let (from, to) = (
            if k == 0 {
                b.samples[b.samples.len() - 1].arc_mm - reach_mm - ARC_EPS_MM
            } else {
                f64::NEG_INFINITY
            },
            if k + 1 == branches.len() {
                b.samples[0].arc_mm + reach_mm + ARC_EPS_MM
            } else {
                f64::INFINITY
            },
        );
        for (i, x) in b.samples.iter().enumerate() {
            let arc = offset + x.arc_mm;
            // The junction point ends one member and starts the next: keep it once.
            if arc <= last_arc + 1e-9 || x.arc_mm < from || x.arc_mm > to {
                continue;
            }
            first_mm.get_or_insert(arc);
            let mut y = *x;
            y.arc_mm = arc;
            samples.push(y);
            origin.push((b.id, i));
        }
        members.push(Member {
            branch: b.id,
            offset_mm: offset,
            first_mm: first_mm?,
        });
    }
    // Re-admit balanced sections next to the interior junctions.
    for &j in &junctions {
        let c = {
            let near: Vec<f64> = samples
                .iter()
                .filter(|x| (x.arc_mm - j).abs() <= det.reference_window_mm && x.reliable)
                .map(|x| x.diameter_mm)
                .collect();
            percentile(near, 50.0)
        };
        if c.is_nan() || c <= 0.0 {
            continue;
        }
        for x in samples.iter_mut() {
            if !x.reliable && (x.arc_mm - j).abs() <= READMIT_REACH_CALIBRES * c && balanced(x, c) {
                x.reliable = true;
            }
        }
    }
    let (first, last) = (branches[0], branches[branches.len() - 1]);
    let length_mm = samples[samples.len() - 1].arc_mm - samples[0].arc_mm;
    Some(Path {
        branch: Branch {
            id: first.id,
            parent: first.parent,
            children: last.children.clone(),
            samples,
            length_mm,
            distal_end: last.distal_end,
            tortuosity: last.tortuosity,
            arrival_ms: last.arrival_ms,
            flow_grade: last.flow_grade,
        },
        members,
        origin,
    })
}

/// Every path of the tree: from each branch that does not continue its parent, along the
/// continuations; only paths of at least two branches.
pub(crate) fn build(tree: &VesselTree, rules: &Rules) -> Vec<Path> {
    let next: Vec<Option<usize>> = tree.branches.iter().map(|b| continuation(tree, b, rules)).collect();
    let continued: Vec<bool> = (0..tree.branches.len()).map(|i| next.contains(&Some(i))).collect();
    let mut out = Vec::new();
    for (start, _) in continued.iter().enumerate().filter(|(_, c)| !**c) {
        let mut chain = vec![start];
        while let Some(n) = next[chain[chain.len() - 1]] {
            if chain.contains(&n) {
                break; // malformed cyclic input
            }
            chain.push(n);
        }
        if chain.len() >= 2
            && let Some(p) = concat(tree, &chain, rules)
        {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vesselkit_core::{BranchEnd, Calibration, Point, ProfileSample, Tortuosity};

    fn branch(id: usize, parent: Option<usize>, children: Vec<usize>, from: Point, to: Point, d_mm: f64) -> Branch {
        let mm = 0.2;
        let len_px = from.dist(to);
        let n = (len_px / 0.5).round() as usize;
        let samples = (0..=n)
            .map(|k| {
                let t = k as f64 / n as f64;
                ProfileSample {
                    point: from.lerp(to, t),
                    arc_mm: t * len_px * mm,
                    diameter_mm: d_mm,
                    left_mm: 0.5 * d_mm,
                    right_mm: 0.5 * d_mm,
                    channels: 1,
                    density_ratio: 1.0,
                    reliable: true,
                }
            })
            .collect();
        Branch {
            id,
            parent,
            children,
            samples,
            length_mm: len_px * mm,
            distal_end: BranchEnd::Junction,
            tortuosity: Tortuosity::default(),
            arrival_ms: None,
            flow_grade: None,
        }
    }

    /// A straight 4 mm vessel (20 mm) with a 2 mm side branch at 60° and a 3.6 mm continuation
    /// (15 mm).
    fn tree() -> VesselTree {
        let j = Point::new(50.0, 100.0);
        VesselTree {
            root: Some(0),
            calibration: Calibration::user(0.2).unwrap(),
            branches: vec![
                branch(0, None, vec![1, 2], Point::new(50.0, 0.0), j, 4.0),
                branch(1, Some(0), vec![], j, Point::new(50.0 + 87.0, 150.0), 2.0),
                branch(2, Some(0), vec![], j, Point::new(52.0, 175.0), 3.6),
            ],
        }
    }

    #[test]
    fn a_vessel_continues_straight_on_into_the_child_of_its_calibre() {
        let t = tree();
        let rules = Rules::default();
        assert_eq!(continuation(&t, &t.branches[0], &rules), Some(2));
        let paths = build(&t, &rules);
        assert_eq!(paths.len(), 1);
        let p = &paths[0];
        assert_eq!(p.members.iter().map(|m| m.branch).collect::<Vec<_>>(), vec![0, 2]);
        // Arcs run on across the junction without repeating it.
        let s: Vec<f64> = p.branch.samples.iter().map(|x| x.arc_mm).collect();
        assert!(s.windows(2).all(|w| w[1] > w[0]));
        assert!(
            (p.branch.length_mm - (20.0 + 2f64.hypot(75.0) * 0.2)).abs() < 0.01,
            "{}",
            p.branch.length_mm
        );
        assert_eq!(p.member_at(5.0).branch, 0);
        assert_eq!(p.member_at(25.0).branch, 2);
        assert!((p.member_at(25.0).offset_mm - 20.0).abs() < 1e-9);
        // A long first member is cut to the reach of a narrowing measured across the junction.
        let mut long = t.clone();
        long.branches[0] = branch(
            0,
            None,
            vec![1, 2],
            Point::new(50.0, -100.0),
            Point::new(50.0, 100.0),
            4.0,
        );
        let q = &build(&long, &rules)[0];
        assert!(
            (q.branch.samples[0].arc_mm - 20.0).abs() < 0.11,
            "{}",
            q.branch.samples[0].arc_mm
        );
        // Too thin a continuation, or the rule off: no path.
        let mut thin = t.clone();
        for x in &mut thin.branches[2].samples {
            x.diameter_mm = 3.0;
        }
        assert_eq!(continuation(&thin, &thin.branches[0], &rules), None);
        // A parent flagged all along, its last 3 mm flared to one side by the junction: its
        // balanced samples give its calibre (the flare would make the child look thin).
        let mut flared = t.clone();
        let n = flared.branches[0].samples.len();
        for (k, x) in flared.branches[0].samples.iter_mut().enumerate() {
            x.reliable = false;
            if k + 30 >= n {
                (x.diameter_mm, x.left_mm, x.right_mm) = (6.0, 1.8, 4.2);
            }
        }
        assert_eq!(continuation(&flared, &flared.branches[0], &rules), Some(2));
        let mut off = rules.clone();
        off.detection.path_max_turn_deg = 0.0;
        assert!(build(&t, &off).is_empty());
    }

    #[test]
    fn balanced_sections_by_an_interior_junction_are_measured_again() {
        let mut t = tree();
        // Flag 2 mm of the parent's end: 1 mm narrowed and balanced, 1 mm flared.
        let n = t.branches[0].samples.len();
        for (k, x) in t.branches[0].samples[n - 20..].iter_mut().enumerate() {
            x.reliable = false;
            if k < 10 {
                x.diameter_mm = 2.5;
                x.left_mm = 1.25;
                x.right_mm = 1.25;
            } else {
                x.diameter_mm = 5.0;
                x.left_mm = 1.5;
                x.right_mm = 3.5;
            }
        }
        let p = &build(&t, &Rules::default())[0];
        let flagged: Vec<f64> = p
            .branch
            .samples
            .iter()
            .filter(|x| !x.reliable)
            .map(|x| x.diameter_mm)
            .collect();
        // The narrowed, balanced ones within 1.5 calibres (6 mm) are back; the flared stay out.
        assert_eq!(flagged.len(), 10, "{flagged:?}");
        assert!(flagged.iter().all(|&d| d == 5.0));
    }
}
