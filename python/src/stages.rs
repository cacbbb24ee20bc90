//! Python faces of the analysis stages: each takes numpy arrays plus keyword options and
//! returns numpy arrays or small dicts; the GIL is released around every computation.

use crate::errors::{Kind, guarded, native, py_err};
use crate::to_py;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use vesselkit_core::{Calibration, Point};

fn err<E: std::fmt::Display>(e: E) -> PyErr {
    py_err(Kind::InvalidInput, e.to_string())
}

/// Validated enum strings, with the allowed values in the message.
fn method(name: &str) -> PyResult<vesselkit_filters::Method> {
    use vesselkit_filters::Method as M;
    match name.to_ascii_lowercase().as_str() {
        "frangi" => Ok(M::Frangi),
        "jerman" => Ok(M::Jerman),
        "sato" => Ok(M::Sato),
        _ => Err(err(format!(
            "method: unknown value {name:?}; expected one of \"frangi\", \"jerman\", \"sato\""
        ))),
    }
}

/// `"filters"` (no learned mask), `"unet-dca1"`, or the path of a weight file from
/// `scripts/train_unet.py`, at `threshold`.
pub(crate) fn segmenter(name: &str, threshold: f32) -> PyResult<Option<vesselkit_angio::LearnedMask>> {
    vesselkit_angio::LearnedMask::by_name(name, threshold).map_err(err)
}

fn polarity(dark_vessels: bool) -> vesselkit_filters::Polarity {
    if dark_vessels {
        vesselkit_filters::Polarity::DarkOnBright
    } else {
        vesselkit_filters::Polarity::BrightOnDark
    }
}

fn points_from(a: &PyReadonlyArray2<'_, f64>, field: &str) -> PyResult<Vec<Point>> {
    let v = a.as_array();
    if v.ncols() != 2 {
        return Err(err(format!(
            "{field}: expected an (N, 2) array of (row, col), got shape {:?}",
            v.shape()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(err(format!("{field}: coordinates must be finite")));
    }
    Ok(v.rows().into_iter().map(|r| Point::new(r[0], r[1])).collect())
}

fn points_to<'py>(py: Python<'py>, pts: &[Point]) -> Bound<'py, PyArray2<f64>> {
    let mut a = ndarray::Array2::<f64>::zeros((pts.len(), 2));
    for (i, p) in pts.iter().enumerate() {
        a[[i, 0]] = p.row;
        a[[i, 1]] = p.col;
    }
    a.into_pyarray(py)
}

fn mm_per_px(pixel_spacing: Option<f64>) -> PyResult<Calibration> {
    match pixel_spacing {
        Some(s) => Calibration::user(s).map_err(err),
        None => Ok(Calibration::uncalibrated()),
    }
}

/// `(response, best_sigma_px)` arrays.
type ResponseAndScale<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>);

/// Multi-scale Hessian vesselness; returns `(response, best_sigma_px)`.
#[pyfunction]
#[pyo3(signature = (image, sigmas, method_name, dark_vessels, beta, c, tau))]
#[allow(clippy::too_many_arguments)]
pub fn vesselness<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    sigmas: Vec<f32>,
    method_name: &str,
    dark_vessels: bool,
    beta: f32,
    c: Option<f32>,
    tau: f32,
) -> PyResult<ResponseAndScale<'py>> {
    let opts = vesselkit_filters::VesselnessOptions {
        sigmas_px: sigmas,
        method: method(method_name)?,
        polarity: polarity(dark_vessels),
        frangi_beta: beta,
        frangi_c: c,
        jerman_tau: tau,
    };
    let view = image.as_array();
    let v = native(py, || vesselkit_filters::vesselness(view, &opts))?.map_err(err)?;
    Ok((v.response.into_pyarray(py), v.scale_px.into_pyarray(py)))
}

/// Vessel mask; returns a bool array.
#[pyfunction]
#[pyo3(signature = (image, seed, sigmas, dark_vessels, pixel_spacing=None, stabilise_noise=true, segmenter_name="filters", threshold=0.5))]
#[allow(clippy::too_many_arguments)]
pub fn segment<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    seed: Option<(f64, f64)>,
    sigmas: Option<Vec<f32>>,
    dark_vessels: bool,
    pixel_spacing: Option<f64>,
    stabilise_noise: bool,
    segmenter_name: &str,
    threshold: f32,
) -> PyResult<Bound<'py, PyArray2<bool>>> {
    let learned = segmenter(segmenter_name, threshold)?;
    // A known scale sizes the filters from physical vessel radii; otherwise pixel defaults, and
    // for a learned model the DCA1 preset it was fitted with (its maps are the model's inputs,
    // computed once, and its mask clean-up is the one the DCA1 figures were measured with).
    let base = match (pixel_spacing, &learned) {
        (Some(s), _) => vesselkit_angio::SegmentOptions::for_scale(mm_per_px(Some(s))?.mm_per_px).unwrap_or_default(),
        (None, Some(_)) => vesselkit_angio::SegmentOptions::dca1(),
        (None, None) => vesselkit_angio::SegmentOptions::default(),
    };
    let mut opts = vesselkit_angio::SegmentOptions {
        seed: seed.map(|(r, c)| Point::new(r, c)),
        ..base
    };
    if let Some(s) = sigmas {
        opts.vesselness.sigmas_px = s;
    }
    opts.vesselness.polarity = polarity(dark_vessels);
    opts.stabilise_noise = stabilise_noise;
    opts.learned = learned;
    let view = image.as_array();
    let s = native(py, || vesselkit_angio::segment(view, &opts))?.map_err(err)?;
    Ok(s.mask.into_pyarray(py))
}

/// Vessel probability of the learned segmenter; returns a float32 array.
#[pyfunction]
#[pyo3(signature = (image, model, dark_vessels))]
pub fn vessel_probability<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    model: &str,
    dark_vessels: bool,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let Some(l) = segmenter(model, 0.5)? else {
        return Err(err("model: \"filters\" is not a learned model; expected \"unet-dca1\""));
    };
    let mut opts = vesselkit_angio::SegmentOptions::dca1();
    opts.vesselness.polarity = polarity(dark_vessels);
    opts.learned = Some(l);
    let view = image.as_array();
    let p = native(py, || vesselkit_angio::learned_probability(view, &opts))?.map_err(err)?;
    Ok(p.into_pyarray(py))
}

/// Centerline tree of a mask: a list of dicts (id, parent, children, points (N, 2), radius_px).
#[pyfunction]
#[pyo3(signature = (mask, seed, bridge_gaps, trim_image_edge))]
pub fn centerlines<'py>(
    py: Python<'py>,
    mask: PyReadonlyArray2<'py, bool>,
    seed: Option<(f64, f64)>,
    bridge_gaps: bool,
    trim_image_edge: bool,
) -> PyResult<Bound<'py, PyList>> {
    let opts = vesselkit_angio::CenterlineOptions {
        seed: seed.map(|(r, c)| Point::new(r, c)),
        bridge_gaps,
        trim_image_edge,
        ..Default::default()
    };
    let m = mask.as_array().to_owned();
    let cl = native(py, || vesselkit_angio::centerlines(&m, &opts))?.map_err(err)?;
    let out = PyList::empty(py);
    for b in &cl.branches {
        let d = PyDict::new(py);
        d.set_item("id", b.id)?;
        d.set_item("parent", b.parent)?;
        d.set_item("children", b.children.clone())?;
        d.set_item("is_root", cl.root == Some(b.id))?;
        d.set_item("points", points_to(py, &b.points))?;
        d.set_item("radius_px", b.radius_px.clone().into_pyarray(py))?;
        out.append(d)?;
    }
    Ok(out)
}

/// Sub-pixel lumen diameters perpendicular to a centerline.
#[pyfunction]
#[pyo3(signature = (image, centerline, radius_px, pixel_spacing, dark_vessels, edge_smoothing_px, fit_lumen, blur_sigma_px))]
#[allow(clippy::too_many_arguments)]
pub fn diameter_profile<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    centerline: PyReadonlyArray2<'py, f64>,
    radius_px: Option<PyReadonlyArray1<'py, f32>>,
    pixel_spacing: Option<f64>,
    dark_vessels: bool,
    edge_smoothing_px: Option<f64>,
    fit_lumen: bool,
    blur_sigma_px: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let pts = points_from(&centerline, "centerline")?;
    let cal = mm_per_px(pixel_spacing)?;
    let radius: Vec<f32> = match radius_px {
        Some(r) => r.as_array().to_vec(),
        None => vec![0.0; pts.len()],
    };
    if radius.len() != pts.len() {
        return Err(err(format!(
            "radius_px: {} values for {} centerline points",
            radius.len(),
            pts.len()
        )));
    }
    let defaults = vesselkit_angio::ProfileOptions::default();
    let mut opts = vesselkit_angio::ProfileOptions {
        polarity: polarity(dark_vessels),
        edge_smoothing_px: edge_smoothing_px.unwrap_or(defaults.edge_smoothing_px),
        fit_lumen,
        blur_sigma_px,
        ..defaults
    };
    let view = image.as_array();
    let samples = native(py, || {
        // The blur is resolved here (rather than inside) so that the caller learns it.
        if opts.fit_lumen && opts.blur_sigma_px.is_none() {
            opts.blur_sigma_px = Some(vesselkit_angio::lines_blur_sigma_px(view, &[(&pts, &radius)], &opts)?);
        }
        vesselkit_angio::diameter_profile(
            view,
            &pts,
            &radius,
            cal.mm_per_px,
            vesselkit_angio::JunctionZones::default(),
            &opts,
        )
    })?
    .map_err(err)?;
    let d = PyDict::new(py);
    let col = |f: &dyn Fn(&vesselkit_core::ProfileSample) -> f64| -> Vec<f64> { samples.iter().map(f).collect() };
    d.set_item(
        "points",
        points_to(py, &samples.iter().map(|s| s.point).collect::<Vec<_>>()),
    )?;
    d.set_item("arc_mm", col(&|s| s.arc_mm).into_pyarray(py))?;
    d.set_item("diameter_mm", col(&|s| s.diameter_mm).into_pyarray(py))?;
    d.set_item("left_mm", col(&|s| s.left_mm).into_pyarray(py))?;
    d.set_item("right_mm", col(&|s| s.right_mm).into_pyarray(py))?;
    d.set_item("density_ratio", col(&|s| s.density_ratio).into_pyarray(py))?;
    d.set_item(
        "channels",
        samples.iter().map(|s| s.channels).collect::<Vec<u8>>().into_pyarray(py),
    )?;
    d.set_item(
        "reliable",
        samples
            .iter()
            .map(|s| s.reliable)
            .collect::<Vec<bool>>()
            .into_pyarray(py),
    )?;
    d.set_item("calibration", cal.source.as_str())?;
    d.set_item("blur_sigma_px", opts.fit_lumen.then_some(opts.blur_sigma_px).flatten())?;
    Ok(d)
}

/// QCA of one diameter profile.
#[pyfunction]
#[pyo3(signature = (arc_mm, diameter_mm, reference, markers, shoulder_fraction, left_mm=None, right_mm=None))]
#[allow(clippy::too_many_arguments)]
pub fn qca<'py>(
    py: Python<'py>,
    arc_mm: PyReadonlyArray1<'py, f64>,
    diameter_mm: PyReadonlyArray1<'py, f64>,
    reference: &str,
    markers: (f64, f64),
    shoulder_fraction: f64,
    left_mm: Option<PyReadonlyArray1<'py, f64>>,
    right_mm: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let reference = match reference {
        "interpolated" => vesselkit_core::ReferenceMethod::Interpolated,
        "computed" => vesselkit_core::ReferenceMethod::Computed,
        other => {
            return Err(err(format!(
                "reference: unknown value {other:?}; expected \"interpolated\" or \"computed\""
            )));
        }
    };
    let opts = vesselkit_core::QcaOptions {
        reference,
        markers,
        shoulder_fraction,
        ..Default::default()
    };
    let (s, d) = (arc_mm.as_array().to_vec(), diameter_mm.as_array().to_vec());
    let edges = match (&left_mm, &right_mm) {
        (Some(l), Some(r)) => Some((l.as_array().to_vec(), r.as_array().to_vec())),
        (None, None) => None,
        _ => return Err(err("left_mm/right_mm: give both edge arrays or neither")),
    };
    let q = guarded(|| vesselkit_core::qca(&s, &d, edges.as_ref().map(|(l, r)| (l.as_slice(), r.as_slice())), &opts))?
        .map_err(err)?;
    to_py(py, &q)
}

/// Tortuosity of a polyline.
#[pyfunction]
#[pyo3(signature = (points, pixel_spacing, step_mm, bend_threshold_deg))]
pub fn tortuosity<'py>(
    py: Python<'py>,
    points: PyReadonlyArray2<'py, f64>,
    pixel_spacing: Option<f64>,
    step_mm: Option<f64>,
    bend_threshold_deg: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let pts = points_from(&points, "points")?;
    let cal = mm_per_px(pixel_spacing)?;
    let mut opts = vesselkit_angio::TortuosityOptions {
        bend_threshold_deg,
        ..Default::default()
    };
    if let Some(s) = step_mm {
        opts.step_mm = s;
    }
    let t = guarded(|| vesselkit_angio::tortuosity(&pts, cal.mm_per_px, &opts))?.map_err(err)?;
    to_py(py, &t)
}

fn oct_options(pixel_spacing: f64, center: Option<(f64, f64)>) -> PyResult<vesselkit_oct::OctOptions> {
    Calibration::user(pixel_spacing).map_err(err)?;
    Ok(vesselkit_oct::OctOptions {
        mm_per_px: pixel_spacing,
        center: center.map(|(r, c)| Point::new(r, c)),
        ..Default::default()
    })
}

/// Lumen of one cartesian OCT frame: contour, metrics, channels, septa, guidewire shadow.
#[pyfunction]
#[pyo3(signature = (frame, pixel_spacing, center))]
pub fn oct_lumen<'py>(
    py: Python<'py>,
    frame: PyReadonlyArray2<'py, f32>,
    pixel_spacing: f64,
    center: Option<(f64, f64)>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = oct_options(pixel_spacing, center)?;
    let view = frame.as_array();
    let (rows, cols) = view.dim();
    let r = native(py, || vesselkit_oct::oct_lumen(view, &opts))?.map_err(err)?;
    let out = to_py(py, &r)?;
    let d = out.cast::<PyDict>()?;
    d.set_item("contour", points_to(py, &r.contour.points))?;
    d.set_item("n_channels", r.n_channels())?;
    d.set_item("mask", r.lumen_mask(rows, cols).into_pyarray(py))?;
    d.set_item("outline_mask", r.outline_mask(rows, cols).into_pyarray(py))?;
    Ok(out)
}

/// A whole pullback: lumen-area profile, MLA, references, area stenosis, web candidates.
#[pyfunction]
#[pyo3(signature = (frames, frame_spacing_mm, pixel_spacing, center))]
pub fn oct_pullback<'py>(
    py: Python<'py>,
    frames: PyReadonlyArray3<'py, f32>,
    frame_spacing_mm: f64,
    pixel_spacing: f64,
    center: Option<(f64, f64)>,
) -> PyResult<Bound<'py, PyAny>> {
    let opts = vesselkit_oct::PullbackOptions {
        frame_spacing_mm,
        frame: oct_options(pixel_spacing, center)?,
        ..Default::default()
    };
    let view = frames.as_array();
    let rules = vesselkit_lesion::Rules::default();
    let (pb, report) = native(py, || vesselkit::analyze_pullback(view, &opts, &rules))?.map_err(crate::from_facade)?;
    let d = PyDict::new(py);
    let area: Vec<f64> = pb.profile.iter().map(|p| p.area_mm2.unwrap_or(f64::NAN)).collect();
    d.set_item("area_mm2", area.into_pyarray(py))?;
    d.set_item(
        "position_mm",
        pb.profile
            .iter()
            .map(|p| p.position_mm)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item(
        "channels",
        pb.profile
            .iter()
            .map(|p| p.n_channels as u32)
            .collect::<Vec<_>>()
            .into_pyarray(py),
    )?;
    d.set_item("mla_frame", pb.mla_frame)?;
    d.set_item("mla_mm2", pb.mla_mm2)?;
    d.set_item(
        "reference_frames",
        (pb.proximal_reference_frame, pb.distal_reference_frame),
    )?;
    d.set_item("reference_area_mm2", pb.reference_area_mm2)?;
    d.set_item("reference_diameter_mm", pb.reference_diameter_mm)?;
    d.set_item("area_stenosis_pct", pb.area_stenosis_pct)?;
    d.set_item("lesion_frames", pb.lesion_frames)?;
    d.set_item("lesion_length_mm", pb.lesion_length_mm)?;
    d.set_item("web_candidate_frames", pb.web_candidate_frames.clone())?;
    d.set_item("failures", to_py(py, &pb.failures)?)?;
    d.set_item("report", to_py(py, &report.to_json_value())?)?;
    Ok(d.into_any())
}

/// `(peak, subtracted)` arrays of a cine run.
type PeakAndSubtracted<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>);

/// A cine run's fullest filling per pixel and that filling over the least one (the still
/// anatomy taken out), each frame moved by its `(row, col)` shift in px.
#[pyfunction]
#[pyo3(signature = (frames, shifts, dark_vessels))]
pub fn cine_opacification<'py>(
    py: Python<'py>,
    frames: PyReadonlyArray3<'py, f32>,
    shifts: Option<PyReadonlyArray2<'py, f64>>,
    dark_vessels: bool,
) -> PyResult<PeakAndSubtracted<'py>> {
    let view = frames.as_array();
    let nf = view.shape()[0];
    let shifts: Vec<(f64, f64)> = match shifts {
        Some(a) => {
            let a = a.as_array();
            if a.shape() != [nf, 2] {
                return Err(err(format!(
                    "shifts: expected an ({nf}, 2) array of (row, col) per frame, got shape {:?}",
                    a.shape()
                )));
            }
            a.rows().into_iter().map(|r| (r[0], r[1])).collect()
        }
        None => vec![(0.0, 0.0); nf],
    };
    let (peak, sub) = native(py, || {
        vesselkit_angio::peak_and_subtracted_opacification(view, &shifts, polarity(dark_vessels))
    })?
    .map_err(err)?;
    Ok((peak.into_pyarray(py), sub.into_pyarray(py)))
}
