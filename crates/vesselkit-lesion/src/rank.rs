//! Treatment order (domain.md rule 7).
//!
//! Hard constraint: ring, web and subtotal lesions come before occlusions and tortuous lesions
//! (consensus recommendation 9 [R11]; higher success and fewer complications in A-C [R1]).
//! Within each group lesions are ordered by a score (see [`crate::rules::RankingRules`]): the
//! expected gain from % stenosis and the downstream territory, discounted for each risk flag.
//! Lesions whose type no rule established (reported as the nearest type, low confidence) come
//! after the typed lesions of their group: the order of recommendation 9 rests on the type, so
//! an unestablished type goes after the established ones.

use crate::classify::tortuous_path;
use crate::error::Result;
use crate::model::{Lesion, RuleFired, StumpShape};
use crate::rules::Rules;
use vesselkit_core::{LesionType, VesselTree};

/// Treatment group: 1 = ring, web, subtotal; 2 = occlusion, tortuous (consensus rec. 9).
pub fn treatment_group(t: LesionType) -> u8 {
    match t {
        LesionType::Ring | LesionType::Web | LesionType::Subtotal => 1,
        LesionType::Occlusion | LesionType::Tortuous => 2,
    }
}

/// Risk flags of a lesion and the multiplicative discount they give.
pub fn risk_flags(l: &Lesion, rules: &Rules) -> (Vec<&'static str>, f64) {
    let r = &rules.ranking;
    let ev = &l.evidence;
    let mut flags = Vec::new();
    let mut factor = 1.0;
    let mut add = |name: &'static str, penalty: f64| {
        flags.push(name);
        factor *= 1.0 - penalty;
    };
    if l.reference_diameter_mm.is_finite() && l.reference_diameter_mm < r.small_vessel_mm {
        add("small_vessel", r.penalty_small_vessel);
    }
    if ev.lesion_angle_deg.is_some_and(|a| a >= r.sharp_angle_deg) {
        add("sharp_angle", r.penalty_sharp_angle);
    }
    match ev.stump {
        Some(StumpShape::Orifice) => add("orifice_stump", r.penalty_orifice_stump),
        Some(StumpShape::Round) => add("round_stump", r.penalty_round_stump),
        _ => {}
    }
    if tortuous_path(ev, rules) {
        add("tortuosity", r.penalty_tortuosity);
    }
    (flags, factor)
}

/// Sets `priority` (1 = first, a permutation of 1..=n), `score`, `risk_flags` and a one-line
/// `reason` on every lesion. Ties keep id order.
pub fn rank(lesions: &mut [Lesion], tree: &VesselTree, rules: &Rules) -> Result<()> {
    rules.validate()?;
    let r = &rules.ranking;
    for l in lesions.iter_mut() {
        let territory = l
            .vessel
            .filter(|&v| v < tree.branches.len())
            .map(|v| tree.territory_length_mm(v))
            .filter(|t| t.is_finite() && *t >= 0.0)
            .unwrap_or(0.0);
        // Scoring only: a stenosis outside 0-100 % (bad upstream value) scores as its nearest
        // bound, and a missing one as 0, so that ranking never fails on one lesion's numbers.
        let ds = if l.diameter_stenosis_pct.is_finite() {
            l.diameter_stenosis_pct.clamp(0.0, 100.0)
        } else {
            0.0
        };
        let gain = r.weight_stenosis * ds / 100.0 + r.weight_territory * territory / (territory + r.territory_half_mm);
        let (flags, factor) = risk_flags(l, rules);
        l.score = gain * factor;
        l.risk_flags = flags.iter().map(|s| s.to_string()).collect();
        let group = treatment_group(l.lesion_type);
        let why = if l.evidence.rule == RuleFired::Fallback {
            if group == 1 {
                "group 1 (ring/web/subtotal first, consensus rec. 9), after the typed lesions: type not established"
            } else {
                "group 2 (occlusion/tortuous after ring/web/subtotal, consensus rec. 9), after the typed lesions: type not established"
            }
        } else if group == 1 {
            "group 1 (ring/web/subtotal first, consensus rec. 9)"
        } else {
            "group 2 (occlusion/tortuous after ring/web/subtotal, consensus rec. 9)"
        };
        let flag_txt = if flags.is_empty() {
            String::new()
        } else {
            format!("; risk: {}", flags.join(", "))
        };
        // Lengths are pixels when the image has no physical scale.
        let unit = if tree.calibration.is_calibrated() { "mm" } else { "px" };
        l.reason = format!(
            "{} ({}) {why}; DS {ds:.0}%, territory {territory:.0} {unit}, score {:.2}{flag_txt}",
            l.lesion_type,
            l.lesion_type.kawakami(),
            l.score
        );
    }
    let mut order: Vec<usize> = (0..lesions.len()).collect();
    let key = |l: &Lesion| if l.score.is_nan() { f64::NEG_INFINITY } else { l.score };
    order.sort_by(|&a, &b| {
        let (la, lb) = (&lesions[a], &lesions[b]);
        let untyped = |l: &Lesion| l.evidence.rule == RuleFired::Fallback;
        treatment_group(la.lesion_type)
            .cmp(&treatment_group(lb.lesion_type))
            .then(untyped(la).cmp(&untyped(lb)))
            .then(key(lb).total_cmp(&key(la)))
            .then(la.id.cmp(&lb.id))
    });
    for (p, &i) in order.iter().enumerate() {
        lesions[i].priority = Some(p + 1);
    }
    Ok(())
}
