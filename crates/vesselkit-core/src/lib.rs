//! Core types shared by every vesselkit crate.
//!
//! Conventions: coordinates are `(row, col)`, arrays are row-major `[rows, cols]`
//! (`[frames, rows, cols]` for cine). Physical values carry their unit in the name.
//! Nothing here knows about files, Python or C.

pub mod calibration;
pub mod error;
pub mod frame;
pub mod geometry;
pub mod lesion_type;
pub mod qca;
pub mod vessel;

pub use calibration::{Calibration, CalibrationSource};
pub use error::{CoreError, Result};
pub use frame::{Cine, Frame, Limits};
pub use geometry::{Contour, Point, Polyline};
pub use lesion_type::LesionType;
pub use qca::{Qca, QcaOptions, ReferenceMethod, qca};
pub use vessel::{Branch, BranchEnd, ProfileSample, Tortuosity, VesselTree};

/// The notice every report carries.
pub const RESEARCH_NOTICE: &str = "Research use only. Not for clinical decision making.";
