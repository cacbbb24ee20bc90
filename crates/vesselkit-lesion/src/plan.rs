//! Staged, undersized balloon advice and grouping into sessions (domain.md rule 8; informative,
//! not prescriptive).

use crate::error::Result;
use crate::model::{BalloonAdvice, Lesion, Plan, PlanInput, ReferenceSource, Session, Step};
use crate::rules::Rules;
use std::collections::BTreeSet;

/// Largest catalogue size not above `target`, or the smallest size when all are above it.
fn round_down(catalogue: &[f64], target: f64) -> f64 {
    catalogue
        .iter()
        .copied()
        .filter(|&s| s <= target + 1e-9)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
        .unwrap_or_else(|| catalogue.iter().copied().fold(f64::INFINITY, f64::min))
}

/// Balloon sizes per stage for one lesion (see [`crate::rules::BalloonRules`]).
pub fn balloon_advice(l: &Lesion, input: &PlanInput, rules: &Rules) -> BalloonAdvice {
    let b = &rules.balloon;
    let (reference_mm, reference_source) = match input.oct_reference_mm.get(&l.id) {
        Some(&d) if d.is_finite() && d > 0.0 => (d, ReferenceSource::Oct),
        _ => (l.reference_diameter_mm, ReferenceSource::Qca),
    };
    let mut advice = BalloonAdvice {
        lesion: l.id,
        reference_mm,
        reference_source,
        balloon_mm: Vec::new(),
        ratio: Vec::new(),
        oversized: false,
        note: String::new(),
    };
    if !(reference_mm.is_finite() && reference_mm > 0.0) {
        advice.note = format!("no usable reference diameter ({reference_mm}); no balloon advised");
        return advice;
    }
    for k in 0..b.max_stages {
        let f = (b.first_fraction + k as f64 * b.step_fraction).min(b.final_fraction);
        let mut target = reference_mm * f;
        if k == 0 && b.cap_first_session {
            target = target.min(b.first_session_max_mm);
        }
        let size = round_down(&b.catalogue_mm, target);
        if advice.balloon_mm.last().is_none_or(|&prev| size > prev) {
            advice.balloon_mm.push(size);
            advice.ratio.push(size / reference_mm);
        }
    }
    advice.oversized = advice.ratio.iter().any(|&r| r > b.max_ratio);
    let sizes: Vec<String> = advice.balloon_mm.iter().map(|s| format!("{s:.1}")).collect();
    let ratios: Vec<String> = advice.ratio.iter().map(|r| format!("{r:.2}")).collect();
    advice.note = format!(
        "reference {reference_mm:.2} mm ({}); balloons {} mm; balloon/vessel {}",
        match reference_source {
            ReferenceSource::Oct => "OCT",
            ReferenceSource::Qca => "QCA",
        },
        sizes.join(" -> "),
        ratios.join(", ")
    );
    if advice.oversized {
        advice.note += &format!(
            "; FLAG balloon-to-vessel ratio above {:.2} (smallest catalogue balloon exceeds the vessel) [R8]",
            b.max_ratio
        );
    }
    advice
}

/// Vessel identity for the per-session limit; lesions without a vessel (OCT) count alone.
fn vessel_key(l: &Lesion) -> (bool, usize) {
    match l.vessel {
        Some(v) => (true, v),
        None => (false, l.id),
    }
}

/// Balloon advice per lesion and sessions: lesions are taken in priority order (then id); each
/// session holds at most `session.max_vessels_per_session` vessels; stage k+1 of a lesion is
/// placed in a later session than stage k.
pub fn plan(lesions: &[Lesion], input: &PlanInput, rules: &Rules) -> Result<Plan> {
    rules.validate()?;
    let mut order: Vec<usize> = (0..lesions.len()).collect();
    order.sort_by_key(|&i| (lesions[i].priority.unwrap_or(usize::MAX), lesions[i].id));
    let balloons: Vec<BalloonAdvice> = order
        .iter()
        .map(|&i| balloon_advice(&lesions[i], input, rules))
        .collect();
    // next stage to place and the session of the previous stage, per entry of `order`
    let mut next = vec![0usize; order.len()];
    let mut last_session = vec![0usize; order.len()];
    let max_v = rules.session.max_vessels_per_session;
    let mut sessions = Vec::new();
    let e = &rules.endpoints;
    loop {
        let index = sessions.len() + 1;
        let mut vessels = BTreeSet::new();
        let mut steps = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let sizes = &balloons[k].balloon_mm;
            if next[k] >= sizes.len() || (next[k] > 0 && last_session[k] >= index) {
                continue;
            }
            let key = vessel_key(&lesions[i]);
            if !vessels.contains(&key) && vessels.len() >= max_v {
                continue;
            }
            vessels.insert(key);
            steps.push(Step {
                lesion: lesions[i].id,
                vessel: lesions[i].vessel,
                stage: next[k] + 1,
                balloon_mm: sizes[next[k]],
            });
            next[k] += 1;
            last_session[k] = index;
        }
        if steps.is_empty() {
            // Every pending stage is eligible at the start of a session and the first one
            // always fits, so an empty session means all stages are placed.
            break;
        }
        let parts: Vec<String> = steps
            .iter()
            .map(|s| format!("lesion {} stage {} ({:.1} mm)", s.lesion, s.stage, s.balloon_mm))
            .collect();
        let note = format!(
            "session {index}: {} vessel(s); {}; stop each lesion at distal mPAP < {} mmHg, the session at PEPSI < {}",
            vessels.len(),
            parts.join(", "),
            e.distal_mpap_max_mmhg,
            e.pepsi_max
        );
        let mut ids: Vec<usize> = Vec::new();
        for s in &steps {
            if !ids.contains(&s.lesion) {
                ids.push(s.lesion);
            }
        }
        sessions.push(Session {
            index,
            lesions: ids,
            steps,
            note,
        });
    }
    let b = &rules.balloon;
    let mut notes = vec![
        "Order: ring, web and subtotal lesions before occlusions and tortuous lesions (consensus recommendation 9)."
            .to_string(),
        format!(
            "Staged undersized dilation [R10]: first balloon {:.0}% of the reference{}, +{:.0}% per later session up to \
             {:.0}%, rounded down to the catalogue (fractions and first-session cap are UNVERIFIED defaults).",
            b.first_fraction * 100.0,
            if b.cap_first_session {
                format!(" capped at {} mm", b.first_session_max_mm)
            } else {
                String::new()
            },
            b.step_fraction * 100.0,
            b.final_fraction * 100.0
        ),
        format!(
            "Pressure end points: distal mean PAP < {} mmHg per lesion [R6]; PEPSI < {} per session [R5][R6]; \
             post-dilation Pd > {} mmHg: reperfusion-injury caution [R7]; FFR {} / PFR {} [R24].",
            e.distal_mpap_max_mmhg, e.pepsi_max, e.pd_caution_mmhg, e.ffr_threshold, e.pfr_threshold
        ),
        format!("At most {max_v} vessel(s) per session (NICE: 1-6 segmental or subsegmental arteries) [R16]."),
    ];
    for a in &balloons {
        if a.balloon_mm.is_empty() {
            notes.push(format!("lesion {}: {}", a.lesion, a.note));
        } else if a.oversized {
            notes.push(format!(
                "lesion {}: balloon-to-vessel ratio above {} [R8]",
                a.lesion, b.max_ratio
            ));
        }
    }
    Ok(Plan {
        sessions,
        balloons,
        notes,
        endpoints: e.clone(),
        notice: vesselkit_core::RESEARCH_NOTICE.to_string(),
    })
}
