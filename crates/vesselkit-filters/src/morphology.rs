//! Grey-level morphology with square structuring elements (van Herk / Gil-Werman: three
//! comparisons per pixel whatever the size) and background flattening for angiograms.

use crate::error::{FilterError, Result};
use crate::gaussian::check_image;
use crate::vesselness::Polarity;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Running min or max over windows of `2 * radius + 1` along one row (edges use the part of the
/// window inside the row).
#[allow(clippy::needless_range_loop)] // forward and backward passes over the same blocks read clearer indexed
fn running_extreme(src: &[f32], dst: &mut [f32], radius: usize, is_max: bool, g: &mut Vec<f32>, h: &mut Vec<f32>) {
    let n = src.len();
    let w = 2 * radius + 1;
    let pad_val = if is_max { f32::NEG_INFINITY } else { f32::INFINITY };
    let len = n + 2 * radius;
    let padded_len = len.div_ceil(w) * w;
    g.clear();
    h.clear();
    g.resize(padded_len, pad_val);
    h.resize(padded_len, pad_val);
    let at = |i: usize| {
        if i >= radius && i - radius < n {
            src[i - radius]
        } else {
            pad_val
        }
    };
    let pick = |a: f32, b: f32| if is_max { a.max(b) } else { a.min(b) };
    for start in (0..padded_len).step_by(w) {
        let mut acc = pad_val;
        for i in start..start + w {
            acc = pick(acc, at(i));
            g[i] = acc;
        }
        let mut acc = pad_val;
        for i in (start..start + w).rev() {
            acc = pick(acc, at(i));
            h[i] = acc;
        }
    }
    // Window [j, j + w) in padded coordinates is centred on source pixel j.
    for (j, d) in dst.iter_mut().enumerate() {
        *d = pick(h[j], g[j + w - 1]);
    }
}

fn filter_rows(img: ArrayView2<f32>, radius: usize, is_max: bool) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(img.dim());
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(img.axis_iter(Axis(0)).into_par_iter())
        .for_each_init(
            || (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            |(s, d, g, h), (mut dst, src)| {
                s.clear();
                s.extend(src.iter().copied());
                d.resize(s.len(), 0.0);
                running_extreme(s, d, radius, is_max, g, h);
                dst.iter_mut().zip(d.iter()).for_each(|(o, v)| *o = *v);
            },
        );
    out
}

fn filter_square(img: ArrayView2<f32>, radius: usize, is_max: bool) -> Array2<f32> {
    let rows = filter_rows(img, radius, is_max);
    let t = rows.t().as_standard_layout().into_owned();
    let cols = filter_rows(t.view(), radius, is_max);
    cols.t().as_standard_layout().into_owned()
}

fn check_radius(radius_px: usize) -> Result<()> {
    if radius_px == 0 {
        return Err(FilterError::invalid("radius_px", "must be at least 1"));
    }
    Ok(())
}

/// Grey dilation (max filter) with a `(2r+1)^2` square.
pub fn dilate(img: ArrayView2<f32>, radius_px: usize) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    check_radius(radius_px)?;
    Ok(filter_square(img, radius_px, true))
}

/// Grey erosion (min filter) with a `(2r+1)^2` square.
pub fn erode(img: ArrayView2<f32>, radius_px: usize) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    check_radius(radius_px)?;
    Ok(filter_square(img, radius_px, false))
}

/// Background estimate: the closing (dark vessels) or opening (bright vessels) with a square of
/// half-side `radius_px`, which removes every vessel narrower than `2 * radius_px + 1`.
pub fn morphological_background(img: ArrayView2<f32>, radius_px: usize, polarity: Polarity) -> Result<Array2<f32>> {
    check_image("image", &img)?;
    check_radius(radius_px)?;
    Ok(match polarity {
        Polarity::DarkOnBright => filter_square(filter_square(img, radius_px, true).view(), radius_px, false),
        Polarity::BrightOnDark => filter_square(filter_square(img, radius_px, false).view(), radius_px, true),
    })
}

/// Vessel contrast over a flattened background (top-hat): `background - img` for dark vessels,
/// `img - background` for bright ones; >= 0, 0 on smooth background.
pub fn flatten_background(img: ArrayView2<f32>, radius_px: usize, polarity: Polarity) -> Result<Array2<f32>> {
    let bg = morphological_background(img, radius_px, polarity)?;
    let mut out = bg;
    ndarray::Zip::from(&mut out).and(&img).par_for_each(|b, &i| {
        *b = match polarity {
            Polarity::DarkOnBright => *b - i,
            Polarity::BrightOnDark => i - *b,
        }
        .max(0.0);
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(img: &Array2<f32>, r: usize, is_max: bool) -> Array2<f32> {
        let (rows, cols) = img.dim();
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let mut acc = if is_max { f32::NEG_INFINITY } else { f32::INFINITY };
            for a in i.saturating_sub(r)..(i + r + 1).min(rows) {
                for b in j.saturating_sub(r)..(j + r + 1).min(cols) {
                    acc = if is_max {
                        acc.max(img[[a, b]])
                    } else {
                        acc.min(img[[a, b]])
                    };
                }
            }
            acc
        })
    }

    #[test]
    fn min_max_match_brute_force() {
        let img = Array2::from_shape_fn((23, 17), |(r, c)| ((r * 31 + c * 17) % 13) as f32 - 0.5 * c as f32);
        for r in [1, 2, 5] {
            assert_eq!(dilate(img.view(), r).unwrap(), brute(&img, r, true));
            assert_eq!(erode(img.view(), r).unwrap(), brute(&img, r, false));
        }
    }

    #[test]
    fn top_hat_keeps_narrow_dark_line_and_drops_gradient() {
        // Background ramp 100 + c, a dark line 3 px wide and 20 deep at rows 10..13.
        let img = Array2::from_shape_fn((30, 40), |(r, c)| {
            let base = 100.0 + c as f32;
            if (10..13).contains(&r) { base - 20.0 } else { base }
        });
        let t = flatten_background(img.view(), 3, Polarity::DarkOnBright).unwrap();
        assert!((t[[11, 20]] - 20.0).abs() < 1e-4, "{}", t[[11, 20]]);
        assert!(t[[25, 20]].abs() < 1e-4);
        assert!(flatten_background(img.view(), 0, Polarity::DarkOnBright).is_err());
    }
}
