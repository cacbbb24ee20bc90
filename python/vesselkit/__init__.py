"""vesselkit: blood-vessel analysis for X-ray angiography and intravascular OCT.

Research use only. Not for clinical decision making.

Data arguments are positional; every option is keyword-only. Images cross into the Rust core
without a copy where their dtype and layout allow it, and the GIL is released while it works.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from . import _vesselkit as _native
from ._errors import (
    InvalidInputError,
    ReadError,
    TooLargeError,
    UnsupportedError,
    VesselkitError,
)

__version__: str = _native.__version__
NOTICE: str = _native.RESEARCH_NOTICE

Image = _native.Image

__all__ = [
    "Image",
    "Report",
    "analyze",
    "calibrate_catheter",
    "centerlines",
    "cine_opacification",
    "diameter_profile",
    "oct_lumen",
    "oct_pullback",
    "phantom",
    "qca",
    "segment",
    "tortuosity",
    "vessel_probability",
    "vesselness",
    "InvalidInputError",
    "NOTICE",
    "ReadError",
    "TooLargeError",
    "UnsupportedError",
    "VesselkitError",
    "__version__",
    "from_array",
    "read",
]


def read(
    path: "os.PathLike[str] | str",
    *,
    pixel_spacing: Optional[float] = None,
    apply_modality_lut: bool = False,
    max_total_pixels: Optional[int] = None,
) -> Image:
    """Read a DICOM (XA, XRF, IVOCT), PNG, TIFF or NPY file.

    Parameters
    ----------
    path : path-like
        The file. Its format is recognised from its content, not its name.
    pixel_spacing : float, optional
        Scale in mm per pixel; overrides the file's own calibration (source ``"user"``).
    apply_modality_lut : bool
        Apply the DICOM modality rescale instead of returning stored values.
    max_total_pixels : int, optional
        Raise the size limit (pixels over all frames) checked before decoding.

    Returns
    -------
    Image
        ``.pixels`` float32 ``[frames, rows, cols]`` (vessels dark on bright), ``.calibration``,
        ``.frame_times_ms``, ``.metadata``.
    """
    return _native.read(os.fspath(path), pixel_spacing, apply_modality_lut, max_total_pixels)


def from_array(array: Any, *, pixel_spacing: Optional[float] = None) -> Image:
    """Wrap a 2-D ``[rows, cols]`` or 3-D ``[frames, rows, cols]`` array of any numeric dtype.

    float32 C-ordered input is used as is; anything else is converted once to float32.
    """
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"array: dtype {arr.dtype} is not numeric")
    if arr.ndim not in (2, 3):
        raise InvalidInputError(f"array: expected 2 or 3 dimensions, got {arr.ndim} dimension(s) {arr.shape}")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    return _native.from_array(arr, pixel_spacing)


def calibrate_catheter(
    image: Any,
    p0: "tuple[float, float]",
    p1: "tuple[float, float]",
    *,
    french: float,
    frame: int = 0,
) -> Image:
    """Take the scale from a catheter of known size marked along its axis from ``p0`` to ``p1``
    (``(row, col)`` px, at least 4 px apart) on ``frame``.

    Returns the same frames (shared, not copied) with ``calibration["source"] == "catheter"``;
    the detail gives the measured width and its spread. Pass the result to :func:`analyze`, or
    its ``calibration["mm_per_px"]`` as ``pixel_spacing`` to the stage functions. ``french`` is
    the outer size (1 Fr = 1/3 mm, 2 to 12). Mark a contrast-empty catheter: a filled one
    measures 3.9 to 15.5 % small. ``image`` is an :class:`Image` or a 2-D or 3-D array.
    """
    img = image if isinstance(image, Image) else from_array(image)
    return _native.calibrate_catheter(img, _pair(p0, "p0"), _pair(p1, "p1"), french, frame)


def _pair(point: Any, name: str) -> "tuple[float, float]":
    arr = _real(point, name).ravel()
    if arr.shape != (2,):
        raise InvalidInputError(f"{name}: expected a (row, col) pair, got {np.shape(point)}")
    return float(arr[0]), float(arr[1])


def _f32_2d(image: Any, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name}: dtype {arr.dtype} is not numeric")
    if arr.ndim != 2:
        raise InvalidInputError(f"{name}: expected a 2-D [rows, cols] array, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _real(values: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """A C-ordered copy or view as ``dtype``; complex, text and object arrays are refused by name
    (numpy would drop an imaginary part with only a warning)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name}: dtype {arr.dtype} is not real numbers")
    return np.ascontiguousarray(arr, dtype=dtype)


def _points(points: Any, name: str) -> np.ndarray:
    arr = _real(points, name)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInputError(f"{name}: expected an (N, 2) array of (row, col), got shape {arr.shape}")
    return arr


def vesselness(
    image: Any,
    *,
    sigmas: "tuple[float, ...] | list[float]" = (1.0, 2.0, 3.0, 4.0),
    method: str = "frangi",
    dark_vessels: bool = True,
    beta: float = 0.5,
    c: Optional[float] = None,
    tau: float = 0.75,
) -> "tuple[np.ndarray, np.ndarray]":
    """Multi-scale Hessian vesselness (``"frangi"``, ``"jerman"`` or ``"sato"``).

    Returns ``(response, scale_px)``: the maximum response over scales and the sigma (px) at
    which it occurred, a radius estimate. ``c=None`` takes half the largest Hessian norm.
    """
    return _native.vesselness(_f32_2d(image), [float(x) for x in sigmas], method, dark_vessels, beta, c, tau)


def segment(
    image: Any,
    *,
    seed: "Optional[tuple[float, float]]" = None,
    sigmas: "Optional[list[float]]" = None,
    dark_vessels: bool = True,
    pixel_spacing: Optional[float] = None,
    stabilise_noise: bool = True,
    segmenter: "str | os.PathLike[str]" = "filters",
    threshold: float = 0.5,
) -> np.ndarray:
    """Vessel mask (bool ``[rows, cols]``); ``seed=(row, col)`` keeps the vessel it lies on.

    ``segmenter="filters"`` thresholds vesselness and top-hat contrast with hysteresis and
    works at any scale. ``segmenter="unet-dca1"`` takes the mask where the probability of a
    small U-Net fitted on the DCA1 coronary training frames (300 x 300 px, vessels up to about
    6 px in radius) exceeds ``threshold``: for frames like those (see
    :func:`vessel_probability`). A path to a weight file written by ``scripts/train_unet.py``
    (one network, or several concatenated, whose probabilities are averaged) uses that model.

    With ``pixel_spacing`` (mm per pixel) the filter scales cover vessel radii of 0.5 to 6 mm;
    without it they are pixel defaults tuned on coronary frames, and a learned model's mask is
    cleaned up as in the DCA1 figures (objects under 200 px, or under 5 % of the largest,
    dropped). ``stabilise_noise`` filters a variance-stabilised copy when the frame's noise
    grows with its intensity (quantum noise on raw counts), so vessels over dense, dark regions
    are kept; frames with flat noise are filtered as they are.
    """
    s = None if sigmas is None else [float(x) for x in sigmas]
    return _native.segment(
        _f32_2d(image), seed, s, dark_vessels, pixel_spacing, stabilise_noise, os.fspath(segmenter), float(threshold)
    )


def vessel_probability(
    image: Any, *, model: "str | os.PathLike[str]" = "unet-dca1", dark_vessels: bool = True
) -> np.ndarray:
    """Per-pixel vessel probability (float32 ``[rows, cols]``, 0 to 1) of a learned model.

    ``"unet-dca1"`` is a three-level U-Net fitted on the 40 DCA1 coronary training frames
    (300 x 300 px); it knows frames of that kind and scale, not others. The frame is
    standardised (mean 0, SD 1) before the network, so its intensity units do not matter.
    ``model`` may also be the path of a weight file from ``scripts/train_unet.py``."""
    return _native.vessel_probability(_f32_2d(image), os.fspath(model), dark_vessels)


def centerlines(
    mask: Any,
    *,
    seed: "Optional[tuple[float, float]]" = None,
    bridge_gaps: bool = True,
    trim_image_edge: bool = True,
) -> "list[dict]":
    """Centerline tree of a mask: one dict per branch with ``id``, ``parent``, ``children``,
    ``points`` (N, 2) sub-pixel (row, col) proximal to distal, and ``radius_px``.

    With ``bridge_gaps`` two free ends of separate pieces that face each other across a short
    gap (at most 5 radii, on one axis, similar radii) become one branch through the gap, where
    a narrowing broke the mask; its ``radius_px`` there runs between the radii on either side.

    With ``trim_image_edge`` the skeleton stops where the mask touches the image edge (a
    vessel leaving the field ends about one radius inside it, and no line runs along the
    edge), and without a ``seed`` the tree is rooted where the widest vessel enters (when it is
    at least half as wide as the widest anywhere)."""
    m = np.ascontiguousarray(np.asarray(mask), dtype=bool)
    if m.ndim != 2:
        raise InvalidInputError(f"mask: expected a 2-D array, got shape {m.shape}")
    return _native.centerlines(m, seed, bool(bridge_gaps), bool(trim_image_edge))


def diameter_profile(
    image: Any,
    centerline: Any,
    *,
    radius_px: Any = None,
    pixel_spacing: Optional[float] = None,
    dark_vessels: bool = True,
    edge_smoothing_px: Optional[float] = None,
    fit_lumen: bool = True,
    blur_sigma_px: Optional[float] = None,
) -> dict:
    """Lumen diameter perpendicular to ``centerline`` at each point, from sub-pixel edges.

    ``edge_smoothing_px`` bounds the adaptive along-vessel smoothing of each edge (default 3 px;
    0 gives the raw per-profile edges). With ``fit_lumen`` each cross-section's edges are
    refined by a least-squares fit of a round lumen, blurred by the imaging chain, over a linear
    background; ``blur_sigma_px`` is that blur (Gaussian sigma, px), read from the widest
    cross-sections along ``centerline`` when None (0.75 px where none is 4 px in radius).

    Returns arrays ``arc_mm``, ``diameter_mm``, ``left_mm``, ``right_mm``, ``channels``,
    ``density_ratio``, ``reliable`` (values are px when ``pixel_spacing`` is None), and
    ``blur_sigma_px``, the blur the fit used (None with ``fit_lumen=False``).
    """
    r = None if radius_px is None else _real(radius_px, "radius_px", np.float32)
    return _native.diameter_profile(
        _f32_2d(image),
        _points(centerline, "centerline"),
        r,
        pixel_spacing,
        dark_vessels,
        edge_smoothing_px,
        fit_lumen,
        blur_sigma_px,
    )


def qca(
    arc_mm: Any,
    diameter_mm: Any,
    *,
    reference: str = "interpolated",
    markers: "tuple[float, float]" = (0.05, 0.95),
    shoulder_fraction: float = 0.9,
    left_mm: Any = None,
    right_mm: Any = None,
) -> dict:
    """QCA of one diameter profile (DICOM PS3.17 Annex T): MLD, reference diameter at the MLD,
    % diameter and area stenosis, shoulder-to-shoulder lesion length, symmetry."""
    f = lambda a, name: None if a is None else _real(a, name)  # noqa: E731
    return _native.qca(
        f(arc_mm, "arc_mm"),
        f(diameter_mm, "diameter_mm"),
        reference,
        tuple(markers),
        shoulder_fraction,
        f(left_mm, "left_mm"),
        f(right_mm, "right_mm"),
    )


def tortuosity(
    points: Any,
    *,
    pixel_spacing: Optional[float] = None,
    step_mm: Optional[float] = None,
    bend_threshold_deg: float = 45.0,
) -> dict:
    """Distance metric, inflection count metric, sum of angles metric, bends >= threshold."""
    return _native.tortuosity(_points(points, "points"), pixel_spacing, step_mm, bend_threshold_deg)


def oct_lumen(frame: Any, *, pixel_spacing: float, center: "Optional[tuple[float, float]]" = None) -> dict:
    """Lumen of one cartesian OCT frame: ``contour`` (N, 2), ``metrics`` (area_mm2 without the
    septa, outline_area_mm2, min/max/mean diameter through the centroid, eccentricity),
    ``channels``, ``septa``, ``guidewire_shadow``, ``side_branch``, ``mask`` (lumen without the
    septa) and ``outline_mask`` (inside the contour)."""
    return _native.oct_lumen(_f32_2d(frame, "frame"), pixel_spacing, center)


def oct_pullback(
    frames: Any,
    *,
    frame_spacing_mm: float,
    pixel_spacing: float,
    center: "Optional[tuple[float, float]]" = None,
) -> dict:
    """A pullback ``[frames, rows, cols]``: lumen-area profile, MLA frame, reference frames within
    10 mm, area stenosis, lesion length, web-candidate frames, and a lesion ``report``."""
    arr = np.asarray(frames)
    if arr.ndim != 3:
        raise InvalidInputError(f"frames: expected a 3-D [frames, rows, cols] array, got shape {arr.shape}")
    return _native.oct_pullback(np.ascontiguousarray(arr, dtype=np.float32), frame_spacing_mm, pixel_spacing, center)


def cine_opacification(
    frames: Any,
    *,
    shifts: Any = None,
    dark_vessels: bool = True,
) -> "tuple[np.ndarray, np.ndarray]":
    """A cine run ``[frames, rows, cols]`` at each pixel's fullest filling, and with the still
    anatomy taken out.

    Returns ``(peak, subtracted)``: ``peak`` is the most opacified value over the run (means of
    three consecutive frames, so one noisy frame does not set it); ``subtracted`` is that over
    the least opacified value, 1 where contrast never came and below 1 in a vessel however
    dark the background behind it (lung texture, ribs and the diaphragm cancel). ``shifts`` is
    an optional ``(frames, 2)`` array of (row, col) px moving each frame onto the first's grid
    (rounded to the pixel); without it the frames are taken as they are. NaN where the counts
    are not positive.
    """
    arr = np.asarray(frames)
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"frames: dtype {arr.dtype} is not numeric")
    if arr.ndim != 3:
        raise InvalidInputError(f"frames: expected a 3-D [frames, rows, cols] array, got shape {arr.shape}")
    s = None if shifts is None else _real(shifts, "shifts")
    return _native.cine_opacification(np.ascontiguousarray(arr, dtype=np.float32), s, dark_vessels)


def phantom(kind: str = "angio", *, seed: int = 1, difficulty: Optional[float] = None) -> dict:
    """A synthetic case with ground truth: ``kind`` is ``"angio"``, ``"cine"``, ``"oct"`` or
    ``"pullback"``. Returns ``image``, ``mask``, ``truth`` (dict) and ``mm_per_px``."""
    return _native.phantom(kind, seed, difficulty)


class Report:
    """The analysis report (schema ``vesselkit.report/1``).

    ``lesions``, ``vessels`` and ``plan`` are plain dicts and lists as in the JSON; ``mask`` is
    the vessel mask and ``image`` the analysed frame.
    """

    def __init__(self, data: dict, *, mask: Optional[np.ndarray] = None, image: Optional[np.ndarray] = None):
        self._data = data
        self.mask = mask
        self.image = image

    @property
    def lesions(self) -> "list[dict]":
        return self._data["lesions"]

    @property
    def vessels(self) -> "list[dict]":
        return self._data["vessels"]

    @property
    def plan(self) -> dict:
        return self._data["plan"]

    @property
    def calibration(self) -> dict:
        return self._data["calibration"]

    @property
    def notice(self) -> str:
        return self._data["notice"]

    @property
    def warnings(self) -> "list[str]":
        """What limits the whole report, e.g. no physical scale (empty when nothing does)."""
        return self._data.get("warnings", [])

    def to_dict(self) -> dict:
        import copy

        return copy.deepcopy(self._data)

    def to_json(self, *, indent: Optional[int] = 2) -> str:
        import json

        return json.dumps(self._data, indent=indent)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{l['priority']}:{l['type']}" for l in sorted(self.lesions, key=lambda l: l["priority"]))
        return f"Report({len(self.vessels)} vessels, {len(self.lesions)} lesions [{kinds}])"

    def show(self, ax: Any = None) -> Any:
        """Draw the frame with centerlines and ranked lesions (needs matplotlib)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # optional dependency
            raise VesselkitError("Report.show() needs matplotlib: pip install matplotlib") from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 8))
        if self.image is not None:
            ax.imshow(self.image, cmap="gray")
        unit = "mm" if self.calibration["source"] != "uncalibrated" else "px"
        for v in self.vessels:
            pts = np.asarray(v["centerline"], dtype=float)
            if len(pts):
                ax.plot(pts[:, 1], pts[:, 0], lw=1.5)
        for l in self.lesions:
            ax.plot(l["site"]["col"], l["site"]["row"], "o", mfc="none", mec="red", ms=14)
            ax.annotate(f"{l['priority']} {l['type']}", (l["site"]["col"], l["site"]["row"]), color="yellow",
                        xytext=(8, -8), textcoords="offset points")
        ax.set_title(f"vesselkit ({unit}) - {self.notice}", fontsize=9)
        ax.set_axis_off()
        return ax


def analyze(
    source: Any,
    *,
    pixel_spacing: Optional[float] = None,
    frame: Optional[int] = None,
    rules: "Optional[os.PathLike[str] | str]" = None,
    mask_mean_frames: int = 1,
    segmenter: "str | os.PathLike[str]" = "filters",
) -> Report:
    """Run the whole chain on a path, an :class:`Image` or an array: vessel tree, diameters,
    lesions typed ring / web / subtotal / occlusion / tortuous with evidence, ranking, balloon
    plan. A cine is measured on its best-opacified frame unless ``frame`` is given; its mask and
    centerlines come from the registered mean of that frame and up to ``mask_mean_frames``
    well-filled neighbours on each side (0: the frame alone; the frames used are in
    ``report.to_dict()["input"]["mask_frames"]``), its diameters from that frame alone.
    ``segmenter`` picks the vessel mask as in :func:`segment`."""
    if isinstance(source, Image):
        img = source
        if pixel_spacing is not None:
            img = from_array(img.pixels, pixel_spacing=pixel_spacing)
    elif isinstance(source, (str, os.PathLike)):
        img = read(source, pixel_spacing=pixel_spacing)
    else:
        img = from_array(source, pixel_spacing=pixel_spacing)
    import json

    text, mask, used = _native.analyze(
        img, frame, None if rules is None else os.fspath(rules), mask_mean_frames, os.fspath(segmenter)
    )
    data = json.loads(text)
    if isinstance(source, (str, os.PathLike)):
        data["input"]["path"] = os.fspath(source)
        data["input"]["modality"] = img.metadata.get("modality")
    return Report(data, mask=mask, image=img.pixels[used])
