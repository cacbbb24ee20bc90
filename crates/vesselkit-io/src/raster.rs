//! PNG and TIFF (via `image`) and NPY (via `ndarray-npy`) readers.
//!
//! Grey images keep their stored values (0..255 or 0..65535); colour is converted to luminance
//! 0.299 R + 0.587 G + 0.114 B. Files carry no trustworthy scale, so the cine is uncalibrated
//! unless the caller supplies `user_mm_per_px`.

use crate::Loaded;
use crate::error::{IoError, Result};
use crate::metadata::{FileFormat, Metadata, ReadOptions};
use image::{DynamicImage, ImageDecoder, ImageReader};
use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, Ix3};
use ndarray_npy::ReadNpyExt;
use std::io::{BufReader, Read};
use std::path::Path;
use vesselkit_core::{Calibration, Cine};

fn calibration(path: &str, opts: &ReadOptions) -> Result<Calibration> {
    match opts.user_mm_per_px {
        Some(u) => Calibration::user(u).map_err(|source| IoError::Core {
            path: path.into(),
            source,
        }),
        None => {
            let mut c = Calibration::uncalibrated();
            c.detail = Some("raster/array files carry no pixel spacing; supply user_mm_per_px".into());
            Ok(c)
        }
    }
}

fn luminance(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Read a PNG or TIFF (first page) as a one-frame cine.
pub fn read_image(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Loaded> {
    let path = path.as_ref();
    let pstr = path.display().to_string();
    let img_err = |source| IoError::Image {
        path: pstr.clone(),
        source,
    };
    let open = || -> Result<ImageReader<BufReader<std::fs::File>>> {
        ImageReader::open(path)
            .map_err(|source| IoError::Io {
                path: pstr.clone(),
                source,
            })?
            .with_guessed_format()
            .map_err(|source| IoError::Io {
                path: pstr.clone(),
                source,
            })
    };
    let format = match open()?.format() {
        Some(image::ImageFormat::Png) => FileFormat::Png,
        Some(image::ImageFormat::Tiff) => FileFormat::Tiff,
        other => {
            return Err(IoError::UnknownFormat {
                path: pstr,
                reason: format!("image format {other:?} is not read"),
            });
        }
    };
    // Sizes from the header only, checked before decoding.
    let decoder = open()?.into_decoder().map_err(img_err)?;
    let (w, h) = decoder.dimensions();
    opts.limits
        .check(1, h.into(), w.into())
        .map_err(|source| IoError::TooLarge {
            path: pstr.clone(),
            source,
        })?;
    let color = decoder.color_type();
    drop(decoder);
    let mut reader = open()?;
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(opts.limits.max_side_px);
    lim.max_image_height = Some(opts.limits.max_side_px);
    lim.max_alloc = Some(opts.limits.max_total_px.saturating_mul(16));
    reader.limits(lim);
    let img = reader.decode().map_err(img_err)?;
    let (rows, cols) = (img.height() as usize, img.width() as usize);
    let (pixels, bits, pi): (Vec<f32>, u16, &str) = match img {
        DynamicImage::ImageLuma8(b) => (b.into_raw().into_iter().map(f32::from).collect(), 8, "MONOCHROME2"),
        DynamicImage::ImageLuma16(b) => (b.into_raw().into_iter().map(f32::from).collect(), 16, "MONOCHROME2"),
        DynamicImage::ImageLumaA8(b) => (b.pixels().map(|p| f32::from(p.0[0])).collect(), 8, "MONOCHROME2"),
        DynamicImage::ImageLumaA16(b) => (b.pixels().map(|p| f32::from(p.0[0])).collect(), 16, "MONOCHROME2"),
        DynamicImage::ImageRgb8(b) => (
            b.pixels()
                .map(|p| luminance(p.0[0].into(), p.0[1].into(), p.0[2].into()))
                .collect(),
            8,
            "RGB",
        ),
        DynamicImage::ImageRgba8(b) => (
            b.pixels()
                .map(|p| luminance(p.0[0].into(), p.0[1].into(), p.0[2].into()))
                .collect(),
            8,
            "RGB",
        ),
        DynamicImage::ImageRgb16(b) => (
            b.pixels()
                .map(|p| luminance(p.0[0].into(), p.0[1].into(), p.0[2].into()))
                .collect(),
            16,
            "RGB",
        ),
        DynamicImage::ImageRgba16(b) => (
            b.pixels()
                .map(|p| luminance(p.0[0].into(), p.0[1].into(), p.0[2].into()))
                .collect(),
            16,
            "RGB",
        ),
        DynamicImage::ImageRgb32F(b) => (
            b.pixels().map(|p| luminance(p.0[0], p.0[1], p.0[2])).collect(),
            32,
            "RGB",
        ),
        DynamicImage::ImageRgba32F(b) => (
            b.pixels().map(|p| luminance(p.0[0], p.0[1], p.0[2])).collect(),
            32,
            "RGB",
        ),
        other => {
            return Err(IoError::Unsupported {
                path: pstr,
                what: format!("pixel type {:?}", other.color()),
            });
        }
    };
    if let Some((index, v)) = pixels.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(IoError::NonFinite {
            path: pstr,
            index,
            value: f64::from(*v),
        });
    }
    let frames = Array3::from_shape_vec((1, rows, cols), pixels).map_err(|e| IoError::Unsupported {
        path: pstr.clone(),
        what: format!("image buffer shape: {e}"),
    })?;
    let cal = calibration(&pstr, opts)?;
    let mut metadata = Metadata::plain(&pstr, format, rows as u32, cols as u32, 1, bits);
    metadata.photometric_interpretation = Some(format!("{pi} (from {color:?})"));
    metadata.calibration = cal.clone();
    let cine = Cine::new(frames, cal, Vec::new()).map_err(|source| IoError::Core { path: pstr, source })?;
    Ok(Loaded { cine, metadata })
}

/// The header of an NPY file: dtype string and shape.
struct NpyHeader {
    descr: String,
    shape: Vec<u64>,
}

/// Parse the NPY header (magic, version, dict) without reading the data, so sizes can be checked
/// before allocating.
fn npy_header(path: &Path, pstr: &str) -> Result<NpyHeader> {
    let bad = |reason: String| IoError::Npy {
        path: pstr.into(),
        reason,
    };
    let mut f = std::fs::File::open(path).map_err(|source| IoError::Io {
        path: pstr.into(),
        source,
    })?;
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre).map_err(|_| IoError::Truncated {
        path: pstr.into(),
        detail: "shorter than an NPY preamble".into(),
    })?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad("no \\x93NUMPY magic".into()));
    }
    let (hlen, skip) = match pre[6] {
        1 => (usize::from(u16::from_le_bytes([pre[8], pre[9]])), 0usize),
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more).map_err(|_| IoError::Truncated {
                path: pstr.into(),
                detail: "NPY header length cut short".into(),
            })?;
            (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize, 2)
        }
        v => return Err(bad(format!("NPY version {v} is not supported"))),
    };
    let _ = skip;
    if hlen > 1 << 20 {
        return Err(bad(format!("header of {hlen} bytes is implausible")));
    }
    let mut h = vec![0u8; hlen];
    f.read_exact(&mut h).map_err(|_| IoError::Truncated {
        path: pstr.into(),
        detail: "NPY header cut short".into(),
    })?;
    let h = String::from_utf8_lossy(&h);
    let descr = h
        .split("'descr'")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or_else(|| bad("no 'descr' in header".into()))?
        .to_string();
    let shape_s = h
        .split("'shape'")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no 'shape' in header".into()))?;
    let shape = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|e| bad(format!("shape entry {s:?}: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(NpyHeader { descr, shape })
}

fn npy_array<T>(path: &Path, pstr: &str) -> Result<ArrayD<f32>>
where
    T: ndarray_npy::ReadableElement + Copy + Into<f64>,
{
    let f = std::fs::File::open(path).map_err(|source| IoError::Io {
        path: pstr.into(),
        source,
    })?;
    let a = ArrayD::<T>::read_npy(BufReader::new(f)).map_err(|e| {
        let msg = e.to_string();
        if msg.to_ascii_lowercase().contains("fill whole buffer") || msg.contains("missing") {
            IoError::Truncated {
                path: pstr.into(),
                detail: msg,
            }
        } else {
            IoError::Npy {
                path: pstr.into(),
                reason: msg,
            }
        }
    })?;
    if let Some((index, v)) = a.iter().enumerate().find(|(_, v)| !(**v).into().is_finite()) {
        return Err(IoError::NonFinite {
            path: pstr.into(),
            index,
            value: (*v).into(),
        });
    }
    Ok(a.mapv(|v| v.into() as f32))
}

/// Read a 2-D `[rows, cols]` or 3-D `[frames, rows, cols]` NPY array of u8, i8, u16, i16, u32,
/// i32, f32 or f64 (any byte order). NaN or infinite values are refused.
pub fn read_npy(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Loaded> {
    let path = path.as_ref();
    let pstr = path.display().to_string();
    let h = npy_header(path, &pstr)?;
    let (n, r, c) = match h.shape[..] {
        [r, c] => (1, r, c),
        [n, r, c] => (n, r, c),
        _ => {
            return Err(IoError::Npy {
                path: pstr,
                reason: format!("shape {:?}: expected [rows, cols] or [frames, rows, cols]", h.shape),
            });
        }
    };
    for (v, field) in [(r, "rows"), (c, "cols"), (n, "frames")] {
        if v == 0 {
            return Err(IoError::EmptyImage { path: pstr, field });
        }
    }
    opts.limits.check(n, r, c).map_err(|source| IoError::TooLarge {
        path: pstr.clone(),
        source,
    })?;
    let kind = h.descr.trim_start_matches(['<', '>', '|', '=']);
    let a = match kind {
        "u1" => npy_array::<u8>(path, &pstr)?,
        "i1" => npy_array::<i8>(path, &pstr)?,
        "u2" => npy_array::<u16>(path, &pstr)?,
        "i2" => npy_array::<i16>(path, &pstr)?,
        "u4" => npy_array::<u32>(path, &pstr)?,
        "i4" => npy_array::<i32>(path, &pstr)?,
        "f4" => npy_array::<f32>(path, &pstr)?,
        "f8" => npy_array::<f64>(path, &pstr)?,
        other => {
            return Err(IoError::Unsupported {
                path: pstr,
                what: format!("NPY dtype {other:?}"),
            });
        }
    };
    let bits = match kind {
        "u1" | "i1" => 8,
        "u2" | "i2" => 16,
        "f8" => 64,
        _ => 32,
    };
    let frames: Array3<f32> = match a.ndim() {
        2 => a
            .into_dimensionality::<Ix2>()
            .map(|a2: Array2<f32>| a2.insert_axis(Axis(0)))
            .map_err(|e| IoError::Npy {
                path: pstr.clone(),
                reason: e.to_string(),
            })?,
        _ => a.into_dimensionality::<Ix3>().map_err(|e| IoError::Npy {
            path: pstr.clone(),
            reason: e.to_string(),
        })?,
    };
    let (n, r, c) = frames.dim();
    let cal = calibration(&pstr, opts)?;
    let mut metadata = Metadata::plain(&pstr, FileFormat::Npy, r as u32, c as u32, n as u32, bits);
    metadata.signed = kind.starts_with('i') || kind.starts_with('f');
    metadata.photometric_interpretation = Some(format!("array dtype {}", h.descr));
    metadata.calibration = cal.clone();
    let cine = Cine::new(frames, cal, Vec::new()).map_err(|source| IoError::Core { path: pstr, source })?;
    Ok(Loaded { cine, metadata })
}
