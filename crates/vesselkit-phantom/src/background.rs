//! Structured chest background for X-ray phantoms: smooth lung density, rib-like bands, a
//! diaphragm dome, mediastinal density on the medial side, and vignetting.
//!
//! Everything is a smooth function of the position in mm so that cine frames can evaluate it at
//! a moved position (respiratory motion) without resampling artefacts.

use crate::common::smoothstep;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
struct Blob {
    r: f64,
    c: f64,
    sigma: f64,
    amp: f64,
}

/// Smooth value noise: random values on a lattice of `cell_mm`, interpolated with smoothstep.
/// Lattice values come from a hash of the cell and a per-layer key, so no storage is needed.
#[derive(Debug, Clone)]
struct Octave {
    cell_mm: f64,
    amp: f64,
    key: u64,
}

fn lattice(key: u64, i: i64, j: i64) -> f64 {
    // SplitMix64 of the cell coordinates: uniform in [-1, 1).
    let mut z = key ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

impl Octave {
    fn at(&self, r: f64, c: f64) -> f64 {
        let (x, y) = (r / self.cell_mm, c / self.cell_mm);
        let (i, j) = (x.floor(), y.floor());
        let (fx, fy) = (smoothstep(x - i), smoothstep(y - j));
        let (i, j) = (i as i64, j as i64);
        let a = lattice(self.key, i, j);
        let b = lattice(self.key, i, j + 1);
        let cc = lattice(self.key, i + 1, j);
        let d = lattice(self.key, i + 1, j + 1);
        self.amp * ((a * (1.0 - fy) + b * fy) * (1.0 - fx) + (cc * (1.0 - fy) + d * fy) * fx)
    }
}

#[derive(Debug, Clone)]
struct Rib {
    /// Centre line row = r0 + slope * (c - c0) + curv * (c - c0)^2, mm.
    r0: f64,
    c0: f64,
    slope: f64,
    curv: f64,
    half_mm: f64,
}

/// Background attenuation field (dimensionless line integral, added to the exponent).
#[derive(Debug, Clone)]
pub(crate) struct Background {
    blobs: Vec<Blob>,
    octaves: Vec<Octave>,
    ribs: Vec<Rib>,
    rib_att: f64,
    dome_r0: f64,
    dome_c0: f64,
    dome_curv: f64,
    diaphragm_att: f64,
    medial_att: f64,
    medial_width_mm: f64,
    base_att: f64,
    height_mm: f64,
    width_mm: f64,
    vignetting: f64,
    strength: f64,
}

impl Background {
    /// Draw a background for a field of `height_mm x width_mm`; `strength` scales every
    /// structure (0 = flat field, 1 = typical, 2 = busy).
    pub(crate) fn random(rng: &mut ChaCha8Rng, height_mm: f64, width_mm: f64, strength: f64) -> Self {
        let n_blobs = 14;
        let blobs = (0..n_blobs)
            .map(|_| Blob {
                r: rng.random_range(-0.1..1.1) * height_mm,
                c: rng.random_range(-0.1..1.1) * width_mm,
                sigma: rng.random_range(0.06..0.25) * width_mm,
                amp: rng.random_range(-0.12..0.12),
            })
            .collect();
        // Posterior ribs: arcs descending laterally, roughly every 25-30 mm.
        let spacing = rng.random_range(24.0..30.0);
        let first = rng.random_range(-10.0..10.0);
        let n_ribs = (height_mm / spacing).ceil() as usize + 2;
        let slope = rng.random_range(0.25..0.45);
        let ribs = (0..n_ribs)
            .map(|k| Rib {
                r0: first + k as f64 * spacing + rng.random_range(-2.0..2.0),
                c0: 0.0,
                slope: slope + rng.random_range(-0.05..0.05),
                curv: rng.random_range(0.003..0.006),
                half_mm: rng.random_range(4.0..6.0),
            })
            .collect();
        // Lung markings: mottled texture from coarse to fine.
        let octaves = [(14.0, 0.05), (6.0, 0.035), (2.5, 0.02), (1.2, 0.012)]
            .iter()
            .map(|&(cell, amp)| Octave {
                cell_mm: cell * rng.random_range(0.8..1.25),
                amp,
                key: rng.random(),
            })
            .collect();
        Self {
            blobs,
            octaves,
            ribs,
            rib_att: rng.random_range(0.07..0.12),
            dome_r0: rng.random_range(0.72..0.88) * height_mm,
            dome_c0: rng.random_range(0.45..0.75) * width_mm,
            dome_curv: rng.random_range(0.004..0.008),
            diaphragm_att: rng.random_range(0.7..1.1),
            medial_att: rng.random_range(0.35..0.6),
            medial_width_mm: rng.random_range(0.10..0.18) * width_mm,
            base_att: rng.random_range(0.45..0.6),
            height_mm,
            width_mm,
            vignetting: rng.random_range(0.25..0.4),
            strength,
        }
    }

    /// Attenuation at `(row_mm, col_mm)`.
    pub(crate) fn attenuation(&self, r: f64, c: f64) -> f64 {
        let mut a = self.base_att;
        for b in &self.blobs {
            let d2 = (r - b.r).powi(2) + (c - b.c).powi(2);
            a += b.amp * (-d2 / (2.0 * b.sigma * b.sigma)).exp();
        }
        for o in &self.octaves {
            a += o.at(r, c);
        }
        for rib in &self.ribs {
            let x = c - rib.c0;
            let centre = rib.r0 + rib.slope * x + rib.curv * x * x - rib.curv * 60.0 * x;
            let u = (r - centre) / rib.half_mm;
            if u.abs() < 1.15 {
                // Chord through an elliptical bone with a denser cortex, softened at the edge.
                let inner = (1.0 - u * u).max(0.0).sqrt();
                let cortex = (-(u.abs() - 0.9).powi(2) / 0.01).exp();
                let edge = 1.0 - smoothstep((u.abs() - 0.95) / 0.2);
                a += self.rib_att * (0.55 * inner + 0.6 * cortex) * edge;
            }
        }
        let dome = self.dome_r0 + self.dome_curv * (c - self.dome_c0).powi(2);
        a += self.diaphragm_att * smoothstep((r - dome) / 6.0);
        a += self.medial_att * (1.0 - smoothstep(c / self.medial_width_mm));
        self.strength * a
    }

    /// Relative exposure at `(row_mm, col_mm)`: 1 at the centre, falling towards the corners.
    pub(crate) fn vignette(&self, r: f64, c: f64) -> f64 {
        let dr = (r / self.height_mm - 0.5) * 2.0;
        let dc = (c / self.width_mm - 0.5) * 2.0;
        let rho2 = (dr * dr + dc * dc) / 2.0;
        1.0 - self.vignetting * self.strength.min(1.5) * rho2
    }
}
