//! The error type of the core crate.

/// Errors raised when core values are built from bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// A value is outside its valid range (zero spacing, NaN, negative size...).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An array has the wrong shape or is empty.
    #[error("bad shape for {field}: {reason}")]
    Shape { field: &'static str, reason: String },
    /// A size limit would be exceeded; the caller may raise the limit.
    #[error("{what} of {requested} exceeds the limit of {limit} (raise `Limits::{knob}` to allow it)")]
    TooLarge {
        what: &'static str,
        requested: u64,
        limit: u64,
        knob: &'static str,
    },
}

impl CoreError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CoreError::Invalid {
            field,
            reason: reason.into(),
        }
    }
    pub fn shape(field: &'static str, reason: impl Into<String>) -> Self {
        CoreError::Shape {
            field,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
