//! The DICOM writer: XA/XRF in three lossless transfer syntaxes read back exactly, 12-bit lossy
//! JPEG within a few counts (and as dcmtk decodes it), JPEG lossless checked with an independent
//! decoder, and IVOCT geometry.

mod common;

use common::tmp;
use dicom_dictionary_std::tags;
use ndarray::Array3;
use vesselkit_core::{Calibration, CalibrationSource, Cine};
use vesselkit_io::{
    DicomSource, IoError, IvoctWriteOptions, Quantize, ReadOptions, WriteSyntax, XaModality, XaWriteOptions, read,
    write_ivoct, write_xa,
};

fn test_cine(frames: usize, rows: usize, cols: usize, bits: u16) -> Cine {
    let px = common::ramp(frames, rows, cols, bits);
    let a = Array3::from_shape_vec((frames, rows, cols), px.iter().map(|&v| f32::from(v)).collect()).expect("shape");
    let times = (0..frames).map(|i| 100.0 + 40.0 * i as f64).collect();
    Cine::new(a, Calibration::uncalibrated(), times).expect("cine")
}

#[test]
fn xa_round_trips_exactly_in_every_syntax_and_depth() {
    for bits in [8u16, 10, 16] {
        let cine = test_cine(3, 19, 23, bits);
        for syntax in [
            WriteSyntax::ExplicitVrLittleEndian,
            WriteSyntax::RleLossless,
            WriteSyntax::JpegLossless,
        ] {
            let p = tmp(&format!("rt_{bits}_{syntax:?}.dcm"));
            let opts = XaWriteOptions {
                bits_stored: bits,
                syntax,
                imager_pixel_spacing_mm: Some(0.2),
                sid_mm: Some(1200.0),
                sod_mm: Some(800.0),
                positioner_primary_angle_deg: Some(30.0),
                positioner_secondary_angle_deg: Some(-15.0),
                ..Default::default()
            };
            write_xa(&p, &cine, &opts).unwrap_or_else(|e| panic!("{bits} {syntax:?}: {e}"));
            let l = read(&p, &ReadOptions::default()).unwrap_or_else(|e| panic!("{bits} {syntax:?}: {e}"));
            assert_eq!(l.cine.frames, cine.frames, "{bits} bits {syntax:?}");
            let m = &l.metadata;
            assert_eq!(m.transfer_syntax_uid.as_deref(), Some(syntax.uid()));
            assert_eq!(m.sop_class_uid.as_deref(), Some(vesselkit_io::SOP_XA));
            assert_eq!(m.bits_stored, bits);
            assert_eq!(m.frame_times_ms, vec![100.0, 140.0, 180.0]);
            assert_eq!(m.positioner_primary_angle_deg, Some(30.0));
            assert_eq!(m.calibration.source, CalibrationSource::ImagerPixelSpacingErmf);
            assert!((m.calibration.mm_per_px - 0.2 / 1.5).abs() < 1e-9);
        }
    }
}

/// Lossy 12-bit JPEG: a 4-frame cine comes back frame by frame within a few counts, is marked
/// lossy, and each frame is its own fragment; dcmtk's `dcmdjpeg` (where installed) decodes the
/// file to the same pixels.
#[test]
fn jpeg_extended_12_bit_cine_round_trips_within_a_few_counts() {
    let cine = test_cine(4, 40, 56, 12);
    let p = tmp("jply_rt.dcm");
    let opts = XaWriteOptions {
        bits_stored: 12,
        syntax: WriteSyntax::JpegExtended12 { quality: 95 },
        ..Default::default()
    };
    write_xa(&p, &cine, &opts).expect("write");
    let src = DicomSource::open(&p, &ReadOptions::default()).expect("open");
    assert_eq!(src.len(), 4);
    let all = src.read_cine().expect("cine");
    for f in 0..4 {
        let one = src.frame(f).expect("frame");
        assert_eq!(one.view(), all.frame(f).expect("frame"));
        let max = one
            .iter()
            .zip(cine.frames.index_axis(ndarray::Axis(0), f).iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        // Measured: 5 to 8 counts of 4095 at quality 95 on this ramp.
        assert!(max > 0.0 && max <= 10.0, "frame {f}: max |diff| {max}");
    }
    let obj = dicom_object::open_file(&p).expect("open");
    assert_eq!(
        obj.element(tags::LOSSY_IMAGE_COMPRESSION)
            .expect("lossy")
            .to_str()
            .expect("str"),
        "01"
    );
    let frags = obj
        .element(tags::PIXEL_DATA)
        .expect("pixel data")
        .value()
        .fragments()
        .expect("encapsulated")
        .len();
    assert_eq!(frags, 4);
    let out = tmp("jply_rt_dcmtk.dcm");
    if let Ok(status) = std::process::Command::new("dcmdjpeg").arg(&p).arg(&out).status() {
        assert!(status.success(), "dcmdjpeg failed");
        let peer = read(&out, &ReadOptions::default())
            .expect("dcmdjpeg output")
            .cine
            .frames;
        assert_eq!(peer, all.frames, "dcmtk decodes other pixels");
    }
    for (bits, quality) in [(8u16, 90u8), (16, 90), (12, 0)] {
        let bad = XaWriteOptions {
            bits_stored: bits,
            syntax: WriteSyntax::JpegExtended12 { quality },
            quantize: Quantize::FitRange,
            ..Default::default()
        };
        let e = write_xa(tmp("jply_bad.dcm"), &cine, &bad).expect_err("refused");
        assert!(matches!(e, IoError::Write { .. }), "{e}");
    }
}

#[test]
fn jpeg_lossless_fragments_decode_exactly_with_jpeg_decoder() {
    let cine = test_cine(2, 33, 41, 16);
    let p = tmp("jpll_check.dcm");
    let opts = XaWriteOptions {
        bits_stored: 16,
        syntax: WriteSyntax::JpegLossless,
        frame_time_ms: Some(33.3),
        ..Default::default()
    };
    write_xa(&p, &cine, &opts).expect("write");
    let obj = dicom_object::open_file(&p).expect("open");
    let el = obj.element(tags::PIXEL_DATA).expect("pixel data");
    let frags = el.value().fragments().expect("encapsulated");
    assert_eq!(frags.len(), 2);
    for (f, frag) in frags.iter().enumerate() {
        let mut d = jpeg_decoder::Decoder::new(&frag[..]);
        let data = d.decode().expect("jpeg-decoder");
        let info = d.info().expect("info");
        assert_eq!((info.height, info.width), (33, 41));
        let got: Vec<f32> = data
            .chunks_exact(2)
            .map(|b| f32::from(u16::from_ne_bytes([b[0], b[1]])))
            .collect();
        let want: Vec<f32> = cine.frame(f).expect("frame").iter().copied().collect();
        assert_eq!(got, want, "frame {f}");
    }
    let m = read(&p, &ReadOptions::default()).expect("read").metadata;
    assert_eq!(m.frame_times_ms.len(), 2);
    // Frame Time from the option, Frame Delay from the cine's first time stamp (100 ms).
    assert_eq!(m.frame_times_ms[0], 100.0);
    assert!((m.frame_times_ms[1] - 133.3).abs() < 1e-9, "{:?}", m.frame_times_ms);
}

#[test]
fn xrf_uneven_times_use_a_frame_time_vector() {
    let a = Array3::from_elem((3, 4, 4), 5.0f32);
    let cine = Cine::new(a, Calibration::user(0.3).expect("cal"), vec![0.0, 30.0, 70.0]).expect("cine");
    let p = tmp("xrf.dcm");
    let opts = XaWriteOptions {
        modality: XaModality::Xrf,
        bits_stored: 8,
        ..Default::default()
    };
    write_xa(&p, &cine, &opts).expect("write");
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(l.metadata.modality.as_deref(), Some("RF"));
    assert_eq!(l.metadata.sop_class_uid.as_deref(), Some(vesselkit_io::SOP_XRF));
    assert_eq!(l.metadata.frame_times_ms, vec![0.0, 30.0, 70.0]);
    // A calibrated cine without detector geometry is written as Pixel Spacing.
    assert_eq!(l.metadata.calibration.source, CalibrationSource::PixelSpacing);
    assert!((l.metadata.calibration.mm_per_px - 0.3).abs() < 1e-12);
}

#[test]
fn quantisation_refuses_what_does_not_fit() {
    let mut cine = test_cine(1, 4, 4, 8);
    cine.frames[[0, 1, 1]] = 300.0;
    let p = tmp("q.dcm");
    let err = write_xa(
        &p,
        &cine,
        &XaWriteOptions {
            bits_stored: 8,
            ..Default::default()
        },
    )
    .expect_err("300 > 255");
    assert!(matches!(err, IoError::Write { field: "pixels", .. }), "{err}");
    cine.frames[[0, 1, 1]] = 0.5;
    assert!(
        write_xa(
            &p,
            &cine,
            &XaWriteOptions {
                bits_stored: 8,
                ..Default::default()
            }
        )
        .is_err()
    );
    // FitRange maps min..max onto 0..255.
    let opts = XaWriteOptions {
        bits_stored: 8,
        quantize: Quantize::FitRange,
        ..Default::default()
    };
    let mut c2 = test_cine(1, 2, 2, 8);
    c2.frames.assign(&ndarray::arr3(&[[[0.0f32, 0.5], [0.25, 1.0]]]));
    write_xa(&p, &c2, &opts).expect("write");
    let got: Vec<f32> = read(&p, &ReadOptions::default())
        .expect("read")
        .cine
        .frames
        .iter()
        .copied()
        .collect();
    assert_eq!(got, vec![0.0, 128.0, 64.0, 255.0]);
    // A multi-frame cine without timing is refused rather than written without Frame Time.
    let a = Array3::zeros((2, 2, 2));
    let untimed = Cine::new(a, Calibration::uncalibrated(), Vec::new()).expect("cine");
    let err = write_xa(&p, &untimed, &XaWriteOptions::default()).expect_err("no timing");
    assert!(err.to_string().contains("frame_time_ms"), "{err}");
}

#[test]
fn ivoct_polar_geometry_refractive_index_and_z_offset() {
    // Two polar frames, 4 A-lines x 6 samples; each row is 1..=6.
    let row = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let a = Array3::from_shape_fn((2, 4, 6), |(_, _, c)| row[c]);
    let cine = Cine::new(a, Calibration::uncalibrated(), vec![0.0, 10.0]).expect("cine");
    let p = tmp("ivoct.dcm");
    let opts = IvoctWriteOptions {
        a_line_spacing_mm: Some(0.0134),
        refractive_index: Some(1.34),
        refractive_index_applied: false,
        z_offset_px: 2,
        ..Default::default()
    };
    write_ivoct(&p, &cine, &opts).expect("write");
    let src = DicomSource::open(&p, &ReadOptions::default()).expect("open");
    let m = src.metadata();
    assert_eq!(m.sop_class_uid.as_deref(), Some(vesselkit_io::SOP_IVOCT_PROCESSING));
    let g = m.oct.as_ref().expect("oct geometry");
    assert!(g.polar);
    assert!((g.a_line_spacing_mm.expect("spacing") - 0.01).abs() < 1e-12);
    assert_eq!(g.refractive_index, Some(1.34));
    assert!(!g.refractive_index_applied);
    assert_eq!(g.z_offset_px, 2);
    assert!(g.z_offset_applied_by_reader);
    assert_eq!(g.a_lines_per_frame, Some(4));
    assert!((m.calibration.mm_per_px - 0.01).abs() < 1e-12);
    // Positive Z offset moves samples away from the catheter (to higher columns).
    let f = src.frame(1).expect("frame");
    assert_eq!(f.row(3).to_vec(), vec![0.0, 0.0, 1.0, 2.0, 3.0, 4.0]);

    // Already corrected: spacing used as stored; per-frame offsets, one negative.
    let p2 = tmp("ivoct2.dcm");
    let opts2 = IvoctWriteOptions {
        a_line_spacing_mm: Some(0.01),
        refractive_index: Some(1.34),
        refractive_index_applied: true,
        z_offsets_px: vec![0, -1],
        ..Default::default()
    };
    write_ivoct(&p2, &cine, &opts2).expect("write");
    let src = DicomSource::open(&p2, &ReadOptions::default()).expect("open");
    let g = src.metadata().oct.clone().expect("oct");
    assert_eq!(g.a_line_spacing_mm, Some(0.01));
    assert_eq!(g.z_offsets_px, vec![0, -1]);
    assert_eq!(src.frame(0).expect("f0").row(0).to_vec(), row.to_vec());
    assert_eq!(
        src.frame(1).expect("f1").row(0).to_vec(),
        vec![2.0, 3.0, 4.0, 5.0, 6.0, 0.0]
    );
}

#[test]
fn ivoct_presentation_frames_are_cartesian_with_pixel_spacing() {
    let a = Array3::from_elem((1, 8, 8), 7.0f32);
    let cine = Cine::new(a, Calibration::uncalibrated(), Vec::new()).expect("cine");
    let p = tmp("ivoct_pres.dcm");
    let opts = IvoctWriteOptions {
        for_processing: false,
        pixel_spacing_mm: Some(0.02),
        ..Default::default()
    };
    write_ivoct(&p, &cine, &opts).expect("write");
    let l = read(&p, &ReadOptions::default()).expect("read");
    let g = l.metadata.oct.expect("oct");
    assert!(!g.polar);
    assert!(!g.z_offset_applied_by_reader);
    assert_eq!(l.metadata.calibration.source, CalibrationSource::PixelSpacing);
    assert!((l.cine.calibration.mm_per_px - 0.02).abs() < 1e-12);
    assert!(l.cine.frames.iter().all(|&v| v == 7.0));
}
