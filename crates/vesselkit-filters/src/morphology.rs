//! Grey-level morphology with square structuring elements (van Herk / Gil-Werman: three
//! comparisons per pixel whatever the size) and background flattening for angiograms.

use crate::error::{FilterError, Result};
use crate::gaussian::{check_image, rows_per_task};
use crate::vesselness::Polarity;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Larger of two finite values; unlike `f32::max` it has no NaN handling, so it vectorises to
/// one `maxps` (pixels are checked finite on entry).
#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// Rows filtered together by the horizontal pass.
const LANES: usize = 8;

/// Element-wise extreme of two lane vectors (vectorises to one or two `maxps`/`minps`).
#[inline(always)]
fn pick8<const MAX: bool>(a: [f32; LANES], b: [f32; LANES]) -> [f32; LANES] {
    std::array::from_fn(|k| if MAX { fmax(a[k], b[k]) } else { fmin(a[k], b[k]) })
}

/// Running min or max over windows of `2 * radius + 1` along up to `LANES` rows at once (edges
/// use the part of the window inside the row). The rows are interleaved into lane vectors, so
/// the block scans' dependency chains serve eight rows per step; `p` and `g` are scratch.
fn running_extreme_rows<const MAX: bool>(
    src: &[&[f32]],
    dst: &mut [&mut [f32]],
    radius: usize,
    p: &mut Vec<[f32; LANES]>,
    g: &mut Vec<[f32; LANES]>,
) {
    let n = src.first().map_or(0, |r| r.len());
    let w = 2 * radius + 1;
    let pad_val = if MAX { f32::NEG_INFINITY } else { f32::INFINITY };
    let padded_len = (n + 2 * radius).div_ceil(w) * w;
    p.clear();
    p.resize(padded_len, [pad_val; LANES]);
    for (k, row) in src.iter().enumerate() {
        for (v, &x) in p[radius..radius + n].iter_mut().zip(row.iter()) {
            v[k] = x;
        }
    }
    g.clear();
    g.resize(padded_len, [pad_val; LANES]);
    // g: prefix extreme within each block of w; h (kept in p, in place): suffix extreme.
    for (gb, pb) in g.chunks_exact_mut(w).zip(p.chunks_exact_mut(w)) {
        let mut acc = [pad_val; LANES];
        for (gi, &x) in gb.iter_mut().zip(pb.iter()) {
            acc = pick8::<MAX>(acc, x);
            *gi = acc;
        }
        let mut acc = [pad_val; LANES];
        for x in pb.iter_mut().rev() {
            acc = pick8::<MAX>(acc, *x);
            *x = acc;
        }
    }
    // Window [j, j + w) in padded coordinates is centred on source pixel j.
    for (j, (&h, &gw)) in p[..n].iter().zip(&g[w - 1..w - 1 + n]).enumerate() {
        let v = pick8::<MAX>(h, gw);
        for (k, d) in dst.iter_mut().enumerate() {
            d[j] = v[k];
        }
    }
}

/// Horizontal pass: running extreme along every row of `src` (any layout) into `dst`
/// (row-major, same shape).
fn pass_rows<const MAX: bool>(src: ArrayView2<f32>, dst: &mut [f32], radius: usize) {
    let (rows, cols) = src.dim();
    let chunk = rows_per_task(rows, cols).next_multiple_of(LANES).min(rows.max(1));
    dst.par_chunks_mut(chunk * cols).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(copies, p, g): &mut (Vec<Vec<f32>>, _, _), (ci, block)| {
            let mut r0 = ci * chunk;
            for group in block.chunks_mut(LANES * cols) {
                let mut outs: [&mut [f32]; LANES] = Default::default();
                let mut k = 0;
                for (o, d) in outs.iter_mut().zip(group.chunks_exact_mut(cols)) {
                    *o = d;
                    k += 1;
                }
                if copies.len() < k {
                    copies.resize(k, Vec::new());
                }
                for (i, copy) in copies.iter_mut().enumerate().take(k) {
                    let s = src.row(r0 + i);
                    if s.as_slice().is_none() {
                        copy.clear();
                        copy.extend(s.iter().copied());
                    }
                }
                let mut ins: [&[f32]; LANES] = [&[]; LANES];
                for (i, (slot, copy)) in ins.iter_mut().zip(copies.iter()).enumerate().take(k) {
                    *slot = match src.row(r0 + i).to_slice() {
                        Some(sl) => sl,
                        None => copy,
                    };
                }
                running_extreme_rows::<MAX>(&ins[..k], &mut outs[..k], radius, p, g);
                r0 += k;
            }
        },
    );
}

/// Columns per strip of the vertical pass: the strip's scratch stays in cache.
const STRIP: usize = 256;

/// Vertical pass: running extreme along every column of the row-major `src` into `dst`. Each
/// task owns a block of output rows and runs the van Herk scans over whole row segments (which
/// vectorise across columns) for the padded blocks its rows need, strip by strip.
fn pass_cols<const MAX: bool>(src: &[f32], dst: &mut [f32], (rows, cols): (usize, usize), radius: usize) {
    let w = 2 * radius + 1;
    let pad_val = if MAX { f32::NEG_INFINITY } else { f32::INFINITY };
    // Each task rescans up to two extra blocks of w rows: keep tasks several blocks tall.
    let chunk = rows_per_task(rows, cols).max(4 * w).min(rows.max(1));
    dst.par_chunks_mut(chunk * cols).enumerate().for_each_init(
        || (Vec::new(), Vec::new()),
        |(g, h), (ci, block)| {
            let a = ci * chunk;
            let b = a + block.len() / cols;
            // Padded row i is source row i - radius; output row j needs h[j] and g[j + w - 1].
            let base = a / w * w;
            let end = (b + w - 1).div_ceil(w) * w;
            for c0 in (0..cols).step_by(STRIP) {
                let sw = STRIP.min(cols - c0);
                g.clear();
                g.resize((end - base) * sw, pad_val);
                h.clear();
                h.resize((end - base) * sw, pad_val);
                let src_row =
                    |i: usize| (i >= radius && i - radius < rows).then(|| &src[(i - radius) * cols + c0..][..sw]);
                for blk in (base..end).step_by(w) {
                    for i in blk..blk + w {
                        let o = (i - base) * sw;
                        let (done, cur) = g.split_at_mut(o);
                        let cur = &mut cur[..sw];
                        match (i > blk, src_row(i)) {
                            (true, Some(s)) => {
                                let prev = &done[o - sw..];
                                for ((x, &p), &v) in cur.iter_mut().zip(prev).zip(s) {
                                    *x = if MAX { fmax(p, v) } else { fmin(p, v) };
                                }
                            }
                            (true, None) => cur.copy_from_slice(&done[o - sw..]),
                            (false, Some(s)) => cur.copy_from_slice(s),
                            (false, None) => {}
                        }
                    }
                    for i in (blk..blk + w).rev() {
                        let o = (i - base) * sw;
                        let (cur, later) = h.split_at_mut(o + sw);
                        let cur = &mut cur[o..];
                        match (i + 1 < blk + w, src_row(i)) {
                            (true, Some(s)) => {
                                for ((x, &p), &v) in cur.iter_mut().zip(&later[..sw]).zip(s) {
                                    *x = if MAX { fmax(p, v) } else { fmin(p, v) };
                                }
                            }
                            (true, None) => cur.copy_from_slice(&later[..sw]),
                            (false, Some(s)) => cur.copy_from_slice(s),
                            (false, None) => {}
                        }
                    }
                }
                for (k, d) in block.chunks_exact_mut(cols).enumerate() {
                    let j = a + k;
                    let hj = &h[(j - base) * sw..][..sw];
                    let gj = &g[(j + w - 1 - base) * sw..][..sw];
                    for ((x, &u), &v) in d[c0..c0 + sw].iter_mut().zip(hj).zip(gj) {
                        *x = if MAX { fmax(u, v) } else { fmin(u, v) };
                    }
                }
            }
        },
    );
}

/// Square min or max filter of `img` into `out` (row-major), with `tmp` as scratch.
fn filter_square_into(img: ArrayView2<f32>, radius: usize, is_max: bool, tmp: &mut [f32], out: &mut [f32]) {
    let dim = img.dim();
    if is_max {
        pass_rows::<true>(img, tmp, radius);
        pass_cols::<true>(tmp, out, dim, radius);
    } else {
        pass_rows::<false>(img, tmp, radius);
        pass_cols::<false>(tmp, out, dim, radius);
    }
}

fn filter_square(img: ArrayView2<f32>, radius: usize, is_max: bool) -> Array2<f32> {
    let mut tmp = vec![0f32; img.len()];
    let mut out = Array2::<f32>::zeros(img.dim());
    if let Some(o) = out.as_slice_mut() {
        filter_square_into(img, radius, is_max, &mut tmp, o);
    }
    out
}

/// Closing (`first_max`) or opening: four passes through one scratch buffer.
fn open_close(img: ArrayView2<f32>, radius: usize, first_max: bool) -> Array2<f32> {
    let dim = img.dim();
    let mut tmp = vec![0f32; img.len()];
    let mut out = Array2::<f32>::zeros(dim);
    if let Some(o) = out.as_slice_mut() {
        filter_square_into(img, radius, first_max, &mut tmp, o);
    }
    if first_max {
        pass_rows::<false>(out.view(), &mut tmp, radius);
    } else {
        pass_rows::<true>(out.view(), &mut tmp, radius);
    }
    if let Some(o) = out.as_slice_mut() {
        if first_max {
            pass_cols::<false>(&tmp, o, dim, radius);
        } else {
            pass_cols::<true>(&tmp, o, dim, radius);
        }
    }
    out
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
        Polarity::DarkOnBright => open_close(img, radius_px, true),
        Polarity::BrightOnDark => open_close(img, radius_px, false),
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
        for r in [1, 2, 5, 30] {
            assert_eq!(dilate(img.view(), r).unwrap(), brute(&img, r, true));
            assert_eq!(erode(img.view(), r).unwrap(), brute(&img, r, false));
        }
    }

    #[test]
    fn blocked_passes_match_brute_force_on_large_and_strided_images() {
        // Wider than one column strip, several row tasks, windows from 3 px to beyond the image.
        let img = Array2::from_shape_fn((120, 300), |(r, c)| {
            (((r * 7919 + c * 104_729) % 1009) as f32).sin() * 50.0 + 0.1 * c as f32
        });
        for r in [1, 3, 12] {
            assert_eq!(dilate(img.view(), r).unwrap(), brute(&img, r, true), "dilate r {r}");
            assert_eq!(erode(img.view(), r).unwrap(), brute(&img, r, false), "erode r {r}");
            let close = brute(&brute(&img, r, true), r, false);
            let open = brute(&brute(&img, r, false), r, true);
            assert_eq!(
                morphological_background(img.view(), r, Polarity::DarkOnBright).unwrap(),
                close,
                "closing r {r}"
            );
            assert_eq!(
                morphological_background(img.view(), r, Polarity::BrightOnDark).unwrap(),
                open,
                "opening r {r}"
            );
        }
        // A transposed (non-standard layout) view gives the transposed result.
        let t = img.t();
        let expect = brute(&t.to_owned(), 4, true);
        assert_eq!(dilate(t, 4).unwrap(), expect);
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
