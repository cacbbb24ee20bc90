//! 12-bit DCT JPEG (DICOM "JPEG Extended, Process 2 & 4", 1.2.840.10008.1.2.4.51) through
//! libjpeg-turbo's TurboJPEG 3 API. dicom-pixeldata's JPEG decoder stops at 8-bit DCT, and
//! 12-bit lossy JPEG is how many cardiac and vascular X-ray archives store their cine runs.

use std::ffi::CStr;
use std::os::raw::c_int;
use turbojpeg_sys as tj;

/// A TurboJPEG compressor or decompressor handle, destroyed on drop.
struct Handle(tj::tjhandle);

impl Handle {
    fn new(kind: tj::TJINIT) -> Result<Self, String> {
        // SAFETY: tj3Init has no preconditions; a null handle is checked below.
        let h = unsafe { tj::tj3Init(kind as c_int) };
        if h.is_null() {
            return Err("libjpeg-turbo could not create a codec handle".into());
        }
        Ok(Self(h))
    }

    fn error(&self) -> String {
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated static or
        // per-handle buffer that stays valid until the next call on the handle.
        unsafe {
            let p = tj::tj3GetErrorStr(self.0);
            if p.is_null() {
                "unknown libjpeg-turbo error".into()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// After a call returned -1: was it a harmless warning? libjpeg also only warns when the
    /// entropy-coded data ends early or is corrupt (it fills the rest), which here must be an
    /// error: a part-grey frame is not the stored image.
    fn only_harmless_warning(&self) -> bool {
        // SAFETY: the handle is live; tj3GetErrorCode only reads its last error.
        let warning = unsafe { tj::tj3GetErrorCode(self.0) == tj::TJERR_TJERR_WARNING as c_int };
        let text = self.error().to_ascii_lowercase();
        warning && !(text.contains("premature end") || text.contains("corrupt jpeg data: found marker"))
    }

    fn get(&self, param: tj::TJPARAM) -> c_int {
        // SAFETY: the handle is live; tj3Get only reads a parameter.
        unsafe { tj::tj3Get(self.0, param as c_int) }
    }

    fn set(&self, param: tj::TJPARAM, value: c_int) -> Result<(), String> {
        // SAFETY: the handle is live; tj3Set only stores a parameter.
        match unsafe { tj::tj3Set(self.0, param as c_int, value) } {
            0 => Ok(()),
            _ => Err(format!("JPEG parameter: {}", self.error())),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed exactly once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// One decoded greyscale frame: `rows * cols` samples, row-major.
pub(crate) struct Gray12 {
    pub rows: usize,
    pub cols: usize,
    pub samples: Vec<u16>,
}

/// Decode one 12-bit DCT JPEG code stream to greyscale samples (0..4095). Colour streams are
/// reduced to luminance by the codec; 8-bit streams are refused (dicom-pixeldata decodes them).
pub(crate) fn decode_gray12(jpeg: &[u8]) -> Result<Gray12, String> {
    let d = Handle::new(tj::TJINIT_TJINIT_DECOMPRESS)?;
    // SAFETY: the pointer and length describe `jpeg`, which outlives the call.
    let rc = unsafe { tj::tj3DecompressHeader(d.0, jpeg.as_ptr(), jpeg.len() as _) };
    if rc != 0 && !d.only_harmless_warning() {
        return Err(format!("JPEG header: {}", d.error()));
    }
    let (w, h) = (
        d.get(tj::TJPARAM_TJPARAM_JPEGWIDTH),
        d.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT),
    );
    if w <= 0 || h <= 0 {
        return Err(format!("JPEG header: no frame header (a {w} x {h} image)"));
    }
    let precision = d.get(tj::TJPARAM_TJPARAM_PRECISION);
    if precision != 12 {
        return Err(format!("expected a 12-bit JPEG, the stream is {precision}-bit"));
    }
    let (cols, rows) = (w as usize, h as usize);
    let mut out = vec![0i16; rows * cols];
    // SAFETY: `out` holds rows * cols samples, exactly what a GRAY decode with pitch `cols`
    // writes; `jpeg` outlives the call.
    let rc = unsafe {
        tj::tj3Decompress12(
            d.0,
            jpeg.as_ptr(),
            jpeg.len() as _,
            out.as_mut_ptr(),
            w,
            tj::TJPF_TJPF_GRAY,
        )
    };
    // Some libjpeg warnings leave a whole image: "Invalid SOS parameters for sequential JPEG",
    // which NEMA's XA1_JPLY raises and dcmtk also only warns about.
    if rc != 0 && !d.only_harmless_warning() {
        return Err(format!("JPEG data: {}", d.error()));
    }
    // 12-bit samples are 0..4095 in a short; never negative.
    let samples = out.into_iter().map(|v| v.max(0) as u16).collect();
    Ok(Gray12 { rows, cols, samples })
}

/// Encode one greyscale frame of 12-bit samples (`rows * cols`, each 0..4095) as a 12-bit
/// extended sequential (process 4) JPEG of the given quality (1-100).
pub(crate) fn encode_gray12(samples: &[u16], rows: usize, cols: usize, quality: u8) -> Result<Vec<u8>, String> {
    if samples.len() != rows * cols || rows == 0 || cols == 0 {
        return Err(format!("{} samples for a {rows} x {cols} frame", samples.len()));
    }
    if !(1..=100).contains(&quality) {
        return Err(format!("JPEG quality must be 1..=100, got {quality}"));
    }
    if let Some(v) = samples.iter().find(|&&v| v > 4095) {
        return Err(format!("sample {v} does not fit in 12 bits"));
    }
    let (w, h) = (
        c_int::try_from(cols).map_err(|_| format!("{cols} columns"))?,
        c_int::try_from(rows).map_err(|_| format!("{rows} rows"))?,
    );
    let src: Vec<i16> = samples.iter().map(|&v| v as i16).collect();
    let c = Handle::new(tj::TJINIT_TJINIT_COMPRESS)?;
    c.set(tj::TJPARAM_TJPARAM_QUALITY, c_int::from(quality))?;
    c.set(tj::TJPARAM_TJPARAM_SUBSAMP, tj::TJSAMP_TJSAMP_GRAY as c_int)?;
    let mut buf: *mut std::os::raw::c_uchar = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: the handle is live; `src` holds rows * cols samples (pitch 0 = cols); the output
    // buffer is allocated by tj3Compress12, copied, then freed with tj3Free.
    unsafe {
        let rc = tj::tj3Compress12(c.0, src.as_ptr(), w, 0, h, tj::TJPF_TJPF_GRAY, &mut buf, &mut size);
        let out = (rc == 0 && !buf.is_null()).then(|| std::slice::from_raw_parts(buf, size as usize).to_vec());
        if !buf.is_null() {
            tj::tj3Free(buf.cast());
        }
        out.ok_or_else(|| format!("JPEG encode: {}", c.error()))
    }
}

/// One frame as a 12-bit lossy JPEG archive would return it: the frame's own minimum to
/// maximum mapped onto 0..4095, encoded at `quality` (1-100), decoded and mapped back to the
/// original intensity units. For measuring how an analysis holds up under compression
/// (`vesselkit eval --jpeg-quality`).
pub fn jpeg12_round_trip(frame: ndarray::ArrayView2<f32>, quality: u8) -> crate::Result<ndarray::Array2<f32>> {
    let err = |reason: String| crate::IoError::Write {
        path: "<memory>".into(),
        field: "jpeg12_round_trip",
        reason,
    };
    let (rows, cols) = frame.dim();
    if rows == 0 || cols == 0 {
        return Err(err(format!("empty frame ({rows} x {cols})")));
    }
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in frame.iter() {
        if !v.is_finite() {
            return Err(err(format!("non-finite pixel value {v}")));
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let scale = if hi > lo { 4095.0 / f64::from(hi - lo) } else { 0.0 };
    let samples: Vec<u16> = frame
        .iter()
        .map(|&v| (f64::from(v - lo) * scale).round() as u16)
        .collect();
    let jpeg = encode_gray12(&samples, rows, cols, quality).map_err(err)?;
    let g = decode_gray12(&jpeg).map_err(err)?;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let out: Vec<f32> = g.samples.iter().map(|&v| lo + (f64::from(v) * inv) as f32).collect();
    ndarray::Array2::from_shape_vec((rows, cols), out).map_err(|e| err(e.to_string()))
}

/// Fragments grouped into frames: a frame's code stream starts with an SOI marker (FF D8) at
/// the start of a fragment and may continue over later fragments (DICOM PS3.5 A.4).
pub(crate) fn frames_from_fragments(fragments: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for f in fragments.iter().filter(|f| !f.is_empty()) {
        match frames.last_mut() {
            Some(last) if !f.starts_with(&[0xFF, 0xD8]) => last.extend_from_slice(f),
            _ => frames.push(f.clone()),
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12-bit ramp with a dark bar survives a quality-90 round trip within a few counts, and
    /// a stream cut short is an error, not a part-grey frame.
    #[test]
    fn round_trip_and_truncated_stream() {
        let (w, h) = (64usize, 48usize);
        let img: Vec<u16> = (0..w * h)
            .map(|k| {
                let (r, c) = (k / w, k % w);
                let bar = if (20..28).contains(&c) { 800 } else { 0 };
                (200 + 50 * c as i32 + 8 * r as i32 - bar) as u16
            })
            .collect();
        let jpeg = encode_gray12(&img, h, w, 90).expect("encode");
        let g = decode_gray12(&jpeg).expect("decode");
        assert_eq!((g.rows, g.cols), (h, w));
        let max = g
            .samples
            .iter()
            .zip(&img)
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .max()
            .unwrap_or(0);
        // Measured: 2 counts at quality 90 (0 at quality 100).
        assert!((1..=3).contains(&max), "max |diff| {max} of 4095");
        let e = decode_gray12(&jpeg[..jpeg.len() / 2]).err().expect("truncated");
        assert!(encode_gray12(&[5000], 1, 1, 90).is_err());
        assert!(encode_gray12(&[1, 2], 1, 1, 90).is_err());
        assert!(e.contains("JPEG data"), "{e}");
    }

    #[test]
    fn round_trip_keeps_units_and_refuses_bad_input() {
        let f = ndarray::Array2::from_shape_fn((40, 48), |(r, c)| 500.0 + 3.0 * c as f32 - 2.0 * r as f32);
        let g = jpeg12_round_trip(f.view(), 95).expect("round trip");
        let max = f.iter().zip(g.iter()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        // 0.05 units per 12-bit step on this range (422 to 641); a smooth ramp comes back close.
        assert!(max < 1.0, "max |diff| {max}");
        assert!(jpeg12_round_trip(f.view(), 0).is_err());
        let mut nan = f.clone();
        nan[[1, 1]] = f32::NAN;
        assert!(jpeg12_round_trip(nan.view(), 90).is_err());
        assert!(jpeg12_round_trip(ndarray::Array2::<f32>::zeros((0, 4)).view(), 90).is_err());
    }

    #[test]
    fn fragments_group_at_each_start_of_image() {
        let frags = vec![
            vec![0xFF, 0xD8, 1],
            vec![2, 3],
            vec![],
            vec![0xFF, 0xD8, 4],
            vec![0xFF, 0xD8, 5],
            vec![6],
        ];
        let f = frames_from_fragments(&frags);
        assert_eq!(
            f,
            vec![vec![0xFF, 0xD8, 1, 2, 3], vec![0xFF, 0xD8, 4], vec![0xFF, 0xD8, 5, 6]]
        );
    }

    #[test]
    fn garbage_and_8_bit_streams_are_errors_not_panics() {
        let e = decode_gray12(&[0xFF, 0xD8, 0xFF, 0xD9]).err().expect("no frame header");
        assert!(e.contains("JPEG header"), "{e}");
        assert!(decode_gray12(&[]).is_err());
        // A 1x1 8-bit baseline greyscale JPEG.
        let mut enc = Vec::new();
        jpeg_encoder::Encoder::new(&mut enc, 90)
            .encode(&[128u8], 1, 1, jpeg_encoder::ColorType::Luma)
            .expect("encode");
        let e = decode_gray12(&enc).err().expect("8-bit refused");
        assert!(e.contains("8-bit"), "{e}");
    }
}
