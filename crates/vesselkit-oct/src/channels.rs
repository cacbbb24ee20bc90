//! Channels and septa inside the outer lumen contour.
//!
//! Organised, recanalised thrombus (a web) shows on OCT as several dark cavities separated by
//! thin bright septa (domain.md §2, "Swiss cheese"). Inside the contour, pixels brighter than a
//! level between lumen and wall are septum candidates; the remaining dark region is split into
//! 4-connected components (the catheter counts as lumen, so everything that touches it is one
//! channel); components above a minimum area are channels, and bright components that touch two
//! or more channels (or, in a web, run long inside one) hold the septa. Those are split into
//! straight pieces (a hub with n arms gives n), each re-centred and sized on the image
//! (module `septa`) so that the lumen area can leave them out. A piece that runs into the
//! guidewire shadow is continued to the wall (nothing is seen there).
//!
//! The count is then taken again on the frame: the lumen inside the contour, cut by the septum
//! pieces, falls into connected parts (`cut_channels`). A gap in a speckled septum joins two
//! channels in the dark-pixel labelling but not in the cut, and a sliver between two septa is
//! no channel by its share of the lumen (`OctOptions::min_channel_fraction`), so the cut's
//! channels are reported unless they are fewer than the labelling's (a septum the piece search
//! missed).

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
    let dark_total: f64 = (1..=nl).filter(|&r| parent[r] == r as u32).map(|r| m_area[r]).sum();
    let min_area = opts.min_channel_area_mm2.max(opts.min_channel_fraction * dark_total);
    let kept: Vec<bool> = (0..=nl)
        .map(|r| r > 0 && parent[r] == r as u32 && m_area[r] >= min_area)
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
    // In the guidewire shadow nothing is seen: a septum that runs into it continues to the wall.
    let cath_px = k0 as f64 * work.dr;
    let unseen = |p: Point| {
        let (dr, dc) = (p.row - center.row, p.col - center.col);
        let a = (dr.atan2(dc).rem_euclid(TAU) / dth) as usize % na;
        in_arc(a) && dr.hypot(dc) > cath_px
    };
    for (p0, p1) in pieces {
        // Ends close to the outline run into the wall: the channel analysis stops a margin
        // short of it.
        let p0 = extend_to_outline(p0, p1, radius, center, reach, &unseen);
        let p1 = extend_to_outline(p1, p0, radius, center, reach, &unseen);
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
    let cut = cut_channels(
        contour,
        &septa,
        (grid.rows, grid.cols),
        center,
        cath_px,
        mm,
        (opts.min_channel_area_mm2, opts.min_channel_fraction),
    );
    // A septum that separates two dark regions gives two channels, even where the polar
    // labelling joined them through a gap in it: the cut count wins unless it is lower.
    if cut.len() >= channels.len() {
        return (cut, septa);
    }
    (channels, septa)
}

/// Half-width (px) at which a septum cuts the lumen when channels are counted: at least this,
/// so that a thin septum drawn on the pixel grid leaves no 4-connected path across it.
const CUT_MIN_HALF_PX: f64 = 0.75;
/// A septum end this close (mm) to another septum or to the outline cuts on to it.
const CUT_JOIN_MM: f64 = 0.3;

/// Channels as the parts of the lumen that the septa cut apart: pixel centres inside the
/// contour (as [`crate::contour_mask`] on a `rows x cols` frame), minus every septum band
/// (at its measured thickness, at least `2 * CUT_MIN_HALF_PX`), split into 4-connected
/// components. The catheter (within `catheter_px` of `center`) is lumen: a septum never runs
/// through it, so everything that touches it is one channel. Components of at least
/// `min_area.0` mm² and `min_area.1` of the lumen area are channels, largest first; areas
/// (mm²) and centroids are those of their pixels, so the channels partition the lumen mask
/// less the slivers.
pub(crate) fn cut_channels(
    contour: &Contour,
    septa: &[Septum],
    frame: (usize, usize),
    center: Point,
    catheter_px: f64,
    mm_per_px: f64,
    min_area: (f64, f64),
) -> Vec<Channel> {
    let (rows, cols) = frame;
    let pts = &contour.points;
    let n = pts.len();
    if n < 3 || rows == 0 || cols == 0 || mm_per_px.is_nan() || mm_per_px <= 0.0 {
        return vec![];
    }
    let lo = pts.iter().map(|p| p.row).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.row).fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) || hi < 0.0 || lo > (rows - 1) as f64 {
        return vec![];
    }
    let r0 = lo.ceil().max(0.0) as usize;
    let r1 = (hi.floor().min((rows - 1) as f64)).max(r0 as f64) as usize;
    let h = r1 - r0 + 1;
    // Free pixels of the box [r0..=r1] x [0..cols): inside the contour (scanline fill).
    let mut free = vec![false; h * cols];
    let mut xs: Vec<f64> = Vec::new();
    for r in r0..=r1 {
        let y = r as f64;
        xs.clear();
        for i in 0..n {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            if (a.row <= y && b.row > y) || (b.row <= y && a.row > y) {
                xs.push(a.col + (y - a.row) / (b.row - a.row) * (b.col - a.col));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let c0 = pair[0].ceil().max(0.0);
            let c1 = pair[1].floor().min(cols as f64 - 1.0);
            if c1 >= c0 {
                free[(r - r0) * cols + c0 as usize..=(r - r0) * cols + c1 as usize].fill(true);
            }
        }
    }
    // Septum bands leave the lumen, except inside the catheter. An end that stops short of
    // another septum or of the outline by at most `CUT_JOIN_MM` (a hub whose centre the piece
    // search left out, a septum's last stretch lost in speckle) is drawn on to it.
    let cath2 = catheter_px * catheter_px;
    let halves: Vec<f64> = septa
        .iter()
        .map(|s| (0.5 * s.thickness_mm / mm_per_px).max(CUT_MIN_HALF_PX))
        .collect();
    let inside = |p: Point| {
        let (r, c) = (p.row.round(), p.col.round());
        if r < r0 as f64 || r > r1 as f64 || c < 0.0 || c > (cols - 1) as f64 {
            return false;
        }
        free[(r as usize - r0) * cols + c as usize]
    };
    let join_px = CUT_JOIN_MM / mm_per_px;
    let reach_end = |i: usize, end: Point, other: Point| {
        let l = end.dist(other);
        if l.is_nan() || l <= 0.0 {
            return end;
        }
        let u = ((end.row - other.row) / l, (end.col - other.col) / l);
        let mut t = 0.0;
        while t <= join_px {
            let p = Point::new(end.row + t * u.0, end.col + t * u.1);
            let on_other = septa
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && septa::dist2_to_segment(p.row, p.col, o.start, o.end) < halves[j] * halves[j]);
            if on_other || !inside(p) {
                return p;
            }
            t += 0.5;
        }
        end
    };
    let drawn: Vec<(Point, Point)> = septa
        .iter()
        .enumerate()
        .map(|(i, s)| (reach_end(i, s.start, s.end), reach_end(i, s.end, s.start)))
        .collect();
    for ((&(start, end), s), &half) in drawn.iter().zip(septa).zip(&halves) {
        let s = Septum {
            start,
            end,
            ..s.clone()
        };
        if !half.is_finite() {
            continue;
        }
        let br0 = (s.start.row.min(s.end.row) - half).ceil().max(r0 as f64);
        let br1 = (s.start.row.max(s.end.row) + half).floor().min(r1 as f64);
        let bc0 = (s.start.col.min(s.end.col) - half).ceil().max(0.0);
        let bc1 = (s.start.col.max(s.end.col) + half).floor().min((cols - 1) as f64);
        if !(br0 <= br1 && bc0 <= bc1) {
            continue;
        }
        for r in br0 as usize..=br1 as usize {
            for c in bc0 as usize..=bc1 as usize {
                let (y, x) = (r as f64, c as f64);
                let (dy, dx) = (y - center.row, x - center.col);
                if dy * dy + dx * dx >= cath2 && septa::dist2_to_segment(y, x, s.start, s.end) < half * half {
                    free[(r - r0) * cols + c] = false;
                }
            }
        }
    }
    // 4-connected components by flood fill.
    let px2 = mm_per_px * mm_per_px;
    let mut seen = vec![false; h * cols];
    let mut stack: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    let px_total = free.iter().filter(|&&f| f).count() as f64;
    let min_area_mm2 = min_area.0.max(min_area.1 * px_total * px2);
    for p0 in 0..h * cols {
        if !free[p0] || seen[p0] {
            continue;
        }
        seen[p0] = true;
        stack.push(p0);
        let (mut cnt, mut sr, mut sc) = (0usize, 0.0f64, 0.0f64);
        while let Some(p) = stack.pop() {
            let (r, c) = (p / cols, p % cols);
            cnt += 1;
            sr += (r + r0) as f64;
            sc += c as f64;
            let mut visit = |q: usize| {
                if free[q] && !seen[q] {
                    seen[q] = true;
                    stack.push(q);
                }
            };
            if r > 0 {
                visit(p - cols);
            }
            if r + 1 < h {
                visit(p + cols);
            }
            if c > 0 {
                visit(p - 1);
            }
            if c + 1 < cols {
                visit(p + 1);
            }
        }
        let area_mm2 = cnt as f64 * px2;
        if area_mm2 >= min_area_mm2 {
            out.push(Channel {
                area_mm2,
                centroid: Point::new(sr / cnt as f64, sc / cnt as f64),
            });
        }
    }
    out.sort_by(|a, b| b.area_mm2.total_cmp(&a.area_mm2));
    out
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
/// `reach` px beyond it, or beyond that through points that were not seen (`unseen`, the
/// guidewire shadow); otherwise keep it.
fn extend_to_outline(
    end: Point,
    other: Point,
    radius: &[f64],
    center: Point,
    reach: f64,
    unseen: &dyn Fn(Point) -> bool,
) -> Point {
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
    // No walk goes farther than across the outline.
    let limit = 2.0 * radius.iter().fold(0.0f64, |m, &r| m.max(r)) + reach;
    let mut s = 0.0;
    while s <= limit {
        let p = Point::new(end.row + s * u.0, end.col + s * u.1);
        if !inside(p) {
            return p;
        }
        if s > reach && !unseen(p) {
            break;
        }
        s += step;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle(center: Point, r: f64) -> Contour {
        Contour::new(
            (0..360)
                .map(|i| {
                    let t = TAU * i as f64 / 360.0;
                    Point::new(center.row + r * t.sin(), center.col + r * t.cos())
                })
                .collect(),
        )
    }

    fn septum(start: Point, end: Point, thickness_mm: f64) -> Septum {
        Septum {
            position: start.lerp(end, 0.5),
            thickness_mm,
            length_mm: start.dist(end) * 0.01,
            start,
            end,
        }
    }

    #[test]
    fn septa_cut_the_lumen_into_channels() {
        let c = Point::new(60.0, 60.0);
        let contour = circle(c, 50.0);
        let mm = 0.01;
        let min = (0.02, 0.02);
        // No septum: one channel, the whole disc (pi 50² px at 1e-4 mm² each).
        let one = cut_channels(&contour, &[], (121, 121), c, 0.0, mm, min);
        assert_eq!(one.len(), 1);
        assert!((one[0].area_mm2 - std::f64::consts::PI * 0.25).abs() < 0.01, "{one:?}");
        // A chord 20 px above the centre that stops 10 px (0.1 mm) short of the wall on both
        // sides still cuts (its ends are drawn on to the outline): a cap and the rest.
        let half = (50f64 * 50.0 - 20.0 * 20.0).sqrt();
        let chord = septum(
            Point::new(40.0, 60.0 - half + 10.0),
            Point::new(40.0, 60.0 + half - 10.0),
            0.04,
        );
        let two = cut_channels(&contour, std::slice::from_ref(&chord), (121, 121), c, 0.0, mm, min);
        assert_eq!(two.len(), 2, "{two:?}");
        assert!(two[1].centroid.row < 40.0 && two[0].centroid.row > 40.0, "{two:?}");
        // A second septum at right angles through the cap meets the first one: three channels.
        let stem = septum(Point::new(12.0, 60.0), Point::new(38.0, 60.0), 0.04);
        let three = cut_channels(&contour, &[chord.clone(), stem], (121, 121), c, 0.0, mm, min);
        assert_eq!(three.len(), 3, "{three:?}");
        // A diameter through the catheter does not split what touches the catheter.
        let diameter = septum(Point::new(60.0, 5.0), Point::new(60.0, 115.0), 0.04);
        let joined = cut_channels(&contour, std::slice::from_ref(&diameter), (121, 121), c, 8.0, mm, min);
        assert_eq!(joined.len(), 1, "{joined:?}");
        let split = cut_channels(&contour, &[diameter], (121, 121), c, 0.0, mm, min);
        assert_eq!(split.len(), 2, "{split:?}");
        // A sliver below the fraction of the lumen is not a channel.
        let near_wall = septum(Point::new(14.0, 40.0), Point::new(14.0, 80.0), 0.04);
        let with_sliver = cut_channels(
            &contour,
            std::slice::from_ref(&near_wall),
            (121, 121),
            c,
            0.0,
            mm,
            (0.0, 0.0),
        );
        assert_eq!(with_sliver.len(), 2, "{with_sliver:?}");
        let no_sliver = cut_channels(&contour, &[near_wall], (121, 121), c, 0.0, mm, min);
        assert_eq!(no_sliver.len(), 1, "{no_sliver:?}");
    }

    #[test]
    fn union_find_roots() {
        let mut p: Vec<u32> = vec![0, 0, 1, 2, 4];
        assert_eq!(root(&mut p, 3), 0);
        assert_eq!(root(&mut p, 4), 4);
        // Path halving shortened the chain from 3.
        assert!(p[3] <= 1);
    }
}
