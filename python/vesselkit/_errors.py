"""Exception family raised by vesselkit.

Every error carries the message of the Rust library, which names the file or field at fault.
"""


class VesselkitError(Exception):
    """Base class of every vesselkit error."""


class InvalidInputError(VesselkitError, ValueError):
    """An argument or an image is not valid input (wrong shape, NaN, zero spacing...)."""


class ReadError(VesselkitError, OSError):
    """A file could not be read or decoded (truncated, not DICOM, missing pixel data...)."""


class UnsupportedError(ReadError):
    """The file is valid but uses a feature vesselkit does not decode (e.g. a transfer syntax)."""


class TooLargeError(InvalidInputError):
    """The image exceeds a size limit; raise the limit explicitly to allow it."""
