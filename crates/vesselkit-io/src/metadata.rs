//! What a reader reports about a file besides its pixels, and the options every reader takes.

use serde::Serialize;
use vesselkit_core::{Calibration, Limits};

/// Options shared by every reader. The default limits are [`Limits::default`]: 16384 px per
/// side, 10 000 frames, 512 Mi pixels in all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadOptions {
    /// Size limits checked before any pixel buffer is allocated (see [`Limits::default`]).
    pub limits: Limits,
    /// A scale supplied by the user (mm per pixel); overrides every tag, source `user`.
    pub user_mm_per_px: Option<f64>,
    /// Apply Rescale Slope/Intercept (0028,1053)/(0028,1052) to the stored values. Off by
    /// default: analysis works on stored values.
    pub apply_modality_lut: bool,
}

impl ReadOptions {
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    pub fn with_user_mm_per_px(mut self, mm_per_px: f64) -> Self {
        self.user_mm_per_px = Some(mm_per_px);
        self
    }
    pub fn with_modality_lut(mut self, apply: bool) -> Self {
        self.apply_modality_lut = apply;
        self
    }
}

/// The container format, sniffed from the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Dicom,
    Png,
    Tiff,
    Npy,
}

/// Intravascular OCT geometry (DICOM IVOCT, PS3.3 C.8.27).
///
/// Polar (FOR PROCESSING) frames have one A-line per row, the catheter optics at column 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OctGeometry {
    /// A-line Pixel Spacing (0052,0014) divided by the Effective Refractive Index (0052,0004)
    /// unless Refractive Index Applied (0052,003A) is YES; None when the tag is absent.
    pub a_line_spacing_mm: Option<f64>,
    /// A-line Pixel Spacing (0052,0014) as stored.
    pub a_line_spacing_stored_mm: Option<f64>,
    /// OCT Z Offset Correction (0052,0030) of the first frame, in pixels (positive: away from
    /// the catheter). The reader shifts the A-lines by it unless OCT Z Offset Applied is YES.
    pub z_offset_px: i32,
    /// Z offsets per frame when they vary (per-frame functional groups); empty otherwise.
    pub z_offsets_px: Vec<i32>,
    /// True when the reader shifted the A-lines by the Z offset.
    pub z_offset_applied_by_reader: bool,
    /// Effective Refractive Index (0052,0004).
    pub refractive_index: Option<f64>,
    /// Refractive Index Applied (0052,003A) = YES.
    pub refractive_index_applied: bool,
    /// True for FOR PROCESSING polar frames, false for cartesian FOR PRESENTATION frames.
    pub polar: bool,
    /// A-lines Per Frame (0052,0012), or the rows of a polar frame when absent.
    pub a_lines_per_frame: Option<u32>,
}

/// Everything known about a file besides its pixels (`vesselkit info --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub path: String,
    pub format: FileFormat,
    /// Modality (0008,0060), e.g. `XA`, `RF`, `IVOCT`.
    pub modality: Option<String>,
    pub sop_class_uid: Option<String>,
    pub sop_class_name: Option<String>,
    pub transfer_syntax_uid: Option<String>,
    pub transfer_syntax_name: Option<String>,
    pub rows: u32,
    pub cols: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// Photometric Interpretation (0028,0004), or `MONOCHROME2`/`RGB`… for raster files.
    pub photometric_interpretation: Option<String>,
    /// True when MONOCHROME1 values were inverted (max_stored + min_stored - value) so that
    /// contrast-filled vessels are dark on bright, as in MONOCHROME2.
    pub inverted: bool,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    /// True when the pixels returned carry the modality rescale.
    pub modality_lut_applied: bool,
    /// Time of each frame in ms (Frame Delay + cumulative Frame Time); empty when unknown.
    pub frame_times_ms: Vec<f64>,
    /// The attribute the frame times came from.
    pub frame_time_source: Option<String>,
    /// Positioner Primary Angle (0018,1510), degrees (LAO positive).
    pub positioner_primary_angle_deg: Option<f64>,
    /// Positioner Secondary Angle (0018,1511), degrees (cranial positive).
    pub positioner_secondary_angle_deg: Option<f64>,
    /// The scale used, with its provenance.
    pub calibration: Calibration,
    /// Raw spacing-related attributes, for the report.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    pub imager_pixel_spacing_mm: Option<[f64; 2]>,
    pub distance_source_to_detector_mm: Option<f64>,
    pub distance_source_to_patient_mm: Option<f64>,
    pub estimated_radiographic_magnification_factor: Option<f64>,
    pub oct: Option<OctGeometry>,
    /// Things the reader noticed and worked around (ignored bad tags etc.).
    pub warnings: Vec<String>,
}

impl Metadata {
    /// Metadata for a raster or array file: no DICOM attributes.
    pub(crate) fn plain(path: &str, format: FileFormat, rows: u32, cols: u32, frames: u32, bits: u16) -> Self {
        Self {
            path: path.to_string(),
            format,
            modality: None,
            sop_class_uid: None,
            sop_class_name: None,
            transfer_syntax_uid: None,
            transfer_syntax_name: None,
            rows,
            cols,
            frames,
            samples_per_pixel: 1,
            bits_allocated: bits,
            bits_stored: bits,
            signed: false,
            photometric_interpretation: None,
            inverted: false,
            rescale_slope: None,
            rescale_intercept: None,
            modality_lut_applied: false,
            frame_times_ms: Vec::new(),
            frame_time_source: None,
            positioner_primary_angle_deg: None,
            positioner_secondary_angle_deg: None,
            calibration: Calibration::uncalibrated(),
            pixel_spacing_mm: None,
            imager_pixel_spacing_mm: None,
            distance_source_to_detector_mm: None,
            distance_source_to_patient_mm: None,
            estimated_radiographic_magnification_factor: None,
            oct: None,
            warnings: Vec::new(),
        }
    }
}

/// Human name of a transfer syntax UID ("unknown transfer syntax" when not known).
pub fn transfer_syntax_name(uid: &str) -> &'static str {
    match uid.trim_end_matches(['\0', ' ']) {
        "1.2.840.10008.1.2" => "Implicit VR Little Endian",
        "1.2.840.10008.1.2.1" => "Explicit VR Little Endian",
        "1.2.840.10008.1.2.1.99" => "Deflated Explicit VR Little Endian",
        "1.2.840.10008.1.2.2" => "Explicit VR Big Endian (retired)",
        "1.2.840.10008.1.2.5" => "RLE Lossless",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline (Process 1)",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended (Process 2 & 4)",
        "1.2.840.10008.1.2.4.57" => "JPEG Lossless, Non-Hierarchical (Process 14)",
        "1.2.840.10008.1.2.4.70" => "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, SV1)",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Lossy (Near-Lossless)",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 (Lossless Only)",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.100" => "MPEG2 Main Profile / Main Level",
        "1.2.840.10008.1.2.4.102" => "MPEG-4 AVC/H.264 High Profile / Level 4.1",
        "1.2.840.10008.1.2.4.201" => "High-Throughput JPEG 2000 (Lossless Only)",
        "1.2.840.10008.1.2.4.203" => "High-Throughput JPEG 2000",
        _ => "unknown transfer syntax",
    }
}

/// Human name of the SOP classes we meet in angiography and IVOCT.
pub fn sop_class_name(uid: &str) -> Option<&'static str> {
    Some(match uid.trim_end_matches(['\0', ' ']) {
        crate::SOP_XA => "X-Ray Angiographic Image Storage",
        "1.2.840.10008.5.1.4.1.1.12.1.1" => "Enhanced XA Image Storage",
        crate::SOP_XRF => "X-Ray Radiofluoroscopic Image Storage",
        "1.2.840.10008.5.1.4.1.1.12.2.1" => "Enhanced XRF Image Storage",
        crate::SOP_IVOCT_PRESENTATION => "Intravascular OCT Image Storage - For Presentation",
        crate::SOP_IVOCT_PROCESSING => "Intravascular OCT Image Storage - For Processing",
        "1.2.840.10008.5.1.4.1.1.7" => "Secondary Capture Image Storage",
        "1.2.840.10008.5.1.4.1.1.7.2" => "Multi-frame Grayscale Byte Secondary Capture Image Storage",
        "1.2.840.10008.5.1.4.1.1.7.3" => "Multi-frame Grayscale Word Secondary Capture Image Storage",
        "1.2.840.10008.5.1.4.1.1.1.1" => "Digital X-Ray Image Storage - For Presentation",
        _ => return None,
    })
}
