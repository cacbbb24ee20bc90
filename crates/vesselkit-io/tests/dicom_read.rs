//! DICOM files built in code: photometric handling, calibration provenance, timing, syntaxes.

mod common;

use common::*;
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use vesselkit_core::CalibrationSource;
use vesselkit_io::{FileFormat, ReadOptions, read, read_dicom_metadata, sniff};

fn ds(obj: &mut InMemDicomObject, tag: dicom_core::Tag, v: &str) {
    put_str(obj, tag, VR::DS, v);
}

#[test]
fn monochrome1_is_inverted_so_vessels_stay_dark() {
    let mut o = xa_object(2, 3, 1, 10);
    put_str(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME1");
    // In MONOCHROME1 a high value is dark: 1000 is the vessel, 10 the background.
    put_pixels_u16(&mut o, &[10, 1000, 10, 10, 1000, 0]);
    let p = tmp("mono1.dcm");
    save(o, EXPLICIT_LE, &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    let f: Vec<f32> = l.cine.frames.iter().copied().collect();
    assert_eq!(f, vec![1013.0, 23.0, 1013.0, 1013.0, 23.0, 1023.0]);
    assert!(l.metadata.inverted);
    assert_eq!(l.metadata.photometric_interpretation.as_deref(), Some("MONOCHROME1"));
}

#[test]
fn high_bits_above_bits_stored_are_masked() {
    let mut o = xa_object(1, 2, 1, 12);
    put_pixels_u16(&mut o, &[0xF123, 0x0FFF]);
    let p = tmp("mask.dcm");
    save(o, EXPLICIT_LE, &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(
        l.cine.frames.iter().copied().collect::<Vec<_>>(),
        vec![0x123 as f32, 4095.0]
    );
}

#[test]
fn imager_pixel_spacing_with_sid_and_sod() {
    let mut o = xa_object(4, 4, 1, 12);
    ds(&mut o, tags::IMAGER_PIXEL_SPACING, "0.2\\0.2");
    ds(&mut o, tags::DISTANCE_SOURCE_TO_DETECTOR, "1200");
    ds(&mut o, tags::DISTANCE_SOURCE_TO_PATIENT, "800");
    put_pixels_u16(&mut o, &[0; 16]);
    let p = tmp("ips.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert!(
        (m.calibration.mm_per_px - 0.133_333).abs() < 1e-5,
        "{}",
        m.calibration.mm_per_px
    );
    assert_eq!(m.calibration.source.as_str(), "imager_pixel_spacing/ermf");
    assert!(
        m.calibration.detail.as_deref().is_some_and(|d| d.contains("SID 1200")),
        "{:?}",
        m.calibration.detail
    );
    assert_eq!(m.imager_pixel_spacing_mm, Some([0.2, 0.2]));
    assert_eq!(
        read_dicom_metadata(&p, &ReadOptions::default()).expect("header only"),
        m
    );
    let json = serde_json::to_string(&m).expect("json");
    assert!(json.contains("\"imager_pixel_spacing/ermf\""), "{json}");
}

#[test]
fn ermf_tag_is_preferred_over_distances() {
    let mut o = xa_object(2, 2, 1, 12);
    ds(&mut o, tags::IMAGER_PIXEL_SPACING, "0.3\\0.3");
    ds(&mut o, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, "1.5");
    ds(&mut o, tags::DISTANCE_SOURCE_TO_DETECTOR, "1200");
    ds(&mut o, tags::DISTANCE_SOURCE_TO_PATIENT, "800");
    put_pixels_u16(&mut o, &[0; 4]);
    let p = tmp("ermf.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert!((m.calibration.mm_per_px - 0.2).abs() < 1e-12);
}

#[test]
fn imager_pixel_spacing_alone_is_never_patient_spacing() {
    let mut o = xa_object(2, 2, 1, 12);
    ds(&mut o, tags::IMAGER_PIXEL_SPACING, "0.2\\0.2");
    put_pixels_u16(&mut o, &[0; 4]);
    let p = tmp("ips_only.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert_eq!(m.calibration.source, CalibrationSource::Uncalibrated);
    assert_eq!(m.calibration.mm_per_px, 1.0);
    let d = m.calibration.detail.unwrap_or_default();
    assert!(d.contains("Imager Pixel Spacing") && d.contains("SOD"), "{d}");
}

#[test]
fn pixel_spacing_wins_and_user_overrides_everything() {
    let mut o = xa_object(2, 2, 1, 12);
    ds(&mut o, tags::PIXEL_SPACING, "0.25\\0.25");
    ds(&mut o, tags::IMAGER_PIXEL_SPACING, "0.2\\0.2");
    ds(&mut o, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, "1.5");
    put_pixels_u16(&mut o, &[0; 4]);
    let p = tmp("ps.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert_eq!(m.calibration.source, CalibrationSource::PixelSpacing);
    assert!((m.calibration.mm_per_px - 0.25).abs() < 1e-12);
    let l = read(&p, &ReadOptions::default().with_user_mm_per_px(0.31)).expect("read");
    assert_eq!(l.metadata.calibration.source, CalibrationSource::User);
    assert_eq!(l.cine.calibration.mm_per_px, 0.31);
}

#[test]
fn enhanced_object_pixel_spacing_in_shared_functional_groups() {
    let mut o = xa_object(2, 2, 1, 12);
    let mut calib = InMemDicomObject::new_empty();
    ds(&mut calib, tags::OBJECT_PIXEL_SPACING_IN_CENTER_OF_BEAM, "0.15\\0.15");
    let mut shared = InMemDicomObject::new_empty();
    shared.put(DataElement::new(
        tags::PROJECTION_PIXEL_CALIBRATION_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(vec![calib], Length::UNDEFINED),
    ));
    o.put(DataElement::new(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(vec![shared], Length::UNDEFINED),
    ));
    put_pixels_u16(&mut o, &[0; 4]);
    let p = tmp("ops.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert_eq!(m.calibration.source, CalibrationSource::ObjectPixelSpacing);
    assert!((m.calibration.mm_per_px - 0.15).abs() < 1e-12);
}

#[test]
fn frame_time_delay_vector_and_angles() {
    let mut o = xa_object(2, 2, 3, 12);
    ds(&mut o, tags::FRAME_TIME, "66.7");
    ds(&mut o, tags::FRAME_DELAY, "10");
    ds(&mut o, tags::POSITIONER_PRIMARY_ANGLE, "-30.5");
    ds(&mut o, tags::POSITIONER_SECONDARY_ANGLE, "20");
    put_pixels_u16(&mut o, &[0; 12]);
    let p = tmp("timing.dcm");
    save(o, EXPLICIT_LE, &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(l.metadata.frame_times_ms, vec![10.0, 76.7, 143.4]);
    assert_eq!(l.cine.frame_times_ms, l.metadata.frame_times_ms);
    assert_eq!(l.metadata.positioner_primary_angle_deg, Some(-30.5));
    assert_eq!(l.metadata.positioner_secondary_angle_deg, Some(20.0));

    let mut o = xa_object(2, 2, 3, 12);
    ds(&mut o, tags::FRAME_TIME_VECTOR, "0\\33\\34");
    ds(&mut o, tags::FRAME_TIME, "99");
    put_pixels_u16(&mut o, &[0; 12]);
    let p = tmp("timing_vec.dcm");
    save(o, EXPLICIT_LE, &p);
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert_eq!(m.frame_times_ms, vec![0.0, 33.0, 67.0]);
    assert_eq!(m.frame_time_source.as_deref(), Some("FrameTimeVector (0018,1065)"));
}

#[test]
fn modality_lut_only_when_asked() {
    let mut o = xa_object(1, 2, 1, 12);
    ds(&mut o, tags::RESCALE_SLOPE, "2");
    ds(&mut o, tags::RESCALE_INTERCEPT, "-100");
    put_pixels_u16(&mut o, &[100, 300]);
    let p = tmp("lut.dcm");
    save(o, EXPLICIT_LE, &p);
    let stored = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(
        stored.cine.frames.iter().copied().collect::<Vec<_>>(),
        vec![100.0, 300.0]
    );
    assert!(!stored.metadata.modality_lut_applied);
    let lut = read(&p, &ReadOptions::default().with_modality_lut(true)).expect("read");
    assert_eq!(lut.cine.frames.iter().copied().collect::<Vec<_>>(), vec![100.0, 500.0]);
}

#[test]
fn signed_pixels_are_sign_extended() {
    let mut o = xa_object(1, 3, 1, 12);
    put_us(&mut o, tags::PIXEL_REPRESENTATION, 1);
    // 12-bit two's complement: 0xFFF = -1, 0x800 = -2048, 0x7FF = 2047.
    put_pixels_u16(&mut o, &[0x0FFF, 0x0800, 0x07FF]);
    let p = tmp("signed.dcm");
    save(o, EXPLICIT_LE, &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(
        l.cine.frames.iter().copied().collect::<Vec<_>>(),
        vec![-1.0, -2048.0, 2047.0]
    );
}

#[test]
fn implicit_deflated_and_8_bit_multiframe() {
    let px = ramp(3, 5, 7, 12);
    for (ts, name) in [(IMPLICIT_LE, "implicit.dcm"), (DEFLATED, "deflated.dcm")] {
        let mut o = xa_object(5, 7, 3, 12);
        put_pixels_u16(&mut o, &px);
        let p = tmp(name);
        save(o, ts, &p);
        let l = read(&p, &ReadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(l.cine.frames.dim(), (3, 5, 7));
        let got: Vec<u16> = l.cine.frames.iter().map(|&v| v as u16).collect();
        assert_eq!(got, px, "{name}");
        assert_eq!(l.metadata.transfer_syntax_uid.as_deref(), Some(ts));
    }
    let mut o = xa_object(2, 3, 2, 8);
    put_us(&mut o, tags::BITS_ALLOCATED, 8);
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255]),
    ));
    let p = tmp("eight.dcm");
    save(o, EXPLICIT_LE, &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(l.cine.frames[[1, 1, 2]], 255.0);
    assert_eq!(l.cine.frames[[0, 1, 0]], 4.0);
}

#[test]
fn dicom_is_sniffed_by_content_with_or_without_preamble() {
    let mut o = xa_object(2, 2, 1, 12);
    put_pixels_u16(&mut o, &[1, 2, 3, 4]);
    let p = tmp("sniff.png"); // wrong extension on purpose
    save(o, EXPLICIT_LE, &p);
    assert_eq!(sniff(&p).expect("sniff"), FileFormat::Dicom);
    let bytes = std::fs::read(&p).expect("bytes");
    // Without the 128-byte preamble: "DICM" at offset 0.
    let q = tmp("no_preamble.bin");
    std::fs::write(&q, &bytes[128..]).expect("write");
    let l = read(&q, &ReadOptions::default()).expect("no preamble");
    assert_eq!(
        l.cine.frames.iter().copied().collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0, 4.0]
    );
    // A bare implicit-VR data set with no file meta at all.
    let mut o = xa_object(2, 2, 1, 12);
    put_pixels_u16(&mut o, &[5, 6, 7, 8]);
    let mut raw = Vec::new();
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    use dicom_transfer_syntax_registry::TransferSyntaxIndex;
    o.write_dataset_with_ts(&mut raw, ts.get(IMPLICIT_LE).expect("ts"))
        .expect("dataset");
    let r = tmp("bare.raw");
    std::fs::write(&r, &raw).expect("write");
    let l = read(&r, &ReadOptions::default()).expect("bare data set");
    assert_eq!(
        l.cine.frames.iter().copied().collect::<Vec<_>>(),
        vec![5.0, 6.0, 7.0, 8.0]
    );
    assert_eq!(l.metadata.modality.as_deref(), Some("XA"));
}
