//! Lesion detection, Kawakami classification, treatment ranking and balloon plan.
//!
//! Input is the measured vessel description [`vesselkit_core::VesselTree`] (or an OCT area
//! profile); output is a list of [`Lesion`]s typed ring, web, subtotal, occlusion or tortuous
//! with the [`Evidence`] behind each type, ranked for treatment, and a staged [`Plan`]. Every
//! threshold lives in the [`Rules`] table, loadable from JSON or TOML.
//!
//! Research use only: the plan is advice computed from images, not a prescription.

pub mod classify;
pub mod detect;
pub mod error;
pub mod model;
mod paths;
pub mod plan;
pub mod rank;
pub mod rules;

pub use classify::{Decision, classify};
pub use detect::{detect, detect_oct, detect_with_opacity, detect_with_probes, drop_edge_cutoffs};
pub use error::{LesionError, Result};
pub use model::{
    Assessment, BalloonAdvice, EndProbe, Evidence, Lesion, Modality, Plan, PlanInput, REFILL_WINDOW_PX,
    ReferenceSource, RuleFired, Session, Site, Step, StumpShape,
};
pub use plan::{balloon_advice, plan};
pub use rank::{rank, risk_flags, treatment_group};
pub use rules::{
    BalloonRules, ClassificationRules, DetectionRules, PressureEndpoints, RankingRules, Rules, SessionRules,
};

use vesselkit_core::VesselTree;

/// Detects, ranks and plans in one call; each lesion's `balloon_mm` is filled from the plan.
pub fn assess(tree: &VesselTree, rules: &Rules, input: &PlanInput) -> Result<Assessment> {
    assess_with_opacity(tree, &[], &[], rules, input)
}

/// [`assess`] with densitometry (see [`detect_with_opacity`]).
pub fn assess_with_opacity(
    tree: &VesselTree,
    opacity: &[Vec<f64>],
    beyond_end: &[Option<f64>],
    rules: &Rules,
    input: &PlanInput,
) -> Result<Assessment> {
    let lesions = detect_with_opacity(tree, opacity, beyond_end, rules)?;
    assess_detected(lesions, tree, rules, input)
}

/// Ranks and plans already detected lesions (e.g. after [`drop_edge_cutoffs`]); each lesion's
/// `balloon_mm` is filled from the plan.
pub fn assess_detected(
    mut lesions: Vec<Lesion>,
    tree: &VesselTree,
    rules: &Rules,
    input: &PlanInput,
) -> Result<Assessment> {
    rank(&mut lesions, tree, rules)?;
    let plan = plan(&lesions, input, rules)?;
    for a in &plan.balloons {
        if let Some(l) = lesions.iter_mut().find(|l| l.id == a.lesion) {
            l.balloon_mm = a.balloon_mm.clone();
        }
    }
    Ok(Assessment {
        lesions,
        plan,
        notice: vesselkit_core::RESEARCH_NOTICE.to_string(),
    })
}
