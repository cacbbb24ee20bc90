//! DICOM reading: XA/XRF (single and multi-frame), Enhanced XA, IVOCT, any transfer syntax that
//! dicom-pixeldata decodes, one frame at a time.
//!
//! Pixels come out as stored values in f32 (`apply_modality_lut` adds the rescale). MONOCHROME1
//! is inverted (`max_stored + min_stored - value`) so that contrast-filled vessels are dark on
//! bright, as in MONOCHROME2 angiograms.

use crate::error::{IoError, Result};
use crate::metadata::{FileFormat, Metadata, OctGeometry, ReadOptions, sop_class_name, transfer_syntax_name};
use dicom_core::value::Value;
use dicom_core::{PrimitiveValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, FileMetaTable, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_parser::StatefulDecode;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntax;
use dicom_transfer_syntax_registry::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use vesselkit_core::{Calibration, Cine};

const FUNCTIONAL_GROUPS: [Tag; 2] = [
    tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
    tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
];
const TS_JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const TS_IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const TS_EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// How a file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DicomFlavour {
    /// 128-byte preamble then "DICM".
    Preamble,
    /// "DICM" at offset 0 (file meta group without the preamble).
    NoPreamble,
    /// A bare data set without file meta, implicit or explicit VR little endian.
    BareDataset { explicit: bool },
}

/// Sniff whether `head` (the first bytes of a file) is DICOM.
pub(crate) fn sniff_dicom(head: &[u8]) -> Option<DicomFlavour> {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        return Some(DicomFlavour::Preamble);
    }
    if head.len() >= 4 && &head[0..4] == b"DICM" {
        return Some(DicomFlavour::NoPreamble);
    }
    // A bare data set starts with a low group (0002 or 0008) in little endian and a small
    // element number; explicit VR has two upper-case letters next.
    if head.len() >= 8 {
        let group = u16::from_le_bytes([head[0], head[1]]);
        let element = u16::from_le_bytes([head[2], head[3]]);
        if (group == 0x0002 || group == 0x0008) && element < 0x0100 {
            let explicit = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
            return Some(DicomFlavour::BareDataset { explicit });
        }
    }
    None
}

/// Geometry of the stored pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    rows: u32,
    cols: u32,
    frames: u32,
    samples: u16,
    bits_allocated: u16,
    bits_stored: u16,
    high_bit: u16,
    signed: bool,
    /// Planar Configuration 1 (colour by plane) for native colour data.
    planar: bool,
}

impl Layout {
    fn bytes_per_sample(&self) -> usize {
        usize::from(self.bits_allocated / 8)
    }
    fn frame_bytes(&self) -> usize {
        self.rows as usize * self.cols as usize * usize::from(self.samples) * self.bytes_per_sample()
    }
    /// Smallest and largest stored value.
    fn stored_range(&self) -> (i64, i64) {
        if self.signed {
            (-(1i64 << (self.bits_stored - 1)), (1i64 << (self.bits_stored - 1)) - 1)
        } else {
            (0, (1i64 << self.bits_stored) - 1)
        }
    }
}

enum Storage {
    /// Native pixel data as little-endian bytes (frames back to back).
    Native(Vec<u8>),
    /// Encapsulated (compressed) pixel data left in the object; `independent` when each frame
    /// can be decoded on its own (one fragment per frame or a full offset table).
    Encapsulated { independent: bool },
    /// 12-bit DCT JPEG code streams, one per frame, decoded by [`crate::jpeg12`].
    Jpeg12(Vec<Vec<u8>>),
}

/// An opened DICOM file that decodes frames on request.
pub struct DicomSource {
    path: String,
    obj: DefaultDicomObject,
    meta: Metadata,
    layout: Layout,
    storage: Storage,
    rescale: Option<(f64, f64)>,
    /// Z offset (px) to shift the A-lines of each frame by; empty for none.
    z_shifts: Vec<i32>,
}

impl std::fmt::Debug for DicomSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DicomSource")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish()
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Map a dicom-object read error to our variants: an early end of data is `Truncated`.
fn classify_read_error(path: &str, err: &(dyn std::error::Error + 'static)) -> IoError {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut eof = false;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            eof |= io.kind() == std::io::ErrorKind::UnexpectedEof;
        }
        chain.push(e.to_string());
        cur = e.source();
    }
    let detail = chain.join(": ");
    let lower = detail.to_ascii_lowercase();
    if eof || lower.contains("unexpected end") || lower.contains("fill whole buffer") || lower.contains("end of file") {
        IoError::Truncated {
            path: path.to_string(),
            detail,
        }
    } else {
        IoError::Malformed {
            path: path.to_string(),
            detail,
        }
    }
}

fn elem(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemElement> {
    obj.get(tag)
}

fn get_str(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = elem(obj, tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
    (!s.is_empty()).then_some(s)
}

fn get_f64s(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let e = elem(obj, tag)?;
    if e.value().primitive().is_some_and(|p| p.multiplicity() == 0) {
        return None;
    }
    e.to_multi_float64().ok().filter(|v| !v.is_empty())
}

fn get_f64(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    get_f64s(obj, tag).and_then(|v| v.first().copied())
}

fn get_int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let e = elem(obj, tag)?;
    if e.value().primitive().is_some_and(|p| p.multiplicity() == 0) {
        return None;
    }
    e.to_int::<i64>().ok()
}

/// First item of each sequence directly inside `item`.
fn nested_items(item: &InMemDicomObject) -> impl Iterator<Item = &InMemDicomObject> {
    item.iter()
        .filter_map(|e| e.value().items().and_then(|items| items.first()))
}

/// Find a tag at the top level, else inside the functional group macros of an enhanced object
/// (shared groups first, then the first frame), one or two sequence levels deep.
fn find_nested(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    if obj.get(tag).is_some() {
        return Some(obj);
    }
    for fg in FUNCTIONAL_GROUPS {
        let Some(first) = obj.get(fg).and_then(|e| e.value().items()).and_then(|i| i.first()) else {
            continue;
        };
        if first.get(tag).is_some() {
            return Some(first);
        }
        for macro_item in nested_items(first) {
            if macro_item.get(tag).is_some() {
                return Some(macro_item);
            }
            if let Some(deeper) = nested_items(macro_item).find(|i| i.get(tag).is_some()) {
                return Some(deeper);
            }
        }
    }
    None
}

fn find_f64s(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    find_nested(obj, tag).and_then(|o| get_f64s(o, tag))
}

fn find_f64(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    find_f64s(obj, tag).and_then(|v| v.first().copied())
}

fn spacing_pair(v: &[f64]) -> Option<[f64; 2]> {
    match v {
        [r, c, ..] => Some([*r, *c]),
        [s] => Some([*s, *s]),
        [] => None,
    }
}

fn read_layout(obj: &InMemDicomObject, path: &str) -> Result<Layout> {
    let req = |tag: Tag, field: &'static str| -> Result<i64> {
        match elem(obj, tag) {
            None => Err(IoError::MissingField {
                path: path.to_string(),
                field,
            }),
            Some(e) => e.to_int::<i64>().map_err(|err| IoError::InvalidField {
                path: path.to_string(),
                field,
                reason: err.to_string(),
            }),
        }
    };
    let invalid = |field: &'static str, reason: String| IoError::InvalidField {
        path: path.to_string(),
        field,
        reason,
    };
    let rows = req(tags::ROWS, "Rows (0028,0010)")?;
    let cols = req(tags::COLUMNS, "Columns (0028,0011)")?;
    let frames = match elem(obj, tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(_) => get_int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1),
    };
    for (v, field) in [
        (rows, "Rows (0028,0010)"),
        (cols, "Columns (0028,0011)"),
        (frames, "Number of Frames (0028,0008)"),
    ] {
        if v == 0 {
            return Err(IoError::EmptyImage {
                path: path.to_string(),
                field,
            });
        }
        if !(0..=i64::from(u32::MAX)).contains(&v) {
            return Err(invalid(field, format!("{v} is not a valid size")));
        }
    }
    let bits_allocated = req(tags::BITS_ALLOCATED, "Bits Allocated (0028,0100)")?;
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(IoError::Unsupported {
            path: path.to_string(),
            what: format!("Bits Allocated (0028,0100) = {bits_allocated} (only 8 and 16 are read)"),
        });
    }
    let bits_stored = get_int(obj, tags::BITS_STORED).unwrap_or(bits_allocated);
    if !(1..=bits_allocated).contains(&bits_stored) {
        return Err(invalid(
            "Bits Stored (0028,0101)",
            format!("{bits_stored} with Bits Allocated {bits_allocated}"),
        ));
    }
    let high_bit = get_int(obj, tags::HIGH_BIT).unwrap_or(bits_stored - 1);
    if high_bit < bits_stored - 1 || high_bit >= bits_allocated {
        return Err(invalid(
            "High Bit (0028,0102)",
            format!("{high_bit} with Bits Stored {bits_stored}"),
        ));
    }
    let samples = get_int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 && samples != 3 {
        return Err(IoError::Unsupported {
            path: path.to_string(),
            what: format!("Samples per Pixel (0028,0002) = {samples} (only 1 and 3 are read)"),
        });
    }
    Ok(Layout {
        rows: rows as u32,
        cols: cols as u32,
        frames: frames as u32,
        samples: samples as u16,
        bits_allocated: bits_allocated as u16,
        bits_stored: bits_stored as u16,
        high_bit: high_bit as u16,
        signed: get_int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
        planar: get_int(obj, tags::PLANAR_CONFIGURATION) == Some(1),
    })
}

/// Frame times: Frame Time Vector, else Frame Time, else Cine Rate; plus Frame Delay.
fn frame_times(obj: &InMemDicomObject, frames: u32, warnings: &mut Vec<String>) -> (Vec<f64>, Option<String>) {
    let delay = get_f64(obj, tags::FRAME_DELAY).filter(|d| d.is_finite()).unwrap_or(0.0);
    if let Some(v) = get_f64s(obj, tags::FRAME_TIME_VECTOR) {
        if v.len() == frames as usize {
            match Cine::times_from_vector(&v, delay) {
                Ok(t) => return (t, Some("FrameTimeVector (0018,1065)".into())),
                Err(e) => warnings.push(format!("Frame Time Vector (0018,1065) ignored: {e}")),
            }
        } else {
            warnings.push(format!(
                "Frame Time Vector (0018,1065) ignored: {} entries for {frames} frames",
                v.len()
            ));
        }
    }
    if let Some(ft) = find_f64(obj, tags::FRAME_TIME) {
        match Cine::times_from_frame_time(frames as usize, ft, delay) {
            Ok(t) => return (t, Some("FrameTime (0018,1063)".into())),
            Err(e) => warnings.push(format!("Frame Time (0018,1063) ignored: {e}")),
        }
    }
    if let Some(rate) = get_f64(obj, tags::CINE_RATE).filter(|r| r.is_finite() && *r > 0.0)
        && let Ok(t) = Cine::times_from_frame_time(frames as usize, 1000.0 / rate, delay)
    {
        return (t, Some("CineRate (0018,0040)".into()));
    }
    (Vec::new(), None)
}

/// Raw spacing attributes found in the object.
#[derive(Debug, Default)]
struct SpacingTags {
    pixel_spacing: Option<[f64; 2]>,
    imager_pixel_spacing: Option<[f64; 2]>,
    sid: Option<f64>,
    sod: Option<f64>,
    ermf: Option<f64>,
    object_pixel_spacing: Option<[f64; 2]>,
}

impl SpacingTags {
    fn read(obj: &InMemDicomObject) -> Self {
        Self {
            pixel_spacing: find_f64s(obj, tags::PIXEL_SPACING).as_deref().and_then(spacing_pair),
            imager_pixel_spacing: find_f64s(obj, tags::IMAGER_PIXEL_SPACING)
                .as_deref()
                .and_then(spacing_pair),
            sid: find_f64(obj, tags::DISTANCE_SOURCE_TO_DETECTOR),
            sod: find_f64(obj, tags::DISTANCE_SOURCE_TO_PATIENT),
            ermf: find_f64(obj, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR),
            object_pixel_spacing: find_f64s(obj, tags::OBJECT_PIXEL_SPACING_IN_CENTER_OF_BEAM)
                .as_deref()
                .and_then(spacing_pair),
        }
    }
}

/// Calibration precedence: user, Pixel Spacing, Imager Pixel Spacing / ERMF (tag or SID/SOD),
/// Object Pixel Spacing in Center of Beam, else uncalibrated. Imager Pixel Spacing without a
/// magnification factor is never used as patient spacing. Unusable tags are skipped with a
/// warning that names them.
fn calibrate(
    s: &SpacingTags,
    user: Option<f64>,
    warnings: &mut Vec<String>,
) -> std::result::Result<Calibration, vesselkit_core::CoreError> {
    if let Some(u) = user {
        return Calibration::user(u);
    }
    if let Some([r, c]) = s.pixel_spacing {
        match Calibration::from_pixel_spacing(r, c) {
            Ok(cal) => return Ok(cal),
            Err(e) => warnings.push(format!("Pixel Spacing (0028,0030) ignored: {e}")),
        }
    }
    let mut why_not = None;
    if let Some([r, c]) = s.imager_pixel_spacing {
        let ermf = match (s.ermf, s.sid, s.sod) {
            (Some(m), _, _) => Some(Ok((m, format!("ERMF (0018,1114) {m}")))),
            (None, Some(sid), Some(sod)) => {
                Some(Calibration::ermf_from_distances(sid, sod).map(|m| (m, format!("SID {sid} mm / SOD {sod} mm"))))
            }
            _ => None,
        };
        match ermf {
            Some(Ok((m, how))) => match Calibration::from_imager_pixel_spacing(r, c, m) {
                Ok(mut cal) => {
                    cal.detail = Some(format!("{}; magnification from {how}", cal.detail.unwrap_or_default()));
                    return Ok(cal);
                }
                Err(e) => warnings.push(format!("Imager Pixel Spacing (0018,1164) not used: {e}")),
            },
            Some(Err(e)) => warnings.push(format!("Imager Pixel Spacing (0018,1164) not used: {e}")),
            None => {
                why_not = Some(format!(
                    "Imager Pixel Spacing (0018,1164) {r}\\{c} is at the detector; without ERMF (0018,1114) or SID (0018,1110) and SOD (0018,1111) it is not used as patient spacing"
                ));
            }
        }
    }
    if let Some([r, c]) = s.object_pixel_spacing {
        match Calibration::from_object_pixel_spacing(r, c) {
            Ok(cal) => return Ok(cal),
            Err(e) => warnings.push(format!(
                "Object Pixel Spacing in Center of Beam (0018,9404) ignored: {e}"
            )),
        }
    }
    let mut cal = Calibration::uncalibrated();
    cal.detail = Some(why_not.unwrap_or_else(|| "no spacing attribute in the file".into()));
    Ok(cal)
}

/// IVOCT geometry (PS3.3 C.8.27) and the per-frame Z shifts to apply.
fn oct_geometry(
    obj: &InMemDicomObject,
    sop: &str,
    layout: &Layout,
    warnings: &mut Vec<String>,
) -> (OctGeometry, Vec<i32>) {
    let intent = get_str(obj, tags::PRESENTATION_INTENT_TYPE).unwrap_or_default();
    let polar = sop == crate::SOP_IVOCT_PROCESSING || intent.eq_ignore_ascii_case("FOR PROCESSING");
    let stored = get_f64(obj, tags::A_LINE_PIXEL_SPACING);
    let n = get_f64(obj, tags::EFFECTIVE_REFRACTIVE_INDEX);
    let applied = get_str(obj, tags::REFRACTIVE_INDEX_APPLIED).is_some_and(|s| s.eq_ignore_ascii_case("YES"));
    let corrected = match (stored, n, applied) {
        (Some(s), _, true) => Some(s),
        (Some(s), Some(n), false) if n.is_finite() && n >= 1.0 => Some(s / n),
        (Some(_), Some(n), false) => {
            warnings.push(format!(
                "Effective Refractive Index (0052,0004) {n} is not a refractive index; A-line spacing left uncorrected"
            ));
            None
        }
        (Some(_), None, false) => {
            warnings.push("A-line Pixel Spacing (0052,0014) is in air but Effective Refractive Index (0052,0004) is absent: spacing not corrected".into());
            None
        }
        (None, ..) => None,
    };
    // Z offsets: per frame in the per-frame functional groups, else shared, else top level.
    let z_of = |item: &InMemDicomObject| -> Option<i32> {
        let holder = if item.get(tags::OCTZ_OFFSET_CORRECTION).is_some() {
            Some(item)
        } else {
            item.get(tags::INTRAVASCULAR_OCT_FRAME_CONTENT_SEQUENCE)
                .and_then(|e| e.value().items())
                .and_then(|i| i.first())
        };
        holder
            .and_then(|h| get_int(h, tags::OCTZ_OFFSET_CORRECTION))
            .and_then(|v| i32::try_from(v).ok())
    };
    let per_frame: Vec<i32> = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.value().items())
        .map(|items| items.iter().map(|i| z_of(i).unwrap_or(0)).collect())
        .unwrap_or_default();
    let shared = obj
        .get(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.value().items())
        .and_then(|i| i.first())
        .and_then(z_of)
        .or_else(|| z_of(obj));
    let z_applied_in_file = get_str(obj, tags::OCTZ_OFFSET_APPLIED).is_some_and(|s| s.eq_ignore_ascii_case("YES"));
    let mut z_offsets = if per_frame.len() == layout.frames as usize && per_frame.iter().any(|&z| z != 0) {
        per_frame
    } else {
        vec![shared.unwrap_or(0); layout.frames as usize]
    };
    let z_first = z_offsets.first().copied().unwrap_or(0);
    let apply = polar && !z_applied_in_file && z_offsets.iter().any(|&z| z != 0);
    let shifts = if apply { z_offsets.clone() } else { Vec::new() };
    if z_offsets.iter().all(|&z| z == z_first) {
        z_offsets.clear();
    }
    let a_lines = get_int(obj, tags::A_LINES_PER_FRAME)
        .and_then(|v| u32::try_from(v).ok())
        .or(polar.then_some(layout.rows));
    let geom = OctGeometry {
        a_line_spacing_mm: corrected,
        a_line_spacing_stored_mm: stored,
        z_offset_px: z_first,
        z_offsets_px: z_offsets,
        z_offset_applied_by_reader: apply,
        refractive_index: n,
        refractive_index_applied: applied,
        polar,
        a_lines_per_frame: a_lines,
    };
    (geom, shifts)
}

/// Build the metadata from a parsed object (pixel data not needed).
fn build_metadata(
    obj: &DefaultDicomObject,
    path: &str,
    layout: &Layout,
    opts: &ReadOptions,
) -> Result<(Metadata, Vec<i32>)> {
    let ts_uid = obj.meta().transfer_syntax().to_string();
    let sop = get_str(obj, tags::SOP_CLASS_UID).unwrap_or_else(|| {
        obj.meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0')
            .to_string()
    });
    let mut meta = Metadata::plain(
        path,
        FileFormat::Dicom,
        layout.rows,
        layout.cols,
        layout.frames,
        layout.bits_allocated,
    );
    meta.bits_stored = layout.bits_stored;
    meta.samples_per_pixel = layout.samples;
    meta.signed = layout.signed;
    meta.modality = get_str(obj, tags::MODALITY);
    meta.sop_class_name = sop_class_name(&sop).map(str::to_string);
    meta.sop_class_uid = (!sop.is_empty()).then_some(sop.clone());
    meta.transfer_syntax_name = Some(transfer_syntax_name(&ts_uid).to_string());
    meta.transfer_syntax_uid = Some(ts_uid);
    let pi = get_str(obj, tags::PHOTOMETRIC_INTERPRETATION);
    meta.inverted = layout.samples == 1 && pi.as_deref() == Some("MONOCHROME1");
    meta.photometric_interpretation = pi;
    meta.rescale_slope = find_f64(obj, tags::RESCALE_SLOPE);
    meta.rescale_intercept = find_f64(obj, tags::RESCALE_INTERCEPT);
    meta.modality_lut_applied = opts.apply_modality_lut;
    let mut warnings = Vec::new();
    (meta.frame_times_ms, meta.frame_time_source) = frame_times(obj, layout.frames, &mut warnings);
    meta.positioner_primary_angle_deg = find_f64(obj, tags::POSITIONER_PRIMARY_ANGLE);
    meta.positioner_secondary_angle_deg = find_f64(obj, tags::POSITIONER_SECONDARY_ANGLE);
    let s = SpacingTags::read(obj);
    let mut shifts = Vec::new();
    let is_oct = sop == crate::SOP_IVOCT_PROCESSING
        || sop == crate::SOP_IVOCT_PRESENTATION
        || meta.modality.as_deref() == Some("IVOCT");
    meta.calibration = calibrate(&s, opts.user_mm_per_px, &mut warnings).map_err(|source| IoError::Core {
        path: path.to_string(),
        source,
    })?;
    if is_oct {
        let (geom, z) = oct_geometry(obj, &sop, layout, &mut warnings);
        // A polar frame has no cartesian pixel spacing: its scale is the radial one along the
        // A-lines (columns); rows are angles.
        if geom.polar
            && opts.user_mm_per_px.is_none()
            && let Some(a) = geom.a_line_spacing_mm
        {
            match Calibration::from_pixel_spacing(a, a) {
                Ok(mut cal) => {
                    cal.detail = Some(format!(
                        "radial spacing along A-lines (columns) of a polar frame: A-line Pixel Spacing (0052,0014) {}{}",
                        geom.a_line_spacing_stored_mm.unwrap_or(a),
                        match (geom.refractive_index_applied, geom.refractive_index) {
                            (false, Some(n)) => format!(" / Effective Refractive Index {n}"),
                            _ => " (refractive index already applied)".to_string(),
                        }
                    ));
                    meta.calibration = cal;
                }
                Err(e) => warnings.push(format!("A-line Pixel Spacing (0052,0014) not used: {e}")),
            }
        }
        shifts = z;
        meta.oct = Some(geom);
    }
    meta.pixel_spacing_mm = s.pixel_spacing;
    meta.imager_pixel_spacing_mm = s.imager_pixel_spacing;
    meta.distance_source_to_detector_mm = s.sid;
    meta.distance_source_to_patient_mm = s.sod;
    meta.estimated_radiographic_magnification_factor = s.ermf;
    meta.warnings = warnings;
    Ok((meta, shifts))
}

/// Walk the data set's element headers with dicom-parser's lazy reader, values skipped unread,
/// and refuse a declared length longer than what remains in the file. The parser reserves and
/// zero-fills a value's declared length before reading it, so one damaged 4-byte length in a
/// small file would otherwise take up to 4 GB of memory before the read fails as truncated.
///
/// `source` stands at the start of the data set (after the file meta group), `ts` is its
/// transfer syntax. With `header_only` the walk ends at Pixel Data (a read that stops there);
/// otherwise native Pixel Data is stepped over by seeking (skipping reads it), and the walk goes
/// on through the fragments of encapsulated data and whatever trails the frames. A data set the
/// walk cannot parse is left to the full read, which reports it; deflated data sets are not
/// walked (their lengths count inflated bytes).
fn precheck_lengths<R: Read + Seek>(
    mut source: R,
    ts: &TransferSyntax,
    file_len: u64,
    header_only: bool,
    path: &str,
) -> Result<()> {
    if !ts.is_codec_free() && !ts.is_encapsulated_pixel_data() {
        return Ok(());
    }
    loop {
        let Ok(mut reader) = LazyDataSetReader::new_with_ts(&mut source, ts) else {
            return Ok(());
        };
        let mut resume_at = None;
        while let Some(Ok(token)) = reader.advance() {
            if header_only && matches!(token, LazyDataToken::PixelSequenceStart) {
                return Ok(());
            }
            let (tag, len, at) = match &token {
                LazyDataToken::LazyValue { header, decoder } => {
                    (Some(header.tag), header.len.get(), decoder.position())
                }
                LazyDataToken::LazyItemValue { len, decoder } => (None, Some(*len), decoder.position()),
                _ => continue,
            };
            let remaining = file_len.saturating_sub(at);
            if let Some(len) = len.filter(|&l| u64::from(l) > remaining) {
                let what = match tag {
                    Some(t) if t == tags::PIXEL_DATA => "Pixel Data (7FE0,0010)".to_string(),
                    Some(t) => format!("element {t}"),
                    None => "a Pixel Data fragment".to_string(),
                };
                return Err(IoError::Truncated {
                    path: path.to_string(),
                    detail: format!("{what} declares {len} bytes but only {remaining} remain in the file"),
                });
            }
            if tag == Some(tags::PIXEL_DATA) {
                if header_only {
                    return Ok(());
                }
                resume_at = len.map(|l| at + u64::from(l));
                break;
            }
            if token.skip().is_err() {
                return Ok(());
            }
        }
        drop(reader);
        // Past the native frames: a new walk from there, over whatever trails them.
        match resume_at {
            Some(end) if end < file_len && source.seek(SeekFrom::Start(end)).is_ok() => {}
            _ => return Ok(()),
        }
    }
}

/// The file meta group's 32-bit lengths checked against the file size, by hand: the group is
/// always explicit VR little endian, and dicom-object, like the data set parser, reserves a
/// declared length before reading it. Values with 16-bit lengths cannot ask for more than 64 KB.
fn precheck_meta(file: &mut std::fs::File, dicm_at: u64, file_len: u64, path: &str) -> Result<()> {
    // VRs with a 16-bit length; any other, unknown ones included, is read as UN: 2 reserved
    // bytes and a 32-bit length.
    const SHORT_VRS: [&[u8; 2]; 21] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
        b"ST", b"TM", b"UI", b"UL", b"US",
    ];
    let mut at = dicm_at + 4;
    let mut h = [0u8; 12];
    loop {
        // A short or odd header is left to the full read, which names the problem.
        if file.seek(SeekFrom::Start(at)).is_err() || file.read_exact(&mut h[..8]).is_err() {
            return Ok(());
        }
        if h[0..2] != [0x02, 0x00] {
            return Ok(());
        }
        let long = !SHORT_VRS.iter().any(|vr| h[4..6] == vr[..]);
        let (len, header) = if long {
            if file.read_exact(&mut h[8..12]).is_err() {
                return Ok(());
            }
            (u32::from_le_bytes([h[8], h[9], h[10], h[11]]), 12)
        } else {
            (u32::from(u16::from_le_bytes([h[6], h[7]])), 8)
        };
        if len == u32::MAX {
            return Ok(());
        }
        let remaining = file_len.saturating_sub(at + header);
        if u64::from(len) > remaining {
            let element = u16::from_le_bytes([h[2], h[3]]);
            return Err(IoError::Truncated {
                path: path.to_string(),
                detail: format!(
                    "file meta element (0002,{element:04X}) declares {len} bytes but only {remaining} remain in the file"
                ),
            });
        }
        at += header + u64::from(len);
    }
}

/// [`precheck_meta`] then [`precheck_lengths`] on a file whose "DICM" stands `preamble` bytes in.
fn precheck_file(file: &mut std::fs::File, preamble: u64, file_len: u64, header_only: bool, path: &str) -> Result<()> {
    precheck_meta(file, preamble, file_len, path)?;
    file.seek(SeekFrom::Start(preamble)).map_err(|source| IoError::Io {
        path: path.to_string(),
        source,
    })?;
    let mut source = std::io::BufReader::new(file);
    // A meta group that does not parse is reported by the full read.
    let Ok(meta) = FileMetaTable::from_reader(&mut source) else {
        return Ok(());
    };
    let Some(ts) = TransferSyntaxRegistry.get(meta.transfer_syntax()) else {
        return Ok(());
    };
    precheck_lengths(source, ts, file_len, header_only, path)
}

fn open_object(path: &Path, pstr: &str, read_until: Option<Tag>) -> Result<DefaultDicomObject> {
    let io_err = |source| IoError::Io {
        path: pstr.to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let mut head = [0u8; 132];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).map_err(io_err)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let flavour = sniff_dicom(&head[..n]).ok_or_else(|| IoError::UnknownFormat {
        path: pstr.to_string(),
        reason: "no DICM marker at offset 128 or 0 and no data set header".into(),
    })?;
    let preamble = match flavour {
        DicomFlavour::Preamble => ReadPreamble::Always,
        DicomFlavour::NoPreamble => ReadPreamble::Never,
        DicomFlavour::BareDataset { explicit } => return open_bare(path, pstr, explicit),
    };
    let file_len = f.metadata().map_err(io_err)?.len();
    let preamble_len = if preamble == ReadPreamble::Always { 128 } else { 0 };
    precheck_file(
        &mut f,
        preamble_len,
        file_len,
        read_until == Some(tags::PIXEL_DATA),
        pstr,
    )?;
    drop(f);
    let mut options = OpenFileOptions::new().read_preamble(preamble);
    if let Some(t) = read_until {
        options = options.read_until(t);
    }
    options.open_file(path).map_err(|e| classify_read_error(pstr, &e))
}

/// A data set without file meta: read it whole and give it a meta group.
fn open_bare(path: &Path, pstr: &str, explicit: bool) -> Result<DefaultDicomObject> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Io {
        path: pstr.to_string(),
        source,
    })?;
    let uid = if explicit { TS_EXPLICIT_LE } else { TS_IMPLICIT_LE };
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| IoError::UnsupportedTransferSyntax {
            path: pstr.to_string(),
            uid: uid.into(),
            name: transfer_syntax_name(uid).into(),
            reason: "not in the registry".into(),
        })?;
    precheck_lengths(std::io::Cursor::new(&bytes[..]), ts, bytes.len() as u64, false, pstr)?;
    let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], ts).map_err(|e| classify_read_error(pstr, &e))?;
    let sop_class = get_str(&obj, tags::SOP_CLASS_UID).unwrap_or_else(|| "1.2.840.10008.5.1.4.1.1.7".into());
    let sop_inst = get_str(&obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| "2.25.0".into());
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uid)
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_inst)
        .build()
        .map_err(|e| IoError::Malformed {
            path: pstr.to_string(),
            detail: e.to_string(),
        })?;
    Ok(obj.with_exact_meta(meta))
}

/// The sample precision in the frame header (SOF1 or SOF2) of the first fragment, when it is
/// a JPEG Extended (12-bit capable) code stream; `None` for baseline or when no header is found.
fn jpeg_extended_precision(fragments: &[Vec<u8>]) -> Option<u8> {
    let frag = fragments.iter().find(|f| !f.is_empty())?;
    let mut i = 2usize;
    while i + 9 < frag.len() {
        if frag[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = frag[i + 1];
        if matches!(marker, 0xC1 | 0xC2) {
            return Some(frag[i + 4]);
        }
        if matches!(marker, 0xC0 | 0xC3 | 0xDA) {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([frag[i + 2], frag[i + 3]]));
        i += 2 + len.max(2);
    }
    None
}

impl DicomSource {
    /// Open a DICOM file: parse attributes, check sizes against `opts.limits`, keep the pixel
    /// data (compressed or not) but decode nothing yet.
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let pstr = path_str(path);
        // Header first: sizes are checked before the pixel data is read at all.
        let header = open_object(path, &pstr, Some(tags::PIXEL_DATA))?;
        let layout = read_layout(&header, &pstr)?;
        opts.limits
            .check(layout.frames.into(), layout.rows.into(), layout.cols.into())
            .map_err(|source| IoError::TooLarge {
                path: pstr.clone(),
                source,
            })?;
        drop(header);
        let mut obj = open_object(path, &pstr, None)?;
        let (meta, z_shifts) = build_metadata(&obj, &pstr, &layout, opts)?;
        let rescale = if opts.apply_modality_lut {
            Some((meta.rescale_slope.unwrap_or(1.0), meta.rescale_intercept.unwrap_or(0.0)))
        } else {
            None
        };
        let ts_uid = obj.meta().transfer_syntax().to_string();
        let ts = TransferSyntaxRegistry
            .get(&ts_uid)
            .ok_or_else(|| IoError::UnsupportedTransferSyntax {
                path: pstr.clone(),
                uid: ts_uid.clone(),
                name: transfer_syntax_name(&ts_uid).into(),
                reason: "not a transfer syntax known to this build".into(),
            })?;
        let Some(pixel) = obj.get(tags::PIXEL_DATA) else {
            return Err(IoError::MissingPixelData { path: pstr });
        };
        let storage = match pixel.value() {
            Value::PixelSequence(seq) => {
                if !ts.can_decode_all() {
                    return Err(IoError::UnsupportedTransferSyntax {
                        path: pstr,
                        uid: ts_uid.clone(),
                        name: transfer_syntax_name(&ts_uid).into(),
                        reason: "no pixel data decoder for it in this build".into(),
                    });
                }
                let fragments = seq.fragments();
                if fragments.is_empty() || fragments.iter().all(|f| f.is_empty()) {
                    return Err(IoError::MissingPixelData { path: pstr });
                }
                let n = layout.frames as usize;
                if ts_uid == TS_JPEG_EXTENDED && jpeg_extended_precision(fragments).is_some_and(|p| p > 8) {
                    let frames = crate::jpeg12::frames_from_fragments(fragments);
                    if frames.len() != n {
                        return Err(IoError::InvalidField {
                            path: pstr,
                            field: "Pixel Data (7FE0,0010)",
                            reason: format!(
                                "holds {} JPEG code streams (fragments starting with FF D8) for {n} frame(s)",
                                frames.len()
                            ),
                        });
                    }
                    Storage::Jpeg12(frames)
                } else {
                    let independent = n == 1 || fragments.len() == n || seq.offset_table().len() == n;
                    Storage::Encapsulated { independent }
                }
            }
            Value::Primitive(_) => {
                let Some(el) = obj.take(tags::PIXEL_DATA) else {
                    return Err(IoError::MissingPixelData { path: pstr });
                };
                let bytes = match el.into_value() {
                    Value::Primitive(PrimitiveValue::U8(b)) => b.into_vec(),
                    Value::Primitive(PrimitiveValue::U16(w)) => w.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    Value::Primitive(PrimitiveValue::Empty) => return Err(IoError::MissingPixelData { path: pstr }),
                    Value::Primitive(other) => other.to_bytes().into_owned(),
                    _ => return Err(IoError::MissingPixelData { path: pstr }),
                };
                let expected = layout.frame_bytes() as u64 * u64::from(layout.frames);
                if (bytes.len() as u64) < expected {
                    return Err(IoError::PixelDataTooShort {
                        path: pstr,
                        rows: layout.rows,
                        cols: layout.cols,
                        frames: layout.frames,
                        bytes_per_sample: layout.bytes_per_sample() as u32 * u32::from(layout.samples),
                        expected_bytes: expected,
                        actual_bytes: bytes.len() as u64,
                    });
                }
                Storage::Native(bytes)
            }
            Value::Sequence(_) => {
                return Err(IoError::InvalidField {
                    path: pstr,
                    field: "Pixel Data (7FE0,0010)",
                    reason: "is a sequence".into(),
                });
            }
        };
        if matches!(storage, Storage::Jpeg12(_)) {
            // The code streams were copied out per frame; the object need not keep them too.
            obj.take(tags::PIXEL_DATA);
        }
        Ok(Self {
            path: pstr,
            obj,
            meta,
            layout,
            storage,
            rescale,
            z_shifts,
        })
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.layout.frames as usize
    }

    pub fn is_empty(&self) -> bool {
        self.layout.frames == 0
    }

    /// The calibration the frames carry.
    pub fn calibration(&self) -> &Calibration {
        &self.meta.calibration
    }

    /// Decode one frame `[rows, cols]`.
    pub fn frame(&self, index: usize) -> Result<Array2<f32>> {
        if index >= self.len() {
            return Err(IoError::FrameIndex {
                index,
                frames: self.layout.frames,
            });
        }
        let mut out = Array2::zeros((self.layout.rows as usize, self.layout.cols as usize));
        match &self.storage {
            Storage::Native(bytes) => {
                let fb = self.layout.frame_bytes();
                // In range: open() checked bytes.len() >= frame_bytes * frames.
                let slice = &bytes[index * fb..(index + 1) * fb];
                self.convert_into(slice, index, &mut out)?;
            }
            Storage::Encapsulated { independent: true } => {
                let data = self.decode_encapsulated(Some(index as u32))?;
                self.convert_into(&data, index, &mut out)?;
            }
            Storage::Jpeg12(streams) => {
                let data = self.decode_jpeg12(&streams[index], index)?;
                self.convert_into(&data, index, &mut out)?;
            }
            Storage::Encapsulated { independent: false } => {
                let data = self.decode_encapsulated(None)?;
                let fb = self.layout.frame_bytes();
                let slice = data
                    .get(index * fb..(index + 1) * fb)
                    .ok_or_else(|| self.short_decode(index as u32, data.len()))?;
                self.convert_into(slice, index, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Decode every frame into a cine (in parallel when frames are independently encoded).
    pub fn read_cine(&self) -> Result<Cine> {
        let (n, r, c) = (self.len(), self.layout.rows as usize, self.layout.cols as usize);
        let mut frames = Array3::<f32>::zeros((n, r, c));
        match &self.storage {
            Storage::Encapsulated { independent: false } => {
                let data = self.decode_encapsulated(None)?;
                let fb = self.layout.frame_bytes();
                for (i, mut dst) in frames.axis_iter_mut(Axis(0)).enumerate() {
                    let slice = data
                        .get(i * fb..(i + 1) * fb)
                        .ok_or_else(|| self.short_decode(i as u32, data.len()))?;
                    let mut tmp = Array2::zeros((r, c));
                    self.convert_into(slice, i, &mut tmp)?;
                    dst.assign(&tmp);
                }
            }
            _ => {
                frames.axis_iter_mut(Axis(0)).into_par_iter().enumerate().try_for_each(
                    |(i, mut dst)| -> Result<()> {
                        let f = self.frame(i)?;
                        dst.assign(&f);
                        Ok(())
                    },
                )?;
            }
        }
        Cine::new(frames, self.meta.calibration.clone(), self.meta.frame_times_ms.clone()).map_err(|source| {
            IoError::Core {
                path: self.path.clone(),
                source,
            }
        })
    }

    fn short_decode(&self, frame: u32, got: usize) -> IoError {
        IoError::Decode {
            path: self.path.clone(),
            frame,
            reason: format!("decoder returned {got} bytes, fewer than the frame size"),
        }
    }

    /// Decode one 12-bit JPEG frame to little-endian 16-bit samples, checking its size against
    /// the data set's Rows, Columns and Samples per Pixel.
    fn decode_jpeg12(&self, stream: &[u8], index: usize) -> Result<Vec<u8>> {
        let l = &self.layout;
        let err = |reason: String| IoError::Decode {
            path: self.path.clone(),
            frame: index as u32,
            reason,
        };
        if l.samples != 1 || l.bytes_per_sample() != 2 {
            return Err(err(format!(
                "12-bit JPEG needs one 16-bit sample per pixel, the data set has {} of {} bit(s)",
                l.samples,
                8 * l.bytes_per_sample()
            )));
        }
        let g = crate::jpeg12::decode_gray12(stream).map_err(err)?;
        if (g.rows, g.cols) != (l.rows as usize, l.cols as usize) {
            return Err(err(format!(
                "the JPEG stream is {} x {}, the data set says {} x {}",
                g.rows, g.cols, l.rows, l.cols
            )));
        }
        Ok(g.samples.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// Decode one frame (or all, when `frame` is None) with dicom-pixeldata. A panic inside a
    /// third-party codec is caught and reported as a decode error.
    fn decode_encapsulated(&self, frame: Option<u32>) -> Result<Vec<u8>> {
        let f = frame.unwrap_or(0);
        let result = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<Vec<u8>, String> {
            let decoded = match frame {
                Some(i) => self.obj.decode_pixel_data_frame(i),
                None => self.obj.decode_pixel_data(),
            }
            .map_err(|e| e.to_string())?;
            Ok(decoded.data().to_vec())
        }));
        match result {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(reason)) => Err(IoError::Decode {
                path: self.path.clone(),
                frame: f,
                reason,
            }),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(IoError::Decode {
                    path: self.path.clone(),
                    frame: f,
                    reason: format!("decoder failed: {msg}"),
                })
            }
        }
    }

    /// Stored bytes of one frame to f32: mask to Bits Stored, sign-extend, invert MONOCHROME1,
    /// rescale if asked, luminance for colour, then the OCT Z shift.
    fn convert_into(&self, data: &[u8], index: usize, out: &mut Array2<f32>) -> Result<()> {
        let l = &self.layout;
        if data.len() < l.frame_bytes() {
            return Err(self.short_decode(index as u32, data.len()));
        }
        let native = matches!(self.storage, Storage::Native(_));
        // Codecs return right-aligned samples; only native data may sit above bit 0.
        let shift = if native {
            u32::from(l.high_bit + 1 - l.bits_stored)
        } else {
            0
        };
        let mask: u32 = if l.bits_stored >= 32 {
            u32::MAX
        } else {
            (1u32 << l.bits_stored) - 1
        };
        let (lo, hi) = l.stored_range();
        let invert = self.meta.inverted;
        let sign_bit = 1u32 << (l.bits_stored - 1);
        let two = l.bytes_per_sample() == 2;
        let sample = |k: usize| -> f64 {
            let raw = if two {
                u32::from(u16::from_le_bytes([data[2 * k], data[2 * k + 1]]))
            } else {
                u32::from(data[k])
            };
            let u = (raw >> shift) & mask;
            let mut v = if l.signed && u & sign_bit != 0 {
                i64::from(u) - (1i64 << l.bits_stored)
            } else {
                i64::from(u)
            };
            if invert {
                v = hi + lo - v;
            }
            v as f64
        };
        let (rows, cols) = (l.rows as usize, l.cols as usize);
        let npx = rows * cols;
        let planar = l.planar && native;
        for (p, o) in out.iter_mut().enumerate() {
            let v = if l.samples == 1 {
                sample(p)
            } else {
                let (r, g, b) = if planar {
                    (sample(p), sample(npx + p), sample(2 * npx + p))
                } else {
                    (sample(3 * p), sample(3 * p + 1), sample(3 * p + 2))
                };
                0.299 * r + 0.587 * g + 0.114 * b
            };
            let v = match self.rescale {
                Some((m, b)) => v * m + b,
                None => v,
            };
            *o = v as f32;
        }
        if let Some(&z) = self.z_shifts.get(index)
            && z != 0
        {
            shift_a_lines(out, z);
        }
        Ok(())
    }
}

/// Shift every row (A-line) by `z` pixels along the columns; positive moves data away from the
/// catheter (towards higher columns). Vacated pixels become 0.
pub(crate) fn shift_a_lines(img: &mut Array2<f32>, z: i32) {
    let cols = img.ncols();
    let k = z.unsigned_abs() as usize;
    for mut row in img.rows_mut() {
        let Some(s) = row.as_slice_mut() else { continue };
        if k >= cols {
            s.fill(0.0);
        } else if z > 0 {
            s.copy_within(0..cols - k, k);
            s[..k].fill(0.0);
        } else {
            s.copy_within(k..cols, 0);
            s[cols - k..].fill(0.0);
        }
    }
}

/// Metadata only: parses the attributes up to Pixel Data and stops, so nothing of the pixel
/// data is read (for `info`-style listings of large files). Pixel-data problems (missing, short,
/// undecodable) show only when the file is opened with [`DicomSource::open`].
pub fn read_dicom_metadata(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Metadata> {
    let path = path.as_ref();
    let pstr = path_str(path);
    let header = open_object(path, &pstr, Some(tags::PIXEL_DATA))?;
    let layout = read_layout(&header, &pstr)?;
    let (meta, _) = build_metadata(&header, &pstr, &layout, opts)?;
    Ok(meta)
}

/// Read a whole DICOM file into a cine with its metadata.
pub fn read_dicom(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<crate::Loaded> {
    let src = DicomSource::open(path, opts)?;
    let cine = src.read_cine()?;
    Ok(crate::Loaded {
        cine,
        metadata: src.meta,
    })
}
