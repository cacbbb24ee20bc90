//! Synthetic angiograms for tests: Beer-Lambert tubes `I = I0 exp(-mu * chord)` around
//! polylines with a radius per vertex, supersampled, blurred by a Gaussian PSF, optional
//! Poisson-like noise.
#![allow(dead_code)]

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use vesselkit_core::Point;

pub struct Tube {
    pub points: Vec<Point>,
    /// Radius (px) at each point.
    pub radius: Vec<f64>,
}

impl Tube {
    pub fn straight(p0: Point, p1: Point, radius: f64) -> Self {
        Self {
            points: vec![p0, p1],
            radius: vec![radius, radius],
        }
    }
}

/// Distance from `q` to the tube axis and the interpolated radius there.
fn nearest(t: &Tube, q: Point) -> (f64, f64) {
    let mut best = (f64::INFINITY, 0.0);
    for i in 0..t.points.len() - 1 {
        let (a, b) = (t.points[i], t.points[i + 1]);
        let (dr, dc) = (b.row - a.row, b.col - a.col);
        let l2 = dr * dr + dc * dc;
        let u = if l2 > 0.0 {
            (((q.row - a.row) * dr + (q.col - a.col) * dc) / l2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let p = a.lerp(b, u);
        let d = p.dist(q);
        if d < best.0 {
            best = (d, t.radius[i] + u * (t.radius[i + 1] - t.radius[i]));
        }
    }
    best
}

/// Render tubes (attenuation `mu` per px of chord) on background `i0`, supersampled `ss` x `ss`,
/// then blurred with PSF sigma `psf_px` (0 = none).
pub fn render(rows: usize, cols: usize, tubes: &[Tube], i0: f32, mu: f64, psf_px: f32) -> Array2<f32> {
    let ss = 4;
    let img = Array2::from_shape_fn((rows, cols), |(r, c)| {
        let mut acc = 0.0;
        for a in 0..ss {
            for b in 0..ss {
                let q = Point::new(
                    r as f64 - 0.5 + (a as f64 + 0.5) / ss as f64,
                    c as f64 - 0.5 + (b as f64 + 0.5) / ss as f64,
                );
                // Overlapping tubes: take the longest chord (a single lumen where they merge).
                let mut chord: f64 = 0.0;
                for t in tubes {
                    let (d, rad) = nearest(t, q);
                    if d < rad {
                        chord = chord.max(2.0 * (rad * rad - d * d).sqrt());
                    }
                }
                acc += (-mu * chord).exp();
            }
        }
        i0 * (acc / (ss * ss) as f64) as f32
    });
    if psf_px > 0.0 {
        vesselkit_filters::gaussian_blur(img.view(), psf_px).unwrap()
    } else {
        img
    }
}

/// Poisson-like noise: Gaussian with variance `intensity / gain` (photon statistics).
pub fn add_noise(img: &mut Array2<f32>, gain: f32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = Normal::new(0.0f32, 1.0).unwrap();
    img.mapv_inplace(|v| v + n.sample(&mut rng) * (v.max(0.0) / gain).sqrt());
}
