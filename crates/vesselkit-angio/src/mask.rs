//! Binary-mask helpers: connected components, small-object and hole removal, Euclidean distance
//! transform.

use ndarray::Array2;

/// Foreground runs of a row-major image and their connected components.
pub(crate) struct RunComponents {
    /// `(row, start col, end col exclusive)` in raster order.
    pub runs: Vec<(usize, usize, usize)>,
    /// Component of each run, numbered from 0 in raster order of each component's first pixel.
    pub comp: Vec<u32>,
    /// Pixel count of each component.
    pub sizes: Vec<usize>,
}

impl RunComponents {
    /// Whether a component touches the image border.
    pub fn touches_border(&self, rows: usize, cols: usize) -> Vec<bool> {
        let mut t = vec![false; self.sizes.len()];
        for (&(r, s0, e), &c) in self.runs.iter().zip(&self.comp) {
            if r == 0 || r + 1 == rows || s0 == 0 || e == cols {
                t[c as usize] = true;
            }
        }
        t
    }
}

/// Connected components (8-connected if `eight`, else 4) of the pixels of the row-major `m`
/// (`rows` x `cols`) where `fg` holds. Runs of each row are joined to the overlapping runs of
/// the row above with a union-find, so the cost is one pass over the pixels plus one over the
/// runs, and no per-pixel label image is needed.
pub(crate) fn run_components<T: Copy + Sync>(
    m: &[T],
    (rows, cols): (usize, usize),
    eight: bool,
    fg: impl Fn(T) -> bool + Sync,
) -> RunComponents {
    // Runs (row, start, end exclusive), found over blocks of rows in parallel and joined in
    // raster order; row_start[r] = index of the first run of row r.
    use rayon::prelude::*;
    let block_rows = (1 << 16) / cols.max(1) + 1;
    let blocks: Vec<Vec<(usize, usize, usize)>> = (0..rows.div_ceil(block_rows))
        .into_par_iter()
        .map(|b| {
            let mut runs = Vec::new();
            for r in b * block_rows..((b + 1) * block_rows).min(rows) {
                let row = &m[r * cols..(r + 1) * cols];
                let mut c = 0;
                while c < cols {
                    if fg(row[c]) {
                        let s0 = c;
                        while c < cols && fg(row[c]) {
                            c += 1;
                        }
                        runs.push((r, s0, c));
                    } else {
                        c += 1;
                    }
                }
            }
            runs
        })
        .collect();
    let runs: Vec<(usize, usize, usize)> = blocks.concat();
    let mut row_start = vec![0; rows + 1];
    for &(r, _, _) in &runs {
        row_start[r + 1] += 1;
    }
    for r in 0..rows {
        row_start[r + 1] += row_start[r];
    }
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let reach = usize::from(eight);
    for r in 1..rows {
        let (mut a, a_end) = (row_start[r - 1], row_start[r]);
        for b in row_start[r]..row_start[r + 1] {
            let (_, bs, be) = runs[b];
            // Skip runs above that end before this one starts (with diagonal reach).
            while a < a_end && runs[a].2 + reach <= bs {
                a += 1;
            }
            let mut k = a;
            while k < a_end && runs[k].1 < be + reach {
                let (x, y) = (find(&mut parent, k), find(&mut parent, b));
                if x != y {
                    parent[x.max(y)] = x.min(y);
                }
                k += 1;
            }
        }
    }
    let mut sizes = Vec::new();
    let mut id_of_root = vec![u32::MAX; runs.len()];
    let mut comp = Vec::with_capacity(runs.len());
    for (i, &(_, s0, e)) in runs.iter().enumerate() {
        let root = find(&mut parent, i);
        if id_of_root[root] == u32::MAX {
            id_of_root[root] = sizes.len() as u32;
            sizes.push(0);
        }
        let id = id_of_root[root];
        sizes[id as usize] += e - s0;
        comp.push(id);
    }
    RunComponents { runs, comp, sizes }
}

/// A row-major slice of `mask`, copying only when its layout is not standard.
pub(crate) fn standard<T: Copy>(mask: &Array2<T>) -> std::borrow::Cow<'_, [T]> {
    match mask.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(mask.iter().copied().collect()),
    }
}

/// Connected components of `mask` (8-connected if `eight`, else 4): labels (0 = background,
/// 1..=n, numbered in raster order of each component's first pixel) and the size of each label
/// (index 0 unused).
pub fn label(mask: &Array2<bool>, eight: bool) -> (Array2<u32>, Vec<usize>) {
    let (rows, cols) = mask.dim();
    let rc = run_components(&standard(mask), (rows, cols), eight, |v| v);
    let mut labels = Array2::<u32>::zeros((rows, cols));
    for (&(r, s0, e), &c) in rc.runs.iter().zip(&rc.comp) {
        for c2 in s0..e {
            labels[[r, c2]] = c + 1;
        }
    }
    let mut sizes = vec![0usize];
    sizes.extend_from_slice(&rc.sizes);
    (labels, sizes)
}

/// Set (`value`) the pixels of the runs whose component passes `pick`.
pub(crate) fn paint_runs(mask: &mut Array2<bool>, rc: &RunComponents, value: bool, pick: impl Fn(usize) -> bool) {
    for (&(r, s0, e), &c) in rc.runs.iter().zip(&rc.comp) {
        if pick(c as usize) {
            let mut row = mask.row_mut(r);
            match row.as_slice_mut() {
                Some(sl) => sl[s0..e].fill(value),
                None => (s0..e).for_each(|c2| row[c2] = value),
            }
        }
    }
}

/// Remove 8-connected components smaller than `min_px`.
pub fn remove_small_objects(mask: &mut Array2<bool>, min_px: usize) {
    if min_px <= 1 {
        return;
    }
    let rc = run_components(&standard(mask), mask.dim(), true, |v| v);
    paint_runs(mask, &rc, false, |c| rc.sizes[c] < min_px);
}

/// Fill background holes (4-connected, not touching the border) of at most `max_px` pixels.
pub fn fill_holes(mask: &mut Array2<bool>, max_px: usize) {
    if max_px == 0 {
        return;
    }
    let (rows, cols) = mask.dim();
    let rc = run_components(&standard(mask), (rows, cols), false, |v| !v);
    let touches = rc.touches_border(rows, cols);
    paint_runs(mask, &rc, true, |c| !touches[c] && rc.sizes[c] <= max_px);
}

/// 1-D squared distance transform (Felzenszwalb & Huttenlocher 2012) of `f` into `d`.
fn edt_1d(f: &[f32], d: &mut [f32], v: &mut Vec<usize>, z: &mut Vec<f32>) {
    let n = f.len();
    v.clear();
    z.clear();
    v.resize(n, 0);
    z.resize(n + 1, 0.0);
    let mut k = 0usize;
    z[0] = f32::NEG_INFINITY;
    z[1] = f32::INFINITY;
    let mut started = false;
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        if !started {
            v[0] = q;
            k = 0;
            z[0] = f32::NEG_INFINITY;
            z[1] = f32::INFINITY;
            started = true;
            continue;
        }
        loop {
            let p = v[k];
            let s = ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q as f32 - p as f32));
            if s <= z[k] && k > 0 {
                k -= 1;
                continue;
            }
            if s <= z[k] {
                // k == 0 and the new parabola dominates everywhere
                v[0] = q;
                z[1] = f32::INFINITY;
                break;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f32::INFINITY;
            break;
        }
    }
    if !started {
        d.fill(f32::INFINITY);
        return;
    }
    let mut k = 0;
    for (q, dq) in d.iter_mut().enumerate() {
        while z[k + 1] < q as f32 {
            k += 1;
        }
        let p = v[k];
        let dx = q as f32 - p as f32;
        *dq = dx * dx + f[p];
    }
}

/// Euclidean distance (px) from each foreground pixel to the nearest background pixel (0 on
/// background). Pixels outside the image count as background.
///
/// Felzenszwalb & Huttenlocher's separable transform. For a binary mask the column pass is the
/// distance to the nearest background pixel in the same column, so it is two linear scans over
/// whole rows (vectorised across columns, no strided column access); the row pass runs the
/// lower-envelope algorithm on contiguous rows in parallel. Both passes are exact in f32 (integer
/// squares), so the result equals the textbook two-pass transform.
pub fn distance_transform(mask: &Array2<bool>) -> Array2<f32> {
    let (rows, cols) = mask.dim();
    let mut out = Array2::<f32>::zeros((rows, cols));
    if rows == 0 || cols == 0 {
        return out;
    }
    let std_mask;
    let m: &[bool] = match mask.as_slice() {
        Some(s) => s,
        None => {
            std_mask = mask.as_standard_layout().into_owned();
            std_mask.as_slice().unwrap_or(&[])
        }
    };
    let Some(o) = out.as_slice_mut() else {
        return out; // a fresh array is always contiguous
    };
    // Column pass into `o`: distance to the nearest background pixel above (the row above the
    // image is background), then the minimum with the one below.
    for r in 0..rows {
        let (done, cur) = o.split_at_mut(r * cols);
        let cur = &mut cur[..cols];
        let mrow = &m[r * cols..(r + 1) * cols];
        if r == 0 {
            for (d, &f) in cur.iter_mut().zip(mrow) {
                *d = if f { 1.0 } else { 0.0 };
            }
        } else {
            let prev = &done[(r - 1) * cols..];
            for ((d, &f), &p) in cur.iter_mut().zip(mrow).zip(prev) {
                *d = if f { p + 1.0 } else { 0.0 };
            }
        }
    }
    // The row below the image is background too.
    for d in &mut o[(rows - 1) * cols..] {
        *d = d.min(1.0);
    }
    for r in (0..rows.saturating_sub(1)).rev() {
        let (cur, below) = o.split_at_mut((r + 1) * cols);
        let cur = &mut cur[r * cols..];
        for (d, &b) in cur.iter_mut().zip(&below[..cols]) {
            *d = d.min(b + 1.0);
        }
    }
    // Row pass on squared column distances, run by run: for a pixel in a foreground run, any
    // pixel beyond the background pixel that bounds the run on that side is farther than that
    // background pixel, so the envelope over the run and its two bounding background pixels (or
    // the background outside the image) gives the exact minimum. Work scales with the
    // foreground, not the image.
    use rayon::prelude::*;
    let chunk = (16_384 / cols).clamp(1, rows);
    o.par_chunks_mut(chunk * cols).for_each_init(
        || (Vec::new(), Vec::new(), vec![0f32; cols + 2], vec![0f32; cols + 2]),
        |(v, z, f, d), block| {
            for line in block.chunks_exact_mut(cols) {
                let mut c = 0;
                while c < cols {
                    if line[c] == 0.0 {
                        c += 1;
                        continue;
                    }
                    let s0 = c;
                    while c < cols && line[c] != 0.0 {
                        c += 1;
                    }
                    let n = c - s0;
                    f[0] = 0.0;
                    for (fi, &x) in f[1..=n].iter_mut().zip(&line[s0..c]) {
                        *fi = x * x;
                    }
                    f[n + 1] = 0.0;
                    edt_1d(&f[..n + 2], &mut d[..n + 2], v, z);
                    for (x, &di) in line[s0..c].iter_mut().zip(&d[1..=n]) {
                        *x = di.sqrt();
                    }
                }
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const N8: [(isize, isize); 8] = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];

    #[inline]
    fn offset(r: usize, c: usize, d: (isize, isize), rows: usize, cols: usize) -> Option<(usize, usize)> {
        let (nr, nc) = (r as isize + d.0, c as isize + d.1);
        (nr >= 0 && nc >= 0 && (nr as usize) < rows && (nc as usize) < cols).then_some((nr as usize, nc as usize))
    }

    #[test]
    fn edt_matches_brute_force() {
        let mask = Array2::from_shape_fn((17, 23), |(r, c)| {
            let (y, x) = (r as f32 - 8.0, c as f32 - 11.0);
            y * y + x * x < 50.0 || (r == 2 && c > 3)
        });
        let d = distance_transform(&mask);
        for ((r, c), &m) in mask.indexed_iter() {
            let mut best = f32::INFINITY;
            for rr in -1..=17isize {
                for cc in -1..=23isize {
                    let bg = rr < 0 || cc < 0 || rr >= 17 || cc >= 23 || !mask[[rr as usize, cc as usize]];
                    if bg {
                        best = best.min(((rr - r as isize).pow(2) as f32 + (cc - c as isize).pow(2) as f32).sqrt());
                    }
                }
            }
            let expect = if m { best } else { 0.0 };
            assert!((d[[r, c]] - expect).abs() < 1e-4, "({r},{c}) {} vs {expect}", d[[r, c]]);
        }
    }

    #[test]
    fn edt_on_large_strided_masks_matches_brute_force() {
        // Several row tasks, blobs touching the border, an all-background row, and a transposed
        // (non-standard layout) mask.
        let mask = Array2::from_shape_fn((61, 90), |(r, c)| {
            let (y, x) = (r as f32 - 30.0, c as f32 - 40.0);
            (y * y / 400.0 + x * x / 1600.0 < 1.0 && r != 17) || (c > 80 && r < 9) || (r * 7 + c * 3) % 29 == 0
        });
        for m in [mask.clone(), mask.t().to_owned(), mask.clone().reversed_axes()] {
            let d = distance_transform(&m);
            let (rows, cols) = m.dim();
            for ((r, c), &f) in m.indexed_iter() {
                let mut best = f32::INFINITY;
                if f {
                    for rr in -1..=rows as isize {
                        for cc in -1..=cols as isize {
                            let inside = rr >= 0 && cc >= 0 && rr < rows as isize && cc < cols as isize;
                            if !inside || !m[[rr as usize, cc as usize]] {
                                let (dy, dx) = ((rr - r as isize) as f32, (cc - c as isize) as f32);
                                best = best.min((dy * dy + dx * dx).sqrt());
                            }
                        }
                    }
                } else {
                    best = 0.0;
                }
                assert_eq!(d[[r, c]], best, "({r},{c})");
            }
        }
    }

    #[test]
    fn holes_and_small_objects() {
        let mut m = Array2::from_shape_fn((20, 20), |(r, c)| (2..12).contains(&r) && (2..12).contains(&c));
        m[[6, 6]] = false; // a one-pixel hole
        m[[17, 17]] = true; // a one-pixel speck
        fill_holes(&mut m, 4);
        assert!(m[[6, 6]]);
        remove_small_objects(&mut m, 5);
        assert!(!m[[17, 17]]);
        assert_eq!(m.iter().filter(|&&x| x).count(), 100);
        let (_, sizes) = label(&m, true);
        assert_eq!(sizes, vec![0, 100]);
    }

    /// Flood-fill labelling in raster order, the reference for the run-based one.
    fn label_flood(mask: &Array2<bool>, eight: bool) -> (Array2<u32>, Vec<usize>) {
        let (rows, cols) = mask.dim();
        let n4 = [(-1, 0), (0, 1), (1, 0), (0, -1)];
        let nbrs: &[(isize, isize)] = if eight { &N8 } else { &n4 };
        let mut labels = Array2::<u32>::zeros((rows, cols));
        let mut sizes = vec![0usize];
        for r in 0..rows {
            for c in 0..cols {
                if !mask[[r, c]] || labels[[r, c]] != 0 {
                    continue;
                }
                let id = sizes.len() as u32;
                let (mut n, mut stack) = (0, vec![(r, c)]);
                labels[[r, c]] = id;
                while let Some((y, x)) = stack.pop() {
                    n += 1;
                    for &d in nbrs {
                        if let Some((ny, nx)) = offset(y, x, d, rows, cols)
                            && mask[[ny, nx]]
                            && labels[[ny, nx]] == 0
                        {
                            labels[[ny, nx]] = id;
                            stack.push((ny, nx));
                        }
                    }
                }
                sizes.push(n);
            }
        }
        (labels, sizes)
    }

    #[test]
    fn run_labelling_equals_flood_fill() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for density in [0.2, 0.45, 0.6] {
            let m = Array2::from_shape_fn((37, 53), |_| rng.random_bool(density));
            for eight in [false, true] {
                assert_eq!(
                    label(&m, eight),
                    label_flood(&m, eight),
                    "density {density} eight {eight}"
                );
            }
        }
        // Diagonal touch: one component with 8-connectivity, two with 4.
        let d = Array2::from_shape_fn((2, 2), |(r, c)| r == c);
        assert_eq!(label(&d, true).1, vec![0, 2]);
        assert_eq!(label(&d, false).1, vec![0, 1, 1]);
        // Non-standard layout.
        assert_eq!(label(&m_t(), true), label_flood(&m_t(), true));
    }

    fn m_t() -> Array2<bool> {
        Array2::from_shape_fn((9, 7), |(r, c)| (r * 3 + c * 5) % 4 == 0).reversed_axes()
    }
}
