//! Vessel mask from one frame: background flattening (top-hat), multi-scale vesselness, hysteresis
//! on both, connectivity to the largest components or to a seed, hole filling and small-object
//! removal.

use crate::error::{Result, check_image};
use crate::mask::{fill_holes, paint_runs, run_components, standard};
use crate::unet::UnetModel;
use ndarray::{Array2, ArrayView2, Zip};
use vesselkit_core::Point;
use vesselkit_filters::{
    Polarity, VesselnessOptions, estimate_noise_model, flatten_background, gaussian_blur, morphological_background,
    stabilise_variance, vesselness,
};

/// Options of [`segment`]. Thresholds are relative to robust image statistics so that they hold
/// across intensity scales; the defaults were tuned on the DCA1 training images only.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentOptions {
    pub vesselness: VesselnessOptions,
    /// Half-side (px) of the square closing that estimates the background; must exceed the
    /// largest vessel radius. 0 disables flattening (the vesselness alone decides).
    pub background_radius_px: usize,
    /// Gaussian sigma (px) applied to the top-hat before thresholding (noise).
    pub tophat_sigma_px: f32,
    /// Seed pixels: vesselness above this fraction of its 99.5th percentile and top-hat above
    /// `high_contrast`.
    pub high_vesselness: f32,
    /// Grown pixels also need vesselness above this fraction of its 99.5th percentile (0 = off).
    pub low_vesselness: f32,
    /// Top-hat contrast thresholds in units of the top-hat's 99th percentile: seeds need
    /// `high_contrast`, the mask grows from the seeds over pixels above `low_contrast`.
    pub high_contrast: f32,
    pub low_contrast: f32,
    /// Components smaller than this are dropped (px).
    pub min_object_px: usize,
    /// Holes up to this size are filled (px).
    pub max_hole_px: usize,
    /// Keep only components holding at least this fraction of the largest component's area
    /// (0 keeps all that pass `min_object_px`).
    pub min_component_fraction: f32,
    /// Optional seed: keep only the component that contains (or is nearest to) this point.
    pub seed: Option<Point>,
    /// Find a shutter or image-intensifier mask (a flat region at the intensity extreme touching
    /// the border, covering at least 1 % of the frame), fill it smoothly from the inside before
    /// filtering and ignore responses within `2 * max sigma + 2` px of it (see [`crate::fov`]).
    pub field_of_view: bool,
    /// Filter a variance-stabilised copy of the frame (the generalised Anscombe transform of
    /// a Poisson-Gaussian noise model fitted on it, see
    /// [`vesselkit_filters::estimate_noise_model`]), so that the thresholds act on
    /// contrast-to-noise: in raw counts a vessel over a dense background (the diaphragm) has
    /// less contrast than over the lung. Frames whose noise does not grow with the signal are
    /// filtered as they are. Only the mask comes from the stabilised frame; diameters are
    /// measured on the frame itself.
    pub stabilise_noise: bool,
    /// Take the mask from a learned model instead of the filters' hysteresis (see
    /// [`LearnedMask`]); hole filling, small-object removal and the seed still apply, and the
    /// filter maps are still returned.
    pub learned: Option<LearnedMask>,
}

/// A learned segmenter and the probability above which a pixel is vessel.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedMask {
    pub model: std::sync::Arc<UnetModel>,
    pub threshold: f32,
}

impl LearnedMask {
    /// Probability threshold of [`Self::dca1`], picked on the DCA1 training images 33 to 40
    /// while the model was fitted on 1 to 32 (0.3 to 0.6 were within 0.003 of one another).
    pub const DCA1_THRESHOLD: f32 = 0.5;

    /// [`UnetModel::dca1`] at [`Self::DCA1_THRESHOLD`].
    pub fn dca1() -> Result<Self> {
        Ok(Self {
            model: UnetModel::dca1()?,
            threshold: Self::DCA1_THRESHOLD,
        })
    }

    /// The model of a weight file from `scripts/train_unet.py` ([`UnetModel::from_path`]) at
    /// `threshold`.
    pub fn from_path(path: &std::path::Path, threshold: f32) -> Result<Self> {
        Ok(Self {
            model: std::sync::Arc::new(UnetModel::from_path(path)?),
            threshold,
        })
    }

    /// The segmenter a user names, as the CLI, Python and C take it: `"filters"` (no learned
    /// mask: `None`), `"unet-dca1"` (case and `_` for `-` aside), or the path of a weight file
    /// from `scripts/train_unet.py`; at `threshold`. Anything else is an error that says so.
    pub fn by_name(name: &str, threshold: f32) -> Result<Option<Self>> {
        let model = match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "filters" => return Ok(None),
            "unet-dca1" => UnetModel::dca1()?,
            _ if std::path::Path::new(name).is_file() => {
                return Self::from_path(std::path::Path::new(name), threshold)
                    .map(Some)
                    .map_err(|e| crate::error::AngioError::invalid("segmenter", format!("{name}: {e}")));
            }
            _ => {
                return Err(crate::error::AngioError::invalid(
                    "segmenter",
                    format!("unknown value {name:?}; expected \"filters\", \"unet-dca1\" or the path of a weight file"),
                ));
            }
        };
        Ok(Some(Self { model, threshold }))
    }
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            vesselness: VesselnessOptions::default(),
            background_radius_px: 10,
            tophat_sigma_px: 1.5,
            high_vesselness: 0.15,
            low_vesselness: 0.03,
            high_contrast: 0.5,
            low_contrast: 0.2,
            min_object_px: 60,
            max_hole_px: 30,
            min_component_fraction: 0.0,
            seed: None,
            field_of_view: true,
            stabilise_noise: true,
            learned: None,
        }
    }
}

impl SegmentOptions {
    /// Smallest and largest lumen radius (mm) that [`SegmentOptions::for_scale`] targets
    /// (pulmonary segmental/subsegmental branches up to lobar arteries).
    pub const SCALE_RADIUS_MM: (f64, f64) = (0.5, 6.0);
    /// Scale-aware defaults for a calibrated frame: vesselness sigmas form a geometric series of
    /// [`Self::SCALE_COUNT`] scales covering [`Self::SCALE_RADIUS_MM`], with
    /// `sigma_px = r_mm / mm_per_px / 1.19` (the Frangi response of a bar of radius `r` peaks
    /// near `sigma = r / 1.19`), clamped to `[1, MAX_SIGMA_PX]` px; the background window
    /// exceeds the largest radius by half. Returns `None` when `mm_per_px` is not a finite value
    /// > 0 (uncalibrated frames keep the px defaults).
    pub fn for_scale(mm_per_px: f64) -> Option<Self> {
        if !(mm_per_px.is_finite() && mm_per_px > 0.0) {
            return None;
        }
        let (r0, r1) = Self::SCALE_RADIUS_MM;
        let to_sigma = |r_mm: f64| (r_mm / mm_per_px / 1.19).clamp(1.0, Self::MAX_SIGMA_PX);
        let (s0, s1) = (to_sigma(r0), to_sigma(r1));
        let n = Self::SCALE_COUNT;
        let mut sigmas: Vec<f32> = (0..n)
            .map(|i| (s0 * (s1 / s0).powf(i as f64 / (n - 1) as f64)) as f32)
            .collect();
        sigmas.dedup_by(|a, b| (*a - *b).abs() < 0.25);
        let r_max_px = s1 * 1.19;
        let mut o = Self::default();
        o.vesselness.sigmas_px = sigmas;
        o.background_radius_px = ((1.5 * r_max_px).ceil() as usize).clamp(5, Self::MAX_BACKGROUND_PX);
        Some(o)
    }
    /// Number of vesselness scales chosen by [`Self::for_scale`].
    pub const SCALE_COUNT: usize = 6;
    /// Cap of the largest sigma (px) chosen by [`Self::for_scale`]: on the pulmonary phantoms
    /// (0.2 mm/px) a cap of 24 px lowered mask Dice to 0.72-0.80, 10 px gave 0.84-0.93.
    pub const MAX_SIGMA_PX: f64 = 10.0;
    /// Cap of the background window (px) chosen by [`Self::for_scale`].
    pub const MAX_BACKGROUND_PX: usize = 32;

    /// Tuned on the DCA1 training images by coordinate descent (`examples/dca1_tune.rs`) (300 x 300 coronary angiograms, vessels up to ~6 px
    /// radius, strong noise): a smaller background window and stricter growth. The general
    /// defaults grow further so that severe stenoses (low contrast) stay connected.
    pub fn dca1() -> Self {
        Self {
            background_radius_px: 8,
            tophat_sigma_px: 0.5,
            high_vesselness: 0.05,
            low_vesselness: 0.01,
            high_contrast: 0.4,
            low_contrast: 0.4,
            min_object_px: 200,
            min_component_fraction: 0.05,
            ..Self::default()
        }
    }
}

/// Result of [`segment`]: the mask and the filter maps it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    pub mask: Array2<bool>,
    pub vesselness: Array2<f32>,
    /// Best vesselness scale sigma (px); a radius estimate is `sqrt(2) * sigma`.
    pub scale_px: Array2<f32>,
    /// Top-hat vessel contrast (intensity units, >= 0); all zero when flattening is off.
    pub contrast: Array2<f32>,
}

/// The value below which `q` of the finite values lie (on a sorted copy of a subsample).
pub(crate) fn quantile(a: &Array2<f32>, q: f32) -> f32 {
    let step = (a.len() / 200_000).max(1);
    let mut v: Vec<f32> = match a.as_slice() {
        Some(px) => px.iter().step_by(step).copied().collect(),
        None => a.iter().step_by(step).copied().collect(),
    };
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    *x
}

/// Grow the seeds (state 2) over the growth region (state >= 1), 8-connected: the components
/// of the region that hold a seed.
fn hysteresis(state: &Array2<u8>) -> Array2<bool> {
    let dim = state.dim();
    let st = standard(state);
    let rc = run_components(&st, dim, true, |s| s != 0);
    let mut seeded = vec![false; rc.sizes.len()];
    for (&(r, s0, e), &c) in rc.runs.iter().zip(&rc.comp) {
        if st[r * dim.1 + s0..r * dim.1 + e].contains(&2) {
            seeded[c as usize] = true;
        }
    }
    let mut mask = Array2::from_elem(dim, false);
    paint_runs(&mut mask, &rc, true, |c| seeded[c]);
    mask
}

fn validate(o: &SegmentOptions, dim: (usize, usize)) -> Result<()> {
    use crate::error::AngioError;
    for (field, v) in [
        ("high_vesselness", o.high_vesselness),
        ("low_vesselness", o.low_vesselness),
        ("high_contrast", o.high_contrast),
        ("low_contrast", o.low_contrast),
        ("min_component_fraction", o.min_component_fraction),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(AngioError::invalid(
                field,
                format!("must be a finite value >= 0, got {v}"),
            ));
        }
    }
    if let Some(l) = &o.learned
        && !(l.threshold > 0.0 && l.threshold < 1.0)
    {
        return Err(AngioError::invalid(
            "learned.threshold",
            format!("must lie strictly between 0 and 1, got {}", l.threshold),
        ));
    }
    if o.low_contrast > o.high_contrast {
        return Err(AngioError::invalid(
            "low_contrast",
            format!("{} exceeds high_contrast {}", o.low_contrast, o.high_contrast),
        ));
    }
    if !(o.tophat_sigma_px.is_finite() && o.tophat_sigma_px >= 0.0) {
        return Err(AngioError::invalid(
            "tophat_sigma_px",
            format!("must be >= 0, got {}", o.tophat_sigma_px),
        ));
    }
    if let Some(s) = o.seed
        && !(s.row >= 0.0 && s.col >= 0.0 && s.row < dim.0 as f64 && s.col < dim.1 as f64)
    {
        return Err(AngioError::invalid(
            "seed",
            format!("({}, {}) is outside the {} x {} image", s.row, s.col, dim.0, dim.1),
        ));
    }
    Ok(())
}

/// Segment vessels in one frame (dark vessels by default; see `vesselness.polarity`).
pub fn segment(img: ArrayView2<f32>, opts: &SegmentOptions) -> Result<Segmentation> {
    check_image("image", &img)?;
    validate(opts, img.dim())?;
    let maps = filter_maps(img, opts)?;
    let mut mask = match &opts.learned {
        Some(l) => {
            // p > t  <=>  logit > ln(t / (1 - t))
            let z = (l.threshold / (1.0 - l.threshold)).ln();
            learned_logits(img, Some(&maps), l, opts)?.mapv(|v| v > z)
        }
        None => hysteresis_mask(&maps, opts),
    };
    fill_holes(&mut mask, opts.max_hole_px);
    keep_components(&mut mask, opts.min_object_px, opts.min_component_fraction, opts.seed);
    Ok(Segmentation {
        mask,
        vesselness: maps.vesselness,
        scale_px: maps.scale_px,
        contrast: maps.contrast,
    })
}

/// The filters' maps of one frame (see [`Segmentation`]).
struct Maps {
    vesselness: Array2<f32>,
    scale_px: Array2<f32>,
    contrast: Array2<f32>,
}

/// The filter settings whose maps a 3-input model takes (the ones it was trained with, see
/// [`crate::unet::filter_features`]): the DCA1 preset, in the caller's polarity.
fn feature_options(polarity: Polarity) -> SegmentOptions {
    let mut o = SegmentOptions::dca1();
    o.vesselness.polarity = polarity;
    o
}

/// Whether two option sets give the same filter maps (mask settings aside).
fn same_maps(a: &SegmentOptions, b: &SegmentOptions) -> bool {
    a.vesselness == b.vesselness
        && a.background_radius_px == b.background_radius_px
        && a.tophat_sigma_px == b.tophat_sigma_px
        && a.field_of_view == b.field_of_view
        && a.stabilise_noise == b.stabilise_noise
}

/// The model's logits (the model expects dark vessels; a model of 3 inputs also takes the
/// maps of [`feature_options`], reused from `maps` when `opts` gives the same maps).
fn learned_logits(
    img: ArrayView2<f32>,
    maps: Option<&Maps>,
    l: &LearnedMask,
    opts: &SegmentOptions,
) -> Result<Array2<f32>> {
    let polarity = opts.vesselness.polarity;
    let features = if l.model.inputs() > 1 {
        let preset = feature_options(polarity);
        let own;
        let m = match maps {
            Some(m) if same_maps(opts, &preset) => m,
            _ => {
                own = filter_maps(img, &preset)?;
                &own
            }
        };
        crate::unet::filter_features(&m.vesselness, &m.contrast).to_vec()
    } else {
        Vec::new()
    };
    let views: Vec<ArrayView2<f32>> = features.iter().map(|f| f.view()).collect();
    match polarity {
        Polarity::DarkOnBright => l.model.logits_with(img, &views),
        Polarity::BrightOnDark => l.model.logits_with(img.mapv(|v| -v).view(), &views),
    }
}

/// The learned model's vessel probability (0 to 1) per pixel, before any threshold; `opts`
/// must name a model in `learned`.
pub fn learned_probability(img: ArrayView2<f32>, opts: &SegmentOptions) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    validate(opts, img.dim())?;
    let Some(l) = &opts.learned else {
        return Err(crate::error::AngioError::invalid("learned", "no model given"));
    };
    Ok(learned_logits(img, None, l, opts)?.mapv(|z| 1.0 / (1.0 + (-z).exp())))
}

/// The vesselness (with its best scale) and top-hat contrast of a frame, after the noise
/// stabilisation and with the field of view's rim cleared.
fn filter_maps(img: ArrayView2<f32>, opts: &SegmentOptions) -> Result<Maps> {
    let outside = if opts.field_of_view {
        crate::fov::outside_field_of_view(img, 0.01)
    } else {
        None
    };
    let model = if opts.stabilise_noise {
        estimate_noise_model(img, outside.as_ref())?
    } else {
        None
    };
    let stabilised = model.map(|m| stabilise_variance(img, &m)).transpose()?;
    let img = stabilised.as_ref().map_or(img, |s| s.view());
    let filled = outside.as_ref().map(|o| crate::fov::fill_outside(img, o));
    let img = filled.as_ref().map_or(img, |f| f.view());
    // The two filters are independent: run them side by side (each is parallel inside too).
    let (v, contrast) = rayon::join(
        || vesselness(img, &opts.vesselness),
        || -> Result<Array2<f32>> {
            if opts.background_radius_px == 0 {
                return Ok(Array2::zeros(img.dim()));
            }
            let t = top_hat(img, opts.background_radius_px, opts.vesselness.polarity)?;
            Ok(if opts.tophat_sigma_px > 0.0 {
                gaussian_blur(t.view(), opts.tophat_sigma_px)?
            } else {
                t
            })
        },
    );
    let (mut v, mut contrast) = (v?, contrast?);
    if let Some(o) = &outside {
        let max_sigma = opts.vesselness.sigmas_px.iter().copied().fold(1f32, f32::max);
        let margin = (2.0 * max_sigma).ceil() as usize + 2;
        let near = crate::fov::grow(o, margin);
        Zip::from(&mut v.response)
            .and(&mut contrast)
            .and(&near)
            .par_for_each(|r, c, &n| {
                if n {
                    *r = 0.0;
                    *c = 0.0;
                }
            });
    }
    Ok(Maps {
        vesselness: v.response,
        scale_px: v.scale_px,
        contrast,
    })
}

/// Hysteresis on the maps: seeds above the high thresholds grown over pixels above the low ones
/// (before hole filling and component choice).
fn hysteresis_mask(maps: &Maps, opts: &SegmentOptions) -> Array2<bool> {
    let (v, contrast) = (&maps.vesselness, &maps.contrast);
    let state = {
        let flatten = opts.background_radius_px > 0;
        let (v_ref, c_ref) = rayon::join(
            || quantile(v, 0.995).max(f32::MIN_POSITIVE),
            || {
                if flatten {
                    quantile(contrast, 0.99).max(f32::MIN_POSITIVE)
                } else {
                    0.0
                }
            },
        );
        let hv = opts.high_vesselness * v_ref;
        let lv = opts.low_vesselness * v_ref;
        // Per pixel: 0 outside the growth region, 1 inside it, 2 for a seed inside it.
        let mut state = Array2::<u8>::zeros(v.dim());
        if flatten {
            let (hc, lc) = (opts.high_contrast * c_ref, opts.low_contrast * c_ref);
            Zip::from(&mut state).and(v).and(contrast).par_for_each(|s, &vv, &cc| {
                let allowed = cc >= lc && vv >= lv;
                *s = allowed as u8 * (1 + (vv >= hv && cc >= hc) as u8);
            });
        } else {
            let lo = (hv * opts.low_contrast / opts.high_contrast.max(f32::MIN_POSITIVE)).max(lv);
            Zip::from(&mut state).and(v).par_for_each(|s, &vv| {
                *s = (vv >= lo) as u8 * (1 + (vv >= hv) as u8);
            });
        }
        state
    };
    hysteresis(&state)
}

/// Background radius (px) from which [`top_hat`] works on a 2x pooled grid.
const POOLED_BACKGROUND_FROM_PX: usize = 12;

/// Vessel contrast over the morphological background (closing for dark vessels, opening for
/// bright ones). The background is smooth on the scale of the window, so for large windows it is
/// estimated on a 2x grid pooled towards the background (max of each 2x2 block for dark vessels,
/// min for bright) with a half-size window, then upsampled bilinearly: a quarter of the pixels
/// and half the window per pass.
fn top_hat(img: ArrayView2<f32>, radius_px: usize, polarity: Polarity) -> Result<Array2<f32>> {
    let (rows, cols) = img.dim();
    if radius_px < POOLED_BACKGROUND_FROM_PX || rows < 4 || cols < 4 {
        return Ok(flatten_background(img, radius_px, polarity)?);
    }
    let dark = matches!(polarity, Polarity::DarkOnBright);
    map_over_background(img, radius_px, polarity, |back, x| {
        if dark { back - x } else { x - back }.max(0.0)
    })
}

/// The frame divided by its morphological background (closing for dark vessels, opening for
/// bright ones; pooled as in [`top_hat`] for large windows), times the frame's mean: the
/// vessels stay, the large structures under them (the diaphragm's or the heart's border, lung
/// density) go. Pixels where the background is not positive keep their value.
pub(crate) fn divide_by_background(img: ArrayView2<f32>, radius_px: usize, polarity: Polarity) -> Result<Array2<f32>> {
    let (rows, cols) = img.dim();
    let mean = (img.iter().map(|&v| v as f64).sum::<f64>() / (rows * cols).max(1) as f64) as f32;
    let ratio = move |back: f32, x: f32| if back > 0.0 { x * (mean / back) } else { x };
    if radius_px < POOLED_BACKGROUND_FROM_PX || rows < 4 || cols < 4 {
        let mut out = morphological_background(img, radius_px, polarity)?;
        Zip::from(&mut out).and(&img).par_for_each(|b, &x| *b = ratio(*b, x));
        return Ok(out);
    }
    map_over_background(img, radius_px, polarity, ratio)
}

/// `f(background, pixel)` over the frame, the background estimated on a 2x grid pooled
/// towards it with a half-size window and upsampled bilinearly (see [`top_hat`]).
fn map_over_background(
    img: ArrayView2<f32>,
    radius_px: usize,
    polarity: Polarity,
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Result<Array2<f32>> {
    let (rows, cols) = img.dim();
    let dark = matches!(polarity, Polarity::DarkOnBright);
    let (cr, cc) = (rows.div_ceil(2), cols.div_ceil(2));
    use rayon::prelude::*;
    let mut pooled = Array2::<f32>::zeros((cr, cc));
    pooled
        .axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut out)| {
            let (r0, r1) = (2 * i, (2 * i + 1).min(rows - 1));
            let (top, bot) = (img.row(r0), img.row(r1));
            for (j, o) in out.iter_mut().enumerate() {
                let (c0, c1) = (2 * j, (2 * j + 1).min(cols - 1));
                let v = [top[c0], top[c1], bot[c0], bot[c1]];
                *o = if dark {
                    v.into_iter().fold(f32::MIN, f32::max)
                } else {
                    v.into_iter().fold(f32::MAX, f32::min)
                };
            }
        });
    let bg = morphological_background(pooled.view(), radius_px.div_ceil(2), polarity)?;
    // Full-res pixel i sits at coarse coordinate (i - 0.5) / 2.
    let coord = |i: usize, n: usize| {
        let x = ((i as f32 - 0.5) * 0.5).clamp(0.0, (n - 1) as f32);
        let i0 = (x as usize).min(n.saturating_sub(2));
        (i0, (i0 + 1).min(n - 1), x - i0 as f32)
    };
    let col_w: Vec<(usize, usize, f32)> = (0..cols).map(|j| coord(j, cc)).collect();
    // Each coarse row interpolated along columns once, then every output row blends two of
    // them (the same arithmetic, in the same order, as interpolating pixel by pixel).
    let mut wide = Array2::<f32>::zeros((cr, cols));
    wide.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(bg.axis_iter(ndarray::Axis(0)).into_par_iter())
        .for_each(|(mut out, brow)| {
            for (o, &(c0, c1, fc)) in out.iter_mut().zip(&col_w) {
                *o = brow[c0] + (brow[c1] - brow[c0]) * fc;
            }
        });
    let mut out = Array2::<f32>::zeros((rows, cols));
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(img.axis_iter(ndarray::Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(i, (mut row, src))| {
            let (a, b, fr) = coord(i, cr);
            let (top, bot) = (wide.row(a), wide.row(b));
            let blend = |v: &mut f32, t: f32, b: f32, x: f32| {
                *v = f(t + (b - t) * fr, x);
            };
            match (row.as_slice_mut(), top.as_slice(), bot.as_slice(), src.as_slice()) {
                (Some(o), Some(t), Some(bt), Some(x)) => {
                    for (((v, &t), &b), &x) in o.iter_mut().zip(t).zip(bt).zip(x) {
                        blend(v, t, b, x);
                    }
                }
                _ => {
                    for (((v, &t), &b), &x) in row.iter_mut().zip(top.iter()).zip(bot.iter()).zip(src.iter()) {
                        blend(v, t, b, x);
                    }
                }
            }
        });
    Ok(out)
}

/// Drop components smaller than `min_px`, then keep the seed's component (or the nearest one),
/// or the components above a fraction of the largest; one labelling serves both steps.
fn keep_components(mask: &mut Array2<bool>, min_px: usize, min_fraction: f32, seed: Option<Point>) {
    let rc = run_components(&standard(mask), mask.dim(), true, |v| v);
    let alive: Vec<bool> = rc.sizes.iter().map(|&n| min_px <= 1 || n >= min_px).collect();
    let keep: Vec<bool> = if !alive.iter().any(|&a| a) {
        alive
    } else if let Some(s) = seed {
        // Nearest pixel in raster order of first occurrence.
        let mut best = (f64::INFINITY, 0usize);
        for (&(r, s0, e), &c) in rc.runs.iter().zip(&rc.comp) {
            if !alive[c as usize] {
                continue;
            }
            for col in s0..e {
                let d = (r as f64 - s.row).hypot(col as f64 - s.col);
                if d < best.0 {
                    best = (d, c as usize);
                }
            }
        }
        (0..rc.sizes.len()).map(|c| c == best.1).collect()
    } else {
        let largest = rc
            .sizes
            .iter()
            .zip(&alive)
            .filter(|p| *p.1)
            .map(|p| *p.0)
            .max()
            .unwrap_or(0);
        let min = (min_fraction as f64 * largest as f64).ceil() as usize;
        rc.sizes.iter().zip(&alive).map(|(&n, &a)| a && n >= min).collect()
    };
    paint_runs(mask, &rc, false, |c| !keep[c]);
}

/// Dice overlap `2|A & B| / (|A| + |B|)` (1 when both are empty).
pub fn dice(a: &Array2<bool>, b: &Array2<bool>) -> f64 {
    let (mut inter, mut na, mut nb) = (0usize, 0usize, 0usize);
    Zip::from(a).and(b).for_each(|&x, &y| {
        inter += (x && y) as usize;
        na += x as usize;
        nb += y as usize;
    });
    if na + nb == 0 {
        1.0
    } else {
        2.0 * inter as f64 / (na + nb) as f64
    }
}

/// Polarity helper for callers that only know "dark vessels?".
pub fn polarity(dark_vessels: bool) -> Polarity {
    if dark_vessels {
        Polarity::DarkOnBright
    } else {
        Polarity::BrightOnDark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_top_hat_matches_the_full_resolution_one() {
        // Dark bar 7 px wide on a tilted, curved background: the pooled top-hat keeps the bar's
        // contrast (100) and leaves the background near zero, like the exact one.
        let img = Array2::from_shape_fn((120, 130), |(r, c)| {
            let bg = 1000.0 + 2.0 * r as f32 + 0.01 * ((c as f32) - 60.0).powi(2);
            if (57..64).contains(&c) { bg - 100.0 } else { bg }
        });
        for polarity in [Polarity::DarkOnBright, Polarity::BrightOnDark] {
            let src = if polarity == Polarity::DarkOnBright {
                img.clone()
            } else {
                img.mapv(|v| 3000.0 - v)
            };
            let exact = flatten_background(src.view(), 12, polarity).unwrap();
            let fast = top_hat(src.view(), 12, polarity).unwrap();
            for r in 20..100 {
                assert!(
                    (fast[[r, 60]] - exact[[r, 60]]).abs() < 4.0,
                    "{polarity:?} row {r}: {} vs {}",
                    fast[[r, 60]],
                    exact[[r, 60]]
                );
                assert!(
                    (fast[[r, 60]] - 100.0).abs() < 5.0,
                    "{polarity:?} row {r}: {}",
                    fast[[r, 60]]
                );
                assert!(fast[[r, 20]] < 5.0 && fast[[r, 100]] < 5.0, "{polarity:?} row {r}");
            }
        }
    }

    #[test]
    fn run_based_hysteresis_and_component_selection_match_flood_fill() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n8 = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];
        // Reference: 8-connected flood fill from every seed; component sizes by flood fill.
        let flood = |m: &Array2<bool>, starts: &[(usize, usize)]| -> Array2<bool> {
            let (rows, cols) = m.dim();
            let mut out = Array2::from_elem(m.dim(), false);
            let mut stack: Vec<(usize, usize)> = starts.iter().copied().filter(|&p| m[p]).collect();
            stack.iter().for_each(|&p| out[p] = true);
            while let Some((r, c)) = stack.pop() {
                for (dr, dc) in n8 {
                    let (y, x) = (r as isize + dr, c as isize + dc);
                    if y >= 0 && x >= 0 && (y as usize) < rows && (x as usize) < cols {
                        let q = (y as usize, x as usize);
                        if m[q] && !out[q] {
                            out[q] = true;
                            stack.push(q);
                        }
                    }
                }
            }
            out
        };
        for density in [0.35, 0.5, 0.6] {
            let state = Array2::from_shape_fn((41, 57), |_| {
                if rng.random_bool(density) {
                    if rng.random_bool(0.02) { 2u8 } else { 1 }
                } else {
                    0
                }
            });
            let allowed = state.mapv(|s| s != 0);
            let seeds: Vec<(usize, usize)> = state.indexed_iter().filter(|p| *p.1 == 2).map(|p| p.0).collect();
            let grown = hysteresis(&state);
            assert_eq!(grown, flood(&allowed, &seeds), "density {density}");
            // Component selection: drop small pieces, keep those above half the largest, or
            // the one nearest to a seed point.
            let comp_of = |p: (usize, usize)| flood(&grown, &[p]);
            let pixels: Vec<(usize, usize)> = grown.indexed_iter().filter(|p| *p.1).map(|p| p.0).collect();
            let sizes: Vec<usize> = pixels
                .iter()
                .map(|&p| comp_of(p).iter().filter(|&&v| v).count())
                .collect();
            let largest = sizes.iter().copied().filter(|&n| n >= 5).max().unwrap_or(0);
            let mut expect = grown.clone();
            for (&p, &n) in pixels.iter().zip(&sizes) {
                expect[p] = n >= 5 && 2 * n >= largest;
            }
            let mut got = grown.clone();
            keep_components(&mut got, 5, 0.5, None);
            assert_eq!(got, expect, "density {density}");
            let at = Point::new(20.3, 30.7);
            let nearest = pixels
                .iter()
                .zip(&sizes)
                .filter(|p| *p.1 >= 5)
                .map(|p| *p.0)
                .min_by(|a, b| {
                    let d = |q: &(usize, usize)| (q.0 as f64 - at.row).hypot(q.1 as f64 - at.col);
                    d(a).total_cmp(&d(b))
                });
            let expect = nearest.map_or_else(|| Array2::from_elem(grown.dim(), false), &comp_of);
            let mut got = grown.clone();
            keep_components(&mut got, 5, 0.0, Some(at));
            assert_eq!(got, expect, "density {density}");
        }
    }

    #[test]
    fn for_scale_covers_physical_radii() {
        // 0.2 mm/px: 0.5 mm -> 2.10 px, 6 mm -> 25.2 px capped at 10; background 1.5 * 10 * 1.19.
        let o = SegmentOptions::for_scale(0.2).unwrap_or_default();
        let s = &o.vesselness.sigmas_px;
        assert_eq!(s.len(), SegmentOptions::SCALE_COUNT);
        assert!((s[0] - 0.5 / 0.2 / 1.19).abs() < 1e-3, "{s:?}");
        assert!((s[s.len() - 1] - 10.0).abs() < 1e-3, "{s:?}");
        assert!(s.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(o.background_radius_px, 18);
        // Coarse pixels: small radii clamp to 1 px and duplicates merge.
        let c = SegmentOptions::for_scale(3.0).unwrap_or_default();
        assert_eq!(c.vesselness.sigmas_px[0], 1.0);
        assert!(c.vesselness.sigmas_px.len() < SegmentOptions::SCALE_COUNT);
        assert!(SegmentOptions::for_scale(0.0).is_none());
        assert!(SegmentOptions::for_scale(f64::NAN).is_none());
    }
}
