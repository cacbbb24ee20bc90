//! Synthetic vessel trees built in code, with known answers.
#![allow(dead_code)]

use std::f64::consts::PI;
use vesselkit_core::{Branch, BranchEnd, Calibration, Point, ProfileSample, Tortuosity, VesselTree};

pub const MM_PER_PX: f64 = 0.1;
pub const STEP_MM: f64 = 0.05;

/// Cosine narrowing from `refd` to `mld` over `width` mm centred at `centre` mm.
pub fn cosine(refd: f64, mld: f64, centre: f64, width: f64) -> impl Fn(f64) -> f64 {
    move |x| {
        let u = (x - centre) / (width / 2.0);
        if u.abs() < 1.0 {
            refd - 0.5 * (refd - mld) * (1.0 + (PI * u).cos())
        } else {
            refd
        }
    }
}

/// A branch along a centerline given as a function of arc length (mm) returning a point in px,
/// sampled every `STEP_MM` up to `length_mm`; arcs are recomputed from the points.
pub fn branch_along(
    id: usize,
    parent: Option<usize>,
    length_mm: f64,
    path: impl Fn(f64) -> Point,
    diameter: impl Fn(f64) -> f64,
) -> Branch {
    let n = (length_mm / STEP_MM).round() as usize;
    let mut samples = Vec::with_capacity(n + 1);
    let mut arc = 0.0;
    let mut prev: Option<Point> = None;
    for i in 0..=n {
        let t = i as f64 * STEP_MM;
        let p = path(t);
        if let Some(q) = prev {
            arc += q.dist(p) * MM_PER_PX;
        }
        prev = Some(p);
        let d = diameter(t);
        samples.push(ProfileSample {
            point: p,
            arc_mm: arc,
            diameter_mm: d,
            left_mm: d / 2.0,
            right_mm: d / 2.0,
            channels: 1,
            density_ratio: 1.0,
            reliable: true,
        });
    }
    Branch {
        id,
        parent,
        children: Vec::new(),
        length_mm: arc,
        samples,
        distal_end: BranchEnd::Taper,
        tortuosity: Tortuosity {
            dm: 1.0,
            icm: 1.0,
            soam_rad_per_mm: 0.0,
            bends: 0,
            max_bend_deg: 0.0,
        },
        arrival_ms: None,
        flow_grade: None,
    }
}

/// A straight branch starting at `start` (px), heading along `dir` (unit vector).
pub fn straight(
    id: usize,
    parent: Option<usize>,
    start: Point,
    dir: (f64, f64),
    length_mm: f64,
    diameter: impl Fn(f64) -> f64,
) -> Branch {
    branch_along(
        id,
        parent,
        length_mm,
        move |t| Point::new(start.row + dir.0 * t / MM_PER_PX, start.col + dir.1 * t / MM_PER_PX),
        diameter,
    )
}

/// A single straight branch from the origin along +col (left edge towards -row).
pub fn along_col(length_mm: f64, diameter: impl Fn(f64) -> f64) -> Branch {
    straight(0, None, Point::new(0.0, 0.0), (0.0, 1.0), length_mm, diameter)
}

pub fn tree(branches: Vec<Branch>) -> VesselTree {
    let mut branches = branches;
    let links: Vec<(usize, usize)> = branches.iter().filter_map(|b| b.parent.map(|p| (p, b.id))).collect();
    for (p, c) in links {
        branches[p].children.push(c);
    }
    VesselTree {
        branches,
        root: Some(0),
        calibration: Calibration::user(MM_PER_PX).expect("valid spacing"),
    }
}

pub fn one(b: Branch) -> VesselTree {
    tree(vec![b])
}

/// 40 mm straight 4 mm branch with a cosine narrowing to `mld` at 20 mm, 4 mm wide.
pub fn ring_branch(mld: f64) -> Branch {
    straight(
        0,
        None,
        Point::new(100.0, 50.0),
        (0.0, 1.0),
        40.0,
        cosine(4.0, mld, 20.0, 4.0),
    )
}
