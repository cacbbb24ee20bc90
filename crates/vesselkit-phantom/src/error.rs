//! Errors of phantom generation.

/// Why a phantom could not be generated. Messages name the parameter at fault.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("invalid parameter `{field}`: {reason}")]
    InvalidParam { field: &'static str, reason: String },
    #[error("could not place lesion(s) {missing:?} after {attempts} layouts; use a larger image or fewer lesions")]
    Placement { missing: Vec<String>, attempts: usize },
    #[error("core: {0}")]
    Core(#[from] vesselkit_core::CoreError),
    #[error("serialising truth: {0}")]
    Json(#[from] serde_json::Error),
}

impl PhantomError {
    pub(crate) fn param(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParam {
            field,
            reason: reason.into(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, PhantomError>;

/// Check `lo <= v <= hi` and finiteness for a parameter.
pub(crate) fn check_range(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<f64> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(PhantomError::param(field, format!("must be in [{lo}, {hi}], got {v}")));
    }
    Ok(v)
}

/// Check an image side length.
pub(crate) fn check_size(field: &'static str, v: usize, lo: usize, hi: usize) -> Result<usize> {
    if v < lo || v > hi {
        return Err(PhantomError::param(field, format!("must be in [{lo}, {hi}], got {v}")));
    }
    Ok(v)
}
