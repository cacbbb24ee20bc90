"""Reading: NEMA XA1 in every transfer syntax against pydicom, arrays, bad input."""

import numpy as np
import pytest

import vesselkit

NEMA = ["XA1_UNC", "XA1_RLE", "XA1_JPLL", "XA1_JLSL", "XA1_JLSN", "XA1_J2KR", "XA1_J2KI", "XA1_JPLY"]
LOSSLESS = ["XA1_UNC", "XA1_RLE", "XA1_JPLL", "XA1_JLSL", "XA1_J2KR"]


def _pydicom_pixels(path):
    pydicom = pytest.importorskip("pydicom")
    ds = pydicom.dcmread(path)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom cannot decode it either
        return None, f"{type(exc).__name__}: {exc}"
    return np.asarray(arr, dtype=np.float32).reshape((-1, ds.Rows, ds.Columns)), None


@pytest.mark.parametrize("name", NEMA)
def test_nema_matches_pydicom(shared_data, name):
    path = shared_data / "dicom-xa-nema" / name
    ref, why = _pydicom_pixels(path)
    if ref is None:
        # pydicom's plug-ins refuse XA1_JPLY (12-bit lossy JPEG; pylibjpeg-libjpeg rejects its
        # SOS parameters, which dcmtk only warns about). vesselkit decodes it with libjpeg-turbo,
        # pixel for pixel as dcmtk's dcmdjpeg does (Rust test), so compare with the original.
        assert name == "XA1_JPLY", why
        img = vesselkit.read(path)
        unc = vesselkit.read(shared_data / "dicom-xa-nema" / "XA1_UNC").pixels
        diff = np.abs(img.pixels - unc)
        assert img.pixels.shape == (1, 1024, 1024)
        assert 0 < diff.max() <= 120 and diff.mean() <= 2.3, (diff.max(), diff.mean())
        return
    img = vesselkit.read(path)
    assert img.pixels.dtype == np.float32
    assert img.pixels.shape == ref.shape == (1, 1024, 1024)
    if name in LOSSLESS:
        np.testing.assert_array_equal(img.pixels, ref)
    else:
        # Lossy: both decoders must agree closely with each other.
        assert np.abs(img.pixels - ref).mean() < 1.0


def test_lossless_equal_uncompressed(shared_data):
    base = vesselkit.read(shared_data / "dicom-xa-nema" / "XA1_UNC").pixels
    for name in LOSSLESS[1:]:
        np.testing.assert_array_equal(vesselkit.read(shared_data / "dicom-xa-nema" / name).pixels, base)


def test_metadata_and_calibration(shared_data):
    img = vesselkit.read(shared_data / "dicom-xa-nema" / "XA1_UNC")
    assert img.metadata["modality"] == "XA"
    assert img.metadata["rows"] == 1024 and img.metadata["cols"] == 1024
    # The NEMA file has no geometry tags: it must say so rather than guess a scale.
    assert img.calibration["source"] == "uncalibrated"
    user = vesselkit.read(shared_data / "dicom-xa-nema" / "XA1_UNC", pixel_spacing=0.25)
    assert user.calibration == {**user.calibration, "mm_per_px": 0.25, "source": "user"}


def test_pixels_are_not_copied():
    img = vesselkit.from_array(np.zeros((2, 8, 9), dtype=np.float32), pixel_spacing=0.2)
    a, b = img.pixels, img.pixels
    assert a.shape == (2, 8, 9)
    assert np.shares_memory(a, b)
    assert a.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_from_array_any_dtype_and_order(dtype):
    src = (np.arange(6 * 7).reshape(6, 7) % 50).astype(dtype)
    img = vesselkit.from_array(np.asfortranarray(src), pixel_spacing=0.3)
    assert img.pixels.shape == (1, 6, 7)
    np.testing.assert_array_equal(img.pixels[0], src.astype(np.float32))
    assert img.calibration["mm_per_px"] == pytest.approx(0.3)
    assert img.calibration["source"] == "user"
    assert vesselkit.from_array(src).calibration["source"] == "uncalibrated"


def test_bad_arrays_raise_typed_errors():
    with pytest.raises(vesselkit.InvalidInputError, match="finite"):
        vesselkit.from_array(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(vesselkit.InvalidInputError, match="empty"):
        vesselkit.from_array(np.zeros((0, 5), dtype=np.float32))
    with pytest.raises(vesselkit.InvalidInputError, match="pixel_spacing"):
        vesselkit.from_array(np.zeros((4, 4), dtype=np.float32), pixel_spacing=0.0)
    with pytest.raises(vesselkit.InvalidInputError, match="dimension"):
        vesselkit.from_array(np.zeros((2, 2, 2, 2), dtype=np.float32))
    # InvalidInputError is also a ValueError for callers that catch the builtin.
    with pytest.raises(ValueError):
        vesselkit.from_array(np.zeros((4, 4), dtype=np.float32), pixel_spacing=-1.0)


def test_a_bug_in_the_library_is_a_vesselkit_error_not_a_panic():
    # pyo3 would raise PanicException, a BaseException that `except Exception` lets through;
    # every entry point runs its library code in a guard that turns a panic into VesselkitError.
    with pytest.raises(vesselkit.VesselkitError, match="internal error .*a deliberate panic"):
        vesselkit._native._panic_for_test()


def test_bad_files_raise_read_errors(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not a dicom file at all" * 10)
    with pytest.raises(vesselkit.ReadError) as info:
        vesselkit.read(junk)
    assert "junk.dcm" in str(info.value)
    with pytest.raises(OSError):
        vesselkit.read(tmp_path / "missing.dcm")
