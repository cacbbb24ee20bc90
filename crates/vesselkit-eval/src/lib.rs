//! Quality metrics and the evaluation runner.
//!
//! The pipeline under test is injected through [`AngioPipeline`] and [`OctPipeline`]; it sees
//! only pixels and calibration, never the truth. Metrics (Dice, clDice with an own Zhang-Suen
//! skeleton, diameter bias/SD by band, MLD and %DS error, detection sensitivity/PPV, type
//! confusion, Kendall tau and the recommendation-9 rule) are computed here, separately from any
//! algorithm code.

pub mod metrics;
mod report;
pub mod runner;
pub mod skeleton;

pub use metrics::{
    Confusion, DiameterBand, DiameterSample, Stat, cl_dice, diameter_bands, diameter_pairs, dice, kendall_tau_b,
    match_sites, obeys_rec9,
};
pub use runner::{
    AngioOutput, AngioPipeline, AngioScores, DetectedLesion, EvalConfig, EvalReport, LesionScores, NullPipeline,
    OctPipeline, OctScores, RealAngioCase, RealOctCase, RealScores, RealSplit, measurable_stations, run_phantoms,
    run_real,
};
pub use skeleton::zhang_suen;

#[cfg(test)]
mod truth_pipeline;
