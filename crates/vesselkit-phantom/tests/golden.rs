//! Golden cases under `test-data/phantom/`: regenerating must give identical truth and images.
//!
//! Regenerate after an intended change with
//! `REGENERATE=1 cargo test -p vesselkit-phantom --test golden`.

use ndarray::Array2;
use std::path::{Path, PathBuf};
use vesselkit_core::LesionType;
use vesselkit_phantom::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/phantom")
}

/// Minimal NPY v1.0 writer (little-endian, C order).
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn npy_f32(a: &Array2<f32>) -> Vec<u8> {
    let (r, c) = a.dim();
    npy(
        "<f4",
        &[r, c],
        &a.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
    )
}

fn npy_bool(a: &Array2<bool>) -> Vec<u8> {
    let (r, c) = a.dim();
    npy("|b1", &[r, c], &a.iter().map(|&v| u8::from(v)).collect::<Vec<u8>>())
}

fn check(name: &str, bytes: &[u8]) {
    let path = dir().join(name);
    if std::env::var("REGENERATE").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run with REGENERATE=1", path.display()));
    assert!(
        want == bytes,
        "{name} differs from the golden file; if intended, regenerate (see module docs)"
    );
}

pub fn angio_params() -> AngioParams {
    AngioParams {
        rows: 192,
        cols: 192,
        mm_per_px: 0.4,
        max_branches: 30,
        supersample: 1,
        ..Default::default()
    }
}

#[test]
fn golden_angio() {
    let ph = generate_angio(&angio_params(), 1).unwrap();
    check("angio_seed1_truth.json", ph.truth_json().unwrap().as_bytes());
    check("angio_seed1_image.npy", &npy_f32(&ph.image));
    check("angio_seed1_mask.npy", &npy_bool(&ph.mask));
}

#[test]
fn golden_cine() {
    let p = CineParams {
        angio: AngioParams {
            rows: 128,
            cols: 128,
            mm_per_px: 0.5,
            max_branches: 16,
            lesions: vec![LesionType::Subtotal, LesionType::Occlusion],
            supersample: 1,
            ..Default::default()
        },
        frames: 6,
        frame_time_ms: 250.0,
        ..Default::default()
    };
    let ph = generate_cine(&p, 2).unwrap();
    check("cine_seed2_truth.json", ph.truth_json().unwrap().as_bytes());
}

#[test]
fn golden_oct() {
    let p = OctParams {
        alines: 128,
        samples: 160,
        cart_size: 128,
        channels: 3,
        lumen_diameter_mm: 3.8,
        ..Default::default()
    };
    let ph = generate_oct_frame(&p, 3).unwrap();
    check("oct_seed3_truth.json", ph.truth_json().unwrap().as_bytes());
    check("oct_seed3_cartesian.npy", &npy_f32(&ph.cartesian));
    check("oct_seed3_mask.npy", &npy_bool(&ph.lumen_mask));
}

#[test]
fn golden_pullback() {
    let mut p = PullbackParams::default();
    p.oct.alines = 96;
    p.oct.samples = 120;
    p.oct.cart_size = 64;
    p.frames = 11;
    p.frame_spacing_mm = 0.4;
    let ph = generate_pullback(&p, 4).unwrap();
    check("pullback_seed4_truth.json", ph.truth_json().unwrap().as_bytes());
}

#[test]
fn npy_header_is_aligned() {
    let b = npy("<f4", &[2, 3], &[0u8; 24]);
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0);
    assert_eq!(b.len(), 10 + hl + 24);
}
