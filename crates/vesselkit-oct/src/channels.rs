//! Channels and septa inside the outer lumen contour.
//!
//! Organised, recanalised thrombus (a web) shows on OCT as several dark cavities separated by
//! thin bright septa (domain.md §2, "Swiss cheese"). Inside the contour, pixels brighter than a
//! level between lumen and wall are septum candidates; the remaining dark region is split into
//! 4-connected components (the catheter counts as lumen, so everything that touches it is one
//! channel); components above a minimum area are channels, and bright components that touch two
//! or more channels (or, in a web, run long inside one) hold the septa. Those are split into
//! straight pieces (a hub with n arms gives n), each re-centred and sized on the image
//! (module `septa`) so that the lumen area can leave them out.

use crate::lumen::{OctOptions, PolarWork, Source, circular_runs};
use crate::polar::CartesianGrid;
use crate::septa;
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
    /// Midpoint of the centre line, pixels of the analysis frame.
    pub position: Point,
    /// Width at half height of the intensity profile across the septum (mm); area over length
    /// of the bright pixels when the image profile cannot be measured.
    pub thickness_mm: f64,
    /// Length of the centre line (mm).
    pub length_mm: f64,
    /// Ends of the centre line, pixels of the analysis frame. The septum is the band within
    /// half its thickness of this segment; it is tissue, so the lumen leaves it out.
    pub start: Point,
    pub end: Point,
}

impl Septum {
    /// Whether the pixel centre `(row, col)` lies in the septum band (`mm_per_px` of the frame).
    pub fn covers(&self, row: f64, col: f64, mm_per_px: f64) -> bool {
        let half = 0.5 * self.thickness_mm / mm_per_px;
        septa::dist2_to_segment(row, col, self.start, self.end) < half * half
    }
}

/// Union-find root with path halving.
fn root(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[parent[x as usize] as usize];
        parent[x as usize] = p;
        x = p;
    }
    x
}

/// Wall of a self-shadowing septum: an angle is shadowed when the mean wall intensity just
/// behind the boundary is below this fraction of its median over all angles.
const SELF_SHADOW_RATIO: f32 = 0.5;

/// What [`find_channels`] needs from the lumen search (all in the internal polar image).
pub(crate) struct ChannelInput<'a> {
    pub work: &'a PolarWork,
    /// Final boundary radius per angle, px of the analysis frame.
    pub radius: &'a [f64],
    pub contour: &'a Contour,
    pub grid: &'a CartesianGrid,
    /// Guidewire shadow as `(first angle index, number of angles)`, margins included.
    pub guidewire: Option<(usize, usize)>,
    pub opts: &'a OctOptions,
    /// Width of the wall window (radial samples).
    pub wall_window: usize,
    /// The frame, to size septa on (`None`: sizes from the polar pixels).
    pub src: Option<&'a Source<'a>>,
}

/// Channels and septa, found in the catheter-centred polar image.
///
/// Working in polar space keeps the analysis to one pass over the polar image the lumen search
/// already made, and it is the natural frame for what the beam cannot see:
/// - a septum seen edge-on (running along the beam) shadows its own far part and the wall
///   behind it; on such A-lines the lumen from the last bright sample to the wall is taken as
///   septum, since that is what cast the shadow;
/// - in the guidewire shadow nothing is seen, so the dark regions on its two sides are
///   matched in radial order (the n-th region counted from the catheter on one side continues
///   as the n-th on the other), which keeps a septum crossing the shadow and does not split a
///   channel that the shadow cuts across.
pub(crate) fn find_channels(inp: &ChannelInput) -> (Vec<Channel>, Vec<Septum>) {
    let ChannelInput {
        work,
        radius,
        contour,
        grid,
        guidewire,
        opts,
        wall_window,
        src,
    } = *inp;
    let ps = &work.ps;
    let raw = &work.raw;
    let (na, nk) = ps.dim();
    let mm = grid.mm_per_px;
    let center = grid.center;
    let whole = || {
        vec![Channel {
            area_mm2: contour.area_px2() * mm * mm,
            centroid: contour.centroid(),
        }]
    };
    if na == 0 || radius.len() != na || nk < 4 {
        return (whole(), vec![]);
    }
    let k0 = work.k_min.min(nk - 1);
    let in_arc = |a: usize| guidewire.is_some_and(|(s, l)| (a + na - s) % na < l);
    // Last lumen sample per angle, a margin inside the boundary (its blur belongs to the wall).
    let margin = 2usize;
    let kb: Vec<usize> = radius
        .iter()
        .map(|&r| {
            let k = (r / work.dr).floor();
            if k.is_finite() && k > 0.0 {
                (k as usize).saturating_sub(margin).min(nk - 1)
            } else {
                0
            }
        })
        .collect();
    // Lumen and wall levels.
    let mut lumen_vals = Vec::new();
    let mut wall_vals = Vec::new();
    let mut wall_mean = vec![f32::NAN; na];
    for a in 0..na {
        if in_arc(a) {
            continue;
        }
        let row = ps.row(a);
        if kb[a] >= k0 {
            lumen_vals.extend(row.iter().skip(k0).take(kb[a] + 1 - k0).copied());
        }
        let w0 = (kb[a] + margin + 1).min(nk);
        let w1 = (w0 + wall_window).min(nk);
        if w1 > w0 {
            wall_vals.extend(row.iter().skip(w0).take(w1 - w0).copied());
            wall_mean[a] = raw.row(a).iter().skip(w0).take(w1 - w0).sum::<f32>() / (w1 - w0) as f32;
        }
    }
    if lumen_vals.is_empty() || wall_vals.is_empty() {
        return (whole(), vec![]);
    }
    let median = |v: &mut Vec<f32>| {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f32::total_cmp).1
    };
    let lumen_level = median(&mut lumen_vals);
    let wall_level = median(&mut wall_vals);
    if wall_level - lumen_level < 0.05 {
        return (whole(), vec![]);
    }
    let thr = lumen_level + opts.septum_contrast * (wall_level - lumen_level);
    // The same contrast in source intensity units.
    let contrast = (wall_level - lumen_level) * work.scale;
    let mut means: Vec<f32> = wall_mean.iter().copied().filter(|v| v.is_finite()).collect();
    let wall_median = if means.is_empty() { 0.0 } else { median(&mut means) };

    // Pixel states: 0 outside the lumen, 1 dark, 2 bright (septum), 3 unseen (guidewire shadow).
    const OUT: u8 = 0;
    const DARK: u8 = 1;
    const BRIGHT: u8 = 2;
    const UNSEEN: u8 = 3;
    let mut state = vec![OUT; na * nk];
    for a in 0..na {
        if kb[a] < k0 {
            continue;
        }
        let row = ps.row(a);
        let st = &mut state[a * nk..(a + 1) * nk];
        if in_arc(a) {
            st[k0..=kb[a]].fill(UNSEEN);
            continue;
        }
        // A septum along the beam is about one A-line wide: the angular smoothing of `ps`
        // halves its contrast, so a sample that stands out in its own A-line (radial mean of
        // three) counts as bright too.
        let rr = raw.row(a);
        for k in k0..=kb[a] {
            let radial = (rr[k.saturating_sub(1)] + rr[k] + rr[(k + 1).min(nk - 1)]) / 3.0;
            st[k] = if row[k] > thr || radial > thr { BRIGHT } else { DARK };
        }
    }
    // Self-shadowing septum: the wall behind is dark over a narrow arc (a wide dark arc is a
    // side branch or a wall out of reach, not a septum), and what lies between the septum's
    // last visible sample and the wall was not seen and is the septum itself.
    let shadowed: Vec<bool> = (0..na)
        .map(|a| !in_arc(a) && wall_mean[a] < SELF_SHADOW_RATIO * wall_median)
        .collect();
    for (s, l) in circular_runs(&shadowed) {
        if l > na / 36 {
            continue;
        }
        for i in 0..l {
            let a = (s + i) % na;
            let st = &mut state[a * nk..(a + 1) * nk];
            if let Some(hit) = (k0 + 3..=kb[a]).rev().find(|&k| st[k] == BRIGHT) {
                st[hit..=kb[a]].fill(BRIGHT);
            }
        }
    }
    // Dark components, 4-connected with wrap-around in angle: two raster passes with
    // union-find (previous radial sample and previous angle), the wrap from the last angle to
    // the first, then components numbered by their first pixel in raster order.
    let mut lab = vec![0u32; na * nk];
    let mut prov: Vec<u32> = vec![0];
    let join = |prov: &mut Vec<u32>, x: u32, y: u32| {
        let (rx, ry) = (root(prov, x), root(prov, y));
        if rx != ry {
            prov[rx.max(ry) as usize] = rx.min(ry);
        }
    };
    for p in 0..na * nk {
        if state[p] != DARK {
            continue;
        }
        let left = if p % nk > 0 { lab[p - 1] } else { 0 };
        let up = if p >= nk { lab[p - nk] } else { 0 };
        lab[p] = match (left, up) {
            (0, 0) => {
                let id = prov.len() as u32;
                prov.push(id);
                id
            }
            (l, 0) => l,
            (0, u) => u,
            (l, u) => {
                join(&mut prov, l, u);
                l
            }
        };
    }
    let last = (na - 1) * nk;
    for k in 0..nk {
        let (x, y) = (lab[last + k], lab[k]);
        if x > 0 && y > 0 {
            join(&mut prov, x, y);
        }
    }
    let mut number = vec![0u32; prov.len()];
    let mut n_lab = 0u32;
    for l in lab.iter_mut().filter(|l| **l > 0) {
        let r = root(&mut prov, *l) as usize;
        if number[r] == 0 {
            n_lab += 1;
            number[r] = n_lab;
        }
        *l = number[r];
    }
    let nl = n_lab as usize;
    // Pixel area (mm²) at radial index k.
    let dth = TAU / na as f64;
    let pix_area = |k: usize| (k as f64 + 0.5) * work.dr * work.dr * dth * mm * mm;
    let w_k: Vec<f64> = (0..nk).map(pix_area).collect();
    let mut area = vec![0.0f64; nl + 1];
    for row in lab.chunks_exact(nk) {
        for (&l, &w) in row.iter().zip(&w_k) {
            if l > 0 {
                area[l as usize] += w;
            }
        }
    }

    let mut parent: Vec<u32> = (0..=n_lab).collect();
    let union = |parent: &mut Vec<u32>, x: u32, y: u32| {
        let (rx, ry) = (root(parent, x), root(parent, y));
        if rx != ry {
            parent[rx.max(ry) as usize] = rx.min(ry);
        }
    };
    // Where the catheter touches the wall there is no lumen at its rim, yet the lumen on the two
    // sides is one region around the catheter: join the dark regions next to the rim across
    // such gaps (not across a septum that reaches the rim).
    let mut last: Option<u32> = None;
    // A septum may end in the gap itself (where it meets the wall beside the catheter): a
    // bright sample just outside the rim on either side of the gap keeps the two apart.
    let near_rim = 3usize.min(nk - 1 - k0);
    let bright_near_rim = |a: usize| state[a * nk + k0..=a * nk + k0 + near_rim].contains(&BRIGHT);
    for i in 0..2 * na {
        let p = (i % na) * nk + k0;
        match state[p] {
            DARK if bright_near_rim(i % na) => last = None,
            DARK => {
                if let Some(y) = last {
                    union(&mut parent, lab[p], y);
                }
                last = Some(lab[p]);
            }
            BRIGHT | UNSEEN => last = None,
            _ => {}
        }
    }
    // Across the guidewire shadow: match the dark regions on both sides in radial order.
    if let Some((s, l)) = guidewire
        && l + 2 <= na
    {
        let min_px_area = 0.25 * opts.min_channel_area_mm2;
        // Regions along one A-line from the catheter outwards; runs of a few samples are
        // slivers between a septum and the shadow edge, not a crossing.
        let min_run = 3;
        let seq = |a: usize| {
            let mut v: Vec<u32> = Vec::new();
            let mut k = k0;
            while k < nk {
                let x = lab[a * nk + k];
                let run = (k..nk).take_while(|&j| lab[a * nk + j] == x).count();
                if x > 0 && run >= min_run && area[x as usize] >= min_px_area && v.last() != Some(&x) {
                    v.push(x);
                }
                k += run;
            }
            v
        };
        let side_a = seq((s + na - 1) % na);
        let side_b = seq((s + l) % na);
        for (&x, &y) in side_a.iter().zip(side_b.iter()) {
            union(&mut parent, x, y);
        }
    }
    // Merged components: area and centroid (the margin and the unseen pixels are left out).
    let mut m_area = vec![0.0f64; nl + 1];
    let mut m_r = vec![0.0f64; nl + 1];
    let mut m_c = vec![0.0f64; nl + 1];
    let trig: Vec<(f64, f64)> = (0..na).map(|a| (a as f64 * dth).sin_cos()).collect();
    // Per angle and merged component: sums of w and w * radius, then the centroid terms once
    // per angle (w * (centre + radius * direction)).
    let roots: Vec<usize> = (0..=n_lab).map(|l| root(&mut parent, l) as usize).collect();
    let wr_k: Vec<f64> = (0..nk).map(|k| w_k[k] * k as f64 * work.dr).collect();
    let mut row_w = vec![0.0f64; nl + 1];
    let mut row_wr = vec![0.0f64; nl + 1];
    let mut touched: Vec<usize> = Vec::new();
    for (a, row) in lab.chunks_exact(nk).enumerate() {
        for (k, &l) in row.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let r = roots[l as usize];
            if row_w[r] == 0.0 {
                touched.push(r);
            }
            row_w[r] += w_k[k];
            row_wr[r] += wr_k[k];
        }
        for r in touched.drain(..) {
            m_area[r] += row_w[r];
            m_r[r] += row_w[r] * center.row + row_wr[r] * trig[a].0;
            m_c[r] += row_w[r] * center.col + row_wr[r] * trig[a].1;
            row_w[r] = 0.0;
            row_wr[r] = 0.0;
        }
    }
    let kept: Vec<bool> = (0..=nl)
        .map(|r| r > 0 && parent[r] == r as u32 && m_area[r] >= opts.min_channel_area_mm2)
        .collect();
    let mut channels: Vec<Channel> = (1..=nl)
        .filter(|&r| kept[r])
        .map(|r| Channel {
            area_mm2: m_area[r],
            centroid: Point::new(m_r[r] / m_area[r], m_c[r] / m_area[r]),
        })
        .collect();
    channels.sort_by(|a, b| b.area_mm2.total_cmp(&a.area_mm2));
    if channels.len() < 2 {
        return (if channels.is_empty() { whole() } else { channels }, vec![]);
    }

    // Septa: bright components (8-connected) touching at least two kept channels. Each
    // component is split into centre-line pieces, one or more per pair of channels it separates
    // (a hub with n arms is n septa), which are then re-centred and sized on the image.
    let pos = |p: usize| {
        let (a, k) = (p / nk, p % nk);
        let rad = k as f64 * work.dr;
        (center.row + rad * trig[a].0, center.col + rad * trig[a].1)
    };
    let mut blab = vec![0u32; na * nk];
    let mut septa = Vec::new();
    // Pixels of the bright components that separate channels, as points of the analysis frame.
    let mut pts: Vec<(f64, f64)> = Vec::new();
    let mut septum_area = 0.0f64;
    // Buffers reused across components (speckle makes many small ones).
    let mut pix: Vec<usize> = Vec::new();
    let mut touching: Vec<usize> = Vec::new();
    for start in 0..na * nk {
        if state[start] != BRIGHT || blab[start] != 0 {
            continue;
        }
        blab[start] = 1;
        pix.clear();
        pix.push(start);
        touching.clear();
        let mut i = 0;
        while i < pix.len() {
            let p = pix[i];
            i += 1;
            let (a, k) = (p / nk, p % nk);
            for da in [na - 1, 0, 1] {
                let aa = (a + da) % na;
                for kk in k.saturating_sub(1)..(k + 2).min(nk) {
                    let q = aa * nk + kk;
                    if state[q] == BRIGHT && blab[q] == 0 {
                        blab[q] = 1;
                        pix.push(q);
                    } else if lab[q] > 0 {
                        let r = root(&mut parent, lab[q]) as usize;
                        if kept[r] && !touching.contains(&r) {
                            touching.push(r);
                        }
                    }
                }
            }
        }
        // A septum broken by speckle leaves the channels on its two sides joined through the
        // gap, so in a web a long bright component inside one channel counts too (its pieces
        // must still be straight and stand out on the image profile).
        let long = || {
            let p: Vec<(f64, f64)> = pix.iter().map(|&q| pos(q)).collect();
            septa::principal_axis(&p).is_some_and(|(_, _, (lo, hi))| (hi - lo) * mm >= PIECE_MIN_MM)
        };
        if touching.is_empty() || (touching.len() < 2 && !(channels.len() >= 2 && long())) {
            continue;
        }
        septum_area += pix.iter().map(|&p| pix_area(p % nk)).sum::<f64>();
        pts.extend(pix.iter().map(|&p| pos(p)));
    }
    if pts.is_empty() {
        return (channels, septa);
    }
    // Straight pieces of septum: a hub with n arms gives n pieces, a bent septum several.
    let pieces = septa::line_pieces(
        &pts,
        (PIECE_TOL_MM / mm).max(work.dr),
        PIECE_GAP_MM / mm,
        PIECE_MIN_MM / mm,
    );
    let total_len_px: f64 = pieces.iter().map(|p| p.0.dist(p.1)).sum();
    let fallback_px = septum_area / (total_len_px * mm * mm);
    let reach = WALL_REACH_SAMPLES * work.dr;
    for (p0, p1) in pieces {
        // Ends close to the outline run into the wall: the channel analysis stops a margin
        // short of it.
        let p0 = extend_to_outline(p0, p1, radius, center, reach);
        let p1 = extend_to_outline(p1, p0, radius, center, reach);
        let seg = src
            .and_then(|s| septa::measure(s, p0, p1, mm, contrast))
            .unwrap_or(septa::Segment {
                start: p0,
                end: p1,
                thickness_px: fallback_px,
            });
        let length_px = seg.start.dist(seg.end);
        septa.push(Septum {
            position: seg.start.lerp(seg.end, 0.5),
            thickness_mm: seg.thickness_px * mm,
            length_mm: length_px * mm,
            start: seg.start,
            end: seg.end,
        });
    }
    (channels, septa)
}

/// Septum pixels within this distance (mm) of a line belong to it: half a septum's width plus
/// the polar grid's spacing across the beam.
const PIECE_TOL_MM: f64 = 0.06;
/// Gaps along a line longer than this (mm) end a piece.
const PIECE_GAP_MM: f64 = 0.2;
/// Pieces shorter than this (mm) are not sized (speckle, a septum's end in the shadow).
const PIECE_MIN_MM: f64 = 0.3;
/// A septum end within this many radial samples of the outline is extended to it.
const WALL_REACH_SAMPLES: f64 = 6.0;

/// Outline radius (px) at angle `t` around `center`, interpolated from one radius per angle.
pub(crate) fn radius_at(radius: &[f64], t: f64) -> f64 {
    let na = radius.len();
    let x = t.rem_euclid(TAU) / TAU * na as f64;
    let i0 = (x as usize).min(na - 1);
    let f = x - i0 as f64;
    radius[i0] * (1.0 - f) + radius[(i0 + 1) % na] * f
}

/// Move `end` (of the line from `other`) outwards to the outline when the outline lies within
/// `reach` px beyond it; otherwise keep it.
fn extend_to_outline(end: Point, other: Point, radius: &[f64], center: Point, reach: f64) -> Point {
    let l = end.dist(other);
    if l.is_nan() || l <= 0.0 || radius.is_empty() {
        return end;
    }
    let u = ((end.row - other.row) / l, (end.col - other.col) / l);
    let inside = |p: Point| {
        let (dr, dc) = (p.row - center.row, p.col - center.col);
        dr.hypot(dc) < radius_at(radius, dr.atan2(dc))
    };
    let step = 0.5;
    let mut s = 0.0;
    while s <= reach {
        let p = Point::new(end.row + s * u.0, end.col + s * u.1);
        if !inside(p) {
            return p;
        }
        s += step;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_roots() {
        let mut p: Vec<u32> = vec![0, 0, 1, 2, 4];
        assert_eq!(root(&mut p, 3), 0);
        assert_eq!(root(&mut p, 4), 4);
        // Path halving shortened the chain from 3.
        assert!(p[3] <= 1);
    }
}
