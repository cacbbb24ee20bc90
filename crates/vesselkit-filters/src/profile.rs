//! 1-D helpers for intensity profiles: bilinear sampling and Gaussian-smoothed derivatives.

use ndarray::ArrayView2;

/// Bilinear interpolation at sub-pixel `(row, col)`; `None` outside `[0, rows-1] x [0, cols-1]`.
#[inline]
pub fn bilinear(img: &ArrayView2<f32>, row: f64, col: f64) -> Option<f32> {
    let (rows, cols) = img.dim();
    if !(row >= 0.0 && col >= 0.0 && row <= (rows - 1) as f64 && col <= (cols - 1) as f64) {
        return None;
    }
    let r0 = (row.floor() as usize).min(rows.saturating_sub(2));
    let c0 = (col.floor() as usize).min(cols.saturating_sub(2));
    let (r1, c1) = ((r0 + 1).min(rows - 1), (c0 + 1).min(cols - 1));
    let fr = (row - r0 as f64) as f32;
    let fc = (col - c0 as f64) as f32;
    let top = img[[r0, c0]] * (1.0 - fc) + img[[r0, c1]] * fc;
    let bot = img[[r1, c0]] * (1.0 - fc) + img[[r1, c1]] * fc;
    Some(top * (1.0 - fr) + bot * fr)
}

/// Gaussian smoothing of a 1-D signal with `sigma` in samples (edges replicate).
pub fn smooth_1d(x: &[f32], sigma: f32) -> Vec<f32> {
    if !(sigma > 0.0) || x.is_empty() {
        return x.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let w: Vec<f32> = (-r..=r)
        .map(|k| (-0.5 * (k * k) as f32 / (sigma * sigma)).exp())
        .collect();
    let sw: f32 = w.iter().sum();
    let n = x.len() as isize;
    (0..n)
        .map(|i| {
            let mut acc = 0.0;
            for (j, wk) in w.iter().enumerate() {
                let idx = (i + j as isize - r).clamp(0, n - 1);
                acc += wk * x[idx as usize];
            }
            acc / sw
        })
        .collect()
}

/// First and second derivatives (per sample) of a smoothed 1-D signal by central differences.
pub fn derivatives_1d(x: &[f32], sigma: f32) -> (Vec<f32>, Vec<f32>) {
    let s = smooth_1d(x, sigma);
    let n = s.len();
    let mut d1 = vec![0.0; n];
    let mut d2 = vec![0.0; n];
    for i in 1..n.saturating_sub(1) {
        d1[i] = 0.5 * (s[i + 1] - s[i - 1]);
        d2[i] = s[i + 1] - 2.0 * s[i] + s[i - 1];
    }
    (d1, d2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn bilinear_is_exact_on_planes() {
        let img = Array2::from_shape_fn((5, 6), |(r, c)| 2.0 * r as f32 + 0.5 * c as f32 + 1.0);
        let v = bilinear(&img.view(), 1.25, 3.5).unwrap();
        assert!((v - (2.5 + 1.75 + 1.0)).abs() < 1e-5);
        assert!(bilinear(&img.view(), 4.0, 5.0).is_some());
        assert!(bilinear(&img.view(), -0.1, 1.0).is_none());
    }

    #[test]
    fn derivatives_of_parabola() {
        let x: Vec<f32> = (0..50).map(|i| 0.5 * (i as f32 - 25.0).powi(2)).collect();
        let (d1, d2) = derivatives_1d(&x, 1.0);
        assert!((d1[30] - 5.0).abs() < 1e-2, "{}", d1[30]);
        assert!((d2[30] - 1.0).abs() < 1e-2, "{}", d2[30]);
    }
}
