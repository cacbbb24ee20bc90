//! The vesselkit report (schema `vesselkit.report/1`) and the writers that turn it into JSON,
//! CSV, an overlay picture and a DICOM Structured Report.
//!
//! The model is plain data filled by the facade; the writers know nothing of the algorithms.

pub mod csv;
pub mod draw;
pub mod model;
pub mod overlay;
pub mod sr;

pub use model::{
    InputInfo, LesionReport, OctReport, PlanReport, Report, SCHEMA, SessionReport, Site, Software, VesselReport,
};

/// Errors of the report writers.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;
