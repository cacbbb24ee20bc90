//! DICOM writers: multi-frame XA/XRF cine and IVOCT, in explicit VR little endian, RLE lossless
//! or JPEG lossless (process 14, SV1). Used by the phantom command and the demos.

use crate::error::{IoError, Result};
use crate::{SOP_IVOCT_PRESENTATION, SOP_IVOCT_PROCESSING, SOP_XA, SOP_XRF, jpeg_lossless, rle};
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rayon::prelude::*;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use vesselkit_core::{CalibrationSource, Cine};

/// XA or XRF SOP class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XaModality {
    /// X-Ray Angiographic Image Storage (modality XA).
    #[default]
    Xa,
    /// X-Ray Radiofluoroscopic Image Storage (modality RF).
    Xrf,
}

/// Transfer syntax of a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteSyntax {
    #[default]
    ExplicitVrLittleEndian,
    RleLossless,
    /// JPEG lossless, non-hierarchical, first-order prediction (process 14, SV1).
    JpegLossless,
    /// Lossy 12-bit JPEG (JPEG Extended, process 4) at a libjpeg quality of 1-100, as many
    /// cardiac and vascular archives store cine runs: for testing how analysis holds up under
    /// compression. Needs `bits_stored` 9 to 12.
    JpegExtended12 {
        quality: u8,
    },
}

impl WriteSyntax {
    pub fn uid(self) -> &'static str {
        match self {
            Self::ExplicitVrLittleEndian => "1.2.840.10008.1.2.1",
            Self::RleLossless => "1.2.840.10008.1.2.5",
            Self::JpegLossless => "1.2.840.10008.1.2.4.70",
            Self::JpegExtended12 { .. } => "1.2.840.10008.1.2.4.51",
        }
    }
}

/// How f32 frames become stored integers. Nothing is clamped: out-of-range values are errors.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Quantize {
    /// Values must already be integers in `0..=2^bits_stored - 1` (within 1e-3).
    #[default]
    Exact,
    /// Map the cine's own minimum..maximum linearly onto `0..=2^bits_stored - 1`.
    FitRange,
    /// Map `min..=max` linearly onto `0..=2^bits_stored - 1`; values outside are errors.
    Range { min: f32, max: f32 },
}

/// Options of [`write_xa`].
#[derive(Debug, Clone, PartialEq)]
pub struct XaWriteOptions {
    pub modality: XaModality,
    /// Bits Stored: 8 writes 8-bit samples, 9..=16 write 16-bit samples. Default 12.
    pub bits_stored: u16,
    pub syntax: WriteSyntax,
    pub quantize: Quantize,
    /// Imager Pixel Spacing (0018,1164) at the detector, mm. When None and the cine is
    /// calibrated, its mm_per_px is written as Pixel Spacing (0028,0030) instead.
    pub imager_pixel_spacing_mm: Option<f64>,
    /// Distance Source to Detector (0018,1110), mm.
    pub sid_mm: Option<f64>,
    /// Distance Source to Patient (0018,1111), mm.
    pub sod_mm: Option<f64>,
    /// Estimated Radiographic Magnification Factor (0018,1114); computed from SID/SOD when None
    /// and both are given.
    pub ermf: Option<f64>,
    /// Frame Time (0018,1063), ms. When None the cine's frame times are used (Frame Time when
    /// evenly spaced, else Frame Time Vector). A multi-frame cine needs one or the other.
    pub frame_time_ms: Option<f64>,
    pub positioner_primary_angle_deg: Option<f64>,
    pub positioner_secondary_angle_deg: Option<f64>,
    pub patient_name: String,
    pub patient_id: String,
    /// SOP Instance UID; a random `2.25.` UID when None.
    pub sop_instance_uid: Option<String>,
}

impl Default for XaWriteOptions {
    fn default() -> Self {
        Self {
            modality: XaModality::Xa,
            bits_stored: 12,
            syntax: WriteSyntax::ExplicitVrLittleEndian,
            quantize: Quantize::Exact,
            imager_pixel_spacing_mm: None,
            sid_mm: None,
            sod_mm: None,
            ermf: None,
            frame_time_ms: None,
            positioner_primary_angle_deg: None,
            positioner_secondary_angle_deg: None,
            patient_name: "PHANTOM^VESSELKIT".into(),
            patient_id: "PHANTOM".into(),
            sop_instance_uid: None,
        }
    }
}

/// Options of [`write_ivoct`]. The cine holds polar frames `[frames, a_lines, samples]` when
/// `for_processing`, cartesian frames otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct IvoctWriteOptions {
    /// FOR PROCESSING (polar, SOP …14.2) or FOR PRESENTATION (cartesian, SOP …14.1).
    pub for_processing: bool,
    pub bits_stored: u16,
    pub syntax: WriteSyntax,
    pub quantize: Quantize,
    /// A-line Pixel Spacing (0052,0014), mm (polar only).
    pub a_line_spacing_mm: Option<f64>,
    /// Effective Refractive Index (0052,0004).
    pub refractive_index: Option<f64>,
    /// Refractive Index Applied (0052,003A).
    pub refractive_index_applied: bool,
    /// OCT Z Offset Correction (0052,0030), px, shared by all frames.
    pub z_offset_px: i16,
    /// Per-frame Z offsets (overrides `z_offset_px` when it has one entry per frame).
    pub z_offsets_px: Vec<i16>,
    /// Pixel Spacing (0028,0030) of cartesian frames, mm.
    pub pixel_spacing_mm: Option<f64>,
    pub frame_time_ms: Option<f64>,
    pub sop_instance_uid: Option<String>,
}

impl Default for IvoctWriteOptions {
    fn default() -> Self {
        Self {
            for_processing: true,
            bits_stored: 16,
            syntax: WriteSyntax::ExplicitVrLittleEndian,
            quantize: Quantize::Exact,
            a_line_spacing_mm: None,
            refractive_index: None,
            refractive_index_applied: false,
            z_offset_px: 0,
            z_offsets_px: Vec::new(),
            pixel_spacing_mm: None,
            frame_time_ms: None,
            sop_instance_uid: None,
        }
    }
}

/// A random UID under the 2.25 (UUID-derived) root.
fn new_uid() -> String {
    let s = std::collections::hash_map::RandomState::new();
    let mut a = s.build_hasher();
    a.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut b = std::collections::hash_map::RandomState::new().build_hasher();
    b.write_u64(a.finish());
    let v = (u128::from(a.finish()) << 64 | u128::from(b.finish())) >> 2;
    format!("2.25.{v}")
}

fn ds(v: f64) -> String {
    // DS holds at most 16 characters.
    let s = format!("{v}");
    if s.len() <= 16 {
        s
    } else {
        format!("{v:.10e}").chars().take(16).collect()
    }
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<String>) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.into())));
}

fn put_ds(obj: &mut InMemDicomObject, tag: Tag, values: &[f64]) {
    let s: Vec<String> = values.iter().map(|&v| ds(v)).collect();
    obj.put(DataElement::new(tag, VR::DS, PrimitiveValue::Strs(s.into())));
}

fn put_us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

fn werr(path: &Path, field: &'static str, reason: impl Into<String>) -> IoError {
    IoError::Write {
        path: path.display().to_string(),
        field,
        reason: reason.into(),
    }
}

fn check_positive(path: &Path, field: &'static str, v: Option<f64>) -> Result<()> {
    match v {
        Some(x) if !x.is_finite() || x <= 0.0 => Err(werr(path, field, format!("must be a finite value > 0, got {x}"))),
        _ => Ok(()),
    }
}

/// Quantise the cine to stored integers, refusing values that do not fit.
fn quantize(cine: &Cine, bits: u16, q: Quantize, path: &Path) -> Result<Vec<u16>> {
    let max = f64::from((1u32 << bits) - 1);
    let (lo, hi) = match q {
        Quantize::Exact => (0.0, max),
        Quantize::FitRange => {
            let (mn, mx) = cine
                .frames
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            (f64::from(mn), f64::from(mx))
        }
        Quantize::Range { min, max } => {
            if !min.is_finite() || !max.is_finite() || max <= min {
                return Err(werr(
                    path,
                    "quantize",
                    format!("range {min}..{max} is empty or not finite"),
                ));
            }
            (f64::from(min), f64::from(max))
        }
    };
    let scale = if hi > lo { max / (hi - lo) } else { 0.0 };
    let mut out = Vec::with_capacity(cine.frames.len());
    // Cine frames are standard-layout after construction; iter() walks them in logical order.
    for (i, &v) in cine.frames.iter().enumerate() {
        let v = f64::from(v);
        let s = match q {
            Quantize::Exact => {
                let r = v.round();
                if (v - r).abs() > 1e-3 || r < 0.0 || r > max {
                    return Err(werr(
                        path,
                        "pixels",
                        format!(
                            "value {v} at index {i} is not an integer in 0..={max}; choose Quantize::FitRange or Range"
                        ),
                    ));
                }
                r
            }
            _ => {
                if v < lo || v > hi {
                    return Err(werr(
                        path,
                        "pixels",
                        format!("value {v} at index {i} is outside {lo}..={hi}"),
                    ));
                }
                ((v - lo) * scale).round()
            }
        };
        out.push(s as u16);
    }
    Ok(out)
}

/// Encode the pixel data element for the chosen syntax.
fn pixel_element(
    samples: &[u16],
    frames: usize,
    rows: usize,
    cols: usize,
    bits: u16,
    syntax: WriteSyntax,
) -> std::result::Result<DataElement<InMemDicomObject>, String> {
    let per = rows * cols;
    let bytes_per = if bits <= 8 { 1 } else { 2 };
    let le_frame = |f: usize| -> Vec<u8> {
        let s = &samples[f * per..(f + 1) * per];
        if bytes_per == 1 {
            s.iter().map(|&v| v as u8).collect()
        } else {
            s.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    };
    match syntax {
        WriteSyntax::ExplicitVrLittleEndian => {
            if bytes_per == 1 {
                let mut b: Vec<u8> = samples.iter().map(|&v| v as u8).collect();
                if b.len() % 2 == 1 {
                    b.push(0);
                }
                Ok(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(b)))
            } else {
                Ok(DataElement::new(
                    tags::PIXEL_DATA,
                    VR::OW,
                    PrimitiveValue::U16(samples.iter().copied().collect()),
                ))
            }
        }
        WriteSyntax::RleLossless | WriteSyntax::JpegLossless | WriteSyntax::JpegExtended12 { .. } => {
            let fragments: Vec<Vec<u8>> = (0..frames)
                .into_par_iter()
                .map(|f| -> std::result::Result<Vec<u8>, String> {
                    let frame = &samples[f * per..(f + 1) * per];
                    let mut frag = match syntax {
                        WriteSyntax::RleLossless => rle::encode_frame(&le_frame(f), rows, cols, bytes_per),
                        WriteSyntax::JpegExtended12 { quality } => {
                            crate::jpeg12::encode_gray12(frame, rows, cols, quality)?
                        }
                        _ => jpeg_lossless::encode_frame(frame, rows, cols, bits.max(2) as u8),
                    };
                    if frag.len() % 2 == 1 {
                        frag.push(0);
                    }
                    Ok(frag)
                })
                .collect::<std::result::Result<_, _>>()?;
            let mut offsets = Vec::with_capacity(frames);
            let mut at = 0u32;
            for f in &fragments {
                offsets.push(at);
                at = at.saturating_add(f.len() as u32 + 8);
            }
            Ok(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::from(PixelFragmentSequence::new(offsets, fragments)),
            ))
        }
    }
}

/// Image pixel module and pixel data shared by both writers.
fn put_image(
    obj: &mut InMemDicomObject,
    cine: &Cine,
    bits: u16,
    syntax: WriteSyntax,
    q: Quantize,
    path: &Path,
) -> Result<()> {
    if !(8..=16).contains(&bits) {
        return Err(werr(path, "bits_stored", format!("must be 8..=16, got {bits}")));
    }
    if let WriteSyntax::JpegExtended12 { quality } = syntax {
        if !(9..=12).contains(&bits) {
            return Err(werr(
                path,
                "bits_stored",
                format!("12-bit JPEG stores 9 to 12 bits, got {bits}"),
            ));
        }
        if !(1..=100).contains(&quality) {
            return Err(werr(
                path,
                "syntax",
                format!("JPEG quality must be 1..=100, got {quality}"),
            ));
        }
    }
    let (n, r, c) = cine.frames.dim();
    if r > usize::from(u16::MAX) || c > usize::from(u16::MAX) {
        return Err(werr(
            path,
            "frames",
            format!("{r} x {c} exceeds the 65535 rows/columns DICOM allows"),
        ));
    }
    let samples = quantize(cine, bits, q, path)?;
    let alloc = if bits <= 8 { 8 } else { 16 };
    put_us(obj, tags::SAMPLES_PER_PIXEL, 1);
    put_str(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_str(obj, tags::NUMBER_OF_FRAMES, VR::IS, n.to_string());
    put_us(obj, tags::ROWS, r as u16);
    put_us(obj, tags::COLUMNS, c as u16);
    put_us(obj, tags::BITS_ALLOCATED, alloc);
    put_us(obj, tags::BITS_STORED, bits);
    put_us(obj, tags::HIGH_BIT, bits - 1);
    put_us(obj, tags::PIXEL_REPRESENTATION, 0);
    if let WriteSyntax::JpegExtended12 { .. } = syntax {
        put_str(obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01");
        put_str(obj, tags::LOSSY_IMAGE_COMPRESSION_METHOD, VR::CS, "ISO_10918_1");
    } else {
        put_str(obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    }
    obj.put(pixel_element(&samples, n, r, c, bits, syntax).map_err(|e| werr(path, "pixels", e))?);
    Ok(())
}

/// Frame Time / Frame Time Vector and the Frame Increment Pointer.
fn put_timing(obj: &mut InMemDicomObject, cine: &Cine, frame_time_ms: Option<f64>, path: &Path) -> Result<()> {
    check_positive(path, "frame_time_ms", frame_time_ms)?;
    let t = &cine.frame_times_ms;
    let pointer = if let Some(ft) = frame_time_ms {
        put_ds(obj, tags::FRAME_TIME, &[ft]);
        tags::FRAME_TIME
    } else if t.len() >= 2 {
        let d: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        if d[0] > 0.0 && d.iter().all(|x| (x - d[0]).abs() <= 1e-6 * d[0].abs().max(1.0)) {
            put_ds(obj, tags::FRAME_TIME, &[d[0]]);
            tags::FRAME_TIME
        } else {
            let mut v = vec![0.0];
            v.extend(d);
            put_ds(obj, tags::FRAME_TIME_VECTOR, &v);
            tags::FRAME_TIME_VECTOR
        }
    } else if cine.len() > 1 {
        return Err(werr(
            path,
            "frame_time_ms",
            "a multi-frame cine needs frame_time_ms or cine.frame_times_ms",
        ));
    } else {
        return Ok(());
    };
    if let Some(&t0) = t.first()
        && t0 != 0.0
    {
        put_ds(obj, tags::FRAME_DELAY, &[t0]);
    }
    obj.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags([pointer].into_iter().collect()),
    ));
    Ok(())
}

/// A UID under 2.25 derived from `base` and `salt` (FNV-1a, 128 bits).
fn derived_uid(base: &str, salt: u8) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in base.bytes().chain([0xff, salt]) {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("2.25.{}", h >> 2)
}

fn put_common(obj: &mut InMemDicomObject, sop_class: &str, sop_instance: &str, modality: &str, patient: (&str, &str)) {
    put_str(obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    // Derived from the instance UID so that a caller who fixes it (phantoms: same seed, same
    // bytes) gets a fully reproducible file; random instance UIDs still give random studies.
    put_str(obj, tags::STUDY_INSTANCE_UID, VR::UI, derived_uid(sop_instance, 1));
    put_str(obj, tags::SERIES_INSTANCE_UID, VR::UI, derived_uid(sop_instance, 2));
    put_str(obj, tags::MODALITY, VR::CS, modality);
    put_str(obj, tags::PATIENT_NAME, VR::PN, patient.0);
    put_str(obj, tags::PATIENT_ID, VR::LO, patient.1);
    put_str(obj, tags::MANUFACTURER, VR::LO, "vesselkit");
    put_str(obj, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
    put_str(obj, tags::SERIES_NUMBER, VR::IS, "1");
    put_str(obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(obj, tags::CONTENT_DATE, VR::DA, "");
    put_str(obj, tags::CONTENT_TIME, VR::TM, "");
}

fn save(obj: InMemDicomObject, syntax: WriteSyntax, path: &Path) -> Result<()> {
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(syntax.uid()))
        .map_err(|e| werr(path, "file meta", e.to_string()))?;
    file.write_to_file(path).map_err(|e| werr(path, "file", e.to_string()))
}

/// Write a multi-frame XA or XRF file (MONOCHROME2, unsigned).
pub fn write_xa(path: impl AsRef<Path>, cine: &Cine, opts: &XaWriteOptions) -> Result<()> {
    let path = path.as_ref();
    check_positive(path, "imager_pixel_spacing_mm", opts.imager_pixel_spacing_mm)?;
    check_positive(path, "sid_mm", opts.sid_mm)?;
    check_positive(path, "sod_mm", opts.sod_mm)?;
    check_positive(path, "ermf", opts.ermf)?;
    let ermf = match (opts.ermf, opts.sid_mm, opts.sod_mm) {
        (Some(m), ..) => Some(m),
        (None, Some(sid), Some(sod)) => Some(
            vesselkit_core::Calibration::ermf_from_distances(sid, sod)
                .map_err(|e| werr(path, "sod_mm", e.to_string()))?,
        ),
        _ => None,
    };
    let mut obj = InMemDicomObject::new_empty();
    let (sop, modality) = match opts.modality {
        XaModality::Xa => (SOP_XA, "XA"),
        XaModality::Xrf => (SOP_XRF, "RF"),
    };
    let uid = opts.sop_instance_uid.clone().unwrap_or_else(new_uid);
    put_common(&mut obj, sop, &uid, modality, (&opts.patient_name, &opts.patient_id));
    put_str(&mut obj, tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN");
    if let Some(ips) = opts.imager_pixel_spacing_mm {
        put_ds(&mut obj, tags::IMAGER_PIXEL_SPACING, &[ips, ips]);
    } else if cine.calibration.is_calibrated() && cine.calibration.source != CalibrationSource::Uncalibrated {
        put_ds(
            &mut obj,
            tags::PIXEL_SPACING,
            &[cine.calibration.mm_per_px, cine.calibration.mm_per_px],
        );
    }
    if let Some(sid) = opts.sid_mm {
        put_ds(&mut obj, tags::DISTANCE_SOURCE_TO_DETECTOR, &[sid]);
    }
    if let Some(sod) = opts.sod_mm {
        put_ds(&mut obj, tags::DISTANCE_SOURCE_TO_PATIENT, &[sod]);
    }
    if let Some(m) = ermf {
        put_ds(&mut obj, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, &[m]);
    }
    if let Some(a) = opts.positioner_primary_angle_deg {
        put_ds(&mut obj, tags::POSITIONER_PRIMARY_ANGLE, &[a]);
    }
    if let Some(a) = opts.positioner_secondary_angle_deg {
        put_ds(&mut obj, tags::POSITIONER_SECONDARY_ANGLE, &[a]);
    }
    put_timing(&mut obj, cine, opts.frame_time_ms, path)?;
    put_image(&mut obj, cine, opts.bits_stored, opts.syntax, opts.quantize, path)?;
    save(obj, opts.syntax, path)
}

/// Write an IVOCT file: polar FOR PROCESSING frames with the A-line geometry, or cartesian FOR
/// PRESENTATION frames with Pixel Spacing.
pub fn write_ivoct(path: impl AsRef<Path>, cine: &Cine, opts: &IvoctWriteOptions) -> Result<()> {
    let path = path.as_ref();
    check_positive(path, "a_line_spacing_mm", opts.a_line_spacing_mm)?;
    check_positive(path, "refractive_index", opts.refractive_index)?;
    check_positive(path, "pixel_spacing_mm", opts.pixel_spacing_mm)?;
    let (n, rows, _) = cine.frames.dim();
    let mut obj = InMemDicomObject::new_empty();
    let uid = opts.sop_instance_uid.clone().unwrap_or_else(new_uid);
    let sop = if opts.for_processing {
        SOP_IVOCT_PROCESSING
    } else {
        SOP_IVOCT_PRESENTATION
    };
    put_common(&mut obj, sop, &uid, "IVOCT", ("PHANTOM^VESSELKIT", "PHANTOM"));
    put_str(
        &mut obj,
        tags::PRESENTATION_INTENT_TYPE,
        VR::CS,
        if opts.for_processing {
            "FOR PROCESSING"
        } else {
            "FOR PRESENTATION"
        },
    );
    if let Some(n) = opts.refractive_index {
        obj.put(DataElement::new(
            tags::EFFECTIVE_REFRACTIVE_INDEX,
            VR::FD,
            PrimitiveValue::from(n),
        ));
    }
    if opts.for_processing {
        let Some(a) = opts.a_line_spacing_mm else {
            return Err(werr(
                path,
                "a_line_spacing_mm",
                "polar FOR PROCESSING frames need the A-line spacing",
            ));
        };
        obj.put(DataElement::new(
            tags::A_LINE_PIXEL_SPACING,
            VR::FD,
            PrimitiveValue::from(a),
        ));
        put_str(
            &mut obj,
            tags::REFRACTIVE_INDEX_APPLIED,
            VR::CS,
            if opts.refractive_index_applied { "YES" } else { "NO" },
        );
        put_str(&mut obj, tags::OCTZ_OFFSET_APPLIED, VR::CS, "NO");
        put_us(
            &mut obj,
            tags::A_LINES_PER_FRAME,
            rows.min(usize::from(u16::MAX)) as u16,
        );
        let z_item = |z: i16| -> InMemDicomObject {
            let mut content = InMemDicomObject::new_empty();
            content.put(DataElement::new(
                tags::OCTZ_OFFSET_CORRECTION,
                VR::SS,
                PrimitiveValue::from(z),
            ));
            let mut fg = InMemDicomObject::new_empty();
            fg.put(DataElement::new(
                tags::INTRAVASCULAR_OCT_FRAME_CONTENT_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![content], Length::UNDEFINED),
            ));
            fg
        };
        if opts.z_offsets_px.len() == n && n > 0 {
            let items: Vec<InMemDicomObject> = opts.z_offsets_px.iter().map(|&z| z_item(z)).collect();
            obj.put(DataElement::new(
                tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(items, Length::UNDEFINED),
            ));
        } else if !opts.z_offsets_px.is_empty() {
            return Err(werr(
                path,
                "z_offsets_px",
                format!("{} entries for {n} frames", opts.z_offsets_px.len()),
            ));
        } else {
            obj.put(DataElement::new(
                tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
                VR::SQ,
                DataSetSequence::new(vec![z_item(opts.z_offset_px)], Length::UNDEFINED),
            ));
        }
    } else if let Some(ps) = opts
        .pixel_spacing_mm
        .or(cine.calibration.is_calibrated().then_some(cine.calibration.mm_per_px))
    {
        put_ds(&mut obj, tags::PIXEL_SPACING, &[ps, ps]);
    }
    if opts.frame_time_ms.is_some() || !cine.frame_times_ms.is_empty() {
        put_timing(&mut obj, cine, opts.frame_time_ms, path)?;
    }
    put_image(&mut obj, cine, opts.bits_stored, opts.syntax, opts.quantize, path)?;
    save(obj, opts.syntax, path)
}
