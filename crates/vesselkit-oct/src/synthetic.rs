//! Synthetic OCT frames with exact truth, for tests, benches and examples.
//!
//! A frame is an analytic scene (catheter rings, dark lumen of a given shape, bright wall that
//! fades with depth, optional guidewire with its shadow and optional septa) sampled on a
//! cartesian or polar grid, then multiplied by speckle. Deterministic for a given seed.

use crate::polar::OctGeometry;
use ndarray::Array2;
use std::f64::consts::TAU;
use vesselkit_core::Point;

/// A straight septum across the lumen: the band `|n . (p - c) - offset| < thickness / 2` with
/// unit normal `n = (sin normal_angle, cos normal_angle)` and `c` the lumen centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeptumSpec {
    pub normal_angle: f64,
    pub offset_mm: f64,
    pub thickness_mm: f64,
}

/// Everything that defines a synthetic frame. Lengths in mm, positions relative to the catheter.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    /// Lumen centre relative to the catheter `(row, col)` in mm (eccentric catheter).
    pub lumen_offset_mm: (f64, f64),
    pub lumen_radius_mm: f64,
    /// Shape harmonics `(order, relative amplitude, phase)`: `r(phi) = R (1 + sum a cos(k phi + p))`.
    pub harmonics: Vec<(u32, f64, f64)>,
    pub catheter_radius_mm: f64,
    /// Guidewire angle (radians, from the catheter) when present; it sits just outside the
    /// catheter and casts a shadow outwards.
    pub guidewire_angle: Option<f64>,
    pub septa: Vec<SeptumSpec>,
    /// Speckle strength in [0, 1]: 0 = none, 1 = fully developed (exponential) speckle.
    pub speckle: f64,
    /// Mean intensity of blood residue in the lumen.
    pub lumen_level: f64,
    pub wall_level: f64,
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            lumen_offset_mm: (0.0, 0.0),
            lumen_radius_mm: 1.5,
            harmonics: vec![],
            catheter_radius_mm: 0.45,
            guidewire_angle: None,
            septa: vec![],
            speckle: 0.5,
            lumen_level: 0.05,
            wall_level: 0.8,
            seed: 1,
        }
    }
}

/// splitmix64: a tiny deterministic generator, enough for speckle.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

impl SyntheticSpec {
    /// Lumen radius (mm) at angle `phi` around the lumen centre.
    pub fn lumen_radius_at(&self, phi: f64) -> f64 {
        let m: f64 = self
            .harmonics
            .iter()
            .map(|&(k, a, p)| a * (k as f64 * phi + p).cos())
            .sum();
        self.lumen_radius_mm * (1.0 + m)
    }

    /// True when a point `(row, col)` in mm relative to the catheter lies inside the lumen
    /// (septa included: they are inside the outer contour).
    pub fn inside_lumen(&self, row_mm: f64, col_mm: f64) -> bool {
        let (dr, dc) = (row_mm - self.lumen_offset_mm.0, col_mm - self.lumen_offset_mm.1);
        dr.hypot(dc) < self.lumen_radius_at(dr.atan2(dc))
    }

    /// Exact lumen area (mm²), by fine numerical integration of `r(phi)² / 2`.
    pub fn lumen_area_mm2(&self) -> f64 {
        let n = 20_000;
        (0..n)
            .map(|i| {
                let r = self.lumen_radius_at(TAU * (i as f64 + 0.5) / n as f64);
                0.5 * r * r
            })
            .sum::<f64>()
            * TAU
            / n as f64
    }

    /// Lumen area less the septa (the union of the channels, mm²): each band sampled on a 2 µm
    /// grid in its own coordinates (along x across), overlaps with earlier bands counted once.
    pub fn channel_area_mm2(&self) -> f64 {
        let step = 0.002;
        let ext = self.lumen_radius_mm * 1.5 + self.lumen_offset_mm.0.abs().max(self.lumen_offset_mm.1.abs());
        let (r0, c0) = self.lumen_offset_mm;
        let mut septa = 0.0;
        for (i, sp) in self.septa.iter().enumerate() {
            let (nr, nc) = (sp.normal_angle.sin(), sp.normal_angle.cos());
            let (ur, uc) = (-nc, nr);
            let n_across = (sp.thickness_mm / step).ceil() as usize;
            let n_along = (2.0 * ext / step) as usize;
            for j in 0..n_across {
                let d = sp.offset_mm - 0.5 * sp.thickness_mm + (j as f64 + 0.5) * sp.thickness_mm / n_across as f64;
                for k in 0..n_along {
                    let t = -ext + (k as f64 + 0.5) * step;
                    let (y, x) = (r0 + d * nr + t * ur, c0 + d * nc + t * uc);
                    let earlier = self.septa[..i].iter().any(|q| {
                        let dq = (y - r0) * q.normal_angle.sin() + (x - c0) * q.normal_angle.cos();
                        (dq - q.offset_mm).abs() < 0.5 * q.thickness_mm
                    });
                    if !earlier && self.inside_lumen(y, x) {
                        septa += step * sp.thickness_mm / n_across as f64;
                    }
                }
            }
        }
        self.lumen_area_mm2() - septa
    }

    fn in_septum(&self, row_mm: f64, col_mm: f64) -> bool {
        let (dr, dc) = (row_mm - self.lumen_offset_mm.0, col_mm - self.lumen_offset_mm.1);
        self.septa.iter().any(|s| {
            let d = dr * s.normal_angle.sin() + dc * s.normal_angle.cos();
            (d - s.offset_mm).abs() < 0.5 * s.thickness_mm
        })
    }

    fn guidewire(&self) -> Option<(f64, f64, f64)> {
        // (row, col, radius) of the wire, all in mm
        self.guidewire_angle.map(|t| {
            let rw = 0.09;
            let d = self.catheter_radius_mm + rw + 0.05;
            (d * t.sin(), d * t.cos(), rw)
        })
    }

    /// Noise-free scene intensity at `(row, col)` mm relative to the catheter.
    pub fn scene(&self, row_mm: f64, col_mm: f64) -> f64 {
        let rho = row_mm.hypot(col_mm);
        let cr = self.catheter_radius_mm;
        // Catheter: dark core with two bright rings, the outer one being the sheath.
        if rho < cr {
            let ring = |r0: f64, w: f64| ((rho - r0).abs() < w) as u8 as f64;
            return 0.1 + 0.8 * ring(cr - 0.02, 0.02) + 0.6 * ring(0.45 * cr, 0.015);
        }
        let mut v;
        if self.inside_lumen(row_mm, col_mm) {
            v = if self.in_septum(row_mm, col_mm) {
                self.wall_level
            } else {
                self.lumen_level
            };
        } else {
            // Depth into the wall along the ray from the lumen centre.
            let (dr, dc) = (row_mm - self.lumen_offset_mm.0, col_mm - self.lumen_offset_mm.1);
            let depth = dr.hypot(dc) - self.lumen_radius_at(dr.atan2(dc));
            v = 0.05 + (self.wall_level - 0.05) * (-depth / 1.2).exp();
        }
        if let Some((gr, gc, rw)) = self.guidewire() {
            let gd = (row_mm - gr).hypot(col_mm - gc);
            if gd < rw {
                return 1.0;
            }
            let gdist = gr.hypot(gc);
            let half = (rw / gdist).asin();
            let dt = (row_mm.atan2(col_mm) - gr.atan2(gc) + TAU / 2.0).rem_euclid(TAU) - TAU / 2.0;
            if rho > gdist && dt.abs() < half {
                v *= 0.05;
            }
        }
        v
    }

    fn speckled(&self, v: f64, rng: &mut Rng) -> f32 {
        let e = -rng.next_f64().ln();
        (v * (1.0 - self.speckle + self.speckle * e)) as f32
    }

    /// Cartesian frame `[size, size]`, catheter at the centre `((size-1)/2, (size-1)/2)`,
    /// each pixel the mean of 2x2 sub-samples, then speckle. Returns the image and the
    /// truth lumen mask (pixel centres inside the outer lumen contour).
    pub fn cartesian(&self, size: usize, mm_per_px: f64) -> (Array2<f32>, Array2<bool>) {
        let c = (size as f64 - 1.0) / 2.0;
        let mut rng = Rng(self.seed);
        let mut img = Array2::<f32>::zeros((size, size));
        let mut mask = Array2::from_elem((size, size), false);
        let fov = c * mm_per_px;
        for r in 0..size {
            for col in 0..size {
                let (y, x) = ((r as f64 - c) * mm_per_px, (col as f64 - c) * mm_per_px);
                mask[[r, col]] = self.inside_lumen(y, x);
                let mut s = 0.0;
                for (oy, ox) in [(-0.25, -0.25), (-0.25, 0.25), (0.25, -0.25), (0.25, 0.25)] {
                    let (yy, xx) = (y + oy * mm_per_px, x + ox * mm_per_px);
                    if yy.hypot(xx) <= fov {
                        s += self.scene(yy, xx);
                    }
                }
                img[[r, col]] = self.speckled(s / 4.0, &mut rng);
            }
        }
        (img, mask)
    }

    /// Polar frame `[a_lines, samples]` with the given geometry (A-line `i` at angle
    /// `2 pi i / a_lines`, sample `j` at radius `(j + z_offset) * spacing`).
    pub fn polar(&self, a_lines: usize, samples: usize, geometry: &OctGeometry) -> Array2<f32> {
        let spacing = geometry.sample_spacing_mm().unwrap_or(geometry.a_line_spacing_mm);
        let mut rng = Rng(self.seed ^ 0xA5A5);
        Array2::from_shape_fn((a_lines, samples), |(i, j)| {
            let t = TAU * i as f64 / a_lines as f64;
            let r = (j as f64 + geometry.z_offset_px) * spacing;
            let v = if r < 0.0 {
                0.0
            } else {
                self.scene(r * t.sin(), r * t.cos())
            };
            self.speckled(v, &mut rng)
        })
    }

    /// Number of channels the septa cut the lumen into, counted on a fine grid (components of
    /// lumen minus septa above `min_area_mm2`, the catheter joining what touches it).
    pub fn true_channels(&self, min_area_mm2: f64) -> usize {
        let step = 0.01;
        let ext = self.lumen_radius_mm * 2.0 + self.lumen_offset_mm.0.abs().max(self.lumen_offset_mm.1.abs()) + 0.1;
        let n = (2.0 * ext / step) as usize;
        let mut free = vec![false; n * n];
        for i in 0..n {
            for j in 0..n {
                let (y, x) = (-ext + i as f64 * step, -ext + j as f64 * step);
                free[i * n + j] =
                    y.hypot(x) < self.catheter_radius_mm || (self.inside_lumen(y, x) && !self.in_septum(y, x));
            }
        }
        let mut seen = vec![false; n * n];
        let mut count = 0;
        for s in 0..n * n {
            if !free[s] || seen[s] {
                continue;
            }
            let mut stack = vec![s];
            seen[s] = true;
            let mut area = 0usize;
            while let Some(p) = stack.pop() {
                area += 1;
                let (r, c) = (p / n, p % n);
                let nb = [(r.wrapping_sub(1), c), (r + 1, c), (r, c.wrapping_sub(1)), (r, c + 1)];
                for (rr, cc) in nb {
                    if rr < n && cc < n && free[rr * n + cc] && !seen[rr * n + cc] {
                        seen[rr * n + cc] = true;
                        stack.push(rr * n + cc);
                    }
                }
            }
            if area as f64 * step * step >= min_area_mm2 {
                count += 1;
            }
        }
        count
    }
}

/// Centre of a synthetic cartesian frame.
pub fn frame_center(size: usize) -> Point {
    let c = (size as f64 - 1.0) / 2.0;
    Point::new(c, c)
}
