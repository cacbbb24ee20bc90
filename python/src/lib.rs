//! The native module `vesselkit._vesselkit`. Thin: argument checks, array conversion, error
//! mapping and releasing the GIL; every computation lives in the Rust crates.

use numpy::{IntoPyArray, PyArray1, PyArray3, PyArrayMethods, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use vesselkit_core::{Calibration, Limits};

mod errors;
use errors::{Kind, from_core, from_io, py_err};

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
            shape[0], shape[1], shape[2], self.calibration.mm_per_px, self.calibration.source.as_str()
        )
    }
}

impl Image {
    /// Run `f` on a read-only view of the pixels with the GIL released.
    #[allow(dead_code)]
    pub(crate) fn with_view<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(ndarray::ArrayView3<'_, f32>, &Calibration) -> T + Send,
    ) -> PyResult<T> {
        let arr = self.pixels.bind(py).readonly();
        let view = arr.as_array();
        let cal = &self.calibration;
        Ok(py.detach(move || f(view, cal)))
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
        opts = opts.with_limits(Limits { max_total_px: n, ..Limits::default() });
    }
    let loaded = py.detach(|| vesselkit_io::read(std::path::Path::new(&path), &opts)).map_err(from_io)?;
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
    Limits::unlimited().check(n as u64, r as u64, c as u64).map_err(from_core)?;
    let view = array.as_array();
    let bad = py.detach(|| view.iter().position(|v| !v.is_finite()));
    if let Some(i) = bad {
        return Err(py_err(
            Kind::InvalidInput,
            format!("array: element {i} is {}; all pixel values must be finite", view.iter().nth(i).copied().unwrap_or(f32::NAN)),
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

#[pymodule]
fn _vesselkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RESEARCH_NOTICE", vesselkit_core::RESEARCH_NOTICE)?;
    m.add_class::<Image>()?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(from_array, m)?)?;
    Ok(())
}
