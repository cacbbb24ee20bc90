//! The error type of the OCT crate.

/// Errors from OCT analysis. Messages name the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OctError {
    /// An option or geometry value is outside its valid range.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// An input array has the wrong shape or is empty.
    #[error("bad shape for {field}: {reason}")]
    Shape { field: &'static str, reason: String },
    /// The image holds no detectable lumen (e.g. blank frame, catheter outside the image).
    #[error("no lumen found: {0}")]
    NoLumen(String),
}

impl OctError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        OctError::Invalid {
            field,
            reason: reason.into(),
        }
    }
    pub(crate) fn shape(field: &'static str, reason: impl Into<String>) -> Self {
        OctError::Shape {
            field,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = OctError> = std::result::Result<T, E>;

/// Reject NaN/inf and non-positive values for a named field.
pub(crate) fn positive(field: &'static str, v: f64) -> Result<f64> {
    if !v.is_finite() || v <= 0.0 {
        return Err(OctError::invalid(field, format!("must be a finite value > 0, got {v}")));
    }
    Ok(v)
}

/// Reject non-finite pixels (they would poison every sum downstream).
pub(crate) fn finite_pixels<'a, I>(field: &'static str, values: I) -> Result<()>
where
    I: IntoIterator<Item = &'a f32>,
    I::IntoIter: Clone,
{
    let it = values.into_iter();
    if it.clone().all(|v| v.is_finite()) {
        return Ok(());
    }
    if let Some((i, v)) = it.enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(OctError::invalid(
            field,
            format!("pixel {i} is {v}; all pixels must be finite"),
        ));
    }
    Ok(())
}
