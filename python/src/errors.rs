//! Rust errors to the Python `vesselkit.VesselkitError` family, with the Rust message unchanged.

use pyo3::prelude::*;
use pyo3::types::PyType;

/// Which Python exception class an error maps to.
#[derive(Clone, Copy)]
pub enum Kind {
    InvalidInput,
    Read,
    Unsupported,
    TooLarge,
    Internal,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::InvalidInput => "InvalidInputError",
            Kind::Read => "ReadError",
            Kind::Unsupported => "UnsupportedError",
            Kind::TooLarge => "TooLargeError",
            Kind::Internal => "VesselkitError",
        }
    }
}

/// Build the Python exception of `kind` carrying `msg`.
pub fn py_err(kind: Kind, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| {
        let class = py
            .import("vesselkit._errors")
            .and_then(|m| m.getattr(kind.class_name()))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(cls) => PyErr::from_type(cls, msg),
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(msg),
        }
    })
}

pub fn from_core(e: vesselkit_core::CoreError) -> PyErr {
    use vesselkit_core::CoreError as E;
    let kind = match e {
        E::TooLarge { .. } => Kind::TooLarge,
        _ => Kind::InvalidInput,
    };
    py_err(kind, e.to_string())
}

pub fn from_io(e: vesselkit_io::IoError) -> PyErr {
    use vesselkit_io::IoError as E;
    let kind = match &e {
        E::TooLarge { .. } => Kind::TooLarge,
        E::UnsupportedTransferSyntax { .. } | E::Unsupported { .. } => Kind::Unsupported,
        E::NonFinite { .. } | E::FrameIndex { .. } => Kind::InvalidInput,
        _ => Kind::Read,
    };
    py_err(kind, e.to_string())
}

/// A caught panic (a bug) as `VesselkitError` naming it. Left alone, pyo3 raises
/// `PanicException`, a `BaseException` that `except Exception` does not catch, so one bad frame
/// would end a user's batch loop.
fn from_panic(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    py_err(
        Kind::Internal,
        format!("internal error (a bug in vesselkit; please report it with the input): {what}"),
    )
}

/// Run library code with the GIL held; a panic becomes `VesselkitError`.
pub fn guarded<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(from_panic)
}

/// Run library code with the GIL released (how every computation on image data runs); a panic
/// becomes `VesselkitError`.
pub fn native<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .map_err(from_panic)
}
