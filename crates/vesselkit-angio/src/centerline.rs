//! Centerline tree: thinning, skeleton graph (end points, junctions, branches), spur pruning
//! relative to the local radius, smooth sub-pixel polylines, and orientation proximal -> distal
//! from a root (the widest vessel end, or a user seed).

use crate::error::{AngioError, Result};
use crate::mask::{N8, distance_transform, label, offset};
use ndarray::Array2;
use std::collections::VecDeque;
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
    /// Gaussian sigma (px of arc) that smooths the pixel chains into sub-pixel polylines.
    pub smooth_sigma_px: f64,
    /// Resampling step along the centerline, px (<= 0.5 keeps profile spacing fine).
    pub step_px: f64,
    /// Root of the tree: the node nearest to this point; default the widest end point.
    pub seed: Option<Point>,
}

impl Default for CenterlineOptions {
    fn default() -> Self {
        Self {
            spur_factor: 2.0,
            min_branch_px: 4.0,
            min_component_px: 10.0,
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
            ("smooth_sigma_px", self.smooth_sigma_px),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AngioError::invalid(
                    field,
                    format!("must be a finite value >= 0, got {v}"),
                ));
            }
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
    /// the profile search, not the measured diameter.
    pub radius_px: Vec<f32>,
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

#[inline]
fn nb(s: &Array2<bool>, r: usize, c: usize) -> [bool; 8] {
    let (rows, cols) = s.dim();
    let mut out = [false; 8];
    for (k, &d) in N8.iter().enumerate() {
        out[k] = offset(r, c, d, rows, cols).is_some_and(|(y, x)| s[[y, x]]);
    }
    out
}

/// Zhang-Suen thinning followed by removal of redundant staircase pixels, giving an
/// 8-connected one-pixel skeleton.
pub fn skeletonize(mask: &Array2<bool>) -> Array2<bool> {
    let mut s = mask.clone();
    let (rows, cols) = s.dim();
    // Zhang-Suen thinning. Only pixels with at most 6 set neighbours can be deleted, and that
    // count only falls when a neighbour is deleted, so the candidate list keeps those pixels and
    // takes back the neighbours of every deleted pixel (same result as scanning every pixel).
    let mut candidates = set_pixels(&s);
    let mut listed = Array2::from_elem((rows, cols), false);
    for &(r, c) in &candidates {
        listed[[r, c]] = true;
    }
    let mut to_delete = Vec::new();
    loop {
        let mut changed = false;
        for step in 0..2 {
            to_delete.clear();
            for &(r, c) in &candidates {
                if !s[[r, c]] {
                    continue;
                }
                // N8 order: NW, N, NE, E, SE, S, SW, W. Zhang-Suen uses P2=N, P3=NE, ... P9=NW.
                let n = nb(&s, r, c);
                let p = [n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[0]];
                let b = p.iter().filter(|&&x| x).count();
                if !(2..=6).contains(&b) {
                    continue;
                }
                let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
                if a != 1 {
                    continue;
                }
                let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
                // Zhang-Suen's conditions, written as in the paper.
                #[allow(clippy::nonminimal_bool)]
                let ok = if step == 0 {
                    !(p2 && p4 && p6) && !(p4 && p6 && p8)
                } else {
                    !(p2 && p4 && p8) && !(p2 && p6 && p8)
                };
                if ok {
                    to_delete.push((r, c));
                }
            }
            for &(r, c) in &to_delete {
                s[[r, c]] = false;
            }
            for &(r, c) in &to_delete {
                for &d in &N8 {
                    if let Some((y, x)) = offset(r, c, d, rows, cols)
                        && s[[y, x]]
                        && !listed[[y, x]]
                    {
                        listed[[y, x]] = true;
                        candidates.push((y, x));
                    }
                }
            }
            changed |= !to_delete.is_empty();
        }
        // Drop deleted pixels and those with 7 or 8 set neighbours (not deletable until a
        // neighbour goes, which lists them again).
        candidates.retain(|&(r, c)| {
            let keep = s[[r, c]] && nb(&s, r, c).iter().filter(|&&x| x).count() <= 6;
            if !keep {
                listed[[r, c]] = false;
            }
            keep
        });
        if !changed {
            break;
        }
    }
    let mut candidates = set_pixels(&s);
    // Remove simple (Yokoi 8-connectivity number 1) non-end pixels one at a time.
    loop {
        let mut changed = false;
        for &(r, c) in &candidates {
            if !s[[r, c]] {
                continue;
            }
            let n = nb(&s, r, c);
            if n.iter().filter(|&&x| x).count() < 2 {
                continue;
            }
            if yokoi8(&n) == 1 {
                s[[r, c]] = false;
                changed = true;
            }
        }
        candidates.retain(|&(r, c)| s[[r, c]]);
        if !changed {
            break;
        }
    }
    s
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

/// The set pixels of a mask in raster order (one pass over a contiguous slice when possible).
fn set_pixels(m: &Array2<bool>) -> Vec<(usize, usize)> {
    let cols = m.ncols().max(1);
    match m.as_slice() {
        Some(sl) => sl
            .iter()
            .enumerate()
            .filter(|(_, v)| **v)
            .map(|(i, _)| (i / cols, i % cols))
            .collect(),
        None => m.indexed_iter().filter(|(_, v)| **v).map(|(p, _)| p).collect(),
    }
}

fn path_len(p: &[(usize, usize)]) -> f64 {
    p.windows(2)
        .map(|w| (w[0].0 as f64 - w[1].0 as f64).hypot(w[0].1 as f64 - w[1].1 as f64))
        .sum()
}

/// Nodes are clusters of skeleton pixels with other than two neighbours; edges are the chains
/// between them. Closed loops without any node are dropped.
fn build_graph(s: &Array2<bool>) -> Graph {
    let (rows, cols) = s.dim();
    // Only skeleton pixels are visited: the skeleton is sparse and this runs once per pruning
    // round.
    let pixels = set_pixels(s);
    let mut node_mask = Array2::from_elem((rows, cols), false);
    let mut node_pixels = Vec::new();
    for &(r, c) in &pixels {
        if nb(s, r, c).iter().filter(|&&x| x).count() != 2 {
            node_mask[[r, c]] = true;
            node_pixels.push((r, c));
        }
    }
    // Nodes: 8-connected clusters of node pixels, numbered in raster order of their first pixel.
    let mut labels = Array2::<u32>::zeros((rows, cols));
    let mut nodes: Vec<Node> = Vec::new();
    let mut stack = Vec::new();
    for &start in &node_pixels {
        if labels[[start.0, start.1]] != 0 {
            continue;
        }
        nodes.push(Node {
            pixels: Vec::new(),
            edges: Vec::new(),
        });
        let id = nodes.len() as u32;
        labels[[start.0, start.1]] = id;
        stack.push(start);
        while let Some((y, x)) = stack.pop() {
            for &d in &N8 {
                if let Some((ny, nx)) = offset(y, x, d, rows, cols)
                    && node_mask[[ny, nx]]
                    && labels[[ny, nx]] == 0
                {
                    labels[[ny, nx]] = id;
                    stack.push((ny, nx));
                }
            }
        }
    }
    // Pixels of each node in raster order.
    for &(r, c) in &node_pixels {
        nodes[labels[[r, c]] as usize - 1].pixels.push((r, c));
    }
    let mut visited = Array2::from_elem((rows, cols), false);
    let mut edges: Vec<Edge> = Vec::new();
    for ni in 0..nodes.len() {
        let pixels = nodes[ni].pixels.clone();
        for &(r, c) in &pixels {
            for &d in &N8 {
                let Some((y, x)) = offset(r, c, d, rows, cols) else {
                    continue;
                };
                if !s[[y, x]] || node_mask[[y, x]] || visited[[y, x]] {
                    continue;
                }
                let mut path = vec![(r, c), (y, x)];
                visited[[y, x]] = true;
                let (mut prev, mut cur) = ((r, c), (y, x));
                let mut end = None;
                'walk: loop {
                    let mut next = None;
                    for &d2 in &N8 {
                        let Some(q) = offset(cur.0, cur.1, d2, rows, cols) else {
                            continue;
                        };
                        if q == prev || !s[[q.0, q.1]] {
                            continue;
                        }
                        if node_mask[[q.0, q.1]] {
                            // Prefer stopping at a node when one is adjacent.
                            path.push(q);
                            end = Some(labels[[q.0, q.1]] as usize - 1);
                            break 'walk;
                        }
                        if !visited[[q.0, q.1]] {
                            next = Some(q);
                        }
                    }
                    match next {
                        Some(q) => {
                            visited[[q.0, q.1]] = true;
                            path.push(q);
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
    Graph { nodes, edges }
}

/// Prune spurs and tiny components from the skeleton in place; returns the final graph.
fn prune(s: &mut Array2<bool>, dist: &Array2<f32>, opts: &CenterlineOptions) -> Graph {
    for _ in 0..12 {
        let g = build_graph(s);
        let node_radius = |n: &Node| n.pixels.iter().map(|&(r, c)| dist[[r, c]]).fold(0f32, f32::max) as f64;
        let mut removed = false;
        // At each junction remove at most the shortest spur per round, never all its branches.
        let mut best: Vec<Option<(f64, usize)>> = vec![None; g.nodes.len()];
        for (ei, e) in g.edges.iter().enumerate() {
            let (da, db) = (g.nodes[e.a].edges.len(), g.nodes[e.b].edges.len());
            let (junction, len) = if da == 1 && db >= 3 {
                (e.b, path_len(&e.path))
            } else if db == 1 && da >= 3 {
                (e.a, path_len(&e.path))
            } else {
                continue;
            };
            let limit = opts
                .min_branch_px
                .max(opts.spur_factor * node_radius(&g.nodes[junction]));
            if len < limit && best[junction].is_none_or(|(l, _)| len < l) {
                best[junction] = Some((len, ei));
            }
        }
        for (j, b) in best.iter().enumerate() {
            if let Some((_, ei)) = b {
                let e = &g.edges[*ei];
                for &p in &e.path {
                    if !g.nodes[j].pixels.contains(&p) {
                        s[[p.0, p.1]] = false;
                    }
                }
                removed = true;
            }
        }
        if !removed {
            break;
        }
        *s = skeletonize(s);
    }
    // Drop small components.
    let (labels, _) = label(s, true);
    let n = labels.iter().copied().max().unwrap_or(0) as usize;
    let mut count = vec![0usize; n + 1];
    labels.iter().for_each(|&l| count[l as usize] += 1);
    s.zip_mut_with(&labels, |v, &l| {
        if *v && (count[l as usize] as f64) < opts.min_component_px {
            *v = false;
        }
    });
    build_graph(s)
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

/// Skeleton, graph, pruning and tree of a vessel mask. Returns an empty tree for an empty mask.
pub fn centerlines(mask: &Array2<bool>, opts: &CenterlineOptions) -> Result<Centerlines> {
    opts.validate()?;
    let dist = distance_transform(mask);
    let mut skel = skeletonize(mask);
    let g = prune(&mut skel, &dist, opts);
    let node_pos = |n: &Node| {
        let k = n.pixels.len().max(1) as f64;
        let (r, c) = n
            .pixels
            .iter()
            .fold((0.0, 0.0), |(r, c), p| (r + p.0 as f64, c + p.1 as f64));
        Point::new(r / k, c / k)
    };
    let node_radius = |n: &Node| n.pixels.iter().map(|&(r, c)| dist[[r, c]]).fold(0f32, f32::max);
    // Components of the node graph.
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
    let end_width = |v: usize| -> f64 {
        let Some(&e) = g.nodes[v].edges.first() else { return 0.0 };
        let path = &g.edges[e].path;
        let from_a = g.edges[e].a == v;
        let k = path.len().min(8);
        let take: Vec<&(usize, usize)> = if from_a {
            path.iter().take(k).collect()
        } else {
            path.iter().rev().take(k).collect()
        };
        take.iter().map(|&&(r, c)| dist[[r, c]] as f64).sum::<f64>() / k.max(1) as f64
    };
    let seed_node = opts.seed.and_then(|s| {
        (0..nn)
            .filter(|&v| !g.nodes[v].edges.is_empty())
            .min_by(|&a, &b| node_pos(&g.nodes[a]).dist(s).total_cmp(&node_pos(&g.nodes[b]).dist(s)))
    });
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
    let mut branches: Vec<CenterlineBranch> = Vec::new();
    let mut edge_used = vec![false; g.edges.len()];
    let mut root = None;
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
                let (rows, cols) = mask.dim();
                let at_border = |v: usize| {
                    let p = node_pos(&g.nodes[v]);
                    let m = end_width(v) + 3.0;
                    p.row < m || p.col < m || p.row > rows as f64 - 1.0 - m || p.col > cols as f64 - 1.0 - m
                };
                let score = |v: usize| {
                    let w = end_width(v);
                    w + if at_border(v) && w >= 0.7 * widest { widest } else { 0.0 }
                };
                pool.iter()
                    .copied()
                    .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                    .unwrap_or(members[0])
            }
        };
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
                let points = smooth_resample(&path, opts.smooth_sigma_px, opts.step_px);
                let radius_px = points
                    .iter()
                    .map(|p| {
                        let (r, c) = (p.row.round().max(0.0) as usize, p.col.round().max(0.0) as usize);
                        dist.get([r, c]).copied().unwrap_or(0.0)
                    })
                    .collect();
                branches.push(CenterlineBranch {
                    id,
                    parent,
                    children: Vec::new(),
                    points,
                    radius_px,
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
