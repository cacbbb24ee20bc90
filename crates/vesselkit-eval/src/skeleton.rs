//! Zhang-Suen thinning (Zhang & Suen 1984), kept here so the evaluation never shares a
//! skeleton with the pipeline it judges.

use ndarray::Array2;

/// One-pixel-wide 8-connected skeleton of a binary mask.
pub fn zhang_suen(mask: &Array2<bool>) -> Array2<bool> {
    let (rows, cols) = mask.dim();
    // Pad by one so neighbours always exist.
    let mut img = Array2::<u8>::zeros((rows + 2, cols + 2));
    for ((r, c), &v) in mask.indexed_iter() {
        img[[r + 1, c + 1]] = u8::from(v);
    }
    let mut to_clear: Vec<(usize, usize)> = Vec::new();
    loop {
        let mut changed = false;
        for step in 0..2 {
            to_clear.clear();
            for r in 1..=rows {
                for c in 1..=cols {
                    if img[[r, c]] == 0 {
                        continue;
                    }
                    // P2..P9 clockwise from north.
                    let p = [
                        img[[r - 1, c]],
                        img[[r - 1, c + 1]],
                        img[[r, c + 1]],
                        img[[r + 1, c + 1]],
                        img[[r + 1, c]],
                        img[[r + 1, c - 1]],
                        img[[r, c - 1]],
                        img[[r - 1, c - 1]],
                    ];
                    let b: u8 = p.iter().sum();
                    if !(2..=6).contains(&b) {
                        continue;
                    }
                    let a = (0..8).filter(|&i| p[i] == 0 && p[(i + 1) % 8] == 1).count();
                    if a != 1 {
                        continue;
                    }
                    let (p2, p4, p6, p8) = (p[0], p[2], p[4], p[6]);
                    let ok = if step == 0 {
                        p2 * p4 * p6 == 0 && p4 * p6 * p8 == 0
                    } else {
                        p2 * p4 * p8 == 0 && p2 * p6 * p8 == 0
                    };
                    if ok {
                        to_clear.push((r, c));
                    }
                }
            }
            for &(r, c) in &to_clear {
                img[[r, c]] = 0;
            }
            changed |= !to_clear.is_empty();
        }
        if !changed {
            break;
        }
    }
    Array2::from_shape_fn((rows, cols), |(r, c)| img[[r + 1, c + 1]] == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thick_bar_thins_to_its_midline() {
        let mut m = Array2::from_elem((11, 40), false);
        for r in 3..8 {
            for c in 2..38 {
                m[[r, c]] = true;
            }
        }
        let s = zhang_suen(&m);
        // Interior columns keep exactly one pixel, on the middle row.
        for c in 6..34 {
            let col: Vec<usize> = (0..11).filter(|&r| s[[r, c]]).collect();
            assert_eq!(col, vec![5], "column {c}");
        }
        assert!(s.iter().filter(|&&v| v).count() >= 28);
    }

    #[test]
    fn empty_and_single_pixel() {
        let m = Array2::from_elem((5, 5), false);
        assert_eq!(zhang_suen(&m).iter().filter(|&&v| v).count(), 0);
        let mut m1 = m.clone();
        m1[[2, 2]] = true;
        assert!(zhang_suen(&m1)[[2, 2]]);
    }
}
