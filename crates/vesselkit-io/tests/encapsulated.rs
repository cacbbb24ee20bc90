//! Encapsulated pixel data beyond our own writer: JPEG baseline (8-bit lossy) and frames split
//! over several fragments without an offset table (decoded whole, then sliced).

mod common;

use common::*;
use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use ndarray::Array3;
use vesselkit_core::{Calibration, Cine};
use vesselkit_io::{DicomSource, ReadOptions, WriteSyntax, XaWriteOptions, read, write_xa};

#[test]
fn jpeg_baseline_8_bit_decodes_close_to_the_source() {
    let (rows, cols) = (32u16, 48u16);
    let src: Vec<u8> = (0..usize::from(rows) * usize::from(cols))
        .map(|i| {
            let (r, c) = (i / usize::from(cols), i % usize::from(cols));
            (60 + r * 3 + c * 2) as u8
        })
        .collect();
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 95)
        .encode(&src, cols, rows, jpeg_encoder::ColorType::Luma)
        .expect("encode");
    if jpeg.len() % 2 == 1 {
        jpeg.push(0);
    }
    let mut o = xa_object(rows, cols, 1, 8);
    put_us(&mut o, tags::BITS_ALLOCATED, 8);
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::from(PixelFragmentSequence::new(vec![0u32], vec![jpeg])),
    ));
    let p = tmp("baseline.dcm");
    save(o, "1.2.840.10008.1.2.4.50", &p);
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(
        l.metadata.transfer_syntax_name.as_deref(),
        Some("JPEG Baseline (Process 1)")
    );
    let max = l
        .cine
        .frames
        .iter()
        .zip(&src)
        .map(|(a, &b)| (a - f32::from(b)).abs())
        .fold(0.0, f32::max);
    assert!(max <= 4.0, "quality-95 JPEG of a smooth ramp: max |diff| {max}");
}

#[test]
fn frames_split_over_fragments_without_offset_table() {
    let a = Array3::from_shape_fn((3, 20, 30), |(f, r, c)| ((f * 500 + r * 40 + c * 3) % 4096) as f32);
    let cine = Cine::new(a, Calibration::uncalibrated(), vec![0.0, 40.0, 80.0]).expect("cine");
    let p = tmp("split_src.dcm");
    write_xa(
        &p,
        &cine,
        &XaWriteOptions {
            syntax: WriteSyntax::JpegLossless,
            ..Default::default()
        },
    )
    .expect("write");
    let mut obj = dicom_object::open_file(&p).expect("open");
    let frags: Vec<Vec<u8>> = obj
        .element(tags::PIXEL_DATA)
        .expect("px")
        .value()
        .fragments()
        .expect("frags")
        .to_vec();
    // Split every frame's stream in two even-length fragments; leave the offset table empty.
    let mut split = Vec::new();
    for f in frags {
        let half = (f.len() / 4) * 2;
        split.push(f[..half].to_vec());
        split.push(f[half..].to_vec());
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::from(PixelFragmentSequence::new(Vec::<u32>::new(), split)),
    ));
    let q = tmp("split.dcm");
    obj.write_to_file(&q).expect("write");
    let src = DicomSource::open(&q, &ReadOptions::default()).expect("open");
    assert_eq!(src.read_cine().expect("cine").frames, cine.frames);
    assert_eq!(src.frame(2).expect("frame 2"), cine.frame(2).expect("f").to_owned());
}
