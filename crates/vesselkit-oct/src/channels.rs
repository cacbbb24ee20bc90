//! Channels and septa inside the outer lumen contour.
//!
//! Organised, recanalised thrombus (a web) shows on OCT as several dark cavities separated by
//! thin bright septa (domain.md §2, "Swiss cheese"). Inside the contour, pixels brighter than a
//! level between lumen and wall are septum candidates; the remaining dark region is split into
//! 4-connected components (the catheter counts as lumen, so everything that touches it is one
//! channel); components above a minimum area are channels, and bright components that touch two
//! or more channels are septa.

use crate::lumen::{OctOptions, PolarWork, Source};
use crate::polar::CartesianGrid;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use vesselkit_core::{Contour, Point};

/// One dark lumen component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub area_mm2: f64,
    /// Centroid in pixels of the analysis frame.
    pub centroid: Point,
}

/// A thin bright structure separating channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Septum {
    /// Centroid in pixels of the analysis frame.
    pub position: Point,
    /// Mean thickness: area divided by length along the principal axis (mm).
    pub thickness_mm: f64,
    /// Extent along the principal axis (mm).
    pub length_mm: f64,
}

/// Linear interpolation of a per-angle radius profile at angle `t`.
fn radius_at(radius: &[f64], t: f64) -> f64 {
    let n = radius.len();
    let x = t.rem_euclid(TAU) / TAU * n as f64;
    let i0 = (x.floor() as usize) % n;
    let f = x - x.floor();
    radius[i0] * (1.0 - f) + radius[(i0 + 1) % n] * f
}

fn in_arc(t: f64, arc: Option<(f64, f64)>) -> bool {
    match arc {
        None => false,
        Some((s, e)) if s <= e => t >= s && t <= e,
        Some((s, e)) => t >= s || t <= e,
    }
}

/// Label connected components of `mask` (`w`-wide, row-major); returns labels (0 = none) and
/// the component count. `eight` selects 8-connectivity.
fn label(mask: &[bool], w: usize, eight: bool) -> (Vec<u32>, u32) {
    let h = mask.len() / w;
    let mut lab = vec![0u32; mask.len()];
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || lab[start] != 0 {
            continue;
        }
        next += 1;
        lab[start] = next;
        stack.push(start);
        while let Some(p) = stack.pop() {
            let (r, c) = ((p / w) as isize, (p % w) as isize);
            for dr in -1isize..=1 {
                for dc in -1isize..=1 {
                    if (dr == 0 && dc == 0) || (!eight && dr != 0 && dc != 0) {
                        continue;
                    }
                    let (rr, cc) = (r + dr, c + dc);
                    if rr < 0 || cc < 0 || rr >= h as isize || cc >= w as isize {
                        continue;
                    }
                    let q = rr as usize * w + cc as usize;
                    if mask[q] && lab[q] == 0 {
                        lab[q] = next;
                        stack.push(q);
                    }
                }
            }
        }
    }
    (lab, next)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn find_channels(
    src: &Source,
    work: &PolarWork,
    contour: &Contour,
    radius: &[f64],
    grid: &CartesianGrid,
    guidewire: Option<(f64, f64)>,
    opts: &OctOptions,
    wall_window: usize,
) -> (Vec<Channel>, Vec<Septum>) {
    let mm = grid.mm_per_px;
    let center = grid.center;
    let (mut r0, mut r1, mut c0, mut c1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for p in &contour.points {
        r0 = r0.min(p.row);
        r1 = r1.max(p.row);
        c0 = c0.min(p.col);
        c1 = c1.max(p.col);
    }
    let side = (r1 - r0).max(c1 - c0);
    if side.is_nan() || side <= 0.0 {
        return (vec![], vec![]);
    }
    let step = side / opts.channel_patch_px as f64;
    let ph = ((r1 - r0) / step).ceil() as usize + 1;
    let pw = ((c1 - c0) / step).ceil() as usize + 1;
    let cath_r = work.k_min as f64 * work.dr;
    let margin = 1.5 * step + 1.0;
    let inv = 1.0 / (work.hi - work.lo);
    let r_in = radius.iter().copied().fold(f64::INFINITY, f64::min) - margin;
    let r_out = radius.iter().copied().fold(0.0f64, f64::max);

    // Classify patch pixels: 0 outside, 1 lumen, 2 catheter; and sample intensities.
    let mut class = vec![0u8; ph * pw];
    let mut val = vec![0.0f32; ph * pw];
    for i in 0..ph {
        for j in 0..pw {
            let (row, col) = (r0 + i as f64 * step, c0 + j as f64 * step);
            let (dr, dc) = (row - center.row, col - center.col);
            let rho = dr.hypot(dc);
            let idx = i * pw + j;
            if rho < cath_r {
                class[idx] = 2;
            } else if rho < r_out && (rho < r_in || rho < radius_at(radius, dr.atan2(dc).rem_euclid(TAU)) - margin) {
                class[idx] = 1;
                val[idx] = src.at_point(row, col, center).map_or(0.0, |v| (v - work.lo) * inv);
            }
        }
    }
    // 3x3 mean over lumen pixels only (speckle suppression without mixing in the wall).
    let mut sm = vec![0.0f32; ph * pw];
    let mut lumen_vals = Vec::new();
    for i in 0..ph {
        for j in 0..pw {
            let idx = i * pw + j;
            if class[idx] != 1 {
                continue;
            }
            let (mut s, mut n) = (0.0f32, 0u32);
            for ii in i.saturating_sub(1)..(i + 2).min(ph) {
                for jj in j.saturating_sub(1)..(j + 2).min(pw) {
                    if class[ii * pw + jj] == 1 {
                        s += val[ii * pw + jj];
                        n += 1;
                    }
                }
            }
            sm[idx] = s / n as f32;
            lumen_vals.push(sm[idx]);
        }
    }
    let area_of = |n: usize| n as f64 * step * step * mm * mm;
    let whole = |class: &[u8]| {
        let (mut n, mut sr, mut sc) = (0usize, 0.0f64, 0.0f64);
        for i in 0..ph {
            for j in 0..pw {
                if class[i * pw + j] != 0 {
                    n += 1;
                    sr += r0 + i as f64 * step;
                    sc += c0 + j as f64 * step;
                }
            }
        }
        let area = contour.area_px2() * mm * mm;
        if n == 0 {
            return vec![Channel {
                area_mm2: area,
                centroid: contour.centroid(),
            }];
        }
        vec![Channel {
            area_mm2: area,
            centroid: Point::new(sr / n as f64, sc / n as f64),
        }]
    };
    if lumen_vals.is_empty() {
        return (whole(&class), vec![]);
    }
    let lumen_level = {
        let mid = lumen_vals.len() / 2;
        *lumen_vals.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let na = radius.len();
    let nk = work.ps.ncols();
    let mut wall_vals = Vec::new();
    for (a, &r) in radius.iter().enumerate() {
        let t = TAU * a as f64 / na as f64;
        if in_arc(t, guidewire) {
            continue;
        }
        let k0 = (r / work.dr).round() as usize + 1;
        for k in k0..(k0 + wall_window).min(nk) {
            wall_vals.push(work.ps[[a, k]]);
        }
    }
    if wall_vals.is_empty() {
        return (whole(&class), vec![]);
    }
    let wall_level = {
        let mid = wall_vals.len() / 2;
        *wall_vals.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    if wall_level - lumen_level < 0.05 {
        return (whole(&class), vec![]);
    }
    let thr = lumen_level + opts.septum_contrast * (wall_level - lumen_level);

    let mut bright = vec![false; ph * pw];
    let mut dark = vec![false; ph * pw];
    for i in 0..ph {
        for j in 0..pw {
            let idx = i * pw + j;
            match class[idx] {
                2 => dark[idx] = true,
                1 => {
                    let (row, col) = (r0 + i as f64 * step, c0 + j as f64 * step);
                    let in_shadow = || in_arc((row - center.row).atan2(col - center.col).rem_euclid(TAU), guidewire);
                    if sm[idx] > thr && !in_shadow() {
                        bright[idx] = true;
                    } else {
                        dark[idx] = true;
                    }
                }
                _ => {}
            }
        }
    }
    let (dlab, nd) = label(&dark, pw, false);
    let mut count = vec![0usize; nd as usize + 1];
    let mut sum_r = vec![0.0f64; nd as usize + 1];
    let mut sum_c = vec![0.0f64; nd as usize + 1];
    for (idx, &l) in dlab.iter().enumerate() {
        if l > 0 {
            count[l as usize] += 1;
            sum_r[l as usize] += r0 + (idx / pw) as f64 * step;
            sum_c[l as usize] += c0 + (idx % pw) as f64 * step;
        }
    }
    let kept: Vec<bool> = count
        .iter()
        .map(|&n| n > 0 && area_of(n) >= opts.min_channel_area_mm2)
        .collect();
    let mut channels: Vec<Channel> = (1..=nd as usize)
        .filter(|&l| kept[l])
        .map(|l| Channel {
            area_mm2: area_of(count[l]),
            centroid: Point::new(sum_r[l] / count[l] as f64, sum_c[l] / count[l] as f64),
        })
        .collect();
    channels.sort_by(|a, b| b.area_mm2.total_cmp(&a.area_mm2));
    if channels.len() < 2 {
        return (if channels.is_empty() { whole(&class) } else { channels }, vec![]);
    }

    // Septa: bright components touching at least two kept channels.
    let (blab, nb) = label(&bright, pw, true);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nb as usize + 1];
    for (idx, &l) in blab.iter().enumerate() {
        if l > 0 {
            members[l as usize].push(idx);
        }
    }
    let mut septa = Vec::new();
    for pix in members.iter().skip(1) {
        let mut touching: Vec<u32> = Vec::new();
        for &idx in pix {
            let (r, c) = (idx / pw, idx % pw);
            for rr in r.saturating_sub(1)..(r + 2).min(ph) {
                for cc in c.saturating_sub(1)..(c + 2).min(pw) {
                    let l = dlab[rr * pw + cc];
                    if l > 0 && kept[l as usize] && !touching.contains(&l) {
                        touching.push(l);
                    }
                }
            }
        }
        if touching.len() < 2 {
            continue;
        }
        let n = pix.len() as f64;
        let (mut mr, mut mc) = (0.0, 0.0);
        for &idx in pix {
            mr += (idx / pw) as f64;
            mc += (idx % pw) as f64;
        }
        mr /= n;
        mc /= n;
        let (mut srr, mut scc, mut src_) = (0.0, 0.0, 0.0);
        for &idx in pix {
            let (dr, dc) = ((idx / pw) as f64 - mr, (idx % pw) as f64 - mc);
            srr += dr * dr;
            scc += dc * dc;
            src_ += dr * dc;
        }
        // Principal axis of the 2x2 covariance.
        let ang = 0.5 * (2.0 * src_).atan2(srr - scc);
        let (ur, uc) = (ang.cos(), ang.sin());
        let (mut pmin, mut pmax) = (f64::INFINITY, f64::NEG_INFINITY);
        for &idx in pix {
            let p = ((idx / pw) as f64 - mr) * ur + ((idx % pw) as f64 - mc) * uc;
            pmin = pmin.min(p);
            pmax = pmax.max(p);
        }
        let length_px = pmax - pmin + 1.0;
        septa.push(Septum {
            position: Point::new(r0 + mr * step, c0 + mc * step),
            thickness_mm: n / length_px * step * mm,
            length_mm: length_px * step * mm,
        });
    }
    (channels, septa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_respect_connectivity() {
        // Two pixels touching only diagonally: two 4-components, one 8-component.
        let m = [true, false, false, true];
        assert_eq!(label(&m, 2, false).1, 2);
        assert_eq!(label(&m, 2, true).1, 1);
    }

    #[test]
    fn arc_wraps() {
        assert!(in_arc(0.1, Some((6.0, 0.2))));
        assert!(!in_arc(3.0, Some((6.0, 0.2))));
        assert!(in_arc(3.0, Some((2.0, 4.0))));
        assert!((radius_at(&[1.0, 3.0], TAU * 0.25) - 2.0).abs() < 1e-12);
    }
}
