//! Bad input: each failure is a typed error naming the file and field; nothing panics.

mod common;

use common::*;
use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use ndarray::{Array2, Array3};
use ndarray_npy::WriteNpyExt;
use vesselkit_core::{Calibration, Cine, Limits};
use vesselkit_io::{DicomSource, IoError, ReadOptions, WriteSyntax, XaWriteOptions, read, write_xa};

fn valid_file(name: &str, syntax: WriteSyntax) -> std::path::PathBuf {
    let a = Array3::from_shape_fn((2, 16, 16), |(f, r, c)| ((f * 31 + r * 16 + c) % 4096) as f32);
    let cine = Cine::new(a, Calibration::uncalibrated(), vec![0.0, 40.0]).expect("cine");
    let p = tmp(name);
    write_xa(
        &p,
        &cine,
        &XaWriteOptions {
            syntax,
            ..Default::default()
        },
    )
    .expect("write");
    p
}

#[test]
fn truncated_file() {
    let p = valid_file("trunc_src.dcm", WriteSyntax::ExplicitVrLittleEndian);
    let bytes = std::fs::read(&p).expect("read");
    for (cut, what) in [(bytes.len() - 100, "mid pixel data"), (300, "mid header")] {
        let q = tmp(&format!("trunc_{cut}.dcm"));
        std::fs::write(&q, &bytes[..cut]).expect("write");
        let err = read(&q, &ReadOptions::default()).expect_err(what);
        assert!(matches!(err, IoError::Truncated { .. }), "{what}: {err:?}");
        assert!(err.to_string().contains(&q.display().to_string()), "{err}");
    }
}

#[test]
fn non_dicom_file() {
    let p = tmp("notes.dcm");
    std::fs::write(&p, "this is a text file, not an image\n".repeat(10)).expect("write");
    let err = read(&p, &ReadOptions::default()).expect_err("text");
    assert!(matches!(err, IoError::UnknownFormat { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.dcm"), "{err}");
    let err = DicomSource::open(&p, &ReadOptions::default()).expect_err("text");
    assert!(matches!(err, IoError::UnknownFormat { .. }), "{err:?}");
}

#[test]
fn zero_rows() {
    let mut o = xa_object(0, 4, 1, 12);
    put_pixels_u16(&mut o, &[0; 4]);
    let p = tmp("zero_rows.dcm");
    save(o, EXPLICIT_LE, &p);
    let err = read(&p, &ReadOptions::default()).expect_err("zero rows");
    assert!(
        matches!(
            err,
            IoError::EmptyImage {
                field: "Rows (0028,0010)",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_rows_attribute() {
    let mut o = xa_object(4, 4, 1, 12);
    o.remove_element(tags::ROWS);
    put_pixels_u16(&mut o, &[0; 16]);
    let p = tmp("no_rows.dcm");
    save(o, EXPLICIT_LE, &p);
    let err = read(&p, &ReadOptions::default()).expect_err("no rows");
    assert!(
        matches!(
            err,
            IoError::MissingField {
                field: "Rows (0028,0010)",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn missing_pixel_data() {
    let o = xa_object(4, 4, 1, 12);
    let p = tmp("no_pixels.dcm");
    save(o, EXPLICIT_LE, &p);
    let err = read(&p, &ReadOptions::default()).expect_err("no pixel data");
    assert!(matches!(err, IoError::MissingPixelData { .. }), "{err:?}");
    assert!(err.to_string().contains("7FE0,0010"), "{err}");
}

#[test]
fn pixel_data_shorter_than_declared_size() {
    let mut o = xa_object(8, 8, 2, 12);
    put_pixels_u16(&mut o, &[0; 100]);
    let p = tmp("short.dcm");
    save(o, EXPLICIT_LE, &p);
    let err = read(&p, &ReadOptions::default()).expect_err("short");
    match err {
        IoError::PixelDataTooShort {
            expected_bytes,
            actual_bytes,
            rows: 8,
            cols: 8,
            frames: 2,
            ..
        } => {
            assert_eq!(expected_bytes, 8 * 8 * 2 * 2);
            assert_eq!(actual_bytes, 200);
        }
        other => panic!("expected PixelDataTooShort, got {other:?}"),
    }
}

#[test]
fn absurd_dimensions_refused_before_allocating() {
    let mut o = xa_object(60_000, 60_000, 9_000, 12);
    put_pixels_u16(&mut o, &[0; 16]);
    let p = tmp("absurd.dcm");
    save(o, EXPLICIT_LE, &p);
    let err = DicomSource::open(&p, &ReadOptions::default()).expect_err("absurd");
    assert!(matches!(err, IoError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("max_side_px"), "{err}");
    // Within the side limit but too many frames x pixels in all.
    let mut o = xa_object(4_000, 4_000, 9_000, 12);
    put_pixels_u16(&mut o, &[0; 16]);
    save(o, EXPLICIT_LE, &p);
    let err = DicomSource::open(&p, &ReadOptions::default()).expect_err("absurd total");
    assert!(err.to_string().contains("max_total_px"), "{err}");
    // The caller may raise the limits; then the (short) pixel data is the problem.
    let opts = ReadOptions::default().with_limits(Limits::unlimited());
    let err = DicomSource::open(&p, &opts).expect_err("short");
    assert!(matches!(err, IoError::PixelDataTooShort { .. }), "{err:?}");
}

#[test]
fn nan_in_npy() {
    let mut a = Array2::<f32>::zeros((3, 4));
    a[[2, 1]] = f32::NAN;
    let p = tmp("nan.npy");
    a.write_npy(std::fs::File::create(&p).expect("create")).expect("npy");
    let err = read(&p, &ReadOptions::default()).expect_err("nan");
    match err {
        IoError::NonFinite { index, value, .. } => {
            assert_eq!(index, 9);
            assert!(value.is_nan());
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
}

#[test]
fn corrupt_compressed_frame_is_an_error_not_a_panic() {
    for syntax in [WriteSyntax::JpegLossless, WriteSyntax::RleLossless] {
        let p = valid_file(&format!("corrupt_src_{syntax:?}.dcm"), syntax);
        let mut obj = dicom_object::open_file(&p).expect("open");
        let junk = vec![
            vec![0xFFu8, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, 0x10, 0x7F, 0xFF, 0x7F, 0xFF, 1],
            vec![7u8; 10],
        ];
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::from(PixelFragmentSequence::new(vec![0u32, 20], junk)),
        ));
        let q = tmp(&format!("corrupt_{syntax:?}.dcm"));
        obj.write_to_file(&q).expect("write");
        let src = DicomSource::open(&q, &ReadOptions::default()).expect("open is lazy");
        let err = src.frame(0).expect_err("corrupt frame");
        assert!(matches!(err, IoError::Decode { frame: 0, .. }), "{syntax:?}: {err:?}");
        assert!(src.read_cine().is_err());
    }
}

/// The first offset of `pattern` in `bytes`.
fn find(bytes: &[u8], pattern: &[u8]) -> usize {
    bytes
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("pattern in file")
}

/// A damaged 32-bit length anywhere (a header element, a fragment, an element after the
/// frames) is refused from the file size before the parser reserves that many bytes.
#[test]
fn declared_lengths_past_the_end_are_refused_before_reading() {
    let huge = 0x7FFF_FFF0u32;
    let expect_truncated = |bytes: &[u8], name: &str, what: &str| {
        let q = tmp(name);
        std::fs::write(&q, bytes).expect("write");
        let err = read(&q, &ReadOptions::default()).expect_err(name);
        assert!(matches!(err, IoError::Truncated { .. }), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{what} declares {huge} bytes but only")),
            "{name}: {msg}"
        );
        assert!(msg.contains(name), "{msg}");
    };

    // Implicit VR: every element carries a 32-bit length. Manufacturer (0008,0070) first.
    let mut o = xa_object(4, 4, 1, 12);
    put_str(&mut o, tags::MANUFACTURER, VR::LO, "ACME");
    put_pixels_u16(&mut o, &[7; 16]);
    let p = tmp("len_src.dcm");
    save(o, IMPLICIT_LE, &p);
    let good = std::fs::read(&p).expect("read");
    assert!(read(&p, &ReadOptions::default()).is_ok());
    let mut bytes = good.clone();
    let at = find(&bytes, &[0x08, 0x00, 0x70, 0x00, 4, 0, 0, 0]) + 4;
    bytes[at..at + 4].copy_from_slice(&huge.to_le_bytes());
    expect_truncated(&bytes, "len_header.dcm", "element (0008,0070)");

    // An element after the native frames: they are stepped over, not trusted as the end.
    let mut bytes = good;
    bytes.extend_from_slice(&[0xFC, 0xFF, 0xFC, 0xFF]);
    bytes.extend_from_slice(&huge.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    expect_truncated(&bytes, "len_trailing.dcm", "element (FFFC,FFFC)");

    // A fragment of encapsulated pixel data: the second item (after the offset table).
    let rle = std::fs::read(valid_file("len_rle.dcm", WriteSyntax::RleLossless)).expect("read");
    let item = [0xFE, 0xFF, 0x00, 0xE0];
    let first = find(&rle, &item);
    let second = first + 4 + find(&rle[first + 4..], &item);
    let mut bytes = rle.clone();
    bytes[second + 4..second + 8].copy_from_slice(&huge.to_le_bytes());
    expect_truncated(&bytes, "len_fragment.dcm", "a Pixel Data fragment");
}

/// The file meta group is checked the same way: its OB version element here.
#[test]
fn a_meta_group_length_past_the_end_is_refused() {
    let p = valid_file("meta_src.dcm", WriteSyntax::ExplicitVrLittleEndian);
    let mut bytes = std::fs::read(&p).expect("read");
    // (0002,0001) OB 00 00, then its 32-bit length.
    let at = find(&bytes, &[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0]) + 8;
    bytes[at..at + 4].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    let q = tmp("meta_len.dcm");
    std::fs::write(&q, &bytes).expect("write");
    let err = read(&q, &ReadOptions::default()).expect_err("meta length");
    assert!(matches!(err, IoError::Truncated { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("file meta element (0002,0001) declares 2147483632 bytes but only"),
        "{err}"
    );
}
