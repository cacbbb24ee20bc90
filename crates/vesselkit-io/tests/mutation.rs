//! Damaged files: valid files in every written syntax (and the NEMA XA files when `../shared` is
//! present) are truncated, bit-flipped and overwritten at random, and every reader must return
//! `Ok` or a typed error, never panic. The mutations come from a fixed seed, so a failure names the
//! file, the iteration and the bytes changed, and reproduces.
//!
//! `VESSELKIT_MUTATIONS=N` runs N mutations per file instead of the default.

mod common;

use common::*;
use ndarray::{Array2, Array3};
use ndarray_npy::WriteNpyExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use vesselkit_core::{Calibration, Cine};
use vesselkit_io::{DicomSource, ReadOptions, WriteSyntax, XaWriteOptions, read, write_xa};

/// SplitMix64: a few lines of deterministic randomness, enough to pick bytes to damage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random kind of damage; returns the damaged bytes and what was done.
fn mutate(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = bytes.to_vec();
    let n = b.len();
    // Half the damage lands in the last quarter, where the pixel data (and its codec's
    // markers) lie; the rest anywhere, headers included.
    let pos = |rng: &mut Rng| {
        if rng.below(2) == 0 {
            n - 1 - rng.below(n / 4)
        } else {
            rng.below(n)
        }
    };
    match rng.below(5) {
        0 => {
            let cut = pos(rng);
            b.truncate(cut);
            (b, format!("truncated at {cut}"))
        }
        1 => {
            let k = 1 + rng.below(8);
            let mut at = Vec::new();
            for _ in 0..k {
                let i = pos(rng);
                b[i] ^= 1 << rng.below(8);
                at.push(i);
            }
            (b, format!("bits flipped at {at:?}"))
        }
        2 => {
            let i = pos(rng);
            let len = (1 + rng.below(64)).min(n - i);
            let v = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)];
            b[i..i + len].fill(v);
            (b, format!("{len} bytes at {i} set to {v:#04x}"))
        }
        3 => {
            let i = pos(rng);
            let v = rng.next() as u8;
            b[i] = v;
            (b, format!("byte {i} set to {v:#04x}"))
        }
        _ => {
            // A chunk repeated or removed: lengths and offsets then point at the wrong bytes.
            let i = pos(rng);
            let len = (1 + rng.below(32)).min(n - i);
            if rng.below(2) == 0 {
                let chunk = b[i..i + len].to_vec();
                b.splice(i..i, chunk);
                (b, format!("{len} bytes at {i} repeated"))
            } else {
                b.drain(i..i + len);
                (b, format!("{len} bytes at {i} removed"))
            }
        }
    }
}

/// Every reader on one file, each behind `catch_unwind`: the panic message if one panicked.
fn read_all_ways(path: &Path) -> Option<String> {
    let opts = ReadOptions::default();
    let run = || {
        let _ = read(path, &opts);
        if let Ok(src) = DicomSource::open(path, &opts) {
            for i in 0..src.len().min(3) {
                let _ = src.frame(i);
            }
        }
    };
    catch_unwind(AssertUnwindSafe(run)).err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

fn mutations_per_file(default: usize) -> usize {
    std::env::var("VESSELKIT_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mutate `source` `count` times; every panic is collected with what caused it.
fn damage(name: &str, source: &[u8], ext: &str, count: usize, seed: u64, failures: &mut Vec<String>) {
    let mut rng = Rng(seed);
    let q = tmp(&format!("mut_{name}.{ext}"));
    for it in 0..count {
        let (bytes, what) = mutate(source, &mut rng);
        std::fs::write(&q, &bytes).expect("write");
        if let Some(msg) = read_all_ways(&q) {
            failures.push(format!("{name} #{it} ({what}): panicked: {msg}"));
        }
    }
}

fn written_sources() -> Vec<(String, Vec<u8>, &'static str)> {
    let a = Array3::from_shape_fn((3, 24, 20), |(f, r, c)| {
        ((f * 37 + r * 11 + c * 5) % 1000) as f32 + 20.0
    });
    let cine = Cine::new(a, Calibration::uncalibrated(), vec![0.0, 33.0, 66.0]).expect("cine");
    let mut out = Vec::new();
    for (label, syntax) in [
        ("explicit", WriteSyntax::ExplicitVrLittleEndian),
        ("rle", WriteSyntax::RleLossless),
        ("jpll", WriteSyntax::JpegLossless),
        ("jply12", WriteSyntax::JpegExtended12 { quality: 90 }),
    ] {
        let p = tmp(&format!("mut_src_{label}.dcm"));
        let opts = XaWriteOptions {
            syntax,
            bits_stored: 12,
            ..Default::default()
        };
        write_xa(&p, &cine, &opts).expect("write");
        out.push((label.to_string(), std::fs::read(&p).expect("read"), "dcm"));
    }
    let img = Array2::from_shape_fn((24, 20), |(r, c)| ((r * 20 + c) % 256) as u8);
    let gray = image::GrayImage::from_raw(20, 24, img.iter().copied().collect()).expect("gray");
    for (label, ext) in [("png", "png"), ("tiff", "tif")] {
        let p = tmp(&format!("mut_src.{ext}"));
        gray.save(&p).expect(label);
        out.push((label.to_string(), std::fs::read(&p).expect("read"), ext));
    }
    let p = tmp("mut_src.npy");
    img.mapv(f32::from)
        .write_npy(std::fs::File::create(&p).expect("create"))
        .expect("npy");
    out.push(("npy".into(), std::fs::read(&p).expect("read"), "npy"));
    out
}

#[test]
fn damaged_written_files_are_errors_not_panics() {
    let count = mutations_per_file(150);
    let mut failures = Vec::new();
    for (k, (name, bytes, ext)) in written_sources().iter().enumerate() {
        damage(name, bytes, ext, count, 0x5EED_0000 + k as u64, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} panics:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn damaged_nema_files_are_errors_not_panics() {
    let Some(dir) = shared_data() else { return };
    let count = mutations_per_file(20);
    let mut failures = Vec::new();
    let mut seen = 0;
    for (k, name) in [
        "XA1_UNC", "XA1_RLE", "XA1_JPLL", "XA1_JPLY", "XA1_J2KR", "XA1_J2KI", "XA1_JLSL", "XA1_JLSN",
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join("dicom-xa-nema").join(name);
        let Ok(bytes) = std::fs::read(&p) else { continue };
        seen += 1;
        damage(name, &bytes, "dcm", count, 0xA11C_E000 + k as u64, &mut failures);
    }
    assert_eq!(seen, 8, "the NEMA folder should hold all eight transfer syntaxes");
    assert!(
        failures.is_empty(),
        "{} panics:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
