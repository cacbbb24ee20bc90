//! Intravascular OCT: polar/cartesian geometry, catheter and guidewire handling, lumen contour,
//! lumen metrics, septa and channels, and the pullback lumen-area profile.
//!
//! The lumen is found in polar space as the globally optimal closed boundary (dynamic
//! programming over angle) on a dark-lumen to bright-wall edge cost. Research use only.

pub mod channels;
pub mod error;
pub mod lumen;
pub mod metrics;
pub mod polar;
pub mod pullback;
mod septa;
pub mod synthetic;

pub use channels::{Channel, Septum};
pub use error::{OctError, Result};
pub use lumen::{OctFrameResult, OctOptions, oct_lumen};
pub use metrics::{LumenMetrics, contour_mask, dice, lumen_metrics};
pub use polar::{CartesianGrid, OctGeometry, cartesian_to_polar, polar_to_cartesian};
pub use pullback::{ProfileEntry, PullbackOptions, PullbackResult, ReferenceMode, oct_pullback};
