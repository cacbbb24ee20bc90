//! Synthetic angiograms, cine runs and OCT pullbacks with ground truth.
//!
//! No public pulmonary angiograms with annotations exist, so these phantoms are the reference
//! every algorithm is developed and judged against. Images are rendered from explicit geometry
//! (Beer-Lambert through circular lumens for X-ray, a backscatter/attenuation ray march for OCT)
//! and the truth is derived from that geometry, never from the rendered pixels.
//!
//! Everything is deterministic: the same parameters and seed give identical bytes (ChaCha RNG,
//! ordered containers, no result depends on thread scheduling). The crate holds no file-format
//! code: callers write the arrays (PNG / NPY / DICOM) and [`AngioPhantom::truth_json`] etc.
//!
//! Research software: synthetic data for development, not a medical device.

mod angio;
mod background;
mod cine;
mod common;
mod error;
mod oct;
mod render;

pub use angio::{
    AngioParams, AngioPhantom, AngioTruth, BranchTruth, CenterlineSample, LesionTruth, generate_angio,
    treatment_priority_group,
};
pub use cine::{BranchArrival, CineFrameTruth, CineParams, CinePhantom, CineTruth, generate_cine};
pub use common::{Quantised, fnv1a_bytes, fnv1a_f32, quantise_u16};
pub use error::PhantomError;
pub use oct::{
    LumenShape, OctFrameTruth, OctParams, OctPhantom, OctTruth, PullbackParams, PullbackPhantom, PullbackTruth,
    generate_oct_frame, generate_pullback, longitudinal_view,
};

/// Schema tag written in every truth file.
pub const TRUTH_SCHEMA: &str = "vesselkit.phantom-truth/1";
