//! Septum geometry: the centre line between two channels and its thickness, measured on the
//! frame itself, so that the lumen area can leave the septa out.
//!
//! The polar channel analysis only says which bright pixels separate which channels; its grid
//! is coarse across the beam (one A-line is several pixels wide at the wall) and smoothed, so
//! the thickness is taken from the image instead: the intensity profile across the septum,
//! taken at every pixel along it and combined by the median (robust to the hub, where other
//! septa cross the profile, and to shadowed stretches), gives the width at half height between
//! the lumen on both sides and the septum's peak.

use crate::lumen::Source;
use vesselkit_core::Point;

/// Half-width of the profile window across a septum (mm): wider than any septum the channel
/// analysis accepts, narrow enough to stay clear of the wall for most of the length.
const WINDOW_MM: f64 = 0.3;
/// Bins across the window on each side of the centre line.
const HALF_BINS: usize = 24;
/// Minimum peak-over-lumen contrast (as a fraction of the image's lumen-to-wall contrast) for
/// the profile to be measured; below it the septum is too faint to be sized on the image.
const MIN_CONTRAST: f32 = 0.15;
/// Distance between profile stations along a septum (px).
const STATION_PX: f64 = 2.0;

/// A centre-line segment with its measured thickness, pixels of the analysis frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Segment {
    pub start: Point,
    pub end: Point,
    /// Full width at half height across the segment (px).
    pub thickness_px: f64,
}

/// Centre, unit direction `(dr, dc)` and projection extent `(min, max)` of a point cloud.
pub(crate) type Axis = (Point, (f64, f64), (f64, f64));

/// Principal axis of points: centre, unit direction and the extent of the projections on it.
pub(crate) fn principal_axis(pts: &[(f64, f64)]) -> Option<Axis> {
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mr = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mc = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut srr, mut scc, mut src) = (0.0, 0.0, 0.0);
    for &(r, c) in pts {
        srr += (r - mr) * (r - mr);
        scc += (c - mc) * (c - mc);
        src += (r - mr) * (c - mc);
    }
    let ang = 0.5 * (2.0 * src).atan2(srr - scc);
    let (ur, uc) = (ang.cos(), ang.sin());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(r, c) in pts {
        let t = (r - mr) * ur + (c - mc) * uc;
        lo = lo.min(t);
        hi = hi.max(t);
    }
    Some((Point::new(mr, mc), (ur, uc), (lo, hi)))
}

/// Straight pieces through a cloud of septum points (px): repeatedly the strongest line of a
/// Hough transform (angle in 2° steps, offset in bins of `tol`), its points within `tol`, and
/// along it the longest run without a gap above `gap`; runs of at least `min_len` become
/// pieces (refitted by principal axis) and their points leave the transform.
pub(crate) fn line_pieces(pts: &[(f64, f64)], tol: f64, gap: f64, min_len: f64) -> Vec<(Point, Point)> {
    const N_THETA: usize = 90;
    const MAX_PIECES: usize = 16;
    const MAX_TRIES: usize = 48;
    // Consecutive rejected candidates after which the rest is taken for speckle.
    const MAX_MISSES: usize = 6;
    if pts.len() < 3 || tol.is_nan() || tol <= 0.0 {
        return vec![];
    }
    let n = pts.len() as f64;
    let mr = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mc = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let r_max = pts.iter().map(|p| (p.0 - mr).hypot(p.1 - mc)).fold(0.0f64, f64::max);
    let n_rho = (2.0 * r_max / tol).ceil() as usize + 2;
    let trig: Vec<(f64, f64)> = (0..N_THETA)
        .map(|i| (std::f64::consts::PI * i as f64 / N_THETA as f64).sin_cos())
        .collect();
    // Offsets are >= -r_max, so truncation after adding half a bin rounds.
    let inv_tol = 1.0 / tol;
    let bin = |p: (f64, f64), t: usize| {
        let rho = (p.0 - mr) * trig[t].1 + (p.1 - mc) * trig[t].0;
        ((rho + r_max) * inv_tol + 0.5) as usize
    };
    let mut acc = vec![0u32; N_THETA * n_rho];
    let vote = |acc: &mut [u32], p: (f64, f64), add: bool| {
        for t in 0..N_THETA {
            let b = bin(p, t).min(n_rho - 1);
            let v = &mut acc[t * n_rho + b];
            *v = if add { *v + 1 } else { v.saturating_sub(1) };
        }
    };
    // Every other point votes (the septum bands are several points wide); all are inliers.
    let voters: Vec<usize> = (0..pts.len()).step_by(2).collect();
    for &i in &voters {
        vote(&mut acc, pts[i], true);
    }
    let mut live = vec![true; pts.len()];
    let mut out = Vec::new();
    let min_votes = ((min_len / (4.0 * tol)).ceil() as u32).max(3);
    let mut misses = 0;
    for _ in 0..MAX_TRIES {
        if misses >= MAX_MISSES {
            break;
        }
        if out.len() >= MAX_PIECES {
            break;
        }
        let Some((best, &votes)) = acc.iter().enumerate().max_by_key(|x| *x.1) else {
            break;
        };
        if votes < min_votes {
            break;
        }
        let (t, b) = (best / n_rho, best % n_rho);
        let rho = b as f64 * tol - r_max;
        let (s, c) = trig[t];
        // Direction along the line: perpendicular to the normal (cos, sin) in (row, col).
        let (ur, uc) = (-s, c);
        let mut on: Vec<(f64, usize)> = pts
            .iter()
            .enumerate()
            .filter(|&(i, p)| live[i] && ((p.0 - mr) * c + (p.1 - mc) * s - rho).abs() <= tol)
            .map(|(i, p)| ((p.0 - mr) * ur + (p.1 - mc) * uc, i))
            .collect();
        on.sort_by(|x, y| x.0.total_cmp(&y.0));
        // Longest run without a gap.
        let mut best_run: Option<(usize, usize)> = None;
        let mut s0 = 0;
        for i in 1..=on.len() {
            if i == on.len() || on[i].0 - on[i - 1].0 > gap {
                let len = on[i - 1].0 - on[s0].0;
                if best_run.is_none_or(|(a, b)| len > on[b].0 - on[a].0) {
                    best_run = Some((s0, i - 1));
                }
                s0 = i;
            }
        }
        let Some((i0, i1)) = best_run.filter(|&(a, b)| on[b].0 - on[a].0 >= min_len) else {
            // Not a septum here: drop this cell and look at the next strongest.
            acc[best] = 0;
            misses += 1;
            continue;
        };
        misses = 0;
        let run: Vec<(f64, f64)> = on[i0..=i1].iter().map(|&(_, i)| pts[i]).collect();
        for &(_, i) in &on[i0..=i1] {
            live[i] = false;
            if i % 2 == 0 {
                vote(&mut acc, pts[i], false);
            }
        }
        if let Some((cen, u, (lo, hi))) = principal_axis(&run) {
            out.push((
                Point::new(cen.row + lo * u.0, cen.col + lo * u.1),
                Point::new(cen.row + hi * u.0, cen.col + hi * u.1),
            ));
        }
    }
    out
}

/// Median across stations of the profile across the line `p0 -> p1`, for stations `s0..s1`
/// (px along the line, one every `STATION_PX`). Bin `i` is at offset `(i - HALF_BINS) * step` to the left.
fn median_profile(src: &Source, p0: Point, u: (f64, f64), s_range: (f64, f64), step: f64) -> Option<Vec<f32>> {
    let v = (-u.1, u.0);
    let n_st = ((s_range.1 - s_range.0) / STATION_PX).floor() as usize + 1;
    if n_st < 3 {
        return None;
    }
    let nb = 2 * HALF_BINS + 1;
    let mut cols: Vec<Vec<f32>> = (0..nb).map(|_| Vec::with_capacity(n_st)).collect();
    for i in 0..n_st {
        let s = s_range.0 + i as f64 * STATION_PX;
        let (br, bc) = (p0.row + s * u.0, p0.col + s * u.1);
        let mut row = [0.0f32; 2 * HALF_BINS + 1];
        let mut ok = true;
        for (b, x) in row.iter_mut().enumerate() {
            let o = (b as f64 - HALF_BINS as f64) * step;
            match src.at_px(br + o * v.0, bc + o * v.1) {
                Some(val) => *x = val,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for (c, &x) in cols.iter_mut().zip(row.iter()) {
                c.push(x);
            }
        }
    }
    if cols[0].len() < 3 {
        return None;
    }
    Some(
        cols.iter_mut()
            .map(|c| {
                let mid = c.len() / 2;
                *c.select_nth_unstable_by(mid, f32::total_cmp).1
            })
            .collect(),
    )
}

/// Peak offset (px, along the normal) and full width at half height (px) of a profile, given
/// the minimum contrast; `None` when the peak does not stand out or does not fall back to half
/// height on both sides within the window.
fn peak_and_width(p: &[f32], step: f64, min_contrast: f32) -> Option<(f64, f64)> {
    let nb = p.len();
    let h = nb / 2;
    // Lumen level: median of the outer thirds of the window on both sides.
    let mut outer: Vec<f32> = p[..h / 3 + 1]
        .iter()
        .chain(p[nb - h / 3 - 1..].iter())
        .copied()
        .collect();
    let mid = outer.len() / 2;
    let base = *outer.select_nth_unstable_by(mid, f32::total_cmp).1;
    // Peak in the inner half of the window.
    let (lo, hi) = (h / 2, nb - h / 2);
    let (ip, &peak) = p[lo..hi].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let ip = ip + lo;
    if peak.is_nan() || base.is_nan() || peak - base < min_contrast {
        return None;
    }
    let half = 0.5 * (base + peak);
    let mut left = None;
    for i in (0..ip).rev() {
        if p[i] < half {
            let t = f64::from((half - p[i]) / (p[i + 1] - p[i]));
            left = Some(i as f64 + t);
            break;
        }
    }
    let mut right = None;
    for i in ip + 1..nb {
        if p[i] < half {
            let t = f64::from((p[i - 1] - half) / (p[i - 1] - p[i]));
            right = Some((i - 1) as f64 + t);
            break;
        }
    }
    let (l, r) = (left?, right?);
    let centre = 0.5 * (l + r) - h as f64;
    Some((centre * step, (r - l) * step))
}

/// Refine a septum's centre line on the image and measure its thickness.
///
/// `start`/`end` come from the channel analysis (px of the analysis frame); `contrast` is the
/// image's lumen-to-wall contrast in source units. The line is re-centred on the profile peak
/// in each half of its length, then the thickness is the width at half height of the profile
/// over the whole length. `None` when the septum cannot be sized on the image.
pub(crate) fn measure(src: &Source, start: Point, end: Point, mm_per_px: f64, contrast: f32) -> Option<Segment> {
    let len = start.dist(end);
    if len.is_nan() || len < 3.0 {
        return None;
    }
    let window_px = WINDOW_MM / mm_per_px;
    let step = window_px / HALF_BINS as f64;
    let min_c = MIN_CONTRAST * contrast;
    let mut p0 = start;
    let mut p1 = end;
    // One pass of re-centring: each half's profile peak moves that half's midpoint.
    {
        let l = p0.dist(p1);
        let u = ((p1.row - p0.row) / l, (p1.col - p0.col) / l);
        let v = (-u.1, u.0);
        let mut shifts = [0.0f64; 2];
        for (i, sh) in shifts.iter_mut().enumerate() {
            let (a, b) = if i == 0 { (0.0, 0.5 * l) } else { (0.5 * l, l) };
            if let Some(prof) = median_profile(src, p0, u, (a, b), step)
                && let Some((c, _)) = peak_and_width(&prof, step, min_c)
            {
                *sh = c;
            }
        }
        // Shifts at the quarter points; move the ends along the line through them.
        let q0 = Point::new(
            p0.row + 0.25 * l * u.0 + shifts[0] * v.0,
            p0.col + 0.25 * l * u.1 + shifts[0] * v.1,
        );
        let q1 = Point::new(
            p0.row + 0.75 * l * u.0 + shifts[1] * v.0,
            p0.col + 0.75 * l * u.1 + shifts[1] * v.1,
        );
        let (dr, dc) = (q1.row - q0.row, q1.col - q0.col);
        let ql = dr.hypot(dc);
        if ql > 0.0 {
            let w = (dr / ql, dc / ql);
            // Keep the projections of the old ends on the new line.
            let proj = |p: Point| (p.row - q0.row) * w.0 + (p.col - q0.col) * w.1;
            let (t0, t1) = (proj(p0), proj(p1));
            p0 = Point::new(q0.row + t0 * w.0, q0.col + t0 * w.1);
            p1 = Point::new(q0.row + t1 * w.0, q0.col + t1 * w.1);
        }
    }
    let l = p0.dist(p1);
    let u = ((p1.row - p0.row) / l, (p1.col - p0.col) / l);
    let prof = median_profile(src, p0, u, (0.0, l), step)?;
    let (c, width) = peak_and_width(&prof, step, min_c)?;
    let v = (-u.1, u.0);
    let shift = |p: Point| Point::new(p.row + c * v.0, p.col + c * v.1);
    Some(Segment {
        start: shift(p0),
        end: shift(p1),
        thickness_px: width,
    })
}

/// Squared distance from `(row, col)` to the segment `a -> b`.
pub(crate) fn dist2_to_segment(row: f64, col: f64, a: Point, b: Point) -> f64 {
    let (er, ec) = (b.row - a.row, b.col - a.col);
    let l2 = er * er + ec * ec;
    let t = if l2 > 0.0 {
        (((row - a.row) * er + (col - a.col) * ec) / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dr, dc) = (row - a.row - t * er, col - a.col - t * ec);
    dr * dr + dc * dc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_at_half_height_of_a_box() {
        // Lumen 0.1, septum 0.9 over bins 20..=28 (9 bins): crossings half a bin outside.
        let p: Vec<f32> = (0..49)
            .map(|i| if (20..=28).contains(&i) { 0.9 } else { 0.1 })
            .collect();
        let (c, w) = peak_and_width(&p, 0.5, 0.2).unwrap();
        assert!((w - 0.5 * 9.0).abs() < 0.6, "{w}");
        assert!(c.abs() < 0.3, "{c}");
        // Too faint to measure.
        assert!(peak_and_width(&p, 0.5, 0.9).is_none());
    }

    #[test]
    fn segment_distance() {
        let a = Point::new(0.0, 0.0);
        let b = Point::new(0.0, 10.0);
        assert!((dist2_to_segment(3.0, 5.0, a, b) - 9.0).abs() < 1e-12);
        assert!((dist2_to_segment(0.0, 13.0, a, b) - 9.0).abs() < 1e-12);
        assert!((dist2_to_segment(4.0, -3.0, a, b) - 25.0).abs() < 1e-12);
    }

    #[test]
    fn axis_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (2.0 * i as f64, 1.0 + i as f64)).collect();
        let (c, u, (lo, hi)) = principal_axis(&pts).unwrap();
        assert!((c.row - 19.0).abs() < 1e-9 && (c.col - 10.5).abs() < 1e-9);
        // Direction (2, 1) / sqrt 5, either sign.
        assert!((u.0.abs() - 2.0 / 5f64.sqrt()).abs() < 1e-9, "{u:?}");
        assert!((hi - lo - 19.0 * 5f64.sqrt()).abs() < 1e-9);
    }
}
