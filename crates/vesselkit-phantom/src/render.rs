//! Projection of tubular lumens: the chord length of each X-ray through each circular lumen.
//!
//! Each branch is a chain of samples `(row, col, radius)` in pixels. For every (super-sampled)
//! detector position the chord through the nearest cross-section is `2 sqrt(r^2 - d^2)`, where
//! `d` is the distance to the centerline and `r` the radius there: within one branch the
//! segment nearest to the position decides (a surface of revolution, so a narrowing is as narrow
//! as its truth says; taking the largest chord over all segments would sweep a sphere of each
//! sample's radius along the axis and fill a steep narrowing in). Different branches add up
//! (overlaps are darker, as in a real projection), except right at a junction where parent and
//! children share lumen: there the child only adds what the parent and earlier siblings do not
//! already cover.

use rayon::prelude::*;

/// One centerline station of a rendered branch, in full-resolution pixel coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RSample {
    pub r: f64,
    pub c: f64,
    pub rad_px: f64,
    /// Web blend weight in [0, 1] (0 = single round lumen, 1 = fully split into channels).
    pub web_w: f64,
    /// Number of channels where `web_w > 0`.
    pub web_n: u8,
    /// Width of each lucent band between channels, px.
    pub web_t_px: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct RBranch {
    pub samples: Vec<RSample>,
    pub parent: Option<usize>,
    /// Junction point with the parent (the child's first sample) and the radius of the region
    /// around it where lumens merge, px.
    pub junction: Option<(f64, f64, f64)>,
}

/// Chord lengths of one branch over its bounding box on the super-sampled grid.
#[derive(Debug, Clone)]
pub(crate) struct ChordBuf {
    pub i0: usize,
    pub j0: usize,
    pub h: usize,
    pub w: usize,
    /// Chord length in full-resolution px.
    pub chord: Vec<f32>,
    /// Index of the nearest sample (for contrast and timing lookups).
    pub idx: Vec<u32>,
    /// Inside the lumen envelope (for the truth mask).
    pub inside: Vec<bool>,
}

impl ChordBuf {
    fn get(&self, i: usize, j: usize) -> f32 {
        if i < self.i0 || j < self.j0 || i >= self.i0 + self.h || j >= self.j0 + self.w {
            return 0.0;
        }
        self.chord[(i - self.i0) * self.w + (j - self.j0)]
    }
}

/// Chord through a round lumen of radius `rad` split into `n` equal-width channels by septa
/// parallel to the beam: lucent bands of width `t` where no contrast is crossed, the round-lumen
/// chord elsewhere. `x` is the signed lateral offset from the centerline.
fn web_chord(x: f64, rad: f64, n: u8, t: f64) -> f64 {
    if x.abs() >= rad {
        return 0.0;
    }
    let n = f64::from(n.max(1));
    for k in 1..n as usize {
        let centre = -rad + 2.0 * rad * k as f64 / n;
        if (x - centre).abs() < 0.5 * t {
            return 0.0;
        }
    }
    2.0 * (rad * rad - x * x).sqrt()
}

/// Position of super-sample index `i` in full-resolution pixel coordinates (pixel centres at
/// integers).
#[inline]
pub(crate) fn ss_pos(i: usize, ss: usize) -> f64 {
    (i as f64 + 0.5) / ss as f64 - 0.5
}

fn render_one(b: &RBranch, rows: usize, cols: usize, ss: usize) -> ChordBuf {
    let (hs, ws) = (rows * ss, cols * ss);
    let empty = ChordBuf {
        i0: 0,
        j0: 0,
        h: 0,
        w: 0,
        chord: vec![],
        idx: vec![],
        inside: vec![],
    };
    if b.samples.is_empty() {
        return empty;
    }
    let to_ss = |p: f64| (p + 0.5) * ss as f64 - 0.5;
    let (mut rmin, mut rmax, mut cmin, mut cmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for s in &b.samples {
        rmin = rmin.min(s.r - s.rad_px);
        rmax = rmax.max(s.r + s.rad_px);
        cmin = cmin.min(s.c - s.rad_px);
        cmax = cmax.max(s.c + s.rad_px);
    }
    let i0 = to_ss(rmin - 1.0).floor().max(0.0) as usize;
    let j0 = to_ss(cmin - 1.0).floor().max(0.0) as usize;
    let i1 = (to_ss(rmax + 1.0).ceil().max(0.0) as usize).min(hs);
    let j1 = (to_ss(cmax + 1.0).ceil().max(0.0) as usize).min(ws);
    if i1 <= i0 || j1 <= j0 {
        return empty;
    }
    let (h, w) = (i1 - i0, j1 - j0);
    let mut chord = vec![0.0f32; h * w];
    let mut idx = vec![0u32; h * w];
    let mut inside = vec![false; h * w];
    // Distance to the nearest segment seen so far, per position.
    let mut nearest = vec![f64::INFINITY; h * w];
    let n = b.samples.len();
    let segs = if n == 1 { 1 } else { n - 1 };
    // Arc position of each sample, for the reach below.
    let mut arc = vec![0.0f64; n];
    for k in 1..n {
        let (p, q) = (b.samples[k - 1], b.samples[k]);
        arc[k] = arc[k - 1] + (q.r - p.r).hypot(q.c - p.c);
    }
    let widest = b.samples.iter().map(|s| s.rad_px).fold(0.0f64, f64::max);
    for k in 0..segs {
        let a = b.samples[k];
        let e = if n == 1 { a } else { b.samples[k + 1] };
        let (dr, dc) = (e.r - a.r, e.c - a.c);
        let l2 = dr * dr + dc * dc;
        let len = l2.sqrt();
        // A segment must visit every position that a wider lumen nearby covers: it may be the
        // nearest there and then decide that the position lies outside the lumen.
        let (lo, hi) = (
            arc.partition_point(|&x| x < arc[k] - widest),
            arc.partition_point(|&x| x <= arc[(k + 1).min(n - 1)] + widest),
        );
        let (s0, s1) = (arc[k], arc[(k + 1).min(n - 1)]);
        let reach = (lo..hi)
            .filter(|&m| (arc[m] - s0).abs().min((arc[m] - s1).abs()) < b.samples[m].rad_px)
            .map(|m| b.samples[m].rad_px)
            .fold(a.rad_px.max(e.rad_px), f64::max);
        if reach <= 0.0 {
            continue;
        }
        let si0 = to_ss(a.r.min(e.r) - reach).floor().max(i0 as f64) as usize;
        let sj0 = to_ss(a.c.min(e.c) - reach).floor().max(j0 as f64) as usize;
        let si1 = (to_ss(a.r.max(e.r) + reach).ceil().max(0.0) as usize + 1).min(i1);
        let sj1 = (to_ss(a.c.max(e.c) + reach).ceil().max(0.0) as usize + 1).min(j1);
        for i in si0..si1 {
            let qr = ss_pos(i, ss);
            for j in sj0..sj1 {
                let qc = ss_pos(j, ss);
                let (vr, vc) = (qr - a.r, qc - a.c);
                let t = if l2 > 0.0 {
                    ((vr * dr + vc * dc) / l2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (fr, fc) = (a.r + t * dr, a.c + t * dc);
                let d = (qr - fr).hypot(qc - fc);
                let o = (i - i0) * w + (j - j0);
                // The nearest segment decides; at a shared vertex (equal distance) the larger
                // chord, as both describe the same cross-section.
                if d > nearest[o] + 1e-9 {
                    continue;
                }
                let rad = a.rad_px + t * (e.rad_px - a.rad_px);
                let tie = d >= nearest[o] - 1e-9;
                nearest[o] = d;
                if d >= rad {
                    if !tie {
                        chord[o] = 0.0;
                        inside[o] = false;
                    }
                    continue;
                }
                let mut ch = 2.0 * (rad * rad - d * d).sqrt();
                let ww = a.web_w + t * (e.web_w - a.web_w);
                if ww > 0.0 && len > 0.0 {
                    let x = (dr * vc - dc * vr) / len;
                    let wt = a.web_t_px + t * (e.web_t_px - a.web_t_px);
                    let nch = if a.web_n > 1 { a.web_n } else { e.web_n };
                    ch = (1.0 - ww) * ch + ww * web_chord(x, rad, nch, wt);
                }
                inside[o] = true;
                if !tie || ch as f32 > chord[o] {
                    chord[o] = ch as f32;
                    idx[o] = if t < 0.5 || n == 1 { k as u32 } else { (k + 1) as u32 };
                }
            }
        }
    }
    ChordBuf {
        i0,
        j0,
        h,
        w,
        chord,
        idx,
        inside,
    }
}

/// Render every branch; `branches` must list parents before children.
pub(crate) fn render_branches(branches: &[RBranch], rows: usize, cols: usize, ss: usize) -> Vec<ChordBuf> {
    let mut bufs: Vec<ChordBuf> = branches.par_iter().map(|b| render_one(b, rows, cols, ss)).collect();
    // Junction merging, in order; siblings rendered earlier count as already covering.
    for k in 0..branches.len() {
        let (Some(p), Some((jr, jc, jrad))) = (branches[k].parent, branches[k].junction) else {
            continue;
        };
        let sibs: Vec<usize> = (0..k).filter(|&s| branches[s].parent == Some(p)).collect();
        let buf = &bufs[k];
        let mut newc = buf.chord.clone();
        for a in 0..buf.h {
            let i = buf.i0 + a;
            let qr = ss_pos(i, ss);
            for bcol in 0..buf.w {
                let o = a * buf.w + bcol;
                if newc[o] <= 0.0 {
                    continue;
                }
                let j = buf.j0 + bcol;
                let qc = ss_pos(j, ss);
                if (qr - jr).hypot(qc - jc) > jrad {
                    continue;
                }
                let mut cover = bufs[p].get(i, j);
                for &s in &sibs {
                    cover = cover.max(bufs[s].get(i, j));
                }
                newc[o] = (newc[o] - cover).max(0.0);
            }
        }
        bufs[k].chord = newc;
    }
    bufs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn straight(rad: f64) -> RBranch {
        RBranch {
            samples: (0..=40)
                .map(|k| RSample {
                    r: 20.0,
                    c: 5.0 + k as f64,
                    rad_px: rad,
                    web_w: 0.0,
                    web_n: 1,
                    web_t_px: 0.0,
                })
                .collect(),
            parent: None,
            junction: None,
        }
    }

    #[test]
    fn chord_profile_of_a_cylinder_is_analytic() {
        let bufs = render_branches(&[straight(5.0)], 40, 60, 1);
        let b = &bufs[0];
        for dr in 0..5i32 {
            let i = (20 + dr) as usize;
            let got = b.get(i, 25);
            let want = 2.0 * (25.0f64 - f64::from(dr * dr)).sqrt();
            assert!((f64::from(got) - want).abs() < 1e-4, "d={dr} got {got} want {want}");
        }
        assert_eq!(b.get(25, 25), 0.0);
    }

    #[test]
    fn a_steep_narrowing_is_as_narrow_as_its_radius() {
        // Radius 10 px narrowing to 3 px at col 25 with a slope of 1.4 px per px: spheres of
        // the neighbouring samples' radii would cover 6 px beside the minimum.
        let mut b = straight(10.0);
        for s in &mut b.samples {
            s.rad_px = (3.0 + 1.4 * (s.c - 25.0).abs()).min(10.0);
        }
        let bufs = render_branches(&[b], 40, 60, 1);
        let got = |row: usize| f64::from(bufs[0].get(row, 25));
        assert!((got(20) - 6.0).abs() < 1e-4, "{}", got(20));
        assert!((got(22) - 2.0 * 5f64.sqrt()).abs() < 1e-4, "{}", got(22));
        for row in [23, 24, 26, 28] {
            assert_eq!(got(row), 0.0, "row {row}");
        }
        // Still the full cylinder away from it.
        assert!((f64::from(bufs[0].get(20, 40)) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn web_channels_leave_lucent_bands() {
        // Two channels of a lumen of radius 4 with a 1 px band: zero chord at the middle.
        assert_eq!(web_chord(0.0, 4.0, 2, 1.0), 0.0);
        assert_eq!(web_chord(0.45, 4.0, 2, 1.0), 0.0);
        // Outside the band the round-lumen chord is untouched.
        assert!((web_chord(2.0, 4.0, 2, 1.0) - 2.0 * 12f64.sqrt()).abs() < 1e-12);
        // Three channels: bands at -4/3 and +4/3.
        assert_eq!(web_chord(4.0 / 3.0, 4.0, 3, 0.5), 0.0);
        assert!(web_chord(0.0, 4.0, 3, 0.5) > 7.9);
        // One channel equals the round lumen.
        assert!((web_chord(1.0, 4.0, 1, 0.0) - 2.0 * 15f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn junction_does_not_double_count() {
        let parent = straight(4.0);
        let mut child = straight(4.0);
        for s in child.samples.iter_mut() {
            s.c += 40.0; // continues from the parent's end at col 45
        }
        child.parent = Some(0);
        child.junction = Some((20.0, 45.0, 10.0));
        let bufs = render_branches(&[parent, child], 40, 100, 1);
        let sum = f64::from(bufs[0].get(20, 45) + bufs[1].get(20, 45));
        assert!((sum - 8.0).abs() < 1e-4, "{sum}");
    }
}
