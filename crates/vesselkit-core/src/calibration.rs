//! Pixel-to-millimetre calibration with provenance.
//!
//! Every measurement in mm says where its scale came from. Imager Pixel Spacing is measured at
//! the detector and is never used as patient spacing without the magnification factor.

use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// Where a scale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CalibrationSource {
    /// Pixel Spacing (0028,0030): already calibrated to the patient.
    #[serde(rename = "pixel_spacing")]
    PixelSpacing,
    /// Imager Pixel Spacing (0018,1164) divided by the Estimated Radiographic Magnification
    /// Factor (0018,1114) or by SID/SOD.
    #[serde(rename = "imager_pixel_spacing/ermf")]
    ImagerPixelSpacingErmf,
    /// Enhanced XA Object Pixel Spacing in Center of Beam (0018,9404).
    #[serde(rename = "object_pixel_spacing")]
    ObjectPixelSpacing,
    /// A catheter of known French size measured in the image.
    #[serde(rename = "catheter")]
    Catheter,
    /// A value the user supplied.
    #[serde(rename = "user")]
    User,
    /// No scale: values are in pixels.
    #[serde(rename = "uncalibrated")]
    Uncalibrated,
}

impl CalibrationSource {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PixelSpacing => "pixel_spacing",
            Self::ImagerPixelSpacingErmf => "imager_pixel_spacing/ermf",
            Self::ObjectPixelSpacing => "object_pixel_spacing",
            Self::Catheter => "catheter",
            Self::User => "user",
            Self::Uncalibrated => "uncalibrated",
        }
    }
}

impl std::fmt::Display for CalibrationSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Isotropic scale of an image in mm per pixel, with where it came from.
///
/// When uncalibrated, `mm_per_px` is 1.0 so that "mm" values are pixels; reports name them so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub mm_per_px: f64,
    pub source: CalibrationSource,
    /// Free text on how the value was derived (tags and values used), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn check_spacing(field: &'static str, v: f64) -> Result<f64> {
    if !v.is_finite() || v <= 0.0 {
        return Err(CoreError::invalid(
            field,
            format!("must be a finite value > 0, got {v}"),
        ));
    }
    if v > 100.0 {
        return Err(CoreError::invalid(
            field,
            format!("{v} mm per pixel is not a plausible image spacing"),
        ));
    }
    Ok(v)
}

impl Calibration {
    /// No scale: measurements stay in pixels.
    pub fn uncalibrated() -> Self {
        Self {
            mm_per_px: 1.0,
            source: CalibrationSource::Uncalibrated,
            detail: None,
        }
    }

    pub fn is_calibrated(&self) -> bool {
        self.source != CalibrationSource::Uncalibrated
    }

    /// A user-supplied scale.
    pub fn user(mm_per_px: f64) -> Result<Self> {
        Ok(Self {
            mm_per_px: check_spacing("pixel_spacing", mm_per_px)?,
            source: CalibrationSource::User,
            detail: None,
        })
    }

    /// From Pixel Spacing (row spacing, column spacing) in mm. Anisotropic spacing is averaged
    /// and noted in `detail`.
    pub fn from_pixel_spacing(row_mm: f64, col_mm: f64) -> Result<Self> {
        Self::isotropic(row_mm, col_mm, CalibrationSource::PixelSpacing, "PixelSpacing")
    }

    /// From Enhanced XA Object Pixel Spacing in Center of Beam (row, col) in mm.
    pub fn from_object_pixel_spacing(row_mm: f64, col_mm: f64) -> Result<Self> {
        Self::isotropic(
            row_mm,
            col_mm,
            CalibrationSource::ObjectPixelSpacing,
            "ObjectPixelSpacingInCenterOfBeam",
        )
    }

    fn isotropic(row_mm: f64, col_mm: f64, source: CalibrationSource, tag: &str) -> Result<Self> {
        let r = check_spacing("pixel_spacing.row", row_mm)?;
        let c = check_spacing("pixel_spacing.col", col_mm)?;
        let mean = 0.5 * (r + c);
        let mut detail = format!("{tag} {r}\\{c}");
        if (r - c).abs() > 0.01 * mean {
            detail.push_str(&format!("; anisotropic, mean {mean} mm used"));
        }
        Ok(Self {
            mm_per_px: mean,
            source,
            detail: Some(detail),
        })
    }

    /// Estimated Radiographic Magnification Factor from Distance Source to Detector (SID) and
    /// Distance Source to Patient (SOD, source to isocentre), both in mm.
    pub fn ermf_from_distances(sid_mm: f64, sod_mm: f64) -> Result<f64> {
        if !sid_mm.is_finite() || sid_mm <= 0.0 {
            return Err(CoreError::invalid(
                "distance_source_to_detector",
                format!("must be > 0, got {sid_mm}"),
            ));
        }
        if !sod_mm.is_finite() || sod_mm <= 0.0 {
            return Err(CoreError::invalid(
                "distance_source_to_patient",
                format!("must be > 0, got {sod_mm}"),
            ));
        }
        if sod_mm > sid_mm {
            return Err(CoreError::invalid(
                "distance_source_to_patient",
                format!("{sod_mm} mm is beyond the detector at {sid_mm} mm"),
            ));
        }
        Ok(sid_mm / sod_mm)
    }

    /// Imager Pixel Spacing (detector plane) divided by the magnification factor: the scale at
    /// the isocentre plane.
    pub fn from_imager_pixel_spacing(row_mm: f64, col_mm: f64, ermf: f64) -> Result<Self> {
        let r = check_spacing("imager_pixel_spacing.row", row_mm)?;
        let c = check_spacing("imager_pixel_spacing.col", col_mm)?;
        if !ermf.is_finite() || !(1.0..=10.0).contains(&ermf) {
            return Err(CoreError::invalid(
                "estimated_radiographic_magnification_factor",
                format!("must be a finite value in [1, 10], got {ermf}"),
            ));
        }
        let mean = 0.5 * (r + c);
        Ok(Self {
            mm_per_px: mean / ermf,
            source: CalibrationSource::ImagerPixelSpacingErmf,
            detail: Some(format!("ImagerPixelSpacing {r}\\{c} / ERMF {ermf:.4}")),
        })
    }

    /// From a catheter of known outer diameter (French size: 1 Fr = 1/3 mm) measured as
    /// `measured_px` pixels wide in the image.
    pub fn from_catheter(french: f64, measured_px: f64) -> Result<Self> {
        if !french.is_finite() || !(2.0..=12.0).contains(&french) {
            return Err(CoreError::invalid(
                "catheter_french",
                format!("must be in [2, 12] Fr, got {french}"),
            ));
        }
        if !measured_px.is_finite() || measured_px <= 1.0 {
            return Err(CoreError::invalid(
                "catheter_width_px",
                format!("must be > 1 px, got {measured_px}"),
            ));
        }
        let mm = french / 3.0;
        Ok(Self {
            mm_per_px: check_spacing("catheter", mm / measured_px)?,
            source: CalibrationSource::Catheter,
            detail: Some(format!(
                "{french} Fr catheter ({mm:.3} mm) measured {measured_px:.2} px"
            )),
        })
    }

    /// Convert a length in pixels to mm (identity when uncalibrated).
    #[inline]
    pub fn px_to_mm(&self, px: f64) -> f64 {
        px * self.mm_per_px
    }

    /// Convert a length in mm to pixels.
    #[inline]
    pub fn mm_to_px(&self, mm: f64) -> f64 {
        mm / self.mm_per_px
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Self::uncalibrated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imager_spacing_over_ermf_from_distances() {
        let ermf = Calibration::ermf_from_distances(1200.0, 800.0).unwrap();
        let c = Calibration::from_imager_pixel_spacing(0.2, 0.2, ermf).unwrap();
        assert!((c.mm_per_px - 0.133_333).abs() < 1e-5, "{}", c.mm_per_px);
        assert_eq!(c.source.as_str(), "imager_pixel_spacing/ermf");
    }

    #[test]
    fn rejects_zero_nan_and_inverted_geometry() {
        assert!(Calibration::user(0.0).is_err());
        assert!(Calibration::user(f64::NAN).is_err());
        assert!(Calibration::from_pixel_spacing(0.2, -1.0).is_err());
        assert!(Calibration::ermf_from_distances(800.0, 1200.0).is_err());
        assert!(Calibration::from_imager_pixel_spacing(0.2, 0.2, 0.5).is_err());
        let msg = Calibration::user(0.0).unwrap_err().to_string();
        assert!(msg.contains("pixel_spacing"), "{msg}");
    }

    #[test]
    fn catheter_six_french() {
        // 6 Fr = 2 mm over 10 px = 0.2 mm/px
        let c = Calibration::from_catheter(6.0, 10.0).unwrap();
        assert!((c.mm_per_px - 0.2).abs() < 1e-12);
        assert_eq!(c.source, CalibrationSource::Catheter);
    }

    #[test]
    fn source_names_serialise_as_in_reports() {
        let c = Calibration::from_imager_pixel_spacing(0.3, 0.3, 1.5).unwrap();
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains("\"imager_pixel_spacing/ermf\""), "{s}");
        assert!((c.mm_per_px - 0.2).abs() < 1e-12);
    }
}
