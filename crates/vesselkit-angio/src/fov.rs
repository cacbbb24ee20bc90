//! Field of view: the exposed part of the detector.
//!
//! X-ray frames often carry a shutter or the circular mask of an image intensifier: a region of
//! one constant value touching the image border. Its rim is a step far stronger than any vessel,
//! which a Hessian filter and a top-hat take for the darkest, widest vessel of the frame, and
//! which then sets every relative threshold. Segmentation fills that region smoothly from the
//! inside before filtering and ignores responses next to it.

use ndarray::{Array2, ArrayView2};
use std::collections::VecDeque;

/// Shutters leave at least this fraction of the frame exposed.
pub const MIN_EXPOSED_FRACTION: f64 = 0.25;

/// The 8 neighbour offsets.
const N8: [(isize, isize); 8] = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)];

/// Pixels outside the field of view: those within `0.5 %` of the intensity range of the image's
/// minimum or maximum that connect (8-neighbours) to the image border, when they cover at least
/// `min_fraction` of the image and leave at least [`MIN_EXPOSED_FRACTION`] exposed (a flat
/// background around a few vessels, as in noise-free renderings, is not a shutter). `None` when
/// there is no such region. Non-finite pixels are never part of it (images are checked before
/// this runs).
pub fn outside_field_of_view(img: ArrayView2<f32>, min_fraction: f64) -> Option<Array2<bool>> {
    let (rows, cols) = img.dim();
    if rows < 3 || cols < 3 {
        return None;
    }
    let (lo, hi) = img
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let tol = 0.005 * (hi - lo);
    if !(tol > 0.0) {
        return None;
    }
    let mut best: Option<(usize, Array2<bool>)> = None;
    for extreme in [lo, hi] {
        let flat = |v: f32| (v - extreme).abs() <= tol;
        let mut out = Array2::from_elem((rows, cols), false);
        let mut queue = VecDeque::new();
        let border = (0..cols)
            .flat_map(|c| [(0, c), (rows - 1, c)])
            .chain((0..rows).flat_map(|r| [(r, 0), (r, cols - 1)]));
        for (r, c) in border {
            if !out[[r, c]] && flat(img[[r, c]]) {
                out[[r, c]] = true;
                queue.push_back((r, c));
            }
        }
        let mut count = queue.len();
        while let Some((r, c)) = queue.pop_front() {
            for (dr, dc) in N8 {
                let (nr, nc) = (r as isize + dr, c as isize + dc);
                if nr < 0 || nc < 0 || nr >= rows as isize || nc >= cols as isize {
                    continue;
                }
                let (nr, nc) = (nr as usize, nc as usize);
                if !out[[nr, nc]] && flat(img[[nr, nc]]) {
                    out[[nr, nc]] = true;
                    count += 1;
                    queue.push_back((nr, nc));
                }
            }
        }
        if count as f64 >= min_fraction * (rows * cols) as f64 && best.as_ref().is_none_or(|b| count > b.0) {
            best = Some((count, out));
        }
    }
    let max_outside = (1.0 - MIN_EXPOSED_FRACTION) * (rows * cols) as f64;
    best.filter(|b| (b.0 as f64) <= max_outside).map(|b| b.1)
}

/// `img` with the `outside` pixels replaced by a smooth extension of the inside: filled layer by
/// layer outwards, each pixel with the mean of its already filled 8-neighbours, so no step is
/// left at the rim.
pub fn fill_outside(img: ArrayView2<f32>, outside: &Array2<bool>) -> Array2<f32> {
    let (rows, cols) = img.dim();
    let mut out = img.to_owned();
    let mut done = outside.mapv(|o| !o);
    let mut queued = done.clone();
    let mut queue = VecDeque::new();
    for ((r, c), &o) in outside.indexed_iter() {
        if o && neighbours(r, c, rows, cols).any(|(nr, nc)| done[[nr, nc]]) {
            queued[[r, c]] = true;
            queue.push_back((r, c));
        }
    }
    while let Some((r, c)) = queue.pop_front() {
        let (mut sum, mut n) = (0f32, 0u32);
        for (nr, nc) in neighbours(r, c, rows, cols) {
            if done[[nr, nc]] {
                sum += out[[nr, nc]];
                n += 1;
            } else if !queued[[nr, nc]] {
                queued[[nr, nc]] = true;
                queue.push_back((nr, nc));
            }
        }
        if n > 0 {
            out[[r, c]] = sum / n as f32;
        }
        done[[r, c]] = true;
    }
    out
}

/// `outside` grown by `margin_px` (chessboard distance).
pub fn grow(outside: &Array2<bool>, margin_px: usize) -> Array2<bool> {
    let (rows, cols) = outside.dim();
    let mut dist = outside.mapv(|o| if o { 0u32 } else { u32::MAX });
    let mut queue: VecDeque<(usize, usize)> = outside.indexed_iter().filter(|(_, o)| **o).map(|(p, _)| p).collect();
    while let Some((r, c)) = queue.pop_front() {
        let d = dist[[r, c]];
        if d as usize >= margin_px {
            continue;
        }
        for (nr, nc) in neighbours(r, c, rows, cols) {
            if dist[[nr, nc]] == u32::MAX {
                dist[[nr, nc]] = d + 1;
                queue.push_back((nr, nc));
            }
        }
    }
    dist.mapv(|d| d != u32::MAX)
}

fn neighbours(r: usize, c: usize, rows: usize, cols: usize) -> impl Iterator<Item = (usize, usize)> {
    N8.iter().filter_map(move |&(dr, dc)| {
        let (nr, nc) = (r as isize + dr, c as isize + dc);
        (nr >= 0 && nc >= 0 && nr < rows as isize && nc < cols as isize).then_some((nr as usize, nc as usize))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60 x 80 frame: exposed disc of radius 25 around (30, 40) with a gradient inside, zero
    /// outside.
    fn disc() -> Array2<f32> {
        Array2::from_shape_fn((60, 80), |(r, c)| {
            let (dr, dc) = (r as f32 - 30.0, c as f32 - 40.0);
            if dr * dr + dc * dc <= 625.0 {
                200.0 + c as f32
            } else {
                0.0
            }
        })
    }

    #[test]
    fn finds_the_shutter_and_not_the_exposed_disc() {
        let img = disc();
        let out = outside_field_of_view(img.view(), 0.01).expect("shutter found");
        let expected = img.mapv(|v| v == 0.0);
        assert_eq!(out, expected);
        // A fully exposed frame (no flat border region) has none.
        let open = Array2::from_shape_fn((40, 40), |(r, c)| (r * 7 + c * 3) as f32);
        assert!(outside_field_of_view(open.view(), 0.01).is_none());
        // A flat background around one thin vessel is not a shutter.
        let mut plain = Array2::from_elem((40, 40), 1000.0f32);
        for c in 0..40 {
            plain[[20, c]] = 600.0;
        }
        assert!(outside_field_of_view(plain.view(), 0.01).is_none());
    }

    #[test]
    fn dark_vessel_inside_the_field_is_not_outside() {
        // A vessel at the image minimum that does not touch the border stays inside.
        let mut img = disc();
        for c in 30..50 {
            img[[30, c]] = 0.0;
        }
        let out = outside_field_of_view(img.view(), 0.01).unwrap();
        assert!((30..50).all(|c| !out[[30, c]]));
    }

    #[test]
    fn fill_leaves_no_step_at_the_rim() {
        let img = disc();
        let out = outside_field_of_view(img.view(), 0.01).unwrap();
        let filled = fill_outside(img.view(), &out);
        // Inside unchanged; outside close to the neighbouring inside values (200 + col).
        for ((r, c), &o) in out.indexed_iter() {
            if !o {
                assert_eq!(filled[[r, c]], img[[r, c]]);
            }
        }
        let rim_step = (0..60)
            .flat_map(|r| (1..80).map(move |c| (r, c)))
            .filter(|&(r, c)| out[[r, c]] != out[[r, c - 1]])
            .map(|(r, c)| (filled[[r, c]] - filled[[r, c - 1]]).abs())
            .fold(0f32, f32::max);
        assert!(rim_step < 3.0, "largest step across the rim {rim_step}");
        assert!(filled.iter().all(|v| v.is_finite() && *v >= 200.0));
    }

    #[test]
    fn grow_by_margin() {
        let mut o = Array2::from_elem((9, 9), false);
        o[[4, 0]] = true;
        let g = grow(&o, 2);
        assert!(g[[4, 2]] && g[[2, 2]] && !g[[4, 3]] && !g[[1, 0]]);
    }
}
