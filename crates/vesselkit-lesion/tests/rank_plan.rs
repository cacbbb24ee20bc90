//! Rule order, ranking (consensus recommendation 9) and the staged balloon plan.

mod common;

use common::*;
use proptest::prelude::*;
use vesselkit_core::{LesionType, Point, Tortuosity};
use vesselkit_lesion::*;

/// Evidence of a plain 75 % focal, symmetric narrowing with nothing else.
fn plain() -> Evidence {
    Evidence {
        modality: Modality::Angio,
        rule: RuleFired::Fallback,
        rule_text: String::new(),
        diameter_stenosis_pct: 75.0,
        area_stenosis_pct: 93.75,
        mld_mm: 1.0,
        reference_diameter_mm: 4.0,
        length_mm: 3.0,
        arc_mm: 10.0,
        start_mm: 8.5,
        end_mm: 11.5,
        proximal_shoulder_slope_per_mm: Some(0.5),
        distal_shoulder_slope_per_mm: Some(0.5),
        symmetry: Some(1.0),
        focal: true,
        channels_max: 1,
        multichannel_samples: 0,
        lucent_bands: 0,
        plateau_mm: None,
        density_ratio_min: Some(1.0),
        low_density_samples: 0,
        mla_mm2: None,
        reference_area_mm2: None,
        flow_grade: Some(3),
        flow_known: true,
        arrival_ms: Some(900.0),
        distal_end: None,
        cutoff: false,
        distal_vessel_visible: true,
        continuation_gap_mm: None,
        distal_opacity_ratio: None,
        densitometric_ds_pct: None,
        centreline_contrast_ratio_min: None,
        low_contrast_samples: 0,
        stump_contrast_ratio: None,
        beyond_end_ratio: None,
        beyond_end_neck_ratio: None,
        cine_refill_ratio: None,
        stump: None,
        segment_tortuosity: None,
        local_tortuosity: None,
        distal_tortuosity: None,
        lesion_angle_deg: Some(10.0),
        reliable_fraction: 1.0,
    }
}

#[test]
fn rules_are_checked_d_c_e_b_a() {
    let r = Rules::default();
    let a = plain();
    // Add the signs of every type one by one; the earliest rule in D, C, E, B, A wins.
    let mut b = a.clone();
    b.channels_max = 2;
    b.multichannel_samples = 5;
    let mut e = b.clone();
    e.segment_tortuosity = Some(Tortuosity {
        dm: 1.6,
        icm: 6.4,
        soam_rad_per_mm: 0.3,
        bends: 4,
        max_bend_deg: 80.0,
    });
    let mut c = e.clone();
    c.diameter_stenosis_pct = 95.0;
    c.flow_grade = Some(1);
    let mut d = c.clone();
    d.cutoff = true;
    d.distal_vessel_visible = false;
    d.flow_grade = Some(0);
    let got: Vec<LesionType> = [&a, &b, &e, &c, &d]
        .iter()
        .map(|x| classify(x, &r).lesion_type)
        .collect();
    use LesionType::*;
    assert_eq!(got, vec![Ring, Web, Tortuous, Subtotal, Occlusion]);
    assert_eq!(classify(&d, &r).rule, RuleFired::DCutoffNoFlow);
    assert_eq!(classify(&c, &r).rule, RuleFired::CNearOcclusionSlowFlow);

    // Thresholds come from the table.
    let mut strict = Rules::default();
    strict.classification.subtotal_min_ds_pct = 97.0;
    assert_eq!(classify(&c, &strict).lesion_type, Tortuous);
    let mut asym = a.clone();
    asym.symmetry = Some(0.2);
    assert_eq!(classify(&asym, &r).rule, RuleFired::Fallback);
    let mut lenient = Rules::default();
    lenient.classification.ring_min_symmetry = 0.1;
    assert_eq!(classify(&asym, &lenient).rule, RuleFired::ARing);
}

#[test]
fn confidences_are_in_unit_range_and_follow_margins() {
    let r = Rules::default();
    let mut x = plain();
    x.diameter_stenosis_pct = 90.0;
    x.flow_grade = Some(2);
    assert!((classify(&x, &r).confidence - 0.5).abs() < 1e-12); // at the threshold
    x.diameter_stenosis_pct = 100.0;
    assert!((classify(&x, &r).confidence - 1.0).abs() < 1e-12);
    x.reliable_fraction = 0.0;
    assert!((classify(&x, &r).confidence - 0.5).abs() < 1e-12);
}

fn lesion(id: usize, t: LesionType, ds: f64, vessel: Option<usize>) -> Lesion {
    let mut ev = plain();
    ev.diameter_stenosis_pct = ds;
    Lesion {
        id,
        vessel,
        site: Some(Site { row: 0.0, col: 0.0 }),
        lesion_type: t,
        confidence: 0.9,
        mld_mm: 1.0,
        reference_diameter_mm: 4.0,
        diameter_stenosis_pct: ds,
        length_mm: 3.0,
        evidence: ev,
        priority: None,
        reason: String::new(),
        risk_flags: Vec::new(),
        score: 0.0,
        balloon_mm: Vec::new(),
    }
}

fn small_tree() -> vesselkit_core::VesselTree {
    // Branch 0 feeds 1 and 2; branch 3 is separate and long.
    tree(vec![
        straight(0, None, Point::new(0.0, 0.0), (0.0, 1.0), 20.0, |_| 5.0),
        straight(1, Some(0), Point::new(0.0, 200.0), (0.0, 1.0), 30.0, |_| 4.0),
        straight(2, Some(0), Point::new(0.0, 200.0), (1.0, 0.0), 10.0, |_| 3.0),
        straight(3, None, Point::new(300.0, 0.0), (0.0, 1.0), 80.0, |_| 4.0),
    ])
}

#[test]
fn ranking_by_group_then_gain_and_risk() {
    let t = small_tree();
    use LesionType::*;
    let mut ls = vec![
        lesion(0, Occlusion, 100.0, Some(0)), // largest territory (60 mm), still group 2
        lesion(1, Ring, 40.0, Some(2)),
        lesion(2, Ring, 80.0, Some(2)),
        lesion(3, Web, 60.0, Some(3)),
        lesion(4, Tortuous, 70.0, Some(1)),
    ];
    rank(&mut ls, &t, &Rules::default()).unwrap();
    let p: Vec<usize> = ls.iter().map(|l| l.priority.unwrap()).collect();
    // Web in branch 3: 0.6 + 80/130 = 1.215; ring 80 %: 0.8 + 10/60 = 0.967; ring 40 %: 0.567.
    // Occlusion: 1 + 60/110 = 1.545; tortuous: 0.7 + 30/80 = 1.075.
    assert_eq!(p, vec![4, 3, 2, 1, 5]);
    assert!((ls[3].score - (0.6 + 80.0 / 130.0)).abs() < 1e-9, "{}", ls[3].score);
    assert!(ls[0].reason.contains("group 2") && ls[0].reason.contains("consensus rec. 9"));
    assert!(ls[0].reason.contains("territory 60 mm"), "{}", ls[0].reason);
    // Without a physical scale the territory is a length in pixels and says so.
    let mut px = t.clone();
    px.calibration = vesselkit_core::Calibration::uncalibrated();
    let mut ls_px = ls.clone();
    rank(&mut ls_px, &px, &Rules::default()).unwrap();
    assert!(ls_px[0].reason.contains(" px, score"), "{}", ls_px[0].reason);

    // A small vessel is pushed down within its group.
    ls[2].reference_diameter_mm = 1.8;
    rank(&mut ls, &t, &Rules::default()).unwrap();
    assert_eq!(ls[2].risk_flags, vec!["small_vessel".to_string()]);
    assert!((ls[2].score - 0.967 * 0.7).abs() < 1e-3);
    assert_eq!(
        (ls[3].priority, ls[2].priority, ls[1].priority),
        (Some(1), Some(2), Some(3))
    );

    // Orifice stump and sharp angle discount occlusions; the weights are in the table.
    ls[0].evidence.stump = Some(StumpShape::Orifice);
    ls[0].evidence.lesion_angle_deg = Some(100.0);
    rank(&mut ls, &t, &Rules::default()).unwrap();
    assert_eq!(
        ls[0].risk_flags,
        vec!["sharp_angle".to_string(), "orifice_stump".to_string()]
    );
    assert!((ls[0].score - 1.545 * 0.7 * 0.5).abs() < 1e-3);
    assert_eq!((ls[4].priority, ls[0].priority), (Some(4), Some(5)));

    // A lesion whose type no rule established goes after the typed lesions of its group, even
    // with the higher score: the 80 % ring (score 0.967) after the typed 40 % ring (0.567).
    ls[2].reference_diameter_mm = 4.0;
    for l in ls.iter_mut() {
        l.evidence.rule = RuleFired::ARing;
    }
    ls[2].evidence.rule = RuleFired::Fallback;
    rank(&mut ls, &t, &Rules::default()).unwrap();
    assert!(ls[2].score > ls[1].score);
    assert_eq!(
        (ls[3].priority, ls[1].priority, ls[2].priority, ls[4].priority),
        (Some(1), Some(2), Some(3), Some(4))
    );
    assert!(ls[2].reason.contains("type not established"), "{}", ls[2].reason);
}

fn any_type() -> impl Strategy<Value = LesionType> {
    prop::sample::select(LesionType::ALL.to_vec())
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -50.0f64..200.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1e300),
    ]
}

proptest! {
    #[test]
    fn rank_obeys_recommendation_9(
        items in prop::collection::vec(
            (any_type(), any_number(), any_number(), prop::option::of(0usize..6), any_number(),
             prop::option::of(prop::sample::select(vec![StumpShape::Pointed, StumpShape::Round, StumpShape::Orifice]))),
            0..30),
    ) {
        let t = small_tree();
        let mut ls: Vec<Lesion> = items
            .iter()
            .enumerate()
            .map(|(i, (ty, ds, refd, v, angle, stump))| {
                let mut l = lesion(i, *ty, *ds, *v);
                l.reference_diameter_mm = *refd;
                l.evidence.lesion_angle_deg = Some(*angle);
                l.evidence.stump = *stump;
                l
            })
            .collect();
        rank(&mut ls, &t, &Rules::default()).unwrap();
        let mut pr: Vec<usize> = ls.iter().map(|l| l.priority.unwrap()).collect();
        pr.sort_unstable();
        prop_assert_eq!(pr, (1..=ls.len()).collect::<Vec<_>>());
        let worst_g1 = ls.iter().filter(|l| treatment_group(l.lesion_type) == 1).map(|l| l.priority.unwrap()).max();
        let best_g2 = ls.iter().filter(|l| treatment_group(l.lesion_type) == 2).map(|l| l.priority.unwrap()).min();
        if let (Some(a), Some(b)) = (worst_g1, best_g2) {
            prop_assert!(a < b, "group 1 lesion at {} after group 2 at {}", a, b);
        }
        // The plan never puts more vessels in a session than allowed and stages in order.
        let plan = plan(&ls, &PlanInput::default(), &Rules::default()).unwrap();
        check_sessions(&ls, &plan, Rules::default().session.max_vessels_per_session);
    }
}

fn check_sessions(ls: &[Lesion], plan: &Plan, max_v: usize) {
    for s in &plan.sessions {
        let mut v: Vec<(bool, usize)> = s
            .steps
            .iter()
            .map(|st| st.vessel.map_or((false, st.lesion), |v| (true, v)))
            .collect();
        v.sort_unstable();
        v.dedup();
        assert!(v.len() <= max_v, "session {} has {} vessels", s.index, v.len());
    }
    for a in &plan.balloons {
        let placed: Vec<(usize, usize, f64)> = plan
            .sessions
            .iter()
            .flat_map(|s| {
                s.steps
                    .iter()
                    .filter(|st| st.lesion == a.lesion)
                    .map(move |st| (s.index, st.stage, st.balloon_mm))
            })
            .collect();
        assert_eq!(placed.len(), a.balloon_mm.len());
        for (k, w) in placed.iter().enumerate() {
            assert_eq!(w.1, k + 1);
            assert_eq!(w.2, a.balloon_mm[k]);
            if k > 0 {
                assert!(w.0 > placed[k - 1].0, "stage {} not in a later session", k + 1);
            }
        }
    }
    assert!(ls.len() >= plan.balloons.len());
}

#[test]
fn balloon_sizes_are_staged_and_undersized() {
    let r = Rules::default();
    let mut l = lesion(0, LesionType::Ring, 75.0, Some(0));
    l.reference_diameter_mm = 3.2;
    let a = balloon_advice(&l, &PlanInput::default(), &r);
    // 0.65 x 3.2 = 2.08, capped at 2.0 mm; then 3.2 rounded down to 3.0.
    assert_eq!(a.balloon_mm, vec![2.0, 3.0]);
    assert!((a.ratio[0] - 0.625).abs() < 1e-12 && (a.ratio[1] - 0.9375).abs() < 1e-12);
    assert!(!a.oversized);
    assert_eq!(a.reference_source, ReferenceSource::Qca);

    // OCT reference preferred when given.
    let mut input = PlanInput::default();
    input.oct_reference_mm.insert(0, 4.6);
    let a = balloon_advice(&l, &input, &r);
    assert_eq!(a.reference_source, ReferenceSource::Oct);
    assert_eq!(a.balloon_mm, vec![2.0, 4.5]);

    // Without the first-session cap: 0.65 x 6 = 3.9 -> 3.5, then 6.0.
    let mut nocap = Rules::default();
    nocap.balloon.cap_first_session = false;
    l.reference_diameter_mm = 6.0;
    assert_eq!(
        balloon_advice(&l, &PlanInput::default(), &nocap).balloon_mm,
        vec![3.5, 6.0]
    );

    // Vessel smaller than the smallest balloon: one size, ratio flagged [R8].
    l.reference_diameter_mm = 1.2;
    let a = balloon_advice(&l, &PlanInput::default(), &r);
    assert_eq!(a.balloon_mm, vec![1.5]);
    assert!(a.oversized && (a.ratio[0] - 1.25).abs() < 1e-12);
    assert!(a.note.contains("[R8]"));

    // No reference: no balloon, said so.
    l.reference_diameter_mm = f64::NAN;
    let a = balloon_advice(&l, &PlanInput::default(), &r);
    assert!(a.balloon_mm.is_empty() && a.note.contains("no usable reference"));
}

#[test]
fn sessions_respect_vessel_limit_and_stage_order() {
    let t = small_tree();
    // Eight lesions; lesions 0 and 1 share vessel 0.
    let vessels = [0, 0, 1, 2, 3, 4, 5, 6];
    let mut ls: Vec<Lesion> = vessels
        .iter()
        .enumerate()
        .map(|(i, &v)| lesion(i, LesionType::Ring, 50.0 + i as f64, Some(v)))
        .collect();
    ls[7].reference_diameter_mm = 1.2; // a single stage
    rank(&mut ls, &t, &Rules::default()).unwrap();
    let mut rules = Rules::default();
    rules.session.max_vessels_per_session = 3;
    let p = plan(&ls, &PlanInput::default(), &rules).unwrap();
    check_sessions(&ls, &p, 3);
    let total: usize = p.sessions.iter().map(|s| s.steps.len()).sum();
    assert_eq!(total, 7 * 2 + 1);
    // First session: the three best-ranked vessels, every lesion at its first stage.
    let first = &p.sessions[0];
    assert!(first.steps.iter().all(|s| s.stage == 1));
    let mut fv: Vec<usize> = first.steps.iter().filter_map(|s| s.vessel).collect();
    fv.dedup();
    assert_eq!(fv.len(), 3);
    assert_eq!(
        first.steps[0].lesion,
        ls.iter().find(|l| l.priority == Some(1)).unwrap().id
    );
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("35 mmHg") && n.contains("35.4") && n.contains("19.5"))
    );
    assert!(p.notes.iter().any(|n| n.contains("0.8") && n.contains("0.77")));
    assert_eq!(p.notice, vesselkit_core::RESEARCH_NOTICE);
    assert!(first.note.contains("session 1"));
}

#[test]
fn assess_runs_the_chain() {
    // Ring in branch 0, web in branch 1, occlusion in branch 2.
    let mut b0 = along_col(40.0, cosine(4.0, 1.0, 20.0, 4.0));
    b0.flow_grade = Some(3);
    b0.distal_end = vesselkit_core::BranchEnd::Junction;
    let mut b1 = straight(1, Some(0), Point::new(0.0, 400.0), (0.0, 1.0), 30.0, |_| 3.5);
    for s in b1.samples.iter_mut().filter(|s| (s.arc_mm - 15.0).abs() < 0.8) {
        s.channels = 2;
    }
    let mut b2 = straight(2, Some(0), Point::new(0.0, 400.0), (1.0, 0.0), 15.0, |_| 3.0);
    b2.distal_end = vesselkit_core::BranchEnd::Abrupt;
    b2.flow_grade = Some(0);
    let t = tree(vec![b0, b1, b2]);
    let a = assess(&t, &Rules::default(), &PlanInput::default()).unwrap();
    let types: Vec<LesionType> = a.lesions.iter().map(|l| l.lesion_type).collect();
    use LesionType::*;
    assert_eq!(types, vec![Ring, Web, Occlusion]);
    let occ = a.lesions.iter().find(|l| l.lesion_type == Occlusion).unwrap();
    assert_eq!(occ.priority, Some(3));
    assert!(
        a.lesions
            .iter()
            .all(|l| !l.balloon_mm.is_empty() && !l.reason.is_empty())
    );
    assert_eq!(a.plan.sessions.len(), 2);
    assert_eq!(a.plan.sessions[0].lesions.len(), 3);
}
