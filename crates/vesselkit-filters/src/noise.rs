//! Signal-dependent noise: a Poisson-Gaussian model fitted on one frame, and the variance
//! stabilising transform it implies.
//!
//! X-ray quantum noise grows with the counts (variance proportional to the signal) while the
//! detector's electronic noise does not, so in a raw frame a vessel over a dark, dense
//! background (the diaphragm or the heart) shows a lower contrast against a lower noise than the
//! same vessel over the lung. Thresholds set on the frame's contrast distribution then drop it.
//! The generalised Anscombe transform `T(I) = 2 sqrt((I + a/b) / b)` of the fitted model
//! `var(I) = a + b I` makes the noise the same everywhere, so those thresholds act on
//! contrast-to-noise instead. A frame whose noise does not grow with the signal (already
//! log-compressed or heavily processed) gets no model and is left as it is.

use crate::{Result, gaussian::check_image};
use ndarray::{Array2, ArrayView2, Zip};

/// `var(I) = offset + gain * I`, in squared intensity units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    /// Signal-independent variance (electronic noise); may come out slightly negative when the
    /// frame has a pedestal.
    pub offset: f64,
    /// Variance per intensity unit (quantum noise), > 0.
    pub gain: f64,
}

impl NoiseModel {
    /// The noise SD the model gives at intensity `i`.
    pub fn sd_at(&self, i: f64) -> f64 {
        (self.offset + self.gain * i).max(0.0).sqrt()
    }
}

/// Pixels sampled for the fit (16 bins of 4096): enough for a variance to 2 % per bin.
const TARGET_SAMPLES: usize = 65_536;
/// Intensity bins over which the local variance is measured.
const BINS: usize = 16;
/// Fewest sampled pixels a bin needs.
const MIN_BIN_PX: usize = 64;
/// Fraction of the largest residuals of each bin left out (vessel edges and texture).
const TRIM: f64 = 0.1;
/// Variance of a unit Gaussian truncated to its central 90 %: the trimmed mean square is this
/// fraction of the full variance (1 - 2 z phi(z) / (2 Phi(z) - 1), z = 1.645).
const TRIMMED_VARIANCE: f64 = 0.6232;
/// Noise SD between the 10th and 90th intensity percentiles must grow by at least this factor
/// for a model to be returned: below it the frame's noise is flat and the transform would only
/// bend the intensity scale.
const MIN_SD_GROWTH: f64 = 1.1;

/// Fits [`NoiseModel`] on `img` from the residual of each pixel against the mean of its four
/// neighbours (white noise of SD s leaves a residual of SD s * sqrt(5/4)), binned by the local
/// intensity (5 x 5 mean) on a lattice of about 65 000 pixels (every other row and column at
/// least). Pixels where `exclude` is true
/// (outside the field of view) are left out. `None` when the noise does not grow with the
/// signal, or the frame is too small or too flat to tell.
pub fn estimate_noise_model(img: ArrayView2<f32>, exclude: Option<&Array2<bool>>) -> Result<Option<NoiseModel>> {
    check_image("image", &img)?;
    let (rows, cols) = img.dim();
    if let Some(e) = exclude
        && e.dim() != img.dim()
    {
        return Err(crate::FilterError::shape(
            "exclude",
            format!("{:?} for an image of {:?}", e.dim(), img.dim()),
        ));
    }
    if rows < 16 || cols < 16 {
        return Ok(None);
    }
    // (local mean, residual) on a lattice clear of the border, spaced for about
    // `TARGET_SAMPLES` samples (every other pixel at least).
    let step = (((rows * cols) as f64 / TARGET_SAMPLES as f64).sqrt() as usize).max(2);
    let mut samples: Vec<(f64, f64)> = Vec::with_capacity((rows / step + 1) * (cols / step + 1));
    for r in (2..rows - 2).step_by(step) {
        for c in (2..cols - 2).step_by(step) {
            if exclude.is_some_and(|e| e[[r, c]]) {
                continue;
            }
            let at = |dr: isize, dc: isize| img[[(r as isize + dr) as usize, (c as isize + dc) as usize]] as f64;
            let mut sum = 0.0;
            for dr in -2..=2 {
                for dc in -2..=2 {
                    sum += at(dr, dc);
                }
            }
            let resid = at(0, 0) - 0.25 * (at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1));
            samples.push((sum / 25.0, resid));
        }
    }
    if samples.len() < BINS * MIN_BIN_PX {
        return Ok(None);
    }
    samples.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Equal-count bins between the 1st and 99th percentiles of the local mean.
    let (lo, hi) = (samples.len() / 100, samples.len() - samples.len() / 100);
    let per_bin = (hi - lo) / BINS;
    let mut means = Vec::with_capacity(BINS);
    let mut vars = Vec::with_capacity(BINS);
    let mut sq: Vec<f64> = Vec::with_capacity(per_bin);
    for k in 0..BINS {
        let bin = &samples[lo + k * per_bin..lo + (k + 1) * per_bin];
        sq.clear();
        sq.extend(bin.iter().map(|s| s.1 * s.1));
        let keep = ((1.0 - TRIM) * sq.len() as f64) as usize;
        if keep < MIN_BIN_PX {
            continue;
        }
        sq.select_nth_unstable_by(keep - 1, f64::total_cmp);
        let trimmed = sq[..keep].iter().sum::<f64>() / keep as f64;
        means.push(bin.iter().map(|s| s.0).sum::<f64>() / bin.len() as f64);
        vars.push(trimmed / TRIMMED_VARIANCE / 1.25);
    }
    if means.len() < 3 {
        return Ok(None);
    }
    // Least squares var = offset + gain * mean.
    let n = means.len() as f64;
    let mx = means.iter().sum::<f64>() / n;
    let my = vars.iter().sum::<f64>() / n;
    let sxx: f64 = means.iter().map(|x| (x - mx) * (x - mx)).sum();
    let sxy: f64 = means.iter().zip(&vars).map(|(x, y)| (x - mx) * (y - my)).sum();
    if !(sxx > 0.0) {
        return Ok(None);
    }
    let gain = sxy / sxx;
    let offset = my - gain * mx;
    let model = NoiseModel { offset, gain };
    let (p10, p90) = (
        samples[samples.len() / 10].0,
        samples[samples.len() - 1 - samples.len() / 10].0,
    );
    let (s10, s90) = (model.sd_at(p10), model.sd_at(p90));
    if !(gain.is_finite() && offset.is_finite() && gain > 0.0 && s10 > 0.0 && s90 >= MIN_SD_GROWTH * s10) {
        return Ok(None);
    }
    Ok(Some(model))
}

/// The generalised Anscombe transform of `img` under `model`: `2 sqrt(max(I + offset/gain, 0)
/// / gain)`, whose noise SD is about 1 wherever the model holds. Monotone, so dark vessels stay
/// dark.
pub fn stabilise_variance(img: ArrayView2<f32>, model: &NoiseModel) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    if !(model.gain > 0.0 && model.gain.is_finite() && model.offset.is_finite()) {
        return Err(crate::FilterError::invalid(
            "model",
            format!(
                "gain {} and offset {} must be finite, gain > 0",
                model.gain, model.offset
            ),
        ));
    }
    let shift = model.offset / model.gain;
    let scale = 2.0 / model.gain.sqrt();
    let mut out = Array2::<f32>::zeros(img.dim());
    Zip::from(&mut out)
        .and(&img)
        .par_for_each(|o, &i| *o = (scale * (i as f64 + shift).max(0.0).sqrt()) as f32);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};
    use rand_distr::{Distribution, Normal, Poisson};

    /// A ramp from `lo` to `hi` counts across the columns, with Poisson noise and Gaussian
    /// electronic noise of SD `e`.
    fn noisy_ramp(lo: f64, hi: f64, e: f64, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let en = Normal::new(0.0, e).unwrap();
        Array2::from_shape_fn((256, 256), |(_, c)| {
            let lam = lo + (hi - lo) * c as f64 / 255.0;
            (Poisson::new(lam).unwrap().sample(&mut rng) + en.sample(&mut rng)) as f32
        })
    }

    #[test]
    fn poisson_gaussian_model_is_recovered() {
        let img = noisy_ramp(200.0, 1000.0, 6.0, 7);
        let m = estimate_noise_model(img.view(), None).unwrap().unwrap();
        // var = 36 + 1 * I.
        assert!((m.gain - 1.0).abs() < 0.06, "{m:?}");
        assert!((m.sd_at(600.0) - (636f64).sqrt()).abs() < 0.6, "{m:?}");
    }

    #[test]
    fn stabilised_noise_is_flat_and_near_one() {
        let img = noisy_ramp(100.0, 2000.0, 3.0, 11);
        let m = estimate_noise_model(img.view(), None).unwrap().unwrap();
        let t = stabilise_variance(img.view(), &m).unwrap();
        // SD of the 4-neighbour residual / sqrt(5/4) in the darkest and brightest column bands.
        let sd = |c0: usize| {
            let mut v = Vec::new();
            for r in 1..255 {
                for c in c0 + 1..c0 + 31 {
                    let x = t[[r, c]] as f64
                        - 0.25 * (t[[r - 1, c]] + t[[r + 1, c]] + t[[r, c - 1]] + t[[r, c + 1]]) as f64;
                    v.push(x);
                }
            }
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64 / 1.25).sqrt()
        };
        let (dark, bright) = (sd(0), sd(220));
        assert!(
            (dark - 1.0).abs() < 0.08 && (bright - 1.0).abs() < 0.08,
            "{dark} {bright}"
        );
    }

    #[test]
    fn flat_noise_gives_no_model() {
        let mut rng = StdRng::seed_from_u64(3);
        let en = Normal::new(0.0, 5.0).unwrap();
        let img = Array2::from_shape_fn((256, 256), |(_, c)| {
            (100.0 + 3.0 * c as f64 + en.sample(&mut rng)) as f32
        });
        assert_eq!(estimate_noise_model(img.view(), None).unwrap(), None);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut img = Array2::<f32>::from_elem((32, 32), 10.0);
        img[[3, 3]] = f32::NAN;
        assert!(estimate_noise_model(img.view(), None).is_err());
        let ok = Array2::<f32>::from_elem((32, 32), 10.0);
        let wrong = Array2::from_elem((8, 8), false);
        assert!(estimate_noise_model(ok.view(), Some(&wrong)).is_err());
        let bad = NoiseModel { offset: 1.0, gain: 0.0 };
        assert!(stabilise_variance(ok.view(), &bad).is_err());
        // Too small to tell.
        assert_eq!(
            estimate_noise_model(Array2::<f32>::zeros((8, 8)).view(), None).unwrap(),
            None
        );
    }
}
