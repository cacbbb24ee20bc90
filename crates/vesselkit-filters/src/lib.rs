//! Gaussian derivatives, Hessian and vesselness filters in f32.
//!
//! All filters take `ArrayView2<f32>` in `(row, col)` layout, reject non-finite pixels, and run
//! over rows with rayon's global pool.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN along with non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod error;
pub mod gaussian;
pub mod morphology;
pub mod noise;
pub mod profile;
pub mod vesselness;

pub use error::{FilterError, Result};
pub use gaussian::{gaussian_blur, gaussian_kernel};
pub use morphology::{dilate, erode, flatten_background, morphological_background};
pub use noise::{NoiseModel, estimate_noise_model, stabilise_variance};
pub use profile::{bilinear, derivatives_1d, smooth_1d};
pub use vesselness::{
    Method, Polarity, SamplingOptions, Vesselness, VesselnessOptions, eigen2_sym, frangi_2d, hessian, jerman_2d,
    radius_from_sigma, vesselness, vesselness_with_sampling,
};
