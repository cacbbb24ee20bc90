//! PNG, TIFF and NPY readers, and content sniffing.

mod common;

use common::tmp;
use image::{ImageBuffer, Luma, Rgb, Rgba};
use ndarray::{Array2, Array3};
use ndarray_npy::WriteNpyExt;
use vesselkit_core::{CalibrationSource, Limits};
use vesselkit_io::{FileFormat, IoError, ReadOptions, read, sniff};

#[test]
fn png_8_and_16_bit_grey_keep_stored_values() {
    let g8 = ImageBuffer::<Luma<u8>, _>::from_fn(5, 3, |x, y| Luma([(x * 10 + y) as u8]));
    let p = tmp("g8.png");
    g8.save(&p).expect("save");
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert_eq!(l.cine.frames.dim(), (1, 3, 5));
    assert_eq!(l.cine.frames[[0, 2, 4]], 42.0);
    assert_eq!(l.metadata.format, FileFormat::Png);
    assert_eq!(l.metadata.calibration.source, CalibrationSource::Uncalibrated);

    let g16 = ImageBuffer::<Luma<u16>, _>::from_fn(4, 2, |x, y| Luma([(x * 1000 + y * 20000) as u16]));
    let p = tmp("g16.png");
    g16.save(&p).expect("save");
    let l = read(&p, &ReadOptions::default().with_user_mm_per_px(0.1)).expect("read");
    assert_eq!(l.cine.frames[[0, 1, 3]], 23000.0);
    assert_eq!(l.metadata.bits_stored, 16);
    assert_eq!(l.cine.calibration.source, CalibrationSource::User);
}

#[test]
fn rgb_and_rgba_become_luminance() {
    let rgb =
        ImageBuffer::<Rgb<u8>, _>::from_fn(2, 1, |x, _| if x == 0 { Rgb([100, 50, 200]) } else { Rgb([0, 0, 0]) });
    let p = tmp("rgb.png");
    rgb.save(&p).expect("save");
    let l = read(&p, &ReadOptions::default()).expect("read");
    let want = 0.299 * 100.0 + 0.587 * 50.0 + 0.114 * 200.0;
    assert!(
        (l.cine.frames[[0, 0, 0]] - want).abs() < 1e-4,
        "{}",
        l.cine.frames[[0, 0, 0]]
    );
    let rgba = ImageBuffer::<Rgba<u8>, _>::from_fn(1, 1, |_, _| Rgba([255, 255, 255, 10]));
    let p = tmp("rgba.png");
    rgba.save(&p).expect("save");
    let l = read(&p, &ReadOptions::default()).expect("read");
    assert!((l.cine.frames[[0, 0, 0]] - 255.0).abs() < 1e-3);
}

#[test]
fn tiff_16_bit_grey_sniffed_by_content_not_extension() {
    let g = ImageBuffer::<Luma<u16>, _>::from_fn(3, 3, |x, y| Luma([(x + 3 * y) as u16 * 1000]));
    let p = tmp("t16.tif");
    g.save(&p).expect("save");
    let renamed = tmp("t16.npy");
    std::fs::copy(&p, &renamed).expect("copy");
    assert_eq!(sniff(&renamed).expect("sniff"), FileFormat::Tiff);
    let l = read(&renamed, &ReadOptions::default()).expect("read");
    assert_eq!(l.cine.frames[[0, 2, 2]], 8000.0);
    assert_eq!(l.metadata.format, FileFormat::Tiff);
}

#[test]
fn png_larger_than_the_limits_is_refused() {
    let g = ImageBuffer::<Luma<u8>, _>::new(64, 32);
    let p = tmp("big.png");
    g.save(&p).expect("save");
    let lim = Limits {
        max_side_px: 50,
        ..Limits::default()
    };
    let err = read(&p, &ReadOptions::default().with_limits(lim)).expect_err("too wide");
    assert!(matches!(err, IoError::TooLarge { .. }), "{err:?}");
}

#[test]
fn npy_dtypes_2d_and_3d() {
    let p = tmp("u8.npy");
    Array2::from_shape_fn((2, 3), |(r, c)| (r * 3 + c) as u8)
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    let l = read(&p, &ReadOptions::default()).expect("u8");
    assert_eq!(l.cine.frames.dim(), (1, 2, 3));
    assert_eq!(l.cine.frames[[0, 1, 2]], 5.0);
    assert_eq!(l.metadata.format, FileFormat::Npy);

    let p = tmp("u16.npy");
    Array2::from_shape_fn((2, 2), |(r, c)| (r * 40000 + c) as u16)
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    assert_eq!(
        read(&p, &ReadOptions::default()).expect("u16").cine.frames[[0, 1, 1]],
        40001.0
    );

    let p = tmp("i16.npy");
    Array2::from_shape_fn((1, 2), |(_, c)| if c == 0 { -1234i16 } else { 77 })
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    assert_eq!(
        read(&p, &ReadOptions::default()).expect("i16").cine.frames[[0, 0, 0]],
        -1234.0
    );

    let p = tmp("f64_3d.npy");
    Array3::from_shape_fn((4, 2, 3), |(f, r, c)| f as f64 + 0.5 * r as f64 - 0.25 * c as f64)
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    let l = read(&p, &ReadOptions::default()).expect("f64");
    assert_eq!(l.cine.frames.dim(), (4, 2, 3));
    assert_eq!(l.cine.frames[[3, 1, 2]], 3.0);

    let p = tmp("f32.npy");
    Array2::from_elem((2, 2), 1.5f32)
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    assert_eq!(
        read(&p, &ReadOptions::default()).expect("f32").cine.frames[[0, 1, 1]],
        1.5
    );
}

#[test]
fn npy_wrong_rank_and_empty_are_errors() {
    let p = tmp("rank1.npy");
    ndarray::Array1::<f32>::zeros(5)
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    assert!(matches!(read(&p, &ReadOptions::default()), Err(IoError::Npy { .. })));
    let p = tmp("empty.npy");
    Array2::<f32>::zeros((0, 3))
        .write_npy(std::fs::File::create(&p).expect("f"))
        .expect("w");
    assert!(matches!(
        read(&p, &ReadOptions::default()),
        Err(IoError::EmptyImage { field: "rows", .. })
    ));
}
