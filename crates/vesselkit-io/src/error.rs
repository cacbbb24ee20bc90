//! The error type of the I/O crate: one variant per way a file can be bad, each naming the file
//! and, where it applies, the field.

use vesselkit_core::CoreError;

/// Errors raised while reading or writing images.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The operating system refused to open, read or write the file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The content is not a format we read (sniffed from the bytes, not the extension).
    #[error("{path}: not a recognised image file ({reason})")]
    UnknownFormat { path: String, reason: String },
    /// The file ends before the data it declares (cut short in transfer or on disk).
    #[error("{path}: file is truncated: {detail}")]
    Truncated { path: String, detail: String },
    /// The DICOM stream could not be parsed.
    #[error("{path}: malformed DICOM: {detail}")]
    Malformed { path: String, detail: String },
    /// A required attribute is absent.
    #[error("{path}: missing required attribute {field}")]
    MissingField { path: String, field: &'static str },
    /// An attribute is present but has an unusable value.
    #[error("{path}: invalid {field}: {reason}")]
    InvalidField {
        path: String,
        field: &'static str,
        reason: String,
    },
    /// Rows, columns or frames is zero.
    #[error("{path}: empty image: {field} is 0")]
    EmptyImage { path: String, field: &'static str },
    /// The file has no Pixel Data (7FE0,0010).
    #[error("{path}: no Pixel Data (7FE0,0010) in the file")]
    MissingPixelData { path: String },
    /// The pixel data holds fewer bytes than rows x columns x frames need.
    #[error(
        "{path}: Pixel Data (7FE0,0010) holds {actual_bytes} bytes but {rows} rows x {cols} columns x {frames} frames x {bytes_per_sample} bytes need {expected_bytes}"
    )]
    PixelDataTooShort {
        path: String,
        rows: u32,
        cols: u32,
        frames: u32,
        bytes_per_sample: u32,
        expected_bytes: u64,
        actual_bytes: u64,
    },
    /// The declared size exceeds the caller's limits; refused before any pixel buffer is allocated.
    #[error("{path}: {source}")]
    TooLarge {
        path: String,
        #[source]
        source: CoreError,
    },
    /// No decoder in this build handles the transfer syntax.
    #[error("{path}: unsupported transfer syntax {name} ({uid}): {reason}")]
    UnsupportedTransferSyntax {
        path: String,
        uid: String,
        name: String,
        reason: String,
    },
    /// A feature of the file that is valid but not supported (e.g. YBR colour, 32-bit samples).
    #[error("{path}: unsupported {what}")]
    Unsupported { path: String, what: String },
    /// A codec failed on one frame.
    #[error("{path}: cannot decode frame {frame}: {reason}")]
    Decode { path: String, frame: u32, reason: String },
    /// A frame index outside `0..frames`.
    #[error("frame index {index} is out of range: the source has {frames} frame(s)")]
    FrameIndex { index: usize, frames: u32 },
    /// A NaN or infinite value in floating-point input.
    #[error("{path}: element {index} is {value}; all pixel values must be finite")]
    NonFinite { path: String, index: usize, value: f64 },
    /// PNG/TIFF decoding failed.
    #[error("{path}: {source}")]
    Image {
        path: String,
        #[source]
        source: image::ImageError,
    },
    /// NPY parsing failed.
    #[error("{path}: bad NPY file: {reason}")]
    Npy { path: String, reason: String },
    /// A core value (calibration, cine) rejected the data.
    #[error("{path}: {source}")]
    Core {
        path: String,
        #[source]
        source: CoreError,
    },
    /// Writer options or data that cannot be written as asked.
    #[error("cannot write {path}: {field}: {reason}")]
    Write {
        path: String,
        field: &'static str,
        reason: String,
    },
}

pub type Result<T, E = IoError> = std::result::Result<T, E>;
