//! Helpers shared by the integration tests: temp paths and DICOM files built in code.
#![allow(dead_code)]

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::{Path, PathBuf};

pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// A fresh path in a per-process temp directory.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vesselkit-io-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The shared real-data folder, or None (tests then skip).
pub fn shared_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

pub fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

pub fn put_us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

/// A minimal XA object of `frames x rows x cols` 16-bit samples (no pixel data yet).
pub fn xa_object(rows: u16, cols: u16, frames: u32, bits_stored: u16) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.12.1");
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, "2.25.1234");
    put_str(&mut o, tags::MODALITY, VR::CS, "XA");
    put_us(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_str(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, &frames.to_string());
    put_us(&mut o, tags::ROWS, rows);
    put_us(&mut o, tags::COLUMNS, cols);
    put_us(&mut o, tags::BITS_ALLOCATED, 16);
    put_us(&mut o, tags::BITS_STORED, bits_stored);
    put_us(&mut o, tags::HIGH_BIT, bits_stored - 1);
    put_us(&mut o, tags::PIXEL_REPRESENTATION, 0);
    o
}

pub fn put_pixels_u16(obj: &mut InMemDicomObject, px: &[u16]) {
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(px.iter().copied().collect()),
    ));
}

/// Write `obj` as a DICOM file with preamble in transfer syntax `ts`.
pub fn save(obj: InMemDicomObject, ts: &str, path: &Path) {
    let f = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(ts))
        .expect("meta");
    f.write_to_file(path).expect("write");
}

/// A ramp image: value = (r * cols + c) * step + frame * 7, modulo 2^bits.
pub fn ramp(frames: usize, rows: usize, cols: usize, bits: u16) -> Vec<u16> {
    let m = 1u32 << bits;
    (0..frames * rows * cols)
        .map(|i| {
            let f = i / (rows * cols);
            ((i % (rows * cols)) as u32 * 13 + f as u32 * 7) % m
        })
        .map(|v| v as u16)
        .collect()
}
