//! Decode speed of a 60-frame 512 x 512 12-bit JPEG-lossless XA cine written by our writer:
//! full `read_cine` (parallel over frames) and one `frame` call; and opening the same run
//! uncompressed (31 MB).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vesselkit_io::{DicomSource, ReadOptions, WriteSyntax, XaWriteOptions, write_xa};

#[path = "../examples/write_bench_cine.rs"]
#[allow(dead_code)]
mod writer;

fn decode(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("vesselkit-io-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("temp dir: {e}");
    }
    let path = dir.join("cine_jpll.dcm");
    let cine = writer::bench_cine(60, 512);
    let opts = XaWriteOptions {
        bits_stored: 12,
        syntax: WriteSyntax::JpegLossless,
        ..Default::default()
    };
    if let Err(e) = write_xa(&path, &cine, &opts) {
        panic!("write: {e}");
    }
    let ro = ReadOptions::default();
    let mut g = c.benchmark_group("jpeg_lossless_60x512x512");
    g.sample_size(10);
    g.bench_function("open+read_cine", |b| {
        b.iter(|| {
            let src = DicomSource::open(&path, &ro).expect("open");
            black_box(src.read_cine().expect("cine"))
        })
    });
    let src = DicomSource::open(&path, &ro).expect("open");
    g.bench_function("read_cine", |b| b.iter(|| black_box(src.read_cine().expect("cine"))));
    g.bench_function("frame", |b| b.iter(|| black_box(src.frame(30).expect("frame"))));
    g.finish();

    // Opening an uncompressed run: the header pass, the length check and the read of 31 MB.
    let native = dir.join("cine_native.dcm");
    let opts = XaWriteOptions {
        bits_stored: 12,
        ..Default::default()
    };
    if let Err(e) = write_xa(&native, &cine, &opts) {
        panic!("write: {e}");
    }
    let mut g = c.benchmark_group("native_60x512x512");
    g.sample_size(20);
    g.bench_function("open", |b| {
        b.iter(|| black_box(DicomSource::open(&native, &ro).expect("open")))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, decode);
criterion_main!(benches);
