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
