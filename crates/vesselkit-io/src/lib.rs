//! Readers (DICOM XA/XRF/IVOCT, PNG, TIFF, NPY) and a DICOM writer for XA/XRF cine and IVOCT.
//!
//! ```no_run
//! use vesselkit_io::{read, ReadOptions};
//! let loaded = read("run.dcm", &ReadOptions::default())?;
//! println!("{} frames at {} mm/px ({})", loaded.cine.len(), loaded.metadata.calibration.mm_per_px,
//!          loaded.metadata.calibration.source);
//! # Ok::<(), vesselkit_io::IoError>(())
//! ```
//!
//! Long cine runs can be streamed with [`DicomSource`]: it keeps the (compressed) pixel data and
//! decodes one frame per call.

mod dicom;
mod error;
mod jpeg12;
mod jpeg_lossless;
mod metadata;
mod raster;
mod rle;
mod write;

pub use dicom::{DicomSource, read_dicom, read_dicom_metadata};
pub use error::{IoError, Result};
pub use jpeg12::jpeg12_round_trip;
pub use metadata::{FileFormat, Metadata, OctGeometry, ReadOptions, sop_class_name, transfer_syntax_name};
pub use raster::{read_image, read_npy};
pub use write::{IvoctWriteOptions, Quantize, WriteSyntax, XaModality, XaWriteOptions, write_ivoct, write_xa};

use std::io::Read;
use std::path::Path;
use vesselkit_core::Cine;

/// SOP Class UID of X-Ray Angiographic Image Storage.
pub const SOP_XA: &str = "1.2.840.10008.5.1.4.1.1.12.1";
/// SOP Class UID of X-Ray Radiofluoroscopic Image Storage.
pub const SOP_XRF: &str = "1.2.840.10008.5.1.4.1.1.12.2";
/// SOP Class UID of Intravascular OCT Image Storage - For Presentation.
pub const SOP_IVOCT_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.14.1";
/// SOP Class UID of Intravascular OCT Image Storage - For Processing.
pub const SOP_IVOCT_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.14.2";

/// A file read whole: the frames and what is known about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub cine: Cine,
    pub metadata: Metadata,
}

/// Which reader handles a file, from its first bytes (never from the extension).
pub fn sniff(path: impl AsRef<Path>) -> Result<FileFormat> {
    let path = path.as_ref();
    let pstr = path.display().to_string();
    let io_err = |source| IoError::Io {
        path: pstr.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let mut head = Vec::with_capacity(132);
    f.by_ref().take(132).read_to_end(&mut head).map_err(io_err)?;
    if dicom::sniff_dicom(&head).is_some() {
        return Ok(FileFormat::Dicom);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(FileFormat::Png);
    }
    if head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"II+\0")
        || head.starts_with(b"MM\0+")
    {
        return Ok(FileFormat::Tiff);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Ok(FileFormat::Npy);
    }
    if head.is_empty() {
        return Err(IoError::Truncated {
            path: pstr,
            detail: "the file is empty".into(),
        });
    }
    Err(IoError::UnknownFormat {
        path: pstr,
        reason: "not DICOM (no DICM marker), PNG, TIFF or NPY by content".into(),
    })
}

/// Read any supported file, choosing the reader by content.
pub fn read(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Loaded> {
    let path = path.as_ref();
    match sniff(path)? {
        FileFormat::Dicom => read_dicom(path, opts),
        FileFormat::Png | FileFormat::Tiff => read_image(path, opts),
        FileFormat::Npy => read_npy(path, opts),
    }
}
