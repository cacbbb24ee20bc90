//! C ABI of vesselkit (header: `include/vesselkit.h`). Research use only.
//!
//! Every entry point validates its pointers, catches panics, and reports failures as a status
//! code plus a thread-local message.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Status codes, as in the header.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VkStatus {
    Ok = 0,
    InvalidArgument = 1,
    Read = 2,
    Unsupported = 3,
    Analysis = 4,
    Internal = 5,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: impl Into<String>) {
    let s = msg.into().replace('\0', " ");
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::new(s).unwrap_or_default());
}

type Failure = (VkStatus, String);

/// Run `f`, turning errors and panics into a status and a message.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> VkStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            VkStatus::Ok
        }
        Ok(Err((status, msg))) => {
            set_error(msg);
            status
        }
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error: {what}"));
            VkStatus::Internal
        }
    }
}

fn path_arg(path: *const c_char) -> Result<PathBuf, Failure> {
    if path.is_null() {
        return Err((VkStatus::InvalidArgument, "path is NULL".into()));
    }
    // SAFETY: the caller passes a NUL-terminated string (checked non-null above).
    let s = unsafe { CStr::from_ptr(path) };
    let s = s
        .to_str()
        .map_err(|_| (VkStatus::InvalidArgument, "path is not valid UTF-8".to_string()))?;
    Ok(PathBuf::from(s))
}

fn out_arg(out: *mut *mut c_char) -> Result<(), Failure> {
    if out.is_null() {
        Err((VkStatus::InvalidArgument, "out_json is NULL".into()))
    } else {
        Ok(())
    }
}

fn put_json(out: *mut *mut c_char, text: String) -> Result<(), Failure> {
    let c = CString::new(text).map_err(|_| (VkStatus::Internal, "JSON contained a NUL byte".to_string()))?;
    // SAFETY: `out` was checked non-null by `out_arg`.
    unsafe { *out = c.into_raw() };
    Ok(())
}

fn read_options(pixel_spacing_mm: f64) -> Result<vesselkit_io::ReadOptions, Failure> {
    let opts = vesselkit_io::ReadOptions::default();
    if pixel_spacing_mm.is_nan() {
        return Err((VkStatus::InvalidArgument, "pixel_spacing_mm is NaN".into()));
    }
    if pixel_spacing_mm > 0.0 {
        vesselkit_core::Calibration::user(pixel_spacing_mm).map_err(|e| (VkStatus::InvalidArgument, e.to_string()))?;
        return Ok(opts.with_user_mm_per_px(pixel_spacing_mm));
    }
    Ok(opts)
}

fn io_failure(e: vesselkit_io::IoError) -> Failure {
    use vesselkit_io::IoError as E;
    let status = match &e {
        E::UnsupportedTransferSyntax { .. } | E::Unsupported { .. } => VkStatus::Unsupported,
        E::TooLarge { .. } | E::NonFinite { .. } => VkStatus::InvalidArgument,
        _ => VkStatus::Read,
    };
    (status, e.to_string())
}

/// The analysis options named in `options_json`: NULL or blank for the defaults, else a JSON
/// object with any of `"rules"` (path of a rule table, TOML or JSON), `"segmenter"`
/// (`"filters"`, `"unet-dca1"` or the path of a weight file) and `"frame"` (the cine frame to
/// measure). Unknown keys and wrong types are errors naming them.
/// Options of the `_with` entry points: the analysis options and a catheter to calibrate from.
fn analysis_options(
    options_json: *const c_char,
) -> Result<(vesselkit::Options, Option<vesselkit::CatheterMark>), Failure> {
    let mut opts = vesselkit::Options::default();
    let mut catheter = None;
    if options_json.is_null() {
        return Ok((opts, catheter));
    }
    let bad = |msg: String| (VkStatus::InvalidArgument, format!("options_json: {msg}"));
    // SAFETY: the caller passes a NUL-terminated string (checked non-null above).
    let text = unsafe { CStr::from_ptr(options_json) }
        .to_str()
        .map_err(|_| bad("not valid UTF-8".into()))?;
    if text.trim().is_empty() {
        return Ok((opts, catheter));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad("not a JSON object".into()));
    };
    for (key, v) in &map {
        let text_of = |v: &serde_json::Value| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("\"{key}\" must be a string")))
        };
        match key.as_str() {
            "rules" => {
                opts.rules =
                    vesselkit::lesion::Rules::from_path(text_of(v)?).map_err(|e| bad(format!("rules: {e}")))?;
            }
            "segmenter" => {
                opts.angio.segment.learned =
                    vesselkit::angio::LearnedMask::by_name(&text_of(v)?, vesselkit::angio::LearnedMask::DCA1_THRESHOLD)
                        .map_err(|e| bad(e.to_string()))?;
            }
            "frame" => {
                let i = v
                    .as_u64()
                    .ok_or_else(|| bad("\"frame\" must be a non-negative integer".into()))?;
                opts.frame = Some(usize::try_from(i).map_err(|_| bad(format!("frame {i} is too large")))?);
            }
            "catheter" => catheter = Some(catheter_mark(v).map_err(|m| bad(format!("catheter: {m}")))?),
            _ => {
                return Err(bad(format!(
                    "unknown key \"{key}\"; expected \"rules\", \"segmenter\", \"frame\" or \"catheter\""
                )));
            }
        }
    }
    Ok((opts, catheter))
}

/// `{"p0": [row, col], "p1": [row, col], "french": F, "frame": N}` (frame optional, 0).
fn catheter_mark(v: &serde_json::Value) -> Result<vesselkit::CatheterMark, String> {
    let serde_json::Value::Object(m) = v else {
        return Err("must be an object with \"p0\", \"p1\" and \"french\"".into());
    };
    if let Some(k) = m
        .keys()
        .find(|k| !["p0", "p1", "french", "frame"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key \"{k}\"; expected \"p0\", \"p1\", \"french\" or \"frame\""
        ));
    }
    let point = |k: &str| -> Result<vesselkit::core::Point, String> {
        let xy: Option<Vec<f64>> = m
            .get(k)
            .and_then(|v| v.as_array())
            .and_then(|a| a.iter().map(|x| x.as_f64()).collect());
        match xy.as_deref() {
            Some(&[r, c]) => Ok(vesselkit::core::Point::new(r, c)),
            _ => Err(format!("\"{k}\" must be a [row, col] pair of numbers")),
        }
    };
    let french = m
        .get("french")
        .and_then(|v| v.as_f64())
        .ok_or("\"french\" must be a number")?;
    let frame = match m.get("frame") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or("\"frame\" must be a non-negative integer")?,
    };
    Ok(vesselkit::CatheterMark {
        p0: point("p0")?,
        p1: point("p1")?,
        french,
        frame,
    })
}

/// Set the cine's scale from the catheter, when one is given.
fn apply_catheter(cine: &mut vesselkit_core::Cine, mark: Option<&vesselkit::CatheterMark>) -> Result<(), Failure> {
    if let Some(m) = mark {
        use vesselkit::angio::AngioError;
        cine.calibration = vesselkit::catheter_calibration(cine.frames.view(), m).map_err(|e| match e {
            // A bad mark or French size is the caller's input, as a frame past the end is.
            vesselkit::Error::Core(_)
            | vesselkit::Error::Angio(AngioError::Invalid { .. })
            | vesselkit::Error::Angio(AngioError::Core(_)) => (VkStatus::InvalidArgument, format!("catheter: {e}")),
            // No catheter edges where marked is VK_ERR_ANALYSIS.
            e => analysis_failure(e, "catheter: "),
        })?;
    }
    Ok(())
}

/// A failed analysis: bad caller input (an out-of-range frame, say) or the analysis itself.
fn analysis_failure(e: vesselkit::Error, context: &str) -> Failure {
    let status = match e {
        vesselkit::Error::Invalid { .. } => VkStatus::InvalidArgument,
        _ => VkStatus::Analysis,
    };
    (status, format!("{context}{e}"))
}

/// Library version (static).
#[unsafe(no_mangle)]
pub extern "C" fn vk_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The last error message on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn vk_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Metadata of a file as JSON.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out_json` NULL or a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_info_file(
    path: *const c_char,
    pixel_spacing_mm: f64,
    out_json: *mut *mut c_char,
) -> VkStatus {
    guard(|| {
        out_arg(out_json)?;
        let (p, opts) = (path_arg(path)?, read_options(pixel_spacing_mm)?);
        // DICOM attributes are parsed without decoding any frame; other formats are small.
        let metadata = match vesselkit_io::sniff(&p).map_err(io_failure)? {
            vesselkit_io::FileFormat::Dicom => vesselkit_io::read_dicom_metadata(&p, &opts),
            _ => vesselkit_io::read(&p, &opts).map(|l| l.metadata),
        }
        .map_err(io_failure)?;
        put_json(out_json, serde_json::to_string(&metadata).unwrap_or_default())
    })
}

/// Analyse a file with the default options; the report as JSON.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out_json` NULL or a valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_analyze_file(
    path: *const c_char,
    pixel_spacing_mm: f64,
    out_json: *mut *mut c_char,
) -> VkStatus {
    // SAFETY: the caller's guarantees are passed on; NULL options are the defaults.
    unsafe { vk_analyze_file_with(path, pixel_spacing_mm, std::ptr::null(), out_json) }
}

/// Analyse a file with options (see [`analysis_options`]); the report as JSON.
///
/// # Safety
/// `path` and `options_json` must be NULL or NUL-terminated strings; `out_json` NULL or a
/// valid pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_analyze_file_with(
    path: *const c_char,
    pixel_spacing_mm: f64,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> VkStatus {
    guard(|| {
        out_arg(out_json)?;
        let (p, opts) = (path_arg(path)?, read_options(pixel_spacing_mm)?);
        let (analysis, catheter) = analysis_options(options_json)?;
        let mut loaded = vesselkit_io::read(&p, &opts).map_err(io_failure)?;
        apply_catheter(&mut loaded.cine, catheter.as_ref())?;
        let mut a = vesselkit::analyze(&loaded.cine, &analysis)
            .map_err(|e| analysis_failure(e, &format!("{}: ", p.display())))?;
        a.report.input.path = Some(p.display().to_string());
        a.report.input.modality = loaded.metadata.modality;
        put_json(out_json, a.report.to_json())
    })
}

/// Analyse float32 frames in memory with the default options; the report as JSON.
///
/// # Safety
/// `pixels` must be NULL or point to `frames * rows * cols` readable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_analyze_pixels(
    pixels: *const f32,
    frames: usize,
    rows: usize,
    cols: usize,
    pixel_spacing_mm: f64,
    out_json: *mut *mut c_char,
) -> VkStatus {
    // SAFETY: the caller's guarantees are passed on; NULL options are the defaults.
    unsafe { vk_analyze_pixels_with(pixels, frames, rows, cols, pixel_spacing_mm, std::ptr::null(), out_json) }
}

/// Analyse float32 frames in memory with options (see [`analysis_options`]); the report as
/// JSON.
///
/// # Safety
/// `pixels` must be NULL or point to `frames * rows * cols` readable floats; `options_json`
/// NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_analyze_pixels_with(
    pixels: *const f32,
    frames: usize,
    rows: usize,
    cols: usize,
    pixel_spacing_mm: f64,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> VkStatus {
    guard(|| {
        out_arg(out_json)?;
        if pixels.is_null() {
            return Err((VkStatus::InvalidArgument, "pixels is NULL".into()));
        }
        vesselkit_core::Limits::default()
            .check(frames as u64, rows as u64, cols as u64)
            .map_err(|e| (VkStatus::InvalidArgument, e.to_string()))?;
        let n = frames * rows * cols; // bounded by the limits check above
        // SAFETY: the caller guarantees `n` readable floats at `pixels`.
        let data = unsafe { std::slice::from_raw_parts(pixels, n) }.to_vec();
        let arr = ndarray::Array3::from_shape_vec((frames, rows, cols), data)
            .map_err(|e| (VkStatus::InvalidArgument, e.to_string()))?;
        if pixel_spacing_mm.is_nan() {
            return Err((VkStatus::InvalidArgument, "pixel_spacing_mm is NaN".into()));
        }
        let cal = if pixel_spacing_mm > 0.0 {
            vesselkit_core::Calibration::user(pixel_spacing_mm)
                .map_err(|e| (VkStatus::InvalidArgument, e.to_string()))?
        } else {
            vesselkit_core::Calibration::uncalibrated()
        };
        let (analysis, catheter) = analysis_options(options_json)?;
        let mut cine =
            vesselkit_core::Cine::new(arr, cal, Vec::new()).map_err(|e| (VkStatus::InvalidArgument, e.to_string()))?;
        apply_catheter(&mut cine, catheter.as_ref())?;
        let a = vesselkit::analyze(&cine, &analysis).map_err(|e| analysis_failure(e, ""))?;
        put_json(out_json, a.report.to_json())
    })
}

/// Free a string returned by this library.
///
/// # Safety
/// `s` must be NULL or a pointer returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vk_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw` in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: vk_last_error returns a NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(vk_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_is_the_internal_status_with_its_message() {
        let status = guard(|| panic!("index 7 out of range"));
        assert_eq!(status, VkStatus::Internal);
        assert_eq!(last_error(), "internal error: index 7 out of range");
        let status = guard(|| std::panic::panic_any(format!("formatted {}", 3)));
        assert_eq!(status, VkStatus::Internal);
        assert_eq!(last_error(), "internal error: formatted 3");
        // The next success clears the message.
        assert_eq!(guard(|| Ok(())), VkStatus::Ok);
        assert_eq!(last_error(), "");
    }
}
