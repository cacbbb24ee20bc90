//! The report as a DICOM Comprehensive Structured Report following TID 1500 (Measurement Report):
//! one measurement group per lesion with its type, QCA numbers, confidence and priority.
//!
//! Vessel-specific concepts without a standard code use the private coding scheme `99VSK`.

use crate::model::{LesionReport, Report};
use crate::{ReportError, Result};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// SOP Class UID of Comprehensive SR Storage.
pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const PRIVATE_SCHEME: &str = "99VSK";

/// A coded concept (value, scheme, meaning).
#[derive(Clone, Copy)]
struct Code(&'static str, &'static str, &'static str);

fn s(tag: Tag, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(v))
}
fn empty(tag: Tag, vr: VR) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::Empty)
}
fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}
fn code_item(c: Code) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        s(tags::CODE_VALUE, VR::SH, c.0),
        s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, c.1),
        s(tags::CODE_MEANING, VR::LO, c.2),
    ])
}
fn item(relationship: &str, value_type: &str, concept: Code) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        s(tags::RELATIONSHIP_TYPE, VR::CS, relationship),
        s(tags::VALUE_TYPE, VR::CS, value_type),
        seq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item(concept)]),
    ])
}
fn code(relationship: &str, concept: Code, value: Code) -> InMemDicomObject {
    let mut o = item(relationship, "CODE", concept);
    o.put(seq(tags::CONCEPT_CODE_SEQUENCE, vec![code_item(value)]));
    o
}
fn text(relationship: &str, concept: Code, value: &str) -> InMemDicomObject {
    let mut o = item(relationship, "TEXT", concept);
    o.put(s(tags::TEXT_VALUE, VR::UT, value));
    o
}
fn uidref(relationship: &str, concept: Code, uid: &str) -> InMemDicomObject {
    let mut o = item(relationship, "UIDREF", concept);
    o.put(s(tags::UID, VR::UI, uid));
    o
}
fn num(concept: Code, value: f64, unit: Code) -> InMemDicomObject {
    let mut o = item("CONTAINS", "NUM", concept);
    let mv = InMemDicomObject::from_element_iter([
        s(tags::NUMERIC_VALUE, VR::DS, &format_ds(value)),
        seq(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![code_item(unit)]),
    ]);
    o.put(seq(tags::MEASURED_VALUE_SEQUENCE, vec![mv]));
    o
}
fn container(relationship: Option<&str>, concept: Code, children: Vec<InMemDicomObject>) -> InMemDicomObject {
    let mut o = InMemDicomObject::from_element_iter([
        s(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        seq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code_item(concept)]),
        s(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"),
    ]);
    if let Some(r) = relationship {
        o.put(s(tags::RELATIONSHIP_TYPE, VR::CS, r));
    }
    if !children.is_empty() {
        o.put(seq(tags::CONTENT_SEQUENCE, children));
    }
    o
}

/// DS values hold at most 16 characters.
fn format_ds(v: f64) -> String {
    let t = format!("{v:.4}");
    if t.len() <= 16 { t } else { format!("{v:.6e}") }
}

/// A fresh UID under the 2.25 (UUID-derived) root.
fn new_uid(salt: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // splitmix-style scrambling of time, process id and salt into 128 bits
    let mut x = nanos ^ ((std::process::id() as u128) << 64) ^ ((salt as u128) << 32);
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    x ^= x >> 61;
    format!("2.25.{}", x >> 1)
}

fn date_time() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

const MM: Code = Code("mm", "UCUM", "millimeter");
const PCT: Code = Code("%", "UCUM", "percent");
const ONE: Code = Code("1", "UCUM", "no units");

fn lesion_group(l: &LesionReport, calibrated: bool) -> InMemDicomObject {
    let finding = match l.lesion_type {
        vesselkit_core::LesionType::Ring => Code("ring", PRIVATE_SCHEME, "Ring-like stenosis (Kawakami A)"),
        vesselkit_core::LesionType::Web => Code("web", PRIVATE_SCHEME, "Web lesion (Kawakami B)"),
        vesselkit_core::LesionType::Subtotal => Code("subtotal", PRIVATE_SCHEME, "Subtotal occlusion (Kawakami C)"),
        vesselkit_core::LesionType::Occlusion => Code("occlusion", PRIVATE_SCHEME, "Total occlusion (Kawakami D)"),
        vesselkit_core::LesionType::Tortuous => Code("tortuous", PRIVATE_SCHEME, "Tortuous lesion (Kawakami E)"),
    };
    let len_unit = if calibrated { MM } else { Code("{px}", "UCUM", "pixel") };
    let mut children = vec![
        text(
            "HAS OBS CONTEXT",
            Code("112039", "DCM", "Tracking Identifier"),
            &format!("lesion {}", l.id),
        ),
        uidref(
            "HAS OBS CONTEXT",
            Code("112040", "DCM", "Tracking Unique Identifier"),
            &new_uid(l.id as u64 + 1),
        ),
        code("CONTAINS", Code("121071", "DCM", "Finding"), finding),
    ];
    let measures = [
        (
            Code("mld", PRIVATE_SCHEME, "Minimal lumen diameter"),
            l.mld_mm,
            len_unit,
        ),
        (
            Code("refd", PRIVATE_SCHEME, "Reference diameter"),
            l.reference_diameter_mm,
            len_unit,
        ),
        (
            Code("ds", PRIVATE_SCHEME, "Diameter stenosis"),
            l.diameter_stenosis_pct,
            PCT,
        ),
        (Code("len", PRIVATE_SCHEME, "Lesion length"), l.length_mm, len_unit),
        (
            Code("conf", PRIVATE_SCHEME, "Classification confidence"),
            l.confidence,
            ONE,
        ),
        (
            Code("prio", PRIVATE_SCHEME, "Treatment priority"),
            l.priority as f64,
            ONE,
        ),
    ];
    for (concept, v, unit) in measures {
        if v.is_finite() {
            children.push(num(concept, v, unit));
        }
    }
    for (i, b) in l.balloon_mm.iter().enumerate() {
        let concept = if i == 0 {
            Code("balloon1", PRIVATE_SCHEME, "Suggested balloon diameter, first session")
        } else {
            Code("balloonN", PRIVATE_SCHEME, "Suggested balloon diameter, later session")
        };
        children.push(num(concept, *b, len_unit));
    }
    if !l.reason.is_empty() {
        children.push(text(
            "CONTAINS",
            Code("reason", PRIVATE_SCHEME, "Ranking reason"),
            &l.reason,
        ));
    }
    container(Some("CONTAINS"), Code("125007", "DCM", "Measurement Group"), children)
}

/// Build the SR dataset (without file meta).
pub fn build(report: &Report) -> InMemDicomObject {
    let (date, time) = date_time();
    let calibrated = report.calibration.is_calibrated();
    let groups: Vec<InMemDicomObject> = report.lesions.iter().map(|l| lesion_group(l, calibrated)).collect();
    let mut root_children = vec![
        code(
            "HAS CONCEPT MOD",
            Code("121049", "DCM", "Language of Content Item and Descendants"),
            Code("en-US", "RFC5646", "English (United States)"),
        ),
        code(
            "HAS OBS CONTEXT",
            Code("121005", "DCM", "Observer Type"),
            Code("121007", "DCM", "Device"),
        ),
        uidref(
            "HAS OBS CONTEXT",
            Code("121012", "DCM", "Device Observer UID"),
            &new_uid(0xdead),
        ),
        code(
            "HAS CONCEPT MOD",
            Code("121058", "DCM", "Procedure reported"),
            Code("77343006", "SCT", "Angiography"),
        ),
        container(Some("CONTAINS"), Code("111028", "DCM", "Image Library"), vec![]),
        container(Some("CONTAINS"), Code("126010", "DCM", "Imaging Measurements"), groups),
    ];
    root_children.push(text("CONTAINS", Code("121106", "DCM", "Comment"), &report.notice));
    root_children.push(text(
        "CONTAINS",
        Code("calsrc", PRIVATE_SCHEME, "Calibration source"),
        &format!("{} ({} mm/px)", report.calibration.source, report.calibration.mm_per_px),
    ));
    let mut root = container(None, Code("126000", "DCM", "Imaging Measurement Report"), root_children);
    root.put(seq(
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            s(tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
            s(tags::TEMPLATE_IDENTIFIER, VR::CS, "1500"),
        ])],
    ));
    let header = [
        s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        s(tags::SOP_CLASS_UID, VR::UI, COMPREHENSIVE_SR),
        s(tags::SOP_INSTANCE_UID, VR::UI, &new_uid(1)),
        s(tags::STUDY_INSTANCE_UID, VR::UI, &new_uid(2)),
        s(tags::SERIES_INSTANCE_UID, VR::UI, &new_uid(3)),
        s(tags::MODALITY, VR::CS, "SR"),
        s(tags::SERIES_NUMBER, VR::IS, "999"),
        s(tags::INSTANCE_NUMBER, VR::IS, "1"),
        s(tags::MANUFACTURER, VR::LO, "vesselkit"),
        s(tags::SOFTWARE_VERSIONS, VR::LO, &report.software.version),
        s(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            "vesselkit measurement report (research use only)",
        ),
        empty(tags::PATIENT_NAME, VR::PN),
        empty(tags::PATIENT_ID, VR::LO),
        empty(tags::PATIENT_BIRTH_DATE, VR::DA),
        empty(tags::PATIENT_SEX, VR::CS),
        s(tags::STUDY_DATE, VR::DA, &date),
        s(tags::STUDY_TIME, VR::TM, &time),
        empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        empty(tags::STUDY_ID, VR::SH),
        empty(tags::ACCESSION_NUMBER, VR::SH),
        seq(tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE, vec![]),
        s(tags::CONTENT_DATE, VR::DA, &date),
        s(tags::CONTENT_TIME, VR::TM, &time),
        s(tags::COMPLETION_FLAG, VR::CS, "COMPLETE"),
        s(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"),
        seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]),
    ];
    for e in header {
        root.put(e);
    }
    root
}

/// Write the report as a DICOM SR file (explicit VR little endian).
pub fn write(path: &Path, report: &Report) -> Result<()> {
    let obj = build(report);
    let sop_uid = obj
        .element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(COMPREHENSIVE_SR)
        .media_storage_sop_instance_uid(sop_uid)
        .transfer_syntax(EXPLICIT_VR_LE)
        .build()
        .map_err(|e| ReportError::Encode {
            what: "SR file meta",
            reason: e.to_string(),
        })?;
    obj.with_exact_meta(meta)
        .write_to_file(path)
        .map_err(|e| ReportError::Encode {
            what: "DICOM SR",
            reason: format!("{}: {e}", path.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn sr_has_one_group_per_lesion_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("vk-sr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.dcm");
        let mut r = sample();
        let mut second = r.lesions[0].clone();
        second.id = 1;
        r.lesions.push(second);
        write(&path, &r).unwrap();
        let obj = dicom_object::open_file(&path).unwrap();
        assert_eq!(
            obj.element(tags::SOP_CLASS_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0'),
            COMPREHENSIVE_SR
        );
        let root = obj.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
        let measurements = root
            .iter()
            .find(|i| {
                i.element(tags::CONCEPT_NAME_CODE_SEQUENCE).unwrap().items().unwrap()[0]
                    .element(tags::CODE_VALUE)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    == "126010"
            })
            .unwrap();
        let groups = measurements.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
        assert_eq!(groups.len(), 2);

        // dcmtk's dsrdump parses and checks the document; the test setup installs it.
        match std::process::Command::new("dsrdump").arg(&path).output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "dsrdump failed: {err}");
                assert!(!err.contains("E:"), "dsrdump reported errors: {err}");
                assert!(text.contains("Imaging Measurement Report"), "{text}");
                assert!(text.contains("Ring-like stenosis (Kawakami A)"), "{text}");
                assert!(text.contains("\"75.0000\"") || text.contains("75.0000"), "{text}");
            }
            Err(_) => {
                eprintln!("dsrdump not installed: skipping the dcmtk check (scripts/setup.sh --test installs it)")
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
