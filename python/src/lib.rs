//! The native module `vesselkit._vesselkit`. Thin: argument checks, array conversion, error
//! mapping and releasing the GIL; every computation lives in the Rust crates.

use numpy::{IntoPyArray, PyArray1, PyArray3, PyArrayMethods, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vesselkit_core::{Calibration, Limits};

mod errors;
mod stages;
use errors::{Kind, from_core, from_io, native, py_err};

/// Map a facade error to the Python family.
pub(crate) fn from_facade(e: vesselkit::Error) -> PyErr {
    match e {
        vesselkit::Error::Core(c) => from_core(c),
        other => py_err(Kind::InvalidInput, other.to_string()),
    }
}

/// Turn a serde value into Python objects through the json module (small metadata only).
pub(crate) fn to_py<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| py_err(Kind::Internal, e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

fn calibration_from(pixel_spacing: Option<f64>) -> PyResult<Calibration> {
    match pixel_spacing {
        Some(s) => Calibration::user(s).map_err(from_core),
        None => Ok(Calibration::uncalibrated()),
    }
}

/// Frames with their calibration, timing and metadata. `pixels` is float32
/// `[frames, rows, cols]`, shared with Rust without a copy.
#[pyclass(module = "vesselkit", frozen)]
pub struct Image {
    pixels: Py<PyArray3<f32>>,
    calibration: Calibration,
    frame_times_ms: Vec<f64>,
    metadata_json: String,
}

#[pymethods]
impl Image {
    #[getter]
    fn pixels(&self, py: Python<'_>) -> Py<PyArray3<f32>> {
        self.pixels.clone_ref(py)
    }
    /// `{"mm_per_px": float, "source": str, "detail": str | None}`.
    #[getter]
    fn calibration<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("mm_per_px", self.calibration.mm_per_px)?;
        d.set_item("source", self.calibration.source.as_str())?;
        d.set_item("detail", self.calibration.detail.clone())?;
        Ok(d)
    }
    /// Time of each frame in ms (empty when the file has no timing).
    #[getter]
    fn frame_times_ms<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.frame_times_ms.clone().into_pyarray(py)
    }
    /// Everything the reader found besides pixels, as a dict.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.metadata_json.as_str(),))
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        let shape = self.pixels.bind(py).shape().to_vec();
        format!(
            "Image(frames={}, rows={}, cols={}, mm_per_px={}, source={:?})",
            shape[0],
            shape[1],
            shape[2],
            self.calibration.mm_per_px,
            self.calibration.source.as_str()
        )
    }
}

impl Image {
    /// Run `f` on a read-only view of the pixels with the GIL released.
    pub(crate) fn with_view<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(ndarray::ArrayView3<'_, f32>, &Calibration) -> T + Send,
    ) -> PyResult<T> {
        let arr = self.pixels.bind(py).readonly();
        let view = arr.as_array();
        let cal = &self.calibration;
        native(py, move || f(view, cal))
    }
}

#[pyfunction]
#[pyo3(signature = (path, pixel_spacing=None, apply_modality_lut=false, max_total_pixels=None))]
fn read(
    py: Python<'_>,
    path: String,
    pixel_spacing: Option<f64>,
    apply_modality_lut: bool,
    max_total_pixels: Option<u64>,
) -> PyResult<Image> {
    let mut opts = vesselkit_io::ReadOptions::default().with_modality_lut(apply_modality_lut);
    if let Some(s) = pixel_spacing {
        Calibration::user(s).map_err(from_core)?; // validate before touching the file
        opts = opts.with_user_mm_per_px(s);
    }
    if let Some(n) = max_total_pixels {
        opts = opts.with_limits(Limits {
            max_total_px: n,
            ..Limits::default()
        });
    }
    let loaded = native(py, || vesselkit_io::read(std::path::Path::new(&path), &opts))?.map_err(from_io)?;
    let metadata_json = serde_json::to_string(&loaded.metadata).map_err(|e| py_err(Kind::Internal, e.to_string()))?;
    let cine = loaded.cine;
    Ok(Image {
        pixels: cine.frames.into_pyarray(py).unbind(),
        calibration: cine.calibration,
        frame_times_ms: cine.frame_times_ms,
        metadata_json,
    })
}

#[pyfunction]
#[pyo3(signature = (array, pixel_spacing=None))]
fn from_array(py: Python<'_>, array: PyReadonlyArray3<'_, f32>, pixel_spacing: Option<f64>) -> PyResult<Image> {
    let calibration = calibration_from(pixel_spacing)?;
    let (n, r, c) = array.as_array().dim();
    Limits::unlimited()
        .check(n as u64, r as u64, c as u64)
        .map_err(from_core)?;
    let view = array.as_array();
    let bad = native(py, || view.iter().position(|v| !v.is_finite()))?;
    if let Some(i) = bad {
        return Err(py_err(
            Kind::InvalidInput,
            format!(
                "array: element {i} is {}; all pixel values must be finite",
                view.iter().nth(i).copied().unwrap_or(f32::NAN)
            ),
        ));
    }
    let metadata = serde_json::json!({"format": "array", "rows": r, "cols": c, "frames": n});
    Ok(Image {
        pixels: array.as_unbound().clone_ref(py),
        calibration,
        frame_times_ms: Vec::new(),
        metadata_json: metadata.to_string(),
    })
}

/// The same frames with the scale of a catheter of `french` size marked from `p0` to `p1` on
/// `frame` (source `catheter`); the pixels are shared, not copied.
#[pyfunction]
#[pyo3(signature = (image, p0, p1, french, frame=0))]
fn calibrate_catheter(
    py: Python<'_>,
    image: &Image,
    p0: (f64, f64),
    p1: (f64, f64),
    french: f64,
    frame: usize,
) -> PyResult<Image> {
    let mark = vesselkit::CatheterMark {
        p0: vesselkit_core::Point::new(p0.0, p0.1),
        p1: vesselkit_core::Point::new(p1.0, p1.1),
        french,
        frame,
    };
    let calibration = image
        .with_view(py, move |view, _| vesselkit::catheter_calibration(view, &mark))?
        .map_err(from_facade)?;
    Ok(Image {
        pixels: image.pixels.clone_ref(py),
        calibration,
        frame_times_ms: image.frame_times_ms.clone(),
        metadata_json: image.metadata_json.clone(),
    })
}

/// Run the whole chain on an image; returns `(report_json, mask, frame_used)`.
#[pyfunction]
#[pyo3(signature = (image, frame=None, rules=None, mask_mean_frames=1, segmenter="filters"))]
fn analyze<'py>(
    py: Python<'py>,
    image: &Image,
    frame: Option<usize>,
    rules: Option<String>,
    mask_mean_frames: i64,
    segmenter: &str,
) -> PyResult<(String, Bound<'py, numpy::PyArray2<bool>>, usize)> {
    let mut opts = vesselkit::Options {
        frame,
        ..Default::default()
    };
    opts.angio.flow.mask_mean_half_width = usize::try_from(mask_mean_frames).map_err(|_| {
        py_err(
            Kind::InvalidInput,
            format!("mask_mean_frames must be >= 0, got {mask_mean_frames}"),
        )
    })?;
    opts.angio.segment.learned = stages::segmenter(segmenter, vesselkit::angio::LearnedMask::DCA1_THRESHOLD)?;
    if let Some(p) = rules {
        opts.rules = vesselkit::lesion::Rules::from_path(std::path::Path::new(&p))
            .map_err(|e| py_err(Kind::InvalidInput, format!("rules: {e}")))?;
    }
    let times = image.frame_times_ms.clone();
    let analysis = image.with_view(py, move |view, cal| {
        let cine = vesselkit_core::Cine::new(view.to_owned(), cal.clone(), times).map_err(vesselkit::Error::from)?;
        vesselkit::analyze(&cine, &opts)
    })?;
    let a = analysis.map_err(from_facade)?;
    let json = serde_json::to_string(&a.report.to_json_value()).map_err(|e| py_err(Kind::Internal, e.to_string()))?;
    Ok((json, a.angio.mask.into_pyarray(py), a.frame_used))
}

/// Generate a phantom: a dict with the image(s), mask(s), truth and scale.
#[pyfunction]
#[pyo3(signature = (kind, seed, difficulty=None))]
fn phantom<'py>(py: Python<'py>, kind: &str, seed: u64, difficulty: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
    use vesselkit_phantom as ph;
    let d = PyDict::new(py);
    let perr = |e: ph::PhantomError| py_err(Kind::InvalidInput, e.to_string());
    match kind {
        "angio" => {
            let mut params = ph::AngioParams::default();
            if let Some(x) = difficulty {
                params.difficulty = x;
            }
            let p = native(py, || ph::generate_angio(&params, seed))?.map_err(perr)?;
            d.set_item("image", p.image.into_pyarray(py))?;
            d.set_item("mask", p.mask.into_pyarray(py))?;
            d.set_item("mm_per_px", p.truth.mm_per_px)?;
            d.set_item("truth", to_py(py, &p.truth)?)?;
        }
        "cine" => {
            let mut params = ph::CineParams::default();
            if let Some(x) = difficulty {
                params.angio.difficulty = x;
            }
            let p = native(py, || ph::generate_cine(&params, seed))?.map_err(perr)?;
            d.set_item("frame_times_ms", p.frame_times_ms().into_pyarray(py))?;
            d.set_item("mm_per_px", params.angio.mm_per_px)?;
            d.set_item("truth", to_py(py, &p.truth)?)?;
            d.set_item("image", p.frames.into_pyarray(py))?;
            d.set_item("mask", p.mask.into_pyarray(py))?;
        }
        "oct" => {
            let p = native(py, || ph::generate_oct_frame(&ph::OctParams::default(), seed))?.map_err(perr)?;
            d.set_item("mm_per_px", p.truth.cart_mm_per_px)?;
            d.set_item("truth", to_py(py, &p.truth)?)?;
            d.set_item("image", p.cartesian.into_pyarray(py))?;
            d.set_item("polar", p.polar.into_pyarray(py))?;
            d.set_item("mask", p.lumen_mask.into_pyarray(py))?;
        }
        "pullback" => {
            let params = ph::PullbackParams::default();
            let p = native(py, || ph::generate_pullback(&params, seed))?.map_err(perr)?;
            d.set_item("mm_per_px", p.truth.cart_mm_per_px)?;
            d.set_item("frame_spacing_mm", params.frame_spacing_mm)?;
            d.set_item("truth", to_py(py, &p.truth)?)?;
            d.set_item("image", p.cartesian.into_pyarray(py))?;
            d.set_item("mask", p.lumen_masks.into_pyarray(py))?;
        }
        other => {
            return Err(py_err(
                Kind::InvalidInput,
                format!("kind: unknown value {other:?}; expected one of \"angio\", \"cine\", \"oct\", \"pullback\""),
            ));
        }
    }
    Ok(d)
}

/// Panic inside the guard that every entry point runs its library code in: the test suite
/// checks that a bug reaches Python as `VesselkitError`, not as pyo3's `PanicException`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    native(py, || panic!("a deliberate panic to test the guard"))
}

#[pymodule]
fn _vesselkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RESEARCH_NOTICE", vesselkit_core::RESEARCH_NOTICE)?;
    m.add_class::<Image>()?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(from_array, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate_catheter, m)?)?;
    m.add_function(wrap_pyfunction!(phantom, m)?)?;
    m.add_function(wrap_pyfunction!(stages::vesselness, m)?)?;
    m.add_function(wrap_pyfunction!(stages::segment, m)?)?;
    m.add_function(wrap_pyfunction!(stages::vessel_probability, m)?)?;
    m.add_function(wrap_pyfunction!(stages::centerlines, m)?)?;
    m.add_function(wrap_pyfunction!(stages::diameter_profile, m)?)?;
    m.add_function(wrap_pyfunction!(stages::qca, m)?)?;
    m.add_function(wrap_pyfunction!(stages::tortuosity, m)?)?;
    m.add_function(wrap_pyfunction!(stages::cine_opacification, m)?)?;
    m.add_function(wrap_pyfunction!(stages::oct_lumen, m)?)?;
    m.add_function(wrap_pyfunction!(stages::oct_pullback, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
