//! Centerline tree: thinning, skeleton graph (end points, junctions, branches), spur pruning
//! relative to the local radius that keeps stubs of their own (occlusion stumps), smooth
//! sub-pixel polylines, and orientation proximal -> distal from a root (the widest vessel end,
//! preferably one entering through the image edge, or a user seed; a piece cut off from the
//! main tree starts at its end facing it).

use crate::error::{AngioError, Result};
use crate::mask::distance_transform;
use ndarray::Array2;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use vesselkit_core::{Point, Polyline};

/// Options of [`centerlines`].
#[derive(Debug, Clone, PartialEq)]
pub struct CenterlineOptions {
    /// A terminal branch is a spur (and pruned) when shorter than `spur_factor` times the
    /// vessel radius at its junction...
    pub spur_factor: f64,
    /// ...or shorter than this many px whatever the radius.
    pub min_branch_px: f64,
    /// Skeleton components shorter than this (px of centerline) are dropped.
    pub min_component_px: f64,
    /// Keep a terminal branch shorter than the spur limit when it is a stub of its own (an
    /// occlusion stump): its mask reaches beyond the parent's edge by at least
    /// `stump_min_length_radii` times its own radius, that radius is at least
    /// `stump_min_radius_fraction` of the junction's, and it runs straight. A bulge of the
    /// parent's mask is short for its width and is pruned as before.
    pub keep_stumps: bool,
    /// See `keep_stumps`: reach beyond the parent's edge, in radii of the stub itself.
    pub stump_min_length_radii: f64,
    /// See `keep_stumps`: stub radius as a fraction of the junction radius.
    pub stump_min_radius_fraction: f64,
    /// Where a branch's radius drops abruptly to at most `caliber_drop_fraction` of what it was
    /// and stays there (a wide vessel that stops where a thin branch leaves it, so that the
    /// skeleton runs on into the thin one), end the wide part with a short terminal branch
    /// through its cap and start the thin part there as a separate child.
    pub split_caliber_drops: bool,
    /// See `split_caliber_drops`.
    pub caliber_drop_fraction: f64,
    /// See `split_caliber_drops`: the thin part must leave the wide part's direction by at
    /// least this many degrees (0: straight on as well, which also splits a vessel that narrows
    /// abruptly for good, as behind a subtotal lesion).
    pub caliber_drop_min_turn_deg: f64,
    /// Join two free ends of separate skeleton pieces that face each other across a short gap
    /// into one branch running through the gap: the mask breaks where a lesion narrows the
    /// lumen (a ring, a web's bands, a winding), and the vessel resumes past it along the
    /// same axis. The profile is then measured across the gap on the image, where a cut-off
    /// would otherwise stand. Ends qualify when the gap is at most `bridge_max_gap_radii`
    /// times the wider end's radius, both ends and the gap itself run within
    /// `bridge_max_turn_deg` of one axis, and the radii differ by at most a factor of 2.
    pub bridge_gaps: bool,
    /// See `bridge_gaps`.
    pub bridge_max_gap_radii: f64,
    /// See `bridge_gaps`.
    pub bridge_max_turn_deg: f64,
    /// Drop the skeleton where the mask touches the image edge: there the vessel leaves the
    /// field, and the thinning of the cut-off mask runs on along the edge (into the corners
    /// of the cut, or along a dark band at the edge) in lines that are not vessels and that
    /// read as bends and narrowings. A skeleton pixel goes when its inscribed disc comes
    /// within one pixel of the image edge; a vessel that leaves the field then ends about
    /// one radius inside it. Without a `seed` the tree is then rooted at the node nearest to
    /// where the widest vessel meets the edge (the trunk entering the field: the trimmed
    /// trunk may keep only a thin corner of its cut as its end), when that vessel is at least
    /// half as wide as the widest on the skeleton.
    pub trim_image_edge: bool,
    /// Gaussian sigma (px of arc) that smooths the pixel chains into sub-pixel polylines.
    pub smooth_sigma_px: f64,
    /// Resampling step along the centerline, px (<= 0.5 keeps profile spacing fine).
    pub step_px: f64,
    /// Root of the tree: the node nearest to this point; default the widest end point, or with
    /// `trim_image_edge` the node nearest to where the widest vessel meets the image edge.
    pub seed: Option<Point>,
}

impl Default for CenterlineOptions {
    fn default() -> Self {
        Self {
            spur_factor: 2.0,
            min_branch_px: 4.0,
            min_component_px: 10.0,
            keep_stumps: true,
            stump_min_length_radii: 0.75,
            stump_min_radius_fraction: 0.35,
            split_caliber_drops: false,
            caliber_drop_fraction: 0.5,
            caliber_drop_min_turn_deg: 30.0,
            bridge_gaps: true,
            bridge_max_gap_radii: 5.0,
            bridge_max_turn_deg: 45.0,
            trim_image_edge: true,
            smooth_sigma_px: 2.0,
            step_px: 0.5,
            seed: None,
        }
    }
}

impl CenterlineOptions {
    fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("spur_factor", self.spur_factor),
            ("min_branch_px", self.min_branch_px),
            ("min_component_px", self.min_component_px),
            ("stump_min_length_radii", self.stump_min_length_radii),
            ("stump_min_radius_fraction", self.stump_min_radius_fraction),
            ("caliber_drop_fraction", self.caliber_drop_fraction),
            ("caliber_drop_min_turn_deg", self.caliber_drop_min_turn_deg),
            ("bridge_max_gap_radii", self.bridge_max_gap_radii),
            ("bridge_max_turn_deg", self.bridge_max_turn_deg),
            ("smooth_sigma_px", self.smooth_sigma_px),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AngioError::invalid(
                    field,
                    format!("must be a finite value >= 0, got {v}"),
                ));
            }
        }
        if !(self.caliber_drop_fraction > 0.0 && self.caliber_drop_fraction < 1.0) {
            return Err(AngioError::invalid(
                "caliber_drop_fraction",
                format!("must be in (0, 1), got {}", self.caliber_drop_fraction),
            ));
        }
        if !(self.caliber_drop_min_turn_deg <= 180.0) {
            return Err(AngioError::invalid(
                "caliber_drop_min_turn_deg",
                format!("must be in [0, 180], got {}", self.caliber_drop_min_turn_deg),
            ));
        }
        if !(self.step_px.is_finite() && self.step_px > 0.0 && self.step_px <= 5.0) {
            return Err(AngioError::invalid(
                "step_px",
                format!("must be in (0, 5], got {}", self.step_px),
            ));
        }
        Ok(())
    }
}

/// One branch of the centerline tree, proximal to distal.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterlineBranch {
    pub id: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// Smoothed, resampled centerline (px).
    pub points: Vec<Point>,
    /// Distance-transform radius of the mask at each point (px): a coarse width used to size
    /// the profile search, not the measured diameter. Over a gap that
    /// [`CenterlineOptions::bridge_gaps`] bridged, the line between the radii on either side.
    pub radius_px: Vec<f32>,
    /// Per point: inside a bridged gap (outside the mask).
    pub in_gap: Vec<bool>,
    /// Number of branches meeting at the start and end nodes (1 = free end).
    pub start_degree: usize,
    pub end_degree: usize,
    /// Radius (px) of the mask at the start and end nodes (junction size).
    pub start_node_radius_px: f32,
    pub end_node_radius_px: f32,
}

/// The centerline tree of a mask.
#[derive(Debug, Clone, PartialEq)]
pub struct Centerlines {
    pub branches: Vec<CenterlineBranch>,
    /// Root branch of the main component.
    pub root: Option<usize>,
    /// The pruned one-pixel skeleton.
    pub skeleton: Array2<bool>,
}

/// A binary image on a byte grid with a one-pixel zero border: neighbours are fixed offsets
/// from a linear index (no bounds checks) and a pixel's 3x3 neighbourhood packs into one byte
/// (bit k = neighbour `N8[k]`), so thinning decisions are table look-ups.
struct Grid {
    cols: usize,
    /// Row stride (`cols + 2`).
    w: usize,
    px: Vec<u8>,
    /// Per-pixel scratch bits (`LISTED`, `IN_PASS`, `IN_NEXT`, `NODE`, `VISITED`), all clear
    /// between operations.
    flags: Vec<u8>,
    /// Per-pixel scratch labels, all zero between operations.
    tag: Vec<u32>,
    offs: [usize; 8],
}

const LISTED: u8 = 1;
const IN_PASS: u8 = 2;
const IN_NEXT: u8 = 4;
const NODE: u8 = 8;
const VISITED: u8 = 16;
const TOUCHED: u8 = 32;
/// Candidate lists at least this long are marked in parallel.
const PAR_MARK_FROM: usize = 8192;

impl Grid {
    fn from_mask(mask: &Array2<bool>) -> Self {
        let (rows, cols) = mask.dim();
        let w = cols + 2;
        let mut px = vec![0u8; (rows + 2) * w];
        for (r, row) in mask.outer_iter().enumerate() {
            let dst = &mut px[(r + 1) * w + 1..][..cols];
            for (d, &m) in dst.iter_mut().zip(row.iter()) {
                *d = m as u8;
            }
        }
        let n = px.len();
        // N8 order: NW, N, NE, E, SE, S, SW, W, as wrapping offsets (the border keeps every
        // neighbour of an image pixel inside the buffer).
        let offs = [
            0usize.wrapping_sub(w + 1),
            0usize.wrapping_sub(w),
            0usize.wrapping_sub(w - 1),
            1,
            w + 1,
            w,
            w - 1,
            0usize.wrapping_sub(1),
        ];
        Self {
            cols,
            w,
            px,
            flags: vec![0; n],
            tag: vec![0; n],
            offs,
        }
    }

    #[inline]
    fn rc(&self, i: usize) -> (usize, usize) {
        (i / self.w - 1, i % self.w - 1)
    }

    #[inline]
    fn idx(&self, (r, c): (usize, usize)) -> usize {
        (r + 1) * self.w + c + 1
    }

    #[inline]
    fn nbr(&self, i: usize, k: usize) -> usize {
        i.wrapping_add(self.offs[k])
    }

    /// Neighbourhood byte of an image pixel (bit k = neighbour `N8[k]` set).
    #[inline]
    fn code(&self, i: usize) -> u8 {
        let p = &self.px;
        let w = self.w;
        p[i - w - 1]
            | p[i - w] << 1
            | p[i - w + 1] << 2
            | p[i + 1] << 3
            | p[i + w + 1] << 4
            | p[i + w] << 5
            | p[i + w - 1] << 6
            | p[i - 1] << 7
    }

    /// Set pixels in raster order (empty stretches are skipped 64 bytes at a time).
    fn set_pixels(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (ci, ch) in self.px.chunks(64).enumerate() {
            if ch.iter().fold(0, |a, &v| a | v) == 0 {
                continue;
            }
            out.extend(
                ch.iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0)
                    .map(|(k, _)| ci * 64 + k),
            );
        }
        out
    }

    fn to_mask(&self, rows: usize) -> Array2<bool> {
        let (w, cols) = (self.w, self.cols);
        let mut v = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            v.extend(self.px[(r + 1) * w + 1..][..cols].iter().map(|&x| x != 0));
        }
        // `v` holds exactly rows * cols values, so the shape always fits.
        Array2::from_shape_vec((rows, cols), v).unwrap_or_default()
    }
}

/// Thinning decisions per neighbourhood byte.
struct Tables {
    /// Zhang-Suen deletable in sub-iteration 0 and 1.
    zs: [[bool; 256]; 2],
    /// Removable staircase pixel: at least two neighbours and Yokoi 8-connectivity number 1.
    yokoi: [bool; 256],
}

fn unpack(code: u8) -> [bool; 8] {
    std::array::from_fn(|k| code >> k & 1 == 1)
}

/// Zhang-Suen's test for one sub-iteration on a neighbourhood in `N8` order.
fn zs_deletable(n: &[bool; 8], step: usize) -> bool {
    // N8 order: NW, N, NE, E, SE, S, SW, W. Zhang-Suen uses P2=N, P3=NE, ... P9=NW.
    let p = [n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[0]];
    let b = p.iter().filter(|&&x| x).count();
    if !(2..=6).contains(&b) {
        return false;
    }
    let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
    if a != 1 {
        return false;
    }
    let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
    // Zhang-Suen's conditions, written as in the paper.
    #[allow(clippy::nonminimal_bool)]
    if step == 0 {
        !(p2 && p4 && p6) && !(p4 && p6 && p8)
    } else {
        !(p2 && p4 && p8) && !(p2 && p6 && p8)
    }
}

fn yokoi_removable(n: &[bool; 8]) -> bool {
    n.iter().filter(|&&x| x).count() >= 2 && yokoi8(n) == 1
}

fn tables() -> Tables {
    let mut t = Tables {
        zs: [[false; 256]; 2],
        yokoi: [false; 256],
    };
    for code in 0..=255u8 {
        let n = unpack(code);
        t.zs[0][code as usize] = zs_deletable(&n, 0);
        t.zs[1][code as usize] = zs_deletable(&n, 1);
        t.yokoi[code as usize] = yokoi_removable(&n);
    }
    t
}

/// Zhang-Suen thinning from `candidates` (set pixels that may be deletable; every other set
/// pixel must have a neighbourhood that is not), then removal of redundant staircase pixels
/// (simple non-end pixels, one at a time in raster order, passes until none is left).
/// `first_pass` lists the pixels the first staircase pass must visit besides the neighbours of
/// pixels deleted here (`None`: every set pixel, as on a fresh mask).
///
/// Zhang-Suen marks from the state at the start of each sub-iteration, so only the candidate
/// set matters: a pixel's verdict depends on its neighbourhood alone, so the list keeps the
/// pixels with at most 6 set neighbours whose neighbourhood changed in the last iteration and
/// takes back the neighbours of every deleted pixel (same result as scanning every pixel, with
/// work proportional to the moving border). The staircase passes visit, in
/// raster order, exactly the pixels a full scan could delete: those whose neighbourhood changed
/// since they were last found non-removable (later in the same pass, or in the next pass when
/// the change came after their turn).
fn thin(g: &mut Grid, t: &Tables, mut candidates: Vec<usize>, first_pass: Option<Vec<usize>>) {
    let mut deleted = Vec::new();
    let mut to_delete = Vec::new();
    // Pixels with 7 or 8 set neighbours are not deletable until a neighbour goes, which lists
    // them again.
    candidates.retain(|&i| g.px[i] != 0 && g.code(i).count_ones() <= 6);
    for &i in &candidates {
        g.flags[i] |= LISTED;
    }
    loop {
        let mut changed = false;
        for step in 0..2 {
            to_delete.clear();
            let marks = |i: usize| g.px[i] != 0 && t.zs[step][g.code(i) as usize];
            if candidates.len() >= PAR_MARK_FROM {
                // Marking only reads the grid: split long lists over the pool.
                use rayon::prelude::*;
                to_delete.par_extend(
                    candidates
                        .par_iter()
                        .copied()
                        .with_min_len(PAR_MARK_FROM / 2)
                        .filter(|&i| marks(i)),
                );
            } else {
                to_delete.extend(candidates.iter().copied().filter(|&i| marks(i)));
            }
            for &i in &to_delete {
                g.px[i] = 0;
            }
            for &i in &to_delete {
                for k in 0..8 {
                    let j = g.nbr(i, k);
                    if g.px[j] != 0 {
                        if g.flags[j] & LISTED == 0 {
                            candidates.push(j);
                        }
                        g.flags[j] |= LISTED | TOUCHED;
                    }
                }
            }
            changed |= !to_delete.is_empty();
            deleted.extend_from_slice(&to_delete);
        }
        // Drop deleted pixels and those whose neighbourhood did not change in this iteration
        // (found non-deletable by both sub-iterations, they stay so until a neighbour goes,
        // which lists them again).
        candidates.retain(|&i| {
            let keep = g.px[i] != 0 && g.flags[i] & TOUCHED != 0;
            g.flags[i] &= !TOUCHED;
            if !keep {
                g.flags[i] &= !LISTED;
            }
            keep
        });
        if !changed {
            break;
        }
    }
    for &i in &candidates {
        g.flags[i] &= !LISTED;
    }
    // Staircase passes.
    let mut pass = match first_pass {
        Some(mut v) => {
            for &i in &deleted {
                v.extend((0..8).map(|k| g.nbr(i, k)));
            }
            v
        }
        None => g.set_pixels(),
    };
    let mut next: Vec<usize> = Vec::new();
    let mut later: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    loop {
        pass.retain(|&i| g.px[i] != 0);
        pass.sort_unstable();
        pass.dedup();
        if pass.is_empty() {
            break;
        }
        for &i in &pass {
            g.flags[i] |= IN_PASS;
        }
        let mut pos = 0;
        loop {
            // Next pixel in raster order from the pass list and the pixels queued behind it.
            let i = match (pass.get(pos), later.peek()) {
                (Some(&a), Some(&Reverse(b))) if b < a => later.pop().map_or(a, |Reverse(b)| b),
                (Some(&a), _) => {
                    pos += 1;
                    a
                }
                (None, Some(_)) => later.pop().map_or(0, |Reverse(b)| b),
                (None, None) => break,
            };
            g.flags[i] &= !IN_PASS;
            if g.px[i] == 0 || !t.yokoi[g.code(i) as usize] {
                continue;
            }
            g.px[i] = 0;
            for k in 0..8 {
                let j = g.nbr(i, k);
                if g.px[j] == 0 {
                    continue;
                }
                if j > i {
                    if g.flags[j] & IN_PASS == 0 {
                        g.flags[j] |= IN_PASS;
                        later.push(Reverse(j));
                    }
                } else if g.flags[j] & IN_NEXT == 0 {
                    g.flags[j] |= IN_NEXT;
                    next.push(j);
                }
            }
        }
        for &i in &next {
            g.flags[i] &= !IN_NEXT;
        }
        pass = std::mem::take(&mut next);
    }
}

/// Zhang-Suen thinning followed by removal of redundant staircase pixels, giving an
/// 8-connected one-pixel skeleton.
pub fn skeletonize(mask: &Array2<bool>) -> Array2<bool> {
    let mut g = Grid::from_mask(mask);
    let cands = g.set_pixels();
    thin(&mut g, &tables(), cands, None);
    g.to_mask(mask.nrows())
}

/// Yokoi's 8-connectivity number from neighbours in `N8` order (NW, N, NE, E, SE, S, SW, W).
fn yokoi8(n: &[bool; 8]) -> usize {
    // x1 = E, x2 = NE, x3 = N, x4 = NW, x5 = W, x6 = SW, x7 = S, x8 = SE.
    let x = [n[3], n[2], n[1], n[0], n[7], n[6], n[5], n[4]];
    let nx = |i: usize| !x[i % 8] as i32;
    let mut c = 0;
    for k in [0, 2, 4, 6] {
        c += nx(k) - nx(k) * nx(k + 1) * nx(k + 2);
    }
    c.max(0) as usize
}

#[derive(Debug, Clone)]
struct Node {
    pixels: Vec<(usize, usize)>,
    edges: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Edge {
    a: usize,
    b: usize,
    path: Vec<(usize, usize)>,
}

struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

fn path_len(p: &[(usize, usize)]) -> f64 {
    p.windows(2)
        .map(|w| (w[0].0 as f64 - w[1].0 as f64).hypot(w[0].1 as f64 - w[1].1 as f64))
        .sum()
}

/// Nodes are clusters of skeleton pixels with other than two neighbours; edges are the chains
/// between them. Closed loops without any node are dropped. `pixels` are the set pixels of the
/// grid in raster order; only they are visited (the skeleton is sparse and this runs once per
/// pruning round), and the grid's scratch is left clear.
fn build_graph(g: &mut Grid, pixels: &[usize]) -> Graph {
    let mut node_pixels = Vec::new();
    for &i in pixels {
        if g.code(i).count_ones() != 2 {
            g.flags[i] |= NODE;
            node_pixels.push(i);
        }
    }
    // Nodes: 8-connected clusters of node pixels, numbered in raster order of their first pixel.
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack = Vec::new();
    for &start in &node_pixels {
        if g.tag[start] != 0 {
            continue;
        }
        nodes.push(Node {
            pixels: Vec::new(),
            edges: Vec::new(),
        });
        let id = nodes.len() as u32;
        g.tag[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            for k in 0..8 {
                let j = g.nbr(i, k);
                if g.flags[j] & NODE != 0 && g.tag[j] == 0 {
                    g.tag[j] = id;
                    stack.push(j);
                }
            }
        }
    }
    // Pixels of each node in raster order.
    let mut node_idx: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for &i in &node_pixels {
        let n = g.tag[i] as usize - 1;
        node_idx[n].push(i);
        nodes[n].pixels.push(g.rc(i));
    }
    let mut visited = Vec::new();
    let mut edges: Vec<Edge> = Vec::new();
    for (ni, idx) in node_idx.iter().enumerate() {
        for &i in idx {
            for k in 0..8 {
                let y = g.nbr(i, k);
                if g.px[y] == 0 || g.flags[y] & (NODE | VISITED) != 0 {
                    continue;
                }
                let mut path = vec![g.rc(i), g.rc(y)];
                g.flags[y] |= VISITED;
                visited.push(y);
                let (mut prev, mut cur) = (i, y);
                let mut end = None;
                'walk: loop {
                    let mut next = None;
                    for k2 in 0..8 {
                        let q = g.nbr(cur, k2);
                        if q == prev || g.px[q] == 0 {
                            continue;
                        }
                        if g.flags[q] & NODE != 0 {
                            // Prefer stopping at a node when one is adjacent.
                            path.push(g.rc(q));
                            end = Some(g.tag[q] as usize - 1);
                            break 'walk;
                        }
                        if g.flags[q] & VISITED == 0 {
                            next = Some(q);
                        }
                    }
                    match next {
                        Some(q) => {
                            g.flags[q] |= VISITED;
                            visited.push(q);
                            path.push(g.rc(q));
                            prev = cur;
                            cur = q;
                        }
                        None => break,
                    }
                }
                if let Some(b) = end {
                    let id = edges.len();
                    edges.push(Edge { a: ni, b, path });
                    nodes[ni].edges.push(id);
                    if b != ni {
                        nodes[b].edges.push(id);
                    } else {
                        nodes[ni].edges.push(id);
                    }
                }
            }
        }
    }
    for &i in &node_pixels {
        g.flags[i] &= !NODE;
        g.tag[i] = 0;
    }
    for &i in &visited {
        g.flags[i] &= !VISITED;
    }
    Graph { nodes, edges }
}

/// Whether the terminal edge `e` hanging from node `junction` is a vessel stub of its own
/// rather than a spur of the parent's mask (see [`CenterlineOptions::keep_stumps`]).
///
/// The parent's edge is taken at the junction radius `R` from the node. The stub's own radius
/// is the largest distance-transform value of its skeleton beyond that edge or at its tip, and
/// its reach is where its mask ends (tip distance from the node plus the mask radius at the
/// tip) minus `R`. A thin finger is narrow for the junction; a bulge along the parent's edge
/// reaches less than its own radius beyond it. A stump as short as it is wide (common for an
/// occlusion at a side branch's origin) has its skeleton end one of its radii before its cap,
/// often still within `R` of the node: its radius is then read at the tip and its reach alone
/// decides.
fn is_stump(e: &Edge, junction: usize, node: &Node, dist: &Array2<f32>, opts: &CenterlineOptions) -> bool {
    let big_r = node.pixels.iter().map(|&(r, c)| dist[[r, c]]).fold(0f32, f32::max) as f64;
    let k = node.pixels.len().max(1) as f64;
    let (nr, nc) = node
        .pixels
        .iter()
        .fold((0.0, 0.0), |(r, c), p| (r + p.0 as f64, c + p.1 as f64));
    let (nr, nc) = (nr / k, nc / k);
    let from_node = |&(r, c): &(usize, usize)| (r as f64 - nr).hypot(c as f64 - nc);
    let path: Vec<(usize, usize)> = if e.a == junction {
        e.path.clone()
    } else {
        e.path.iter().rev().copied().collect()
    };
    let Some(&tip) = path.last() else { return false };
    let beyond: Vec<(usize, usize)> = path.iter().copied().filter(|p| from_node(p) > big_r).collect();
    // The widest station beyond the edge or at the tip: a tube keeps its radius up to the cap.
    let own_r = beyond
        .iter()
        .map(|&(r, c)| dist[[r, c]])
        .fold(dist[[tip.0, tip.1]], f32::max) as f64;
    if own_r < 1.5 || own_r < opts.stump_min_radius_fraction * big_r {
        return false;
    }
    let reach = from_node(&tip) + dist[[tip.0, tip.1]] as f64 - big_r;
    if reach < opts.min_branch_px || reach < opts.stump_min_length_radii * own_r {
        return false;
    }
    if beyond.len() < 3 {
        // Too little skeleton past the edge to curl along it.
        return true;
    }
    // Straight: a stump is a short tube, not a skeleton curling along the parent's edge.
    let (b0, b1) = (beyond[0], tip);
    let chord = (b0.0 as f64 - b1.0 as f64).hypot(b0.1 as f64 - b1.1 as f64);
    chord >= 0.8 * path_len(&beyond)
}

/// Free end of a skeleton piece, for [`bridge_gaps`].
struct FreeEnd {
    node: usize,
    edge: usize,
    /// Position of the end pixel.
    at: (f64, f64),
    /// Unit direction out of the piece through the end.
    out: (f64, f64),
    radius_px: f64,
}

/// Pixel chain of `e` oriented to end at node `v`.
fn path_to(e: &Edge, v: usize) -> Vec<(usize, usize)> {
    if e.b == v {
        e.path.clone()
    } else {
        e.path.iter().rev().copied().collect()
    }
}

/// Pixels of the straight line from `a` to `b`, both excluded.
fn line_between(a: (usize, usize), b: (usize, usize)) -> Vec<(usize, usize)> {
    let (dr, dc) = (b.0 as f64 - a.0 as f64, b.1 as f64 - a.1 as f64);
    let n = dr.abs().max(dc.abs()).ceil() as usize;
    (1..n)
        .map(|k| {
            let t = k as f64 / n as f64;
            (
                (a.0 as f64 + t * dr).round() as usize,
                (a.1 as f64 + t * dc).round() as usize,
            )
        })
        .collect()
}

/// Joins free ends of separate pieces that face each other across a short gap (see
/// [`CenterlineOptions::bridge_gaps`]): each joined pair's two edges become one edge running
/// through the gap's straight pixels. The `root` node (where the tree's contrast enters, not a
/// cut) is never joined. Returns the gaps' pixels.
fn bridge_gaps(
    g: &mut Graph,
    dist: &Array2<f32>,
    opts: &CenterlineOptions,
    root: Option<usize>,
) -> Vec<(usize, usize)> {
    // Pieces: the graph's components, merged (union-find over them) as pieces are joined.
    let nn = g.nodes.len();
    let (comp, comps) = components(g);
    let mut parent: Vec<usize> = (0..comps.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let (rows, cols) = dist.dim();
    let ends: Vec<FreeEnd> = (0..nn)
        .filter(|&v| g.nodes[v].edges.len() == 1 && Some(v) != root)
        .filter_map(|v| {
            let edge = g.nodes[v].edges[0];
            let path = path_to(&g.edges[edge], v);
            let &tip = path.last()?;
            // Radius: the widest station over the last few px (the skeleton's end sits inside
            // the rounded cap, where the distance to the mask edge falls).
            let radius_px = path
                .iter()
                .rev()
                .take(12)
                .map(|&(r, c)| dist[[r, c]])
                .fold(0f32, f32::max) as f64;
            // Direction over the last two radii of chain (at least 4 px).
            let back = (2.0 * radius_px).max(4.0).ceil() as usize;
            if path.len() <= back.min(4) {
                return None;
            }
            let from = path[path.len().saturating_sub(back + 1)];
            let (dr, dc) = (tip.0 as f64 - from.0 as f64, tip.1 as f64 - from.1 as f64);
            let len = dr.hypot(dc);
            // A vessel leaving the field is not cut.
            let m = radius_px + 2.0;
            let (tr, tc) = (tip.0 as f64, tip.1 as f64);
            let inside = tr >= m && tc >= m && tr <= rows as f64 - 1.0 - m && tc <= cols as f64 - 1.0 - m;
            (len > 0.0 && radius_px >= 1.0 && inside).then_some(FreeEnd {
                node: v,
                edge,
                at: (tr, tc),
                out: (dr / len, dc / len),
                radius_px,
            })
        })
        .collect();
    let cos_max = opts.bridge_max_turn_deg.to_radians().cos();
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..ends.len() {
        for j in i + 1..ends.len() {
            let (u, w) = (&ends[i], &ends[j]);
            let (gr, gc) = (w.at.0 - u.at.0, w.at.1 - u.at.1);
            let gap = gr.hypot(gc);
            let (r_lo, r_hi) = (u.radius_px.min(w.radius_px), u.radius_px.max(w.radius_px));
            if gap <= 0.0 || gap > opts.bridge_max_gap_radii * r_hi || r_hi > 2.0 * r_lo {
                continue;
            }
            let (ur, uc) = (gr / gap, gc / gap);
            // u points across the gap at w, w back at u, and the two run on one axis.
            let facing = u.out.0 * ur + u.out.1 * uc >= cos_max
                && -(w.out.0 * ur + w.out.1 * uc) >= cos_max
                && -(u.out.0 * w.out.0 + u.out.1 * w.out.1) >= cos_max;
            if facing {
                pairs.push((gap / r_hi, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut used = vec![false; ends.len()];
    let mut bridged = Vec::new();
    for (_, i, j) in pairs {
        if used[i] || used[j] {
            continue;
        }
        let (u, w) = (&ends[i], &ends[j]);
        let (pu, pw) = (find(&mut parent, comp[u.node]), find(&mut parent, comp[w.node]));
        if pu == pw {
            // Already one piece: joining would close a loop.
            continue;
        }
        let (eu, ew) = (&g.edges[u.edge], &g.edges[w.edge]);
        let a = if eu.a == u.node { eu.b } else { eu.a };
        let b = if ew.a == w.node { ew.b } else { ew.a };
        // Chains run node to node (at least two pixels): u's ends at its tip, w's starts at
        // its own.
        let mut path = path_to(eu, u.node);
        let from_w: Vec<(usize, usize)> = path_to(ew, w.node).into_iter().rev().collect();
        let (Some(&tu), Some(&tw)) = (path.last(), from_w.first()) else {
            continue;
        };
        used[i] = true;
        used[j] = true;
        parent[pu] = pw;
        let gap_px = line_between(tu, tw);
        bridged.extend(gap_px.iter().copied());
        path.extend(gap_px);
        path.extend(from_w);
        let id = g.edges.len();
        g.edges.push(Edge { a, b, path });
        for (node, old) in [(a, u.edge), (b, w.edge)] {
            for x in g.nodes[node].edges.iter_mut() {
                if *x == old {
                    *x = id;
                }
            }
        }
        g.nodes[u.node].edges.clear();
        g.nodes[w.node].edges.clear();
    }
    bridged
}

/// Points on either side of a zero run whose widest radius [`fill_zero_runs`] takes: the
/// skeleton ends inside a piece's rounded cap, where the distance to the mask edge falls.
const FILL_REACH_POINTS: usize = 24;

/// Replaces each run of zeros in `r` by the straight line between the widest radius within
/// [`FILL_REACH_POINTS`] on either side (the one side's at either end).
fn fill_zero_runs(r: &mut [f32]) {
    let n = r.len();
    let mut i = 0;
    while i < n {
        if r[i] > 0.0 {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && r[i] <= 0.0 {
            i += 1;
        }
        let widest = |w: &[f32]| w.iter().copied().fold(0f32, f32::max);
        let lo = widest(&r[s.saturating_sub(FILL_REACH_POINTS)..s]);
        let hi = widest(&r[i..(i + FILL_REACH_POINTS).min(n)]);
        let (lo, hi) = match (lo > 0.0, hi > 0.0) {
            (true, true) => (lo, hi),
            (true, false) => (lo, lo),
            (false, true) => (hi, hi),
            (false, false) => return,
        };
        let len = (i - s + 1) as f32;
        for (k, x) in r[s..i].iter_mut().enumerate() {
            *x = lo + (hi - lo) * (k + 1) as f32 / len;
        }
    }
}

/// Prune spurs and tiny components from the skeleton in place; returns the final graph.
///
/// Each round removes spurs and re-thins only around them: the skeleton is a fixed point of
/// [`thin`] (a Zhang-Suen deletable pixel is always a removable staircase pixel, so none is
/// left), hence only pixels next to a removed one can change, and the result equals thinning
/// the whole skeleton again.
fn prune(g: &mut Grid, dist: &Array2<f32>, opts: &CenterlineOptions) -> Graph {
    let t = tables();
    let mut pixels = g.set_pixels();
    for _ in 0..12 {
        let gr = build_graph(g, &pixels);
        let node_radius = |n: &Node| n.pixels.iter().map(|&(r, c)| dist[[r, c]]).fold(0f32, f32::max) as f64;
        // At each junction remove at most the shortest spur per round, never all its branches.
        let mut best: Vec<Option<(f64, usize)>> = vec![None; gr.nodes.len()];
        for (ei, e) in gr.edges.iter().enumerate() {
            let (da, db) = (gr.nodes[e.a].edges.len(), gr.nodes[e.b].edges.len());
            let (junction, len) = if da == 1 && db >= 3 {
                (e.b, path_len(&e.path))
            } else if db == 1 && da >= 3 {
                (e.a, path_len(&e.path))
            } else {
                continue;
            };
            let limit = opts
                .min_branch_px
                .max(opts.spur_factor * node_radius(&gr.nodes[junction]));
            if len < limit
                && best[junction].is_none_or(|(l, _)| len < l)
                && !(opts.keep_stumps && is_stump(e, junction, &gr.nodes[junction], dist, opts))
            {
                best[junction] = Some((len, ei));
            }
        }
        let mut removed = Vec::new();
        for (j, b) in best.iter().enumerate() {
            if let Some((_, ei)) = b {
                for &p in &gr.edges[*ei].path {
                    let i = g.idx(p);
                    if !gr.nodes[j].pixels.contains(&p) && g.px[i] != 0 {
                        g.px[i] = 0;
                        removed.push(i);
                    }
                }
            }
        }
        if best.iter().all(Option::is_none) {
            break;
        }
        let mut around = Vec::new();
        for &i in &removed {
            around.extend((0..8).map(|k| g.nbr(i, k)).filter(|&j| g.px[j] != 0));
        }
        around.sort_unstable();
        around.dedup();
        thin(g, &t, around.clone(), Some(around));
        pixels.retain(|&i| g.px[i] != 0);
    }
    // Drop small components (8-connected pixel counts).
    let mut stack = Vec::new();
    let mut members = Vec::new();
    for &start in &pixels {
        if g.flags[start] & VISITED != 0 {
            continue;
        }
        members.clear();
        g.flags[start] |= VISITED;
        stack.push(start);
        while let Some(i) = stack.pop() {
            members.push(i);
            for k in 0..8 {
                let j = g.nbr(i, k);
                if g.px[j] != 0 && g.flags[j] & VISITED == 0 {
                    g.flags[j] |= VISITED;
                    stack.push(j);
                }
            }
        }
        if (members.len() as f64) < opts.min_component_px {
            for &i in &members {
                g.px[i] = 0;
            }
        }
    }
    for &i in &pixels {
        g.flags[i] &= !VISITED;
    }
    pixels.retain(|&i| g.px[i] != 0);
    build_graph(g, &pixels)
}

/// Pixels between `(r, c)` and the nearest image edge (0 on the outermost row or column).
fn px_to_image_edge((r, c): (usize, usize), (rows, cols): (usize, usize)) -> usize {
    r.min(c).min(rows - 1 - r).min(cols - 1 - c)
}

/// Clears the skeleton pixels whose inscribed disc (radius `dist`) comes within one pixel of
/// the image edge (see [`CenterlineOptions::trim_image_edge`]). Returns the widest of them,
/// where the widest vessel enters the field, when it is at least [`ENTRY_MIN_RADIUS_FRACTION`]
/// of the widest skeleton radius anywhere (else the trunk lies inside the field).
fn trim_image_edge(g: &mut Grid, dist: &Array2<f32>) -> Option<(Point, f32)> {
    let mut widest: Option<(Point, f32)> = None;
    let mut widest_anywhere = 0f32;
    for i in g.set_pixels() {
        let (r, c) = g.rc(i);
        let to_edge = px_to_image_edge((r, c), dist.dim()) as f32;
        let d = dist[[r, c]];
        widest_anywhere = widest_anywhere.max(d);
        if to_edge <= d + 1.0 {
            g.px[i] = 0;
            if widest.is_none_or(|(_, w)| d > w) {
                widest = Some((Point::new(r as f64, c as f64), d));
            }
        }
    }
    widest.filter(|&(_, d)| d >= ENTRY_MIN_RADIUS_FRACTION * widest_anywhere)
}

/// An entry at the image edge roots the tree only when at least this fraction of the widest
/// radius on the skeleton: a small vessel leaving the field while the trunk lies inside it
/// is not the tree's origin.
const ENTRY_MIN_RADIUS_FRACTION: f32 = 0.5;

/// Smallest radius (px) of a vessel whose abrupt end [`split_caliber_drops`] represents.
const MIN_DROP_RADIUS_PX: f32 = 3.0;

/// Index along `r` (radii along a pixel chain) where a wide vessel ends and a thin one takes
/// over: the radius there is at least [`MIN_DROP_RADIUS_PX`] and about the median of the
/// preceding two radii of arc, and past a transition of 1.5 radii (the wide vessel's cap) the
/// chain stays below `fraction` of it for at least 4 radii. A narrowing that recovers (a ring)
/// or a gradual taper does not qualify.
fn caliber_drop(r: &[f32], fraction: f64) -> Option<usize> {
    let n = r.len();
    for i in 1..n {
        let ri = r[i];
        if ri < MIN_DROP_RADIUS_PX {
            continue;
        }
        let w = (2.0 * ri).ceil() as usize;
        if i < w.min(4) {
            continue;
        }
        let mut before: Vec<f32> = r[i.saturating_sub(w)..i].to_vec();
        before.sort_by(f32::total_cmp);
        if before[before.len() / 2] < 0.9 * ri {
            continue;
        }
        let j0 = i + (1.5 * ri).ceil() as usize;
        let len = (4.0 * ri).ceil() as usize;
        if j0 + len > n {
            break;
        }
        let mut after: Vec<f32> = r[j0..j0 + len].to_vec();
        after.sort_by(f32::total_cmp);
        let p90 = after[(after.len() * 9 / 10).min(after.len() - 1)];
        if (p90 as f64) <= fraction * ri as f64 {
            return Some(i);
        }
    }
    None
}

/// Split the edges of `g` at abrupt caliber drops (see
/// [`CenterlineOptions::split_caliber_drops`]): a node where the wide part ends, the thin part
/// continuing from it, and a straight terminal edge from it along the wide part's direction to
/// the end of its mask (the cap), so that the wide vessel has a free end of its own.
fn split_caliber_drops(g: &mut Graph, dist: &Array2<f32>, mask: &Array2<bool>, opts: &CenterlineOptions) {
    let (rows, cols) = mask.dim();
    for ei in 0..g.edges.len() {
        let path = &g.edges[ei].path;
        let r: Vec<f32> = path.iter().map(|&(y, x)| dist[[y, x]]).collect();
        let rev: Vec<f32> = r.iter().rev().copied().collect();
        let n = path.len();
        // Index on the path and the direction the wide part runs in.
        let (k, back) = match (
            caliber_drop(&r, opts.caliber_drop_fraction),
            caliber_drop(&rev, opts.caliber_drop_fraction),
        ) {
            (Some(i), _) => (i, i.saturating_sub((2.0 * r[i]).ceil() as usize)),
            (None, Some(i)) => (n - 1 - i, (n - 1 - i + (2.0 * rev[i]).ceil() as usize).min(n - 1)),
            (None, None) => continue,
        };
        if k == 0 || k + 1 >= n || back == k {
            continue;
        }
        let (p, q) = (path[k], path[back]);
        let (dy, dx) = (p.0 as f64 - q.0 as f64, p.1 as f64 - q.1 as f64);
        let norm = dy.hypot(dx);
        if !(norm > 0.0) {
            continue;
        }
        let (uy, ux) = (dy / norm, dx / norm);
        // The thin part must leave sideways (by default): straight on, it may be the same vessel
        // narrowing (a subtotal lesion) rather than a branch leaving a stump.
        let reach = (5.5 * dist[[p.0, p.1]]).ceil() as usize;
        let ahead = if back < k {
            path[(k + reach).min(n - 1)]
        } else {
            path[k.saturating_sub(reach)]
        };
        let (ay, ax) = (ahead.0 as f64 - p.0 as f64, ahead.1 as f64 - p.1 as f64);
        let along = (ay * uy + ax * ux) / ay.hypot(ax).max(1e-9);
        if opts.caliber_drop_min_turn_deg > 0.0 && along > opts.caliber_drop_min_turn_deg.to_radians().cos() {
            continue;
        }
        let wide_r = dist[[p.0, p.1]] as f64;
        // March through the cap to the end of the mask (or to where the lumen turns thin).
        let mut cap = vec![p];
        for step in 1.. {
            let t = 0.5 * step as f64;
            let (y, x) = (p.0 as f64 + t * uy, p.1 as f64 + t * ux);
            if y < -0.5 || x < -0.5 {
                break;
            }
            let (yi, xi) = (y.round() as usize, x.round() as usize);
            // Past the wide lumen (into a thin one straight ahead) is not the cap.
            if yi >= rows
                || xi >= cols
                || !mask[[yi, xi]]
                || t > 3.0 * wide_r
                || (dist[[yi, xi]] as f64) < opts.caliber_drop_fraction * wide_r
            {
                break;
            }
            if cap.last() != Some(&(yi, xi)) {
                cap.push((yi, xi));
            }
        }
        if path_len(&cap) < opts.min_branch_px {
            continue;
        }
        let (a, b) = (g.edges[ei].a, g.edges[ei].b);
        let node = g.nodes.len();
        let tail = g.edges.len();
        let stub = tail + 1;
        let tip = cap.last().copied().unwrap_or(p);
        let full = std::mem::take(&mut g.edges[ei].path);
        g.edges[ei] = Edge {
            a,
            b: node,
            path: full[..=k].to_vec(),
        };
        g.edges.push(Edge {
            a: node,
            b,
            path: full[k..].to_vec(),
        });
        g.edges.push(Edge {
            a: node,
            b: node + 1,
            path: cap,
        });
        // `b` now meets the tail instead of the original edge (for a loop, its second end).
        if let Some(slot) = g.nodes[b].edges.iter().rposition(|&e| e == ei) {
            g.nodes[b].edges[slot] = tail;
        }
        g.nodes.push(Node {
            pixels: vec![p],
            edges: vec![ei, tail, stub],
        });
        g.nodes.push(Node {
            pixels: vec![tip],
            edges: vec![stub],
        });
    }
}

/// Gaussian smoothing of a polyline's vertices with `sigma` in vertices; the window shrinks near
/// the ends so that the ends stay put.
pub fn smooth_points(pts: &[Point], sigma: f64) -> Vec<Point> {
    let n = pts.len();
    if !(sigma > 0.0) || n <= 2 {
        return pts.to_vec();
    }
    let rad = (3.0 * sigma).ceil() as isize;
    (0..n)
        .map(|i| {
            let w = rad.min(i as isize).min((n - 1 - i) as isize);
            let (mut sr, mut sc, mut sw) = (0.0, 0.0, 0.0);
            for k in -w..=w {
                let p = pts[(i as isize + k) as usize];
                let wt = (-0.5 * (k * k) as f64 / (sigma * sigma)).exp();
                sr += wt * p.row;
                sc += wt * p.col;
                sw += wt;
            }
            Point::new(sr / sw, sc / sw)
        })
        .collect()
}

/// Gaussian smoothing of a pixel chain's coordinates (ends fixed), then resampling.
fn smooth_resample(path: &[(usize, usize)], sigma: f64, step: f64) -> Vec<Point> {
    let pts: Vec<Point> = path.iter().map(|&(r, c)| Point::new(r as f64, c as f64)).collect();
    let n = pts.len();
    let smoothed: Vec<Point> = if sigma > 0.0 && n > 2 {
        let rad = (3.0 * sigma).ceil() as isize;
        (0..n)
            .map(|i| {
                if i == 0 || i == n - 1 {
                    return pts[i];
                }
                // Shrink the window near the ends so the ends stay put.
                let w = rad.min(i as isize).min((n - 1 - i) as isize);
                let (mut sr, mut sc, mut sw) = (0.0, 0.0, 0.0);
                for k in -w..=w {
                    let p = pts[(i as isize + k) as usize];
                    let wt = (-0.5 * (k * k) as f64 / (sigma * sigma)).exp();
                    sr += wt * p.row;
                    sc += wt * p.col;
                    sw += wt;
                }
                Point::new(sr / sw, sc / sw)
            })
            .collect()
    } else {
        pts
    };
    Polyline::new(smoothed).resample(step).points
}

/// Connected components of the node graph: each node's component index, and each
/// component's nodes.
fn components(g: &Graph) -> (Vec<usize>, Vec<Vec<usize>>) {
    let nn = g.nodes.len();
    let mut comp = vec![usize::MAX; nn];
    let mut comps: Vec<Vec<usize>> = Vec::new();
    for start in 0..nn {
        if comp[start] != usize::MAX {
            continue;
        }
        let id = comps.len();
        let mut members = vec![start];
        comp[start] = id;
        let mut i = 0;
        while i < members.len() {
            let v = members[i];
            for &e in &g.nodes[v].edges {
                let o = if g.edges[e].a == v { g.edges[e].b } else { g.edges[e].a };
                if comp[o] == usize::MAX {
                    comp[o] = id;
                    members.push(o);
                }
            }
            i += 1;
        }
        comps.push(members);
    }
    (comp, comps)
}

/// Position of a node: the mean of its pixels.
fn node_pos(n: &Node) -> Point {
    let k = n.pixels.len().max(1) as f64;
    let (r, c) = n
        .pixels
        .iter()
        .fold((0.0, 0.0), |(r, c), p| (r + p.0 as f64, c + p.1 as f64));
    Point::new(r / k, c / k)
}

/// The root node of each tree to grow from `g` (each component holding an edge), the main
/// tree's first: that tree is the seed node's component (else the longest) rooted at the seed
/// node; every other tree at its widest free end, preferring one entering through the image
/// edge, except that a piece cut off from the main tree starts at its end facing it.
fn plan_trees(g: &Graph, dist: &Array2<f32>, seed_node: Option<usize>) -> Vec<usize> {
    let (comp, comps) = components(g);
    let comp_len = |members: &Vec<usize>| -> f64 {
        let mut seen = std::collections::HashSet::new();
        members
            .iter()
            .flat_map(|&v| g.nodes[v].edges.iter().copied())
            .filter(|e| seen.insert(*e))
            .map(|e| path_len(&g.edges[e].path))
            .sum()
    };
    // Root node per component: the seed's nearest node (seed component only), else the widest
    // free end (mean radius over the first few px of its branch).
    // Width of a free end: mean radius over the first few px of its branch. Where the image
    // edge cuts a vessel the distance transform reads the distance to the edge, not the
    // vessel's radius, so stations capped by the edge are skipped (a trunk entering the field
    // is otherwise narrower than a wide stump).
    let capped = |r: usize, c: usize| dist[[r, c]] >= (px_to_image_edge((r, c), dist.dim()) + 1) as f32;
    let end_width = |v: usize| -> f64 {
        let Some(&e) = g.nodes[v].edges.first() else { return 0.0 };
        let path = &g.edges[e].path;
        let from_a = g.edges[e].a == v;
        let ordered: Box<dyn Iterator<Item = &(usize, usize)>> = if from_a {
            Box::new(path.iter())
        } else {
            Box::new(path.iter().rev())
        };
        let free: Vec<f64> = ordered
            .filter(|&&(r, c)| !capped(r, c))
            .take(8)
            .map(|&(r, c)| dist[[r, c]] as f64)
            .collect();
        if free.is_empty() {
            let k = path.len().min(8);
            let take: Vec<&(usize, usize)> = if from_a {
                path.iter().take(k).collect()
            } else {
                path.iter().rev().take(k).collect()
            };
            return take.iter().map(|&&(r, c)| dist[[r, c]] as f64).sum::<f64>() / k.max(1) as f64;
        }
        free.iter().sum::<f64>() / free.len() as f64
    };
    let main_comp = match seed_node {
        Some(v) => Some(comp[v]),
        None => (0..comps.len()).max_by(|&a, &b| comp_len(&comps[a]).total_cmp(&comp_len(&comps[b]))),
    };
    let mut order: Vec<usize> = (0..comps.len()).collect();
    order.sort_by(|&a, &b| comp_len(&comps[b]).total_cmp(&comp_len(&comps[a])));
    if let Some(m) = main_comp {
        order.retain(|&c| c != m);
        order.insert(0, m);
    }
    // Positions on the main component's skeleton (every few px: enough to tell which end of
    // a detached piece faces it).
    let main_px: Vec<Point> = match main_comp {
        Some(m) => {
            let mut seen = std::collections::HashSet::new();
            comps[m]
                .iter()
                .flat_map(|&v| g.nodes[v].edges.iter().copied())
                .filter(|e| seen.insert(*e))
                .flat_map(|e| g.edges[e].path.iter().step_by(4))
                .map(|&(r, c)| Point::new(r as f64, c as f64))
                .collect()
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for ci in order {
        let members = &comps[ci];
        if members.iter().all(|&v| g.nodes[v].edges.is_empty()) {
            continue;
        }
        let r0 = match (seed_node, Some(ci) == main_comp) {
            (Some(v), true) => v,
            _ => {
                let ends: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&v| g.nodes[v].edges.len() == 1)
                    .collect();
                let pool = if ends.is_empty() { members.clone() } else { ends };
                // Vessels enter the field from outside: among ends nearly as wide as the widest,
                // prefer one at the image border.
                let widest = pool.iter().map(|&v| end_width(v)).fold(0.0, f64::max);
                let at_border = |v: usize| {
                    let (p, (rows, cols)) = (node_pos(&g.nodes[v]), dist.dim());
                    let m = end_width(v) + 3.0;
                    p.row < m || p.col < m || p.row > rows as f64 - 1.0 - m || p.col > cols as f64 - 1.0 - m
                };
                let score = |v: usize| {
                    let w = end_width(v);
                    w + if at_border(v) && w >= 0.7 * widest { widest } else { 0.0 }
                };
                let entering = pool.iter().any(|&v| at_border(v) && end_width(v) >= 0.7 * widest);
                if Some(ci) != main_comp && !entering && !main_px.is_empty() {
                    // A piece cut off from the main tree (behind a narrowing the mask lost, or
                    // an occluded stub whose origin it lost) is fed from it: its proximal end
                    // is the one nearest the main tree, not its widest (a stump's round end).
                    let gap = |v: usize| {
                        let p = node_pos(&g.nodes[v]);
                        main_px.iter().map(|q| q.dist(p)).fold(f64::INFINITY, f64::min)
                    };
                    pool.iter()
                        .copied()
                        .min_by(|&a, &b| gap(a).total_cmp(&gap(b)))
                        .unwrap_or(members[0])
                } else {
                    pool.iter()
                        .copied()
                        .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                        .unwrap_or(members[0])
                }
            }
        };
        out.push(r0);
    }
    out
}

/// Skeleton, graph, pruning and tree of a vessel mask. Returns an empty tree for an empty mask.
pub fn centerlines(mask: &Array2<bool>, opts: &CenterlineOptions) -> Result<Centerlines> {
    opts.validate()?;
    // The distance transform and the thinning are independent: run them side by side.
    let (dist, mut grid) = rayon::join(
        || distance_transform(mask),
        || {
            let mut grid = Grid::from_mask(mask);
            let cands = grid.set_pixels();
            thin(&mut grid, &tables(), cands, None);
            grid
        },
    );
    let entry = if opts.trim_image_edge {
        trim_image_edge(&mut grid, &dist)
    } else {
        None
    };
    let mut g = prune(&mut grid, &dist, opts);
    let mut skel = grid.to_mask(mask.nrows());
    if opts.split_caliber_drops {
        split_caliber_drops(&mut g, &dist, mask, opts);
        // The caps drawn through wide ends are part of the skeleton too.
        for e in &g.edges {
            for &p in &e.path {
                skel[p] = true;
            }
        }
    }
    let nearest_node = |g: &Graph, s: Point| {
        (0..g.nodes.len())
            .filter(|&v| !g.nodes[v].edges.is_empty())
            .min_by(|&a, &b| node_pos(&g.nodes[a]).dist(s).total_cmp(&node_pos(&g.nodes[b]).dist(s)))
    };
    // The root is chosen before gaps are bridged and is not joined itself: a piece joined to
    // the tree must not move it (a joined piece's far end at the image edge would otherwise
    // root the tree there, and the cine's flow grades are read against the root's filling).
    let mut seed_node = opts.seed.or(entry.map(|e| e.0)).and_then(|s| nearest_node(&g, s));
    if opts.bridge_gaps {
        if seed_node.is_none() {
            seed_node = plan_trees(&g, &dist, None).first().copied();
        }
        for p in bridge_gaps(&mut g, &dist, opts, seed_node) {
            skel[p] = true;
        }
    }
    let node_radius = |n: &Node| n.pixels.iter().map(|&(r, c)| dist[[r, c]]).fold(0f32, f32::max);
    let nn = g.nodes.len();
    let mut branches: Vec<CenterlineBranch> = Vec::new();
    // Pixel chain of each branch, proximal to distal; smoothed in parallel at the end.
    let mut paths: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut edge_used = vec![false; g.edges.len()];
    let mut root = None;
    for r0 in plan_trees(&g, &dist, seed_node) {
        let mut incoming: Vec<Option<usize>> = vec![None; nn];
        let mut seen = vec![false; nn];
        seen[r0] = true;
        let mut queue = VecDeque::from([r0]);
        let first_branch = branches.len();
        while let Some(v) = queue.pop_front() {
            for &e in &g.nodes[v].edges {
                if edge_used[e] {
                    continue;
                }
                edge_used[e] = true;
                let edge = &g.edges[e];
                let (to, path): (usize, Vec<(usize, usize)>) = if edge.a == v {
                    (edge.b, edge.path.clone())
                } else {
                    (edge.a, edge.path.iter().rev().copied().collect())
                };
                let id = branches.len();
                let parent = incoming[v];
                if let Some(p) = parent {
                    branches[p].children.push(id);
                }
                paths.push(path);
                branches.push(CenterlineBranch {
                    id,
                    parent,
                    children: Vec::new(),
                    points: Vec::new(),
                    radius_px: Vec::new(),
                    in_gap: Vec::new(),
                    start_degree: g.nodes[v].edges.len(),
                    end_degree: g.nodes[to].edges.len(),
                    start_node_radius_px: node_radius(&g.nodes[v]),
                    end_node_radius_px: node_radius(&g.nodes[to]),
                });
                if !seen[to] {
                    seen[to] = true;
                    incoming[to] = Some(id);
                    queue.push_back(to);
                }
            }
        }
        if root.is_none() && branches.len() > first_branch {
            root = Some(first_branch);
        }
    }
    use rayon::prelude::*;
    branches.par_iter_mut().zip(paths.par_iter()).for_each(|(b, path)| {
        b.points = smooth_resample(path, opts.smooth_sigma_px, opts.step_px);
        b.radius_px = b
            .points
            .iter()
            .map(|p| {
                let (r, c) = (p.row.round().max(0.0) as usize, p.col.round().max(0.0) as usize);
                dist.get([r, c]).copied().unwrap_or(0.0)
            })
            .collect();
        // A bridged gap lies outside the mask: its radius hint runs linearly between the
        // radii on either side.
        b.in_gap = b.radius_px.iter().map(|&r| r <= 0.0).collect();
        fill_zero_runs(&mut b.radius_px);
    });
    Ok(Centerlines {
        branches,
        root,
        skeleton: skel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y_mask() -> Array2<bool> {
        // Trunk from the left (rows 28..=36 around row 32) to col 60, then two arms.
        Array2::from_shape_fn((64, 120), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            let trunk = x <= 62.0 && (y - 32.0).abs() <= 4.0;
            let up = x >= 58.0 && ((y - 32.0) + 0.5 * (x - 60.0)).abs() <= 3.0 && y >= 2.0;
            let down = x >= 58.0 && ((y - 32.0) - 0.5 * (x - 60.0)).abs() <= 3.0 && y <= 61.0;
            trunk || up || down
        })
    }

    /// The textbook skeletonisation, every pixel visited each pass (reference for the
    /// candidate-list and incremental versions).
    fn skeletonize_reference(mask: &Array2<bool>) -> Array2<bool> {
        let mut s = mask.clone();
        let (rows, cols) = s.dim();
        let nb = |s: &Array2<bool>, r: usize, c: usize| -> [bool; 8] {
            let d = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];
            std::array::from_fn(|k| {
                let (y, x) = (r as isize + d[k].0, c as isize + d[k].1);
                y >= 0 && x >= 0 && (y as usize) < rows && (x as usize) < cols && s[[y as usize, x as usize]]
            })
        };
        loop {
            let mut changed = false;
            for step in 0..2 {
                let del: Vec<(usize, usize)> = s
                    .indexed_iter()
                    .filter(|&((r, c), &v)| v && zs_deletable(&nb(&s, r, c), step))
                    .map(|(p, _)| p)
                    .collect();
                for &p in &del {
                    s[p] = false;
                }
                changed |= !del.is_empty();
            }
            if !changed {
                break;
            }
        }
        loop {
            let mut changed = false;
            for r in 0..rows {
                for c in 0..cols {
                    if s[[r, c]] && yokoi_removable(&nb(&s, r, c)) {
                        s[[r, c]] = false;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        s
    }

    fn random_blobs(seed: u64, rows: usize, cols: usize) -> Array2<bool> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let discs: Vec<(f64, f64, f64)> = (0..12)
            .map(|_| {
                (
                    rng.random_range(0.0..rows as f64),
                    rng.random_range(0.0..cols as f64),
                    rng.random_range(1.0..9.0),
                )
            })
            .collect();
        let mut m = Array2::from_shape_fn((rows, cols), |(r, c)| {
            discs
                .iter()
                .any(|&(y, x, rad)| (r as f64 - y).hypot(c as f64 - x) <= rad)
                || (r as f64 - 0.4 * c as f64 - 5.0).abs() < 2.5
        });
        // Speckle and pinholes.
        for _ in 0..rows * cols / 20 {
            let (r, c) = (rng.random_range(0..rows), rng.random_range(0..cols));
            m[[r, c]] = !m[[r, c]];
        }
        m
    }

    #[test]
    fn zhang_suen_deletable_pixels_are_removable_staircase_pixels() {
        // Why a thinned skeleton is a fixed point of thinning (which incremental pruning
        // relies on): no neighbourhood is Zhang-Suen deletable without being removable.
        let mut deletable = 0;
        for code in 0..=255u8 {
            let n = unpack(code);
            for step in 0..2 {
                if zs_deletable(&n, step) {
                    deletable += 1;
                    assert!(yokoi_removable(&n), "code {code:08b} step {step}");
                }
            }
        }
        assert!(deletable > 50, "{deletable}");
    }

    #[test]
    fn skeleton_equals_the_full_scan_reference() {
        for seed in 0..6 {
            let m = random_blobs(seed, 47, 63);
            assert_eq!(skeletonize(&m), skeletonize_reference(&m), "seed {seed}");
        }
        let y = y_mask();
        assert_eq!(skeletonize(&y), skeletonize_reference(&y));
        // Dense noise: candidate lists long enough to be marked in parallel.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noise = Array2::from_shape_fn((160, 170), |_| rng.random_bool(0.6));
        let listed = noise
            .indexed_iter()
            .filter(|&((r, c), &v)| {
                let n = (r.saturating_sub(1)..(r + 2).min(160))
                    .flat_map(|y| (c.saturating_sub(1)..(c + 2).min(170)).map(move |x| (y, x)))
                    .filter(|&q| q != (r, c) && noise[q])
                    .count();
                v && n <= 6
            })
            .count();
        assert!(listed >= PAR_MARK_FROM, "{listed}");
        assert_eq!(skeletonize(&noise), skeletonize_reference(&noise));
    }

    #[test]
    fn local_rethinning_equals_thinning_the_whole_skeleton() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let t = tables();
        for seed in 0..6 {
            let m = random_blobs(seed + 100, 53, 61);
            let mut g = Grid::from_mask(&m);
            let cands = g.set_pixels();
            thin(&mut g, &t, cands, None);
            for _round in 0..4 {
                let pixels = g.set_pixels();
                if pixels.is_empty() {
                    break;
                }
                // Remove a short stretch of skeleton pixels, as a pruned spur would.
                let mut removed = Vec::new();
                for _ in 0..3 {
                    let i = pixels[rng.random_range(0..pixels.len())];
                    let near: Vec<usize> = std::iter::once(i).chain((0..8).map(|k| g.nbr(i, k))).collect();
                    for j in near {
                        if g.px[j] != 0 {
                            g.px[j] = 0;
                            removed.push(j);
                        }
                    }
                }
                let expect = skeletonize_reference(&g.to_mask(m.nrows()));
                let mut around: Vec<usize> = removed
                    .iter()
                    .flat_map(|&i| (0..8).map(move |k| (i, k)))
                    .map(|(i, k)| g.nbr(i, k))
                    .filter(|&j| g.px[j] != 0)
                    .collect();
                around.sort_unstable();
                around.dedup();
                thin(&mut g, &t, around.clone(), Some(around));
                assert_eq!(g.to_mask(m.nrows()), expect, "seed {seed}");
                assert!(g.flags.iter().all(|&f| f == 0) && g.tag.iter().all(|&v| v == 0));
            }
        }
    }

    #[test]
    fn skeleton_is_thin() {
        let s = skeletonize(&y_mask());
        // No 2x2 block of skeleton pixels survives.
        for r in 0..63 {
            for c in 0..119 {
                assert!(
                    !(s[[r, c]] && s[[r + 1, c]] && s[[r, c + 1]] && s[[r + 1, c + 1]]),
                    "block at {r},{c}"
                );
            }
        }
    }

    #[test]
    fn y_gives_three_branches_rooted_at_widest_end() {
        let cl = centerlines(&y_mask(), &CenterlineOptions::default()).unwrap();
        assert_eq!(
            cl.branches.len(),
            3,
            "{:?}",
            cl.branches.iter().map(|b| b.points.len()).collect::<Vec<_>>()
        );
        let root = &cl.branches[cl.root.unwrap()];
        // The trunk (radius 4) is wider than the arms (radius 3): it is the root, starting at the left.
        assert!(root.points[0].col < 8.0, "{:?}", root.points[0]);
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.end_degree, 3);
        for &ch in &root.children {
            let b = &cl.branches[ch];
            assert_eq!(b.parent, Some(root.id));
            // Oriented proximal -> distal: start near the junction, end far right.
            assert!(b.points[0].col < b.points.last().unwrap().col);
            assert!(b.points.last().unwrap().col > 100.0);
            // Resampled at 0.5 px.
            let d = b.points[1].dist(b.points[2]);
            assert!((d - 0.5).abs() < 1e-6, "{d}");
        }
    }

    #[test]
    fn seed_picks_the_root() {
        let opts = CenterlineOptions {
            seed: Some(Point::new(4.0, 115.0)),
            ..Default::default()
        };
        let cl = centerlines(&y_mask(), &opts).unwrap();
        let root = &cl.branches[cl.root.unwrap()];
        // Root starts at the upper arm's free end.
        assert!(root.points[0].row < 15.0, "{:?}", root.points[0]);
    }

    /// A wide horizontal tube (radius 8 about row 32, cols 5..=150) with `extra` set on top.
    fn tube_with(extra: impl Fn(f64, f64) -> bool) -> Array2<bool> {
        Array2::from_shape_fn((70, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            ((y - 32.0).abs() <= 8.0 && (5.0..=150.0).contains(&x)) || extra(y, x)
        })
    }

    /// Free distal ends of a tree.
    fn distal_ends(cl: &Centerlines) -> Vec<Point> {
        cl.branches
            .iter()
            .filter(|b| b.children.is_empty() && b.end_degree == 1)
            .filter_map(|b| b.points.last().copied())
            .collect()
    }

    #[test]
    fn a_stump_on_the_side_of_a_wide_tube_is_kept() {
        // A stub of radius 4 leaving the tube downwards at col 70 and reaching 11 px beyond the
        // tube's edge (row 40) to a round end: shorter than twice the junction radius, so plain
        // spur pruning removes it.
        let m = tube_with(|y, x| {
            ((x - 70.0).abs() <= 4.0 && (32.0..=47.0).contains(&y)) || (y - 47.0).hypot(x - 70.0) <= 4.0
        });
        let plain = CenterlineOptions {
            keep_stumps: false,
            ..Default::default()
        };
        assert_eq!(centerlines(&m, &plain).unwrap().branches.len(), 1);
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 3, "{:?}", distal_ends(&cl));
        let stub = distal_ends(&cl)
            .into_iter()
            .find(|p| (p.col - 70.0).abs() < 3.0)
            .expect("a free end on the stub");
        // The end lies in the stub's round cap (centre row 47, edge row 51).
        assert!((44.0..=51.0).contains(&stub.row), "{stub:?}");
    }

    #[test]
    fn a_stump_as_short_as_it_is_wide_is_kept() {
        // A stub of radius 6 at col 70 whose round cap ends 11 px beyond the tube's edge (row
        // 40), as at an occlusion near a side branch's origin: its skeleton ends one of its own
        // radii before the cap, still within the junction radius of the node.
        let m = tube_with(|y, x| {
            ((x - 70.0).abs() <= 6.0 && (32.0..=45.0).contains(&y)) || (y - 45.0).hypot(x - 70.0) <= 6.0
        });
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 3, "{:?}", distal_ends(&cl));
        assert!(
            distal_ends(&cl)
                .iter()
                .any(|p| (p.col - 70.0).abs() < 3.0 && p.row > 36.0),
            "{:?}",
            distal_ends(&cl)
        );
        // Measured from the skeleton tip it reaches one of its radii past the edge (a half disc
        // reaches half of one): asking for 1.5 prunes it.
        let strict = CenterlineOptions {
            stump_min_length_radii: 1.5,
            ..Default::default()
        };
        assert_eq!(centerlines(&m, &strict).unwrap().branches.len(), 1);
    }

    #[test]
    fn a_bulge_as_wide_as_the_tube_is_pruned() {
        // A half disc of radius 8 on the tube's edge: its mask reaches its own radius beyond the
        // edge, measured from its skeleton tip half of one.
        let m = tube_with(|y, x| y >= 40.0 && (y - 40.0).hypot(x - 70.0) <= 8.0);
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 1, "{:?}", distal_ends(&cl));
        // A thin finger (radius 1) is pruned however long it is relative to its width.
        let m = tube_with(|y, x| (x - 70.0).abs() <= 1.0 && (32.0..=50.0).contains(&y));
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 1, "{:?}", distal_ends(&cl));
    }

    #[test]
    fn a_trunk_cut_by_the_image_edge_roots_the_tree_rather_than_a_wide_stump() {
        // A trunk of radius 12 enters obliquely through the top edge and stops bluntly near row
        // 60. Near the top edge the distance transform reads the distance to the edge, so the
        // entry must be measured further in to beat the trunk's own wide stump end.
        let m = Array2::from_shape_fn((100, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            // Axis from (0, 40) at 30 degrees from vertical.
            let (dy, dx) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
            let along = y * dy + (x - 40.0) * dx;
            let across = (-(y) * dx + (x - 40.0) * dy).abs();
            across <= 12.0 && along <= 70.0
        });
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        let root = &cl.branches[cl.root.unwrap()];
        assert!(root.points[0].row < 15.0, "{:?}", root.points[0]);
        // The stump end stays a distal free end.
        assert!(distal_ends(&cl).iter().any(|p| p.row > 45.0), "{:?}", distal_ends(&cl));
    }

    #[test]
    fn the_skeleton_stops_where_the_mask_touches_the_image_edge() {
        // A tube of radius 5 leaves the image through the left edge along row 60, and a band
        // 4 px wide runs up the left edge from it (a dark edge of the field joined to the mask).
        let m = Array2::from_shape_fn((100, 120), |(r, c)| {
            let tube = (r as f64 - 60.0).abs() <= 5.0 && c <= 90;
            let band = c <= 3 && r <= 60;
            tube || band
        });
        let mut opts = CenterlineOptions::default();
        let trimmed = centerlines(&m, &opts).unwrap();
        assert_eq!(trimmed.branches.len(), 1, "{:?}", trimmed.branches.len());
        let pts = &trimmed.branches[0].points;
        let min_col = pts.iter().map(|p| p.col).fold(f64::INFINITY, f64::min);
        let min_row = pts.iter().map(|p| p.row).fold(f64::INFINITY, f64::min);
        // It ends about one radius inside the edge (within the border margin of 3 px plus the
        // radius that classifies a Border end), and nothing runs up the band.
        assert!(min_col > 5.0 && min_col < 9.0, "{min_col}");
        assert!(min_row > 54.0, "{min_row}");
        // Rooted where it enters: proximal at the edge.
        assert!(pts[0].col < 9.0, "{:?}", pts[0]);
        // Without the trimming the skeleton runs up the band.
        opts.trim_image_edge = false;
        let raw_min_row = top_row(&centerlines(&m, &opts).unwrap());
        assert!(raw_min_row < 20.0, "{raw_min_row}");
    }

    #[test]
    fn a_thin_vessel_leaving_the_field_does_not_root_a_trunk_lying_inside_it() {
        // A trunk of radius 8 along row 60 from col 30 to col 120, inside the field; a branch
        // of radius 2 leaves it at col 110 and runs up through the top edge.
        let m = Array2::from_shape_fn((100, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            let trunk = (y - 60.0).abs() <= 8.0 && (30.0..=120.0).contains(&x);
            let thin = (x - 110.0).abs() <= 2.0 && y <= 60.0;
            trunk || thin
        });
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        let root = &cl.branches[cl.root.unwrap()];
        // Rooted at the trunk's wide end, not where the thin branch leaves the field.
        assert!(
            root.points[0].col < 50.0 && (root.points[0].row - 60.0).abs() < 3.0,
            "{:?}",
            root.points[0]
        );
        // The thin branch still ends at the edge, trimmed.
        let top = top_row(&cl);
        assert!(top > 2.0 && top < 8.0, "{top}");
    }

    /// Smallest row reached by any centerline point.
    fn top_row(cl: &Centerlines) -> f64 {
        cl.branches
            .iter()
            .flat_map(|b| b.points.iter())
            .map(|p| p.row)
            .fold(f64::INFINITY, f64::min)
    }

    /// A wide vessel (radius 8 from the left edge along row 32, round end at col 80) whose
    /// lumen runs on without a junction into a thin branch (radius 2) leaving at 60 degrees.
    fn caliber_step_mask() -> Array2<bool> {
        let (uy, ux) = (60f64.to_radians().sin(), 60f64.to_radians().cos());
        Array2::from_shape_fn((110, 150), |(r, c)| {
            let (y, x) = (r as f64 - 32.0, c as f64 - 80.0);
            let wide = (y.abs() <= 8.0 && x <= 0.0) || y.hypot(x) <= 8.0;
            let t = (y * uy + x * ux).clamp(0.0, 75.0);
            let thin = (y - t * uy).hypot(x - t * ux) <= 2.0;
            wide || thin
        })
    }

    #[test]
    fn an_abrupt_caliber_step_ends_the_wide_vessel() {
        let m = caliber_step_mask();
        let plain = centerlines(&m, &CenterlineOptions::default()).unwrap();
        let opts = CenterlineOptions {
            split_caliber_drops: true,
            ..Default::default()
        };
        let cl = centerlines(&m, &opts).unwrap();
        // Without the split no free end lies in the wide vessel's cap (col 80..=88 on row 32).
        let in_cap = |p: &Point| (p.row - 32.0).abs() <= 4.0 && p.col >= 80.0;
        assert!(!distal_ends(&plain).iter().any(in_cap), "{:?}", distal_ends(&plain));
        assert!(distal_ends(&cl).iter().any(in_cap), "{:?}", distal_ends(&cl));
        // The wide part is the root and ends at the step; the cap and the thin branch are its
        // children, the thin one still reaching the bottom right.
        let root = &cl.branches[cl.root.unwrap()];
        assert!(root.points[0].col < 15.0, "{:?}", root.points[0]);
        assert_eq!(root.children.len(), 2);
        // The cap is drawn into the skeleton.
        assert!(cl.skeleton[[32, 82]] && !plain.skeleton[[32, 82]]);
        // The cap is drawn into the skeleton.
        assert!(cl.skeleton[[32, 82]] && !plain.skeleton[[32, 82]]);
        assert!(
            root.children
                .iter()
                .any(|&c| cl.branches[c].points.last().is_some_and(|p| p.row > 90.0)),
            "{:?}",
            distal_ends(&cl)
        );
        // A vessel narrowing for good straight on is split only when asked to.
        let straight = Array2::from_shape_fn((64, 160), |(r, c)| {
            let half = if c >= 60 { 2.0 } else { 8.0 };
            (r as f64 - 32.0).abs() <= half && (5..155).contains(&c)
        });
        assert_eq!(centerlines(&straight, &opts).unwrap().branches.len(), 1);
        let any_turn = CenterlineOptions {
            caliber_drop_min_turn_deg: 0.0,
            ..opts.clone()
        };
        assert_eq!(centerlines(&straight, &any_turn).unwrap().branches.len(), 3);
        // A narrowing that recovers (a ring) is not a step.
        let ring = Array2::from_shape_fn((64, 160), |(r, c)| {
            let half = if (70..=78).contains(&c) { 2.0 } else { 8.0 };
            (r as f64 - 32.0).abs() <= half && (5..155).contains(&c)
        });
        assert_eq!(centerlines(&ring, &opts).unwrap().branches.len(), 1);
    }

    #[test]
    fn a_detached_stub_starts_at_the_end_facing_the_main_tree() {
        // A tube (rows 24..=40) and, below it, a piece the mask cut off: radius 3 from row 46,
        // ending in a round bulb of radius 6 at row 76 (an occluded stub whose origin was
        // lost). Its wide bulb is the distal end, not the root of its component.
        let m = Array2::from_shape_fn((100, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            let tube = (y - 32.0).abs() <= 8.0 && (5.0..=150.0).contains(&x);
            let piece = ((x - 70.0).abs() <= 3.0 && (46.0..=76.0).contains(&y)) || (y - 76.0).hypot(x - 70.0) <= 6.0;
            tube || piece
        });
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        let piece: Vec<&CenterlineBranch> = cl
            .branches
            .iter()
            .filter(|b| b.points.iter().all(|p| p.row > 43.0))
            .collect();
        assert_eq!(piece.len(), 1, "{}", cl.branches.len());
        let (first, last) = (piece[0].points[0], piece[0].points[piece[0].points.len() - 1]);
        assert!(first.row < 52.0 && last.row > 70.0, "{first:?} -> {last:?}");
    }

    /// A horizontal tube of radius 4 along row 30 from col 5 to 150, with the mask missing over
    /// cols `gap.0..gap.1`.
    fn broken_tube(gap: (f64, f64)) -> Array2<bool> {
        Array2::from_shape_fn((60, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            (y - 30.0).abs() <= 4.0 && (5.0..=150.0).contains(&x) && !(gap.0..gap.1).contains(&x)
        })
    }

    #[test]
    fn a_tube_broken_by_a_short_gap_is_one_branch_through_it() {
        // 10 px of gap: 2.5 radii, where a lesion's lumen fell below the mask.
        let cl = centerlines(&broken_tube((70.0, 80.0)), &CenterlineOptions::default()).unwrap();
        assert_eq!(
            cl.branches.len(),
            1,
            "{:?}",
            cl.branches.iter().map(|b| b.points.len()).collect::<Vec<_>>()
        );
        let b = &cl.branches[0];
        let cols: Vec<f64> = b.points.iter().map(|p| p.col).collect();
        let (lo, hi) = (
            cols.iter().copied().fold(f64::INFINITY, f64::min),
            cols.iter().copied().fold(0.0, f64::max),
        );
        assert!(lo < 15.0 && hi > 140.0, "{lo} {hi}");
        // Points step through the gap (no jump over it) on the tube's axis, and their radius
        // hint runs between the radii on either side instead of the mask's 0.
        assert!(
            b.points.windows(2).all(|w| w[0].dist(w[1]) <= 1.0),
            "a jump in the polyline"
        );
        let inside: Vec<(Point, f32)> = b
            .points
            .iter()
            .zip(&b.radius_px)
            .filter(|(p, _)| (71.0..79.0).contains(&p.col))
            .map(|(p, &r)| (*p, r))
            .collect();
        assert!(inside.len() >= 14, "{}", inside.len());
        for (p, r) in inside {
            assert!((p.row - 30.0).abs() < 1.0, "{p:?}");
            assert!((2.0..=5.0).contains(&r), "radius hint {r} at {p:?}");
        }
        // Switched off, the two pieces stay apart.
        let opts = CenterlineOptions {
            bridge_gaps: false,
            ..Default::default()
        };
        assert_eq!(
            centerlines(&broken_tube((70.0, 80.0)), &opts).unwrap().branches.len(),
            2
        );
        // The root's end is where the tree's contrast enters, not a cut: rooted at the end
        // facing the gap, the tree keeps its two pieces.
        let opts = CenterlineOptions {
            seed: Some(Point::new(30.0, 69.0)),
            ..Default::default()
        };
        let cl = centerlines(&broken_tube((70.0, 80.0)), &opts).unwrap();
        assert_eq!(cl.branches.len(), 2);
        let root = &cl.branches[cl.root.unwrap()];
        assert!((root.points[0].col - 69.0).abs() < 6.0, "{:?}", root.points[0]);
    }

    #[test]
    fn a_long_gap_or_a_piece_off_the_axis_is_not_bridged() {
        // 30 px of gap: 7.5 radii, more than the default 5.
        let cl = centerlines(&broken_tube((60.0, 90.0)), &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 2);
        // The tube stops at col 70; a vertical piece of the same radius starts 8 px past its
        // end and runs across the tube's axis: another vessel, not the tube resuming.
        let m = Array2::from_shape_fn((100, 160), |(r, c)| {
            let (y, x) = (r as f64, c as f64);
            let tube = (y - 30.0).abs() <= 4.0 && (5.0..=70.0).contains(&x);
            let across = (x - 82.0).abs() <= 4.0 && (24.0..=95.0).contains(&y);
            tube || across
        });
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 2, "{}", cl.branches.len());
    }

    #[test]
    fn bad_stump_and_step_options_name_the_field() {
        let m = y_mask();
        for (opts, field) in [
            (
                CenterlineOptions {
                    stump_min_length_radii: f64::NAN,
                    ..Default::default()
                },
                "stump_min_length_radii",
            ),
            (
                CenterlineOptions {
                    caliber_drop_fraction: 1.5,
                    ..Default::default()
                },
                "caliber_drop_fraction",
            ),
            (
                CenterlineOptions {
                    caliber_drop_min_turn_deg: 200.0,
                    ..Default::default()
                },
                "caliber_drop_min_turn_deg",
            ),
            (
                CenterlineOptions {
                    bridge_max_gap_radii: f64::NAN,
                    ..Default::default()
                },
                "bridge_max_gap_radii",
            ),
            (
                CenterlineOptions {
                    bridge_max_turn_deg: -1.0,
                    ..Default::default()
                },
                "bridge_max_turn_deg",
            ),
        ] {
            let err = centerlines(&m, &opts).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn spurs_are_pruned() {
        // A straight bar of radius 5 with a 3-px bump on one side produces no extra branch.
        let mut m = Array2::from_shape_fn((40, 100), |(r, c)| (r as i32 - 20).abs() <= 5 && (5..95).contains(&c));
        for r in 26..29 {
            for c in 48..51 {
                m[[r, c]] = true;
            }
        }
        let cl = centerlines(&m, &CenterlineOptions::default()).unwrap();
        assert_eq!(cl.branches.len(), 1);
        let len = Polyline::new(cl.branches[0].points.clone()).length_px();
        assert!(len > 75.0, "{len}");
    }
}
