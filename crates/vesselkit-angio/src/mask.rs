//! Binary-mask helpers: connected components, small-object and hole removal, Euclidean distance
//! transform.

use ndarray::Array2;

pub(crate) const N8: [(isize, isize); 8] = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];

#[inline]
pub(crate) fn offset(r: usize, c: usize, d: (isize, isize), rows: usize, cols: usize) -> Option<(usize, usize)> {
    let (nr, nc) = (r as isize + d.0, c as isize + d.1);
    (nr >= 0 && nc >= 0 && (nr as usize) < rows && (nc as usize) < cols).then_some((nr as usize, nc as usize))
}

/// Connected components of `mask` (8-connected if `eight`, else 4): labels (0 = background,
/// 1..=n, numbered in raster order of each component's first pixel) and the size of each label
/// (index 0 unused). Runs of each row are joined to the overlapping runs of the row above with a
/// union-find, so the cost is one pass over the pixels plus one over the runs.
pub fn label(mask: &Array2<bool>, eight: bool) -> (Array2<u32>, Vec<usize>) {
    let (rows, cols) = mask.dim();
    let std_mask;
    let m: &[bool] = match mask.as_slice() {
        Some(s) => s,
        None => {
            std_mask = mask.as_standard_layout().into_owned();
            // A standard-layout array always has a slice.
            std_mask.as_slice().unwrap_or(&[])
        }
    };
    // Runs (row, start, end exclusive); row_start[r] = index of the first run of row r.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut row_start = Vec::with_capacity(rows + 1);
    for r in 0..rows {
        row_start.push(runs.len());
        let row = &m[r * cols..(r + 1) * cols];
        let mut c = 0;
        while c < cols {
            if row[c] {
                let s0 = c;
                while c < cols && row[c] {
                    c += 1;
                }
                runs.push((r, s0, c));
            } else {
                c += 1;
            }
        }
    }
    row_start.push(runs.len());
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
    let mut labels = Array2::<u32>::zeros((rows, cols));
    let mut sizes = vec![0usize];
    let mut id_of_root = vec![0u32; runs.len()];
    for (i, &(r, s0, e)) in runs.iter().enumerate() {
        let root = find(&mut parent, i);
        if id_of_root[root] == 0 {
            id_of_root[root] = sizes.len() as u32;
            sizes.push(0);
        }
        let id = id_of_root[root];
        sizes[id as usize] += e - s0;
        for c in s0..e {
            labels[[r, c]] = id;
        }
    }
    (labels, sizes)
}

/// Remove 8-connected components smaller than `min_px`.
pub fn remove_small_objects(mask: &mut Array2<bool>, min_px: usize) {
    if min_px <= 1 {
        return;
    }
    let (labels, sizes) = label(mask, true);
    mask.zip_mut_with(&labels, |m, &l| {
        if *m && sizes[l as usize] < min_px {
            *m = false;
        }
    });
}

/// Fill background holes (4-connected, not touching the border) of at most `max_px` pixels.
pub fn fill_holes(mask: &mut Array2<bool>, max_px: usize) {
    if max_px == 0 {
        return;
    }
    let inv = mask.mapv(|m| !m);
    let (labels, sizes) = label(&inv, false);
    let (rows, cols) = mask.dim();
    let mut touches = vec![false; sizes.len()];
    for r in 0..rows {
        touches[labels[[r, 0]] as usize] = true;
        touches[labels[[r, cols - 1]] as usize] = true;
    }
    for c in 0..cols {
        touches[labels[[0, c]] as usize] = true;
        touches[labels[[rows - 1, c]] as usize] = true;
    }
    mask.zip_mut_with(&labels, |m, &l| {
        let l = l as usize;
        if !*m && l != 0 && !touches[l] && sizes[l] <= max_px {
            *m = true;
        }
    });
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
pub fn distance_transform(mask: &Array2<bool>) -> Array2<f32> {
    let (rows, cols) = mask.dim();
    // Pad by one background pixel on every side so the border counts as background.
    let (pr, pc) = (rows + 2, cols + 2);
    let mut g = Array2::<f32>::from_elem((pr, pc), 0.0);
    for r in 0..rows {
        for c in 0..cols {
            if mask[[r, c]] {
                g[[r + 1, c + 1]] = f32::INFINITY;
            }
        }
    }
    // Columns, then rows; every line is independent (one scratch set per job).
    use rayon::prelude::*;
    let scratch = || (Vec::new(), Vec::new(), vec![0f32; pr.max(pc)], vec![0f32; pr.max(pc)]);
    for axis in [ndarray::Axis(1), ndarray::Axis(0)] {
        g.axis_iter_mut(axis)
            .into_par_iter()
            .for_each_init(scratch, |(v, z, f, d), mut line| {
                let n = line.len();
                for (fi, &x) in f.iter_mut().zip(line.iter()) {
                    *fi = x;
                }
                edt_1d(&f[..n], &mut d[..n], v, z);
                for (x, &di) in line.iter_mut().zip(d.iter()) {
                    *x = di;
                }
            });
    }
    Array2::from_shape_fn((rows, cols), |(r, c)| g[[r + 1, c + 1]].sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

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
