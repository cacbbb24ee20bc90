//! The error type of the angiography crate.

use vesselkit_core::CoreError;
use vesselkit_filters::FilterError;

/// Errors from angiography analysis; each names the offending field or stage.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AngioError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The image holds no structure the stage needs (no vessel, no catheter edge...).
    #[error("{what} not found: {reason}")]
    NotFound { what: &'static str, reason: String },
}

impl AngioError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
    pub fn not_found(what: &'static str, reason: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = AngioError> = std::result::Result<T, E>;

/// Reject empty images, non-finite pixels, and ranges whose differences overflow f32 (the
/// background subtraction and the filters take differences of pixel values).
pub(crate) fn check_image(field: &'static str, img: &ndarray::ArrayView2<f32>) -> Result<()> {
    let (r, c) = img.dim();
    if r < 3 || c < 3 {
        return Err(AngioError::invalid(
            field,
            format!("image of {r} x {c} px is too small (need 3 x 3)"),
        ));
    }
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for (i, &v) in img.iter().enumerate() {
        if !v.is_finite() {
            return Err(AngioError::invalid(
                field,
                format!("pixel {i} is {v}; all pixels must be finite"),
            ));
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(hi - lo).is_finite() {
        return Err(AngioError::invalid(
            field,
            format!("pixel values span {lo:e} to {hi:e}, a range f32 cannot hold; scale the image down"),
        ));
    }
    Ok(())
}

pub(crate) fn check_mm_per_px(mm_per_px: f64) -> Result<()> {
    if !(mm_per_px.is_finite() && mm_per_px > 0.0) {
        return Err(AngioError::invalid(
            "mm_per_px",
            format!("must be a finite value > 0, got {mm_per_px}"),
        ));
    }
    Ok(())
}
