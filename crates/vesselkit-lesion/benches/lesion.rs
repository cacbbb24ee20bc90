//! Speed of detection and of the whole assessment on a synthetic 32-branch tree.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vesselkit_core::{Branch, BranchEnd, Calibration, Point, ProfileSample, Tortuosity, VesselTree};
use vesselkit_lesion::{PlanInput, Rules, assess, detect};

fn branch(id: usize, parent: Option<usize>) -> Branch {
    let step = 0.05;
    let n = 1200; // 60 mm
    let samples = (0..=n)
        .map(|i| {
            let x = i as f64 * step;
            let mut d = 4.0 - 0.02 * x + 0.05 * (3.1 * x + id as f64).sin();
            for c in [15.0, 40.0] {
                let u = (x - c) / 2.0;
                if u.abs() < 1.0 {
                    d -= 1.2 * (1.0 + (std::f64::consts::PI * u).cos());
                }
            }
            ProfileSample {
                point: Point::new(id as f64 * 40.0, x * 10.0),
                arc_mm: x,
                diameter_mm: d,
                left_mm: d / 2.0,
                right_mm: d / 2.0,
                channels: 1,
                density_ratio: 1.0,
                reliable: true,
            }
        })
        .collect();
    Branch {
        id,
        parent,
        children: Vec::new(),
        samples,
        length_mm: 60.0,
        distal_end: BranchEnd::Taper,
        tortuosity: Tortuosity::default(),
        arrival_ms: None,
        flow_grade: Some(3),
    }
}

fn tree() -> VesselTree {
    let mut branches: Vec<Branch> = (0..32)
        .map(|i| branch(i, if i == 0 { None } else { Some((i - 1) / 2) }))
        .collect();
    for i in 1..32 {
        let p = (i - 1) / 2;
        branches[p].children.push(i);
    }
    VesselTree {
        branches,
        root: Some(0),
        calibration: Calibration::user(0.1).expect("valid spacing"),
    }
}

fn bench(c: &mut Criterion) {
    let t = tree();
    let rules = Rules::default();
    c.bench_function("detect_32_branches_60mm", |b| b.iter(|| detect(black_box(&t), &rules)));
    c.bench_function("assess_32_branches_60mm", |b| {
        b.iter(|| assess(black_box(&t), &rules, &PlanInput::default()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
