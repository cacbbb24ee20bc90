//! The error type of the lesion crate.

use vesselkit_core::CoreError;

/// Errors of lesion detection, ranking and planning. Every message names the bad field.
#[derive(Debug, thiserror::Error)]
pub enum LesionError {
    /// A rule-table value is outside its valid range.
    #[error("invalid rule {field}: {reason}")]
    Rule { field: String, reason: String },
    /// An input value is invalid (bad spacing, mismatched lengths, malformed branch...).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A rules file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A rules file could not be parsed; `field` is the path of the offending value.
    #[error("bad rules file {path}: field `{field}`: {reason}")]
    Parse {
        path: String,
        field: String,
        reason: String,
    },
    /// QCA of a profile window failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl LesionError {
    pub(crate) fn rule(field: impl Into<String>, reason: impl Into<String>) -> Self {
        LesionError::Rule {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        LesionError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = LesionError> = std::result::Result<T, E>;
