//! The error type of the filters crate.

/// Errors from bad filter input; each names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("bad shape for {field}: {reason}")]
    Shape { field: &'static str, reason: String },
}

impl FilterError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
    pub fn shape(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Shape {
            field,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = FilterError> = std::result::Result<T, E>;
