//! `vesselkit phantom`: write a generated phantom as PNG, NPY and DICOM plus its truth JSON.

use crate::CliError;
use image::{ImageBuffer, Luma};
use ndarray::{Array2, Array3, Axis};
use std::path::{Path, PathBuf};
use vesselkit_core::{Calibration, Cine};
use vesselkit_io::{IvoctWriteOptions, Quantize, WriteSyntax, XaWriteOptions};
use vesselkit_phantom as ph;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Angio,
    Cine,
    Oct,
    Pullback,
}

/// A deterministic UID for a phantom file, so the same seed gives identical bytes.
pub fn phantom_uid(kind: &str, seed: u64, part: u64) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in kind.bytes().chain(seed.to_le_bytes()).chain(part.to_le_bytes()) {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("2.25.{}", h >> 2)
}

fn io<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError(format!("{}: {e}", path.display()))
}

/// 16-bit PNG of an image scaled by `scale` (counts: 1; unit-range images: 65535).
fn write_png16(path: &Path, img: &Array2<f32>, scale: f64) -> Result<(), CliError> {
    let q = ph::quantise_u16(img, scale);
    let (h, w) = q.pixels.dim();
    let buf: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(w as u32, h as u32, q.pixels.iter().copied().collect())
            .ok_or_else(|| CliError(format!("{}: image buffer size mismatch", path.display())))?;
    buf.save(path).map_err(io(path))
}

fn write_mask_png(path: &Path, mask: &Array2<bool>) -> Result<(), CliError> {
    let (h, w) = mask.dim();
    let buf: ImageBuffer<Luma<u8>, Vec<u8>> = ImageBuffer::from_raw(
        w as u32,
        h as u32,
        mask.iter().map(|&m| if m { 255 } else { 0 }).collect(),
    )
    .ok_or_else(|| CliError(format!("{}: mask buffer size mismatch", path.display())))?;
    buf.save(path).map_err(io(path))
}

fn write_npy2(path: &Path, a: &Array2<f32>) -> Result<(), CliError> {
    ndarray_npy::write_npy(path, a).map_err(io(path))
}
fn write_npy3(path: &Path, a: &Array3<f32>) -> Result<(), CliError> {
    ndarray_npy::write_npy(path, a).map_err(io(path))
}
fn write_text(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(io(path))
}

/// XA options with the phantom's geometry: Imager Pixel Spacing = patient spacing x SID/SOD.
fn xa_options(mm_per_px: f64, sid_mm: f64, sod_mm: f64, frame_time_ms: Option<f64>, uid: String) -> XaWriteOptions {
    XaWriteOptions {
        bits_stored: 16,
        syntax: if frame_time_ms.is_some() {
            WriteSyntax::JpegLossless
        } else {
            WriteSyntax::ExplicitVrLittleEndian
        },
        quantize: Quantize::Exact,
        imager_pixel_spacing_mm: Some(mm_per_px * sid_mm / sod_mm),
        sid_mm: Some(sid_mm),
        sod_mm: Some(sod_mm),
        frame_time_ms,
        sop_instance_uid: Some(uid),
        ..XaWriteOptions::default()
    }
}

/// Counts rounded to integers, as a detector stores them.
fn rounded(a: &Array3<f32>) -> Array3<f32> {
    a.mapv(|v| v.round().clamp(0.0, 65535.0))
}

/// Generate and write one phantom; returns the files written.
pub fn run(kind: Kind, seed: u64, difficulty: Option<f64>, out: &Path) -> Result<Vec<PathBuf>, CliError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut written = Vec::new();
    let mut put = |name: &str| {
        let p = out.join(name);
        written.push(p.clone());
        p
    };
    let perr = |e: ph::PhantomError| CliError(e.to_string());
    match kind {
        Kind::Angio => {
            let mut params = ph::AngioParams::default();
            if let Some(d) = difficulty {
                params.difficulty = d;
            }
            let p = ph::generate_angio(&params, seed).map_err(perr)?;
            write_png16(&put("angio.png"), &p.image, 1.0)?;
            write_npy2(&put("angio.npy"), &p.image)?;
            write_mask_png(&put("angio_mask.png"), &p.mask)?;
            let cine = Cine::new(rounded(&p.image.clone().insert_axis(Axis(0))), p.calibration(), vec![])
                .map_err(|e| CliError(e.to_string()))?;
            let dcm = put("angio.dcm");
            let opts = xa_options(
                params.mm_per_px,
                params.sid_mm,
                params.sod_mm,
                None,
                phantom_uid("angio", seed, 0),
            );
            vesselkit_io::write_xa(&dcm, &cine, &opts).map_err(|e| CliError(e.to_string()))?;
            write_text(&put("angio_truth.json"), &p.truth_json().map_err(perr)?)?;
        }
        Kind::Cine => {
            let mut params = ph::CineParams::default();
            if let Some(d) = difficulty {
                params.angio.difficulty = d;
            }
            let p = ph::generate_cine(&params, seed).map_err(perr)?;
            write_npy3(&put("cine.npy"), &p.frames)?;
            write_mask_png(&put("cine_mask.png"), &p.mask)?;
            let mm = params.angio.mm_per_px;
            let cal = Calibration::from_pixel_spacing(mm, mm).map_err(|e| CliError(e.to_string()))?;
            let cine = Cine::new(rounded(&p.frames), cal, p.frame_times_ms()).map_err(|e| CliError(e.to_string()))?;
            let opts = xa_options(
                mm,
                params.angio.sid_mm,
                params.angio.sod_mm,
                Some(params.frame_time_ms),
                phantom_uid("cine", seed, 0),
            );
            vesselkit_io::write_xa(put("cine.dcm"), &cine, &opts).map_err(|e| CliError(e.to_string()))?;
            let mid = p.frames.len_of(Axis(0)) * 2 / 3;
            write_png16(
                &put("cine_frame.png"),
                &p.frames.index_axis(Axis(0), mid).to_owned(),
                1.0,
            )?;
            write_text(&put("cine_truth.json"), &p.truth_json().map_err(perr)?)?;
        }
        Kind::Oct => {
            let params = ph::OctParams::default();
            let p = ph::generate_oct_frame(&params, seed).map_err(perr)?;
            write_png16(&put("oct_cartesian.png"), &p.cartesian, 65535.0)?;
            write_png16(&put("oct_polar.png"), &p.polar, 65535.0)?;
            write_npy2(&put("oct_cartesian.npy"), &p.cartesian)?;
            write_npy2(&put("oct_polar.npy"), &p.polar)?;
            write_mask_png(&put("oct_lumen_mask.png"), &p.lumen_mask)?;
            let polar = p
                .polar
                .mapv(|v| (v * 65535.0).round().clamp(0.0, 65535.0))
                .insert_axis(Axis(0));
            let cine = Cine::new(polar, Calibration::uncalibrated(), vec![]).map_err(|e| CliError(e.to_string()))?;
            let opts = IvoctWriteOptions {
                a_line_spacing_mm: Some(p.truth.mm_per_sample),
                sop_instance_uid: Some(phantom_uid("oct", seed, 0)),
                ..IvoctWriteOptions::default()
            };
            vesselkit_io::write_ivoct(put("oct_polar.dcm"), &cine, &opts).map_err(|e| CliError(e.to_string()))?;
            write_text(
                &put("oct_truth.json"),
                &serde_json::to_string_pretty(&p.truth).unwrap_or_default(),
            )?;
        }
        Kind::Pullback => {
            let params = ph::PullbackParams::default();
            let p = ph::generate_pullback(&params, seed).map_err(perr)?;
            write_npy3(&put("pullback_cartesian.npy"), &p.cartesian)?;
            write_png16(
                &put("pullback_longitudinal.png"),
                &ph::longitudinal_view(&p.cartesian, 0.0),
                65535.0,
            )?;
            let polar = p.polar.mapv(|v| (v * 65535.0).round().clamp(0.0, 65535.0));
            let cine = Cine::new(polar, Calibration::uncalibrated(), vec![]).map_err(|e| CliError(e.to_string()))?;
            let opts = IvoctWriteOptions {
                a_line_spacing_mm: Some(p.truth.mm_per_sample),
                sop_instance_uid: Some(phantom_uid("pullback", seed, 0)),
                ..IvoctWriteOptions::default()
            };
            vesselkit_io::write_ivoct(put("pullback_polar.dcm"), &cine, &opts).map_err(|e| CliError(e.to_string()))?;
            write_text(&put("pullback_truth.json"), &p.truth_json().map_err(perr)?)?;
        }
    }
    Ok(written)
}
