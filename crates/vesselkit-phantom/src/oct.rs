//! Intravascular OCT frames and pullbacks.
//!
//! Geometry in mm around the catheter (image centre): a lumen with a Fourier-perturbed,
//! elliptical outline whose centre is offset from the catheter, optional septa (thin bright
//! walls from a hub to the wall, as in recanalised "lotus root" webs) splitting it into 2-4
//! channels, a guidewire inside the lumen. Each A-line is a ray march of backscatter `beta`
//! times round-trip attenuation `exp(-2 * integral mu)`, with multiplicative gamma speckle and
//! an additive noise floor, log-compressed to [0, 1]. The polar image is `[alines, samples]`;
//! the cartesian image is its scan conversion with the catheter at the centre.
//!
//! Angles: A-line `k` points at `theta = 2 pi k / alines` from the +col axis towards +row
//! (clockwise on screen). Sample `j` is at depth `(j + 0.5) * mm_per_sample` from the catheter axis.

use crate::common::{fnv1a_bytes, fnv1a_f32, r4, smoothstep, stream};
use crate::error::{PhantomError, Result, check_range, check_size};
use ndarray::{Array2, Array3, Axis};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::{PI, TAU};
use vesselkit_core::{Contour, Point};

/// Parameters of one OCT frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OctParams {
    pub alines: usize,
    pub samples: usize,
    /// Depth covered by one A-line from the catheter axis, mm.
    pub depth_mm: f64,
    /// Side of the square cartesian image, px (field of view = 2 x depth_mm).
    pub cart_size: usize,
    /// Mean lumen diameter (equivalent circle), mm.
    pub lumen_diameter_mm: f64,
    /// How far off-centre the catheter sits, as a fraction of the room available (0-1).
    pub eccentricity: f64,
    /// Relative amplitude of the Fourier perturbation of the lumen radius (0 = smooth).
    pub irregularity: f64,
    /// Relative elongation of the lumen outline (0 = round).
    pub ellipticity: f64,
    /// Lumen channels: 1 = no web; 2-4 = septa from a hub split the lumen.
    pub channels: u8,
    pub septum_thickness_mm: f64,
    pub catheter_radius_mm: f64,
    pub guidewire: bool,
    pub guidewire_radius_mm: f64,
    /// Wall attenuation coefficient, per mm (round trip uses twice this).
    pub wall_attenuation_per_mm: f64,
    /// Speckle looks (gamma shape); 1 = fully developed speckle.
    pub speckle_looks: f64,
    /// 0 (easy) to 1 (hard): raises the noise floor and the residual blood signal, and lowers
    /// the speckle looks.
    pub difficulty: f64,
    pub dynamic_range_db: f64,
}

impl Default for OctParams {
    fn default() -> Self {
        Self {
            alines: 504,
            samples: 500,
            depth_mm: 5.0,
            cart_size: 512,
            lumen_diameter_mm: 3.2,
            eccentricity: 0.4,
            irregularity: 0.05,
            ellipticity: 0.1,
            channels: 1,
            septum_thickness_mm: 0.07,
            catheter_radius_mm: 0.45,
            guidewire: true,
            guidewire_radius_mm: 0.18,
            wall_attenuation_per_mm: 2.5,
            speckle_looks: 2.0,
            difficulty: 0.3,
            dynamic_range_db: 40.0,
        }
    }
}

impl OctParams {
    fn validate(&self) -> Result<()> {
        check_size("alines", self.alines, 32, 4096)?;
        check_size("samples", self.samples, 32, 4096)?;
        check_range("depth_mm", self.depth_mm, 1.0, 20.0)?;
        check_size("cart_size", self.cart_size, 32, 4096)?;
        check_range("catheter_radius_mm", self.catheter_radius_mm, 0.1, 1.5)?;
        check_range(
            "lumen_diameter_mm",
            self.lumen_diameter_mm,
            2.0 * self.catheter_radius_mm + 0.4,
            1.6 * self.depth_mm,
        )?;
        check_range("eccentricity", self.eccentricity, 0.0, 1.0)?;
        check_range("irregularity", self.irregularity, 0.0, 0.25)?;
        check_range("ellipticity", self.ellipticity, 0.0, 0.4)?;
        if !(1..=4).contains(&self.channels) {
            return Err(PhantomError::param(
                "channels",
                format!("must be 1 to 4, got {}", self.channels),
            ));
        }
        check_range("septum_thickness_mm", self.septum_thickness_mm, 0.01, 0.5)?;
        check_range("guidewire_radius_mm", self.guidewire_radius_mm, 0.05, 0.5)?;
        check_range("wall_attenuation_per_mm", self.wall_attenuation_per_mm, 0.1, 50.0)?;
        check_range("speckle_looks", self.speckle_looks, 0.5, 50.0)?;
        check_range("difficulty", self.difficulty, 0.0, 1.0)?;
        check_range("dynamic_range_db", self.dynamic_range_db, 10.0, 100.0)?;
        if self.channels > 1 && self.lumen_diameter_mm < 4.0 * self.catheter_radius_mm + 0.6 {
            return Err(PhantomError::param(
                "lumen_diameter_mm",
                format!(
                    "a {}-channel web needs a lumen of at least {:.2} mm to hold the catheter in one channel",
                    self.channels,
                    4.0 * self.catheter_radius_mm + 0.6
                ),
            ));
        }
        Ok(())
    }
    /// Depth spacing of the polar image, mm per sample.
    pub fn mm_per_sample(&self) -> f64 {
        self.depth_mm / self.samples as f64
    }
    /// Spacing of the cartesian image, mm per px.
    pub fn cart_mm_per_px(&self) -> f64 {
        2.0 * self.depth_mm / self.cart_size as f64
    }
}

/// Lumen geometry of one frame, mm, catheter at the origin; `y` is the row direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LumenShape {
    /// Lumen (and hub) centre relative to the catheter, mm `[y, x]`.
    pub centre_mm: [f64; 2],
    /// Base radius, mm.
    pub r0_mm: f64,
    /// `(k, relative amplitude, phase)` terms: `R = r0 (1 + e cos 2(phi - e_phi) + sum a cos(k phi + p))`.
    pub harmonics: Vec<(u32, f64, f64)>,
    pub ellipticity: f64,
    pub ellipse_angle: f64,
    /// Septum angles around the hub, rad (empty: one channel).
    pub septa_angles: Vec<f64>,
    pub septum_thickness_mm: f64,
    /// Guidewire centre `[y, x]` and radius, mm.
    pub guidewire_mm: Option<[f64; 3]>,
}

impl LumenShape {
    fn radius(&self, phi: f64) -> f64 {
        let mut f = 1.0 + self.ellipticity * (2.0 * (phi - self.ellipse_angle)).cos();
        for &(k, a, p) in &self.harmonics {
            f += a * (f64::from(k) * phi + p).cos();
        }
        self.r0_mm * f
    }
    fn polar(&self, y: f64, x: f64) -> (f64, f64) {
        let (dy, dx) = (y - self.centre_mm[0], x - self.centre_mm[1]);
        (dy.hypot(dx), dy.atan2(dx))
    }
    /// Inside the outer lumen outline.
    fn in_outline(&self, y: f64, x: f64) -> bool {
        let (rho, phi) = self.polar(y, x);
        rho < self.radius(phi)
    }
    /// Distance beyond the outline along the radial direction, mm (negative inside).
    fn wall_depth(&self, y: f64, x: f64) -> f64 {
        let (rho, phi) = self.polar(y, x);
        rho - self.radius(phi)
    }
    fn in_septum(&self, y: f64, x: f64) -> bool {
        if self.septa_angles.is_empty() {
            return false;
        }
        let (dy, dx) = (y - self.centre_mm[0], x - self.centre_mm[1]);
        let half = 0.5 * self.septum_thickness_mm;
        self.septa_angles.iter().any(|&a| {
            let (uy, ux) = (a.sin(), a.cos());
            let along = dy * uy + dx * ux;
            let across = (dx * uy - dy * ux).abs();
            along > -half && across < half
        })
    }
    /// Vessel lumen (contrast-free blood space): inside the outline, not in a septum.
    pub fn in_lumen(&self, y: f64, x: f64) -> bool {
        self.in_outline(y, x) && !self.in_septum(y, x)
    }
    /// Lumen area by numerical integration over the geometry (not the image), mm².
    pub fn area_mm2(&self) -> f64 {
        let nphi = 2880;
        let nr = 600;
        let dphi = TAU / nphi as f64;
        let mut a = 0.0;
        for i in 0..nphi {
            let phi = (i as f64 + 0.5) * dphi;
            let rmax = self.radius(phi);
            if self.septa_angles.is_empty() {
                a += 0.5 * rmax * rmax * dphi;
                continue;
            }
            let dr = rmax / nr as f64;
            for j in 0..nr {
                let rho = (j as f64 + 0.5) * dr;
                let (y, x) = (self.centre_mm[0] + rho * phi.sin(), self.centre_mm[1] + rho * phi.cos());
                if !self.in_septum(y, x) {
                    a += rho * dr * dphi;
                }
            }
        }
        a
    }
    /// Area enclosed by the outline (septa included), mm².
    pub fn outline_area_mm2(&self) -> f64 {
        let n = 2880;
        let d = TAU / n as f64;
        (0..n)
            .map(|i| 0.5 * self.radius((i as f64 + 0.5) * d).powi(2) * d)
            .sum()
    }
    /// Smallest and largest diameter through the lumen centre, mm.
    pub fn min_max_diameter_mm(&self) -> (f64, f64) {
        let n = 720;
        let mut lo = f64::MAX;
        let mut hi: f64 = 0.0;
        for i in 0..n / 2 {
            let phi = i as f64 * TAU / n as f64;
            let d = self.radius(phi) + self.radius(phi + PI);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        (lo, hi)
    }
}

/// Draw a lumen for `p` with base radius scaled by `radius_scale`.
fn random_shape(p: &OctParams, rng: &mut ChaCha8Rng) -> LumenShape {
    let r0 = p.lumen_diameter_mm / 2.0;
    let harmonics = (2..=6u32)
        .map(|k| {
            (
                k,
                p.irregularity * rng.random_range(0.3..1.0) / f64::from(k - 1),
                rng.random_range(0.0..TAU),
            )
        })
        .collect();
    let n = p.channels as usize;
    let base = rng.random_range(0.0..TAU);
    let septa_angles: Vec<f64> = if n > 1 {
        (0..n)
            .map(|k| base + TAU * k as f64 / n as f64 + rng.random_range(-0.12..0.12))
            .collect()
    } else {
        vec![]
    };
    let mut shape = LumenShape {
        centre_mm: [0.0, 0.0],
        r0_mm: r0,
        harmonics,
        ellipticity: p.ellipticity * rng.random_range(0.3..1.0),
        ellipse_angle: rng.random_range(0.0..PI),
        septa_angles,
        septum_thickness_mm: p.septum_thickness_mm,
        guidewire_mm: None,
    };
    place_catheter(p, &mut shape, rng);
    shape
}

/// Put the catheter (the origin) inside the lumen, inside one channel when there are septa,
/// by choosing the lumen centre. Deterministic search over candidate offsets.
fn place_catheter(p: &OctParams, shape: &mut LumenShape, rng: &mut ChaCha8Rng) {
    let rc = p.catheter_radius_mm;
    let clear = |s: &LumenShape, y: f64, x: f64, r: f64| {
        (0..48).all(|k| {
            let a = TAU * k as f64 / 48.0;
            let (yy, xx) = (y + r * a.sin(), x + r * a.cos());
            s.in_lumen(yy, xx)
        }) && s.in_lumen(y, x)
    };
    // Direction of the catheter from the hub: a channel bisector, or random.
    let dir = if shape.septa_angles.len() > 1 {
        0.5 * (shape.septa_angles[0] + shape.septa_angles[1])
    } else {
        rng.random_range(0.0..TAU)
    };
    let want = p.eccentricity;
    // Largest offset that keeps the catheter clear, then take the requested fraction of the
    // room (at least the minimum that clears the septa).
    let mut max_ok = None;
    let mut min_ok = None;
    for i in 0..=200 {
        let d = shape.r0_mm * i as f64 / 200.0;
        shape.centre_mm = [-d * dir.sin(), -d * dir.cos()];
        if clear(shape, 0.0, 0.0, rc + 0.05) {
            min_ok.get_or_insert(d);
            max_ok = Some(d);
        }
    }
    let d = match (min_ok, max_ok) {
        (Some(lo), Some(hi)) => lo + want * (hi - lo),
        _ => 0.0, // validated sizes always leave room; fall back to concentric
    };
    shape.centre_mm = [-d * dir.sin(), -d * dir.cos()];
    if p.guidewire {
        // Guidewire next to the catheter inside the same channel.
        let gr = p.guidewire_radius_mm;
        for k in 0..24 {
            let a = dir + 0.9 + 0.25 * k as f64;
            let dist = rc + gr + 0.1 + 0.02 * k as f64;
            let (y, x) = (dist * a.sin(), dist * a.cos());
            if clear(shape, y, x, gr + 0.03) {
                shape.guidewire_mm = Some([y, x, gr]);
                break;
            }
        }
    }
}

/// Effective image settings after the difficulty knob.
#[derive(Debug, Clone, Copy)]
struct OctDetector {
    looks: f64,
    floor: f64,
    blood: f64,
    range_db: f64,
}

impl OctDetector {
    fn from(p: &OctParams) -> Self {
        let d = p.difficulty;
        Self {
            looks: (p.speckle_looks * (1.0 - 0.5 * d)).max(0.5),
            floor: 10f64.powf((-p.dynamic_range_db * (1.1 - 0.3 * d)) / 10.0),
            blood: 10f64.powf((-p.dynamic_range_db * (1.0 - 0.3 * d)) / 10.0),
            range_db: p.dynamic_range_db,
        }
    }
}

/// Ray-march every A-line: polar image `[alines, samples]` in [0, 1].
fn render_polar(
    p: &OctParams,
    shape: &LumenShape,
    texture: &[(f64, f64, f64, f64)],
    rng: &mut ChaCha8Rng,
) -> Array2<f32> {
    let det = OctDetector::from(p);
    let dz = p.mm_per_sample();
    let mu_w = p.wall_attenuation_per_mm;
    let rc = p.catheter_radius_mm;
    let mut signal = Array2::<f64>::zeros((p.alines, p.samples));
    signal
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut row)| {
            let th = TAU * k as f64 / p.alines as f64;
            let (sy, sx) = (th.sin(), th.cos());
            let mut acc = 0.0; // integral of 2 mu
            let mut shadow = false;
            let mut in_wire = false;
            for j in 0..p.samples {
                let rho = (j as f64 + 0.5) * dz;
                let (y, x) = (rho * sy, rho * sx);
                let (beta, mu) = if rho < rc {
                    // Catheter: lens reflections and the sheath as bright rings.
                    let sheath = (-((rho - (rc - 0.03)) / 0.02).powi(2)).exp();
                    let inner = 0.15 * (-((rho - 0.55 * rc) / 0.015).powi(2)).exp();
                    (1.6 * sheath + inner, 0.2)
                } else if let Some([wy, wx, wr]) = shape.guidewire_mm
                    && (y - wy).hypot(x - wx) < wr
                {
                    let b = if in_wire { 0.0 } else { 30.0 };
                    in_wire = true;
                    shadow = true;
                    (b, 0.0)
                } else if shape.in_outline(y, x) {
                    if shape.in_septum(y, x) {
                        (0.5, 6.0)
                    } else {
                        (det.blood, 0.05)
                    }
                } else {
                    let depth = shape.wall_depth(y, x).max(0.0);
                    // Bright intima, darker media, brighter adventitia, slow texture.
                    let layer = 1.0 + 0.6 * (-(depth / 0.06).powi(2)).exp()
                        - 0.45 * (-((depth - 0.22) / 0.1).powi(2)).exp()
                        + 0.2 * smoothstep((depth - 0.35) / 0.2);
                    let mut tex = 1.0;
                    for &(a, fy, fx, ph) in texture {
                        tex += a * (fy * y + fx * x + ph).sin();
                    }
                    (0.35 * layer * tex.max(0.2), mu_w)
                };
                acc += 2.0 * mu * dz;
                row[j] = if shadow && beta < 30.0 {
                    0.0
                } else {
                    beta * (-acc).exp()
                };
            }
        });
    // Speckle and noise floor (serial, fixed order).
    let gamma = Gamma::new(det.looks, 1.0 / det.looks).ok();
    let mut out = Array2::<f32>::zeros((p.alines, p.samples));
    for k in 0..p.alines {
        for j in 0..p.samples {
            let sp = gamma.as_ref().map_or(1.0, |g| g.sample(rng));
            let noise: f64 = Exp1.sample(rng);
            let v = signal[[k, j]] * sp + det.floor * noise;
            let db = 10.0 * v.max(1e-12).log10();
            out[[k, j]] = ((db + det.range_db) / det.range_db).clamp(0.0, 1.0) as f32;
        }
    }
    out
}

/// Scan-convert a polar image to a `size x size` cartesian image with the catheter at the centre.
fn scan_convert(p: &OctParams, polar: &Array2<f32>) -> Array2<f32> {
    let n = p.cart_size;
    let s = p.cart_mm_per_px();
    let dz = p.mm_per_sample();
    let c0 = n as f64 / 2.0 - 0.5;
    Array2::from_shape_fn((n, n), |(r, c)| {
        let (y, x) = ((r as f64 - c0) * s, (c as f64 - c0) * s);
        let rho = y.hypot(x);
        let j = rho / dz - 0.5;
        if j > p.samples as f64 - 1.0 {
            return 0.0;
        }
        let j = j.max(0.0);
        let a = y.atan2(x).rem_euclid(TAU) / TAU * p.alines as f64;
        let k0 = a.floor();
        let fa = (a - k0) as f32;
        let k0 = (k0 as usize) % p.alines;
        let k1 = (k0 + 1) % p.alines;
        let j0 = j.floor() as usize;
        let j1 = (j0 + 1).min(p.samples - 1);
        let fj = (j - j0 as f64) as f32;
        let v0 = polar[[k0, j0]] * (1.0 - fj) + polar[[k0, j1]] * fj;
        let v1 = polar[[k1, j0]] * (1.0 - fj) + polar[[k1, j1]] * fj;
        v0 * (1.0 - fa) + v1 * fa
    })
}

/// Truth of one OCT frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OctFrameTruth {
    pub shape: LumenShape,
    /// Lumen area (outline minus septa), mm², from the geometry.
    pub lumen_area_mm2: f64,
    /// Area enclosed by the outline, mm².
    pub outline_area_mm2: f64,
    pub channels: u8,
    pub min_diameter_mm: f64,
    pub max_diameter_mm: f64,
    /// Outer lumen outline in cartesian px `(row, col)`, 360 points.
    pub lumen_contour: Contour,
    /// Per A-line: depth of the first lumen boundary (wall or septum) beyond the catheter, mm.
    pub polar_boundary_mm: Vec<f64>,
    /// Pixels in the cartesian lumen mask.
    pub mask_pixels: usize,
    pub mask_fnv1a: String,
    pub polar_fnv1a: String,
    pub cart_fnv1a: String,
}

/// A single OCT frame phantom.
#[derive(Debug, Clone)]
pub struct OctPhantom {
    /// `[alines, samples]` in [0, 1].
    pub polar: Array2<f32>,
    /// `[cart_size, cart_size]` in [0, 1], catheter at the centre.
    pub cartesian: Array2<f32>,
    /// Cartesian lumen mask (outline minus septa; the catheter and guidewire lie in the lumen).
    pub lumen_mask: Array2<bool>,
    pub truth: OctTruth,
}

/// Truth file of a single OCT frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OctTruth {
    pub schema: String,
    pub notice: String,
    pub kind: String,
    pub seed: u64,
    pub params: OctParams,
    pub mm_per_sample: f64,
    pub cart_mm_per_px: f64,
    pub frame: OctFrameTruth,
}

impl OctPhantom {
    pub fn truth_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.truth)?)
    }
}

fn lumen_mask(p: &OctParams, shape: &LumenShape) -> Array2<bool> {
    let n = p.cart_size;
    let s = p.cart_mm_per_px();
    let c0 = n as f64 / 2.0 - 0.5;
    // 4x4 sub-samples per pixel; at least half inside. Pixels whose centre lies more than two
    // pixels from the outline (radially) are decided by the centre alone when there are no septa.
    Array2::from_shape_fn((n, n), |(r, c)| {
        if shape.septa_angles.is_empty() {
            let d = shape.wall_depth((r as f64 - c0) * s, (c as f64 - c0) * s);
            if d.abs() > 2.0 * s {
                return d < 0.0;
            }
        }
        let mut k = 0;
        for i in 0..4 {
            for j in 0..4 {
                let y = (r as f64 - c0 + (i as f64 + 0.5) / 4.0 - 0.5) * s;
                let x = (c as f64 - c0 + (j as f64 + 0.5) / 4.0 - 0.5) * s;
                if shape.in_lumen(y, x) {
                    k += 1;
                }
            }
        }
        k >= 8
    })
}

fn frame_truth(
    p: &OctParams,
    shape: &LumenShape,
    polar: &Array2<f32>,
    cart: &Array2<f32>,
    mask: &Array2<bool>,
) -> OctFrameTruth {
    let s = p.cart_mm_per_px();
    let c0 = p.cart_size as f64 / 2.0 - 0.5;
    let contour = Contour::new(
        (0..360)
            .map(|i| {
                let phi = (i as f64).to_radians();
                let r = shape.radius(phi);
                let y = shape.centre_mm[0] + r * phi.sin();
                let x = shape.centre_mm[1] + r * phi.cos();
                Point::new(r4(y / s + c0), r4(x / s + c0))
            })
            .collect(),
    );
    let fine = 0.002;
    let boundary = (0..p.alines)
        .map(|k| {
            let th = TAU * k as f64 / p.alines as f64;
            let mut rho = p.catheter_radius_mm;
            while rho < p.depth_mm {
                let (y, x) = (rho * th.sin(), rho * th.cos());
                if !shape.in_lumen(y, x) {
                    break;
                }
                rho += fine;
            }
            r4(rho)
        })
        .collect();
    let (dmin, dmax) = shape.min_max_diameter_mm();
    OctFrameTruth {
        shape: shape.clone(),
        lumen_area_mm2: r4(shape.area_mm2()),
        outline_area_mm2: r4(shape.outline_area_mm2()),
        channels: shape.septa_angles.len().max(1) as u8,
        min_diameter_mm: r4(dmin),
        max_diameter_mm: r4(dmax),
        lumen_contour: contour,
        polar_boundary_mm: boundary,
        mask_pixels: mask.iter().filter(|&&m| m).count(),
        mask_fnv1a: fnv1a_bytes(mask.iter().map(|&m| u8::from(m))),
        polar_fnv1a: fnv1a_f32(polar.iter()),
        cart_fnv1a: fnv1a_f32(cart.iter()),
    }
}

fn texture(rng: &mut ChaCha8Rng) -> Vec<(f64, f64, f64, f64)> {
    (0..6)
        .map(|_| {
            let f = rng.random_range(2.0..9.0);
            let a = rng.random_range(0.0..TAU);
            (
                rng.random_range(0.04..0.12),
                f * a.sin(),
                f * a.cos(),
                rng.random_range(0.0..TAU),
            )
        })
        .collect()
}

/// Generate one OCT frame.
pub fn generate_oct_frame(params: &OctParams, seed: u64) -> Result<OctPhantom> {
    params.validate()?;
    let mut geo = stream(seed, 200);
    let shape = random_shape(params, &mut geo);
    let tex = texture(&mut geo);
    let polar = render_polar(params, &shape, &tex, &mut stream(seed, 201));
    let cartesian = scan_convert(params, &polar);
    let mask = lumen_mask(params, &shape);
    let frame = frame_truth(params, &shape, &polar, &cartesian, &mask);
    Ok(OctPhantom {
        polar,
        cartesian,
        lumen_mask: mask,
        truth: OctTruth {
            schema: crate::TRUTH_SCHEMA.into(),
            notice: vesselkit_core::RESEARCH_NOTICE.into(),
            kind: "oct".into(),
            seed,
            params: params.clone(),
            mm_per_sample: params.mm_per_sample(),
            cart_mm_per_px: params.cart_mm_per_px(),
            frame,
        },
    })
}

// ---------------------------------------------------------------- pullback

/// Parameters of a pullback through a stenosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullbackParams {
    pub oct: OctParams,
    pub frames: usize,
    /// Distance between frames along the vessel, mm.
    pub frame_spacing_mm: f64,
    /// Area stenosis at the narrowest frame relative to the local reference, %.
    pub stenosis_area_pct: f64,
    /// Length of the narrowing (full extent), mm.
    pub stenosis_length_mm: f64,
    /// Position of the narrowest point as a fraction of the pullback length.
    pub stenosis_position: f64,
    /// Relative taper of the reference lumen diameter from first to last frame.
    pub taper: f64,
    /// Channels inside the stenosis (1 = a plain narrowing; 2-4 = a web there).
    pub stenosis_channels: u8,
}

impl Default for PullbackParams {
    fn default() -> Self {
        Self {
            oct: OctParams {
                cart_size: 384,
                samples: 400,
                depth_mm: 4.0,
                ..Default::default()
            },
            frames: 50,
            frame_spacing_mm: 0.2,
            stenosis_area_pct: 65.0,
            stenosis_length_mm: 4.0,
            stenosis_position: 0.5,
            taper: 0.1,
            stenosis_channels: 1,
        }
    }
}

/// Truth of a pullback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullbackTruth {
    pub schema: String,
    pub notice: String,
    pub kind: String,
    pub seed: u64,
    pub params: PullbackParams,
    pub mm_per_sample: f64,
    pub cart_mm_per_px: f64,
    /// Position of each frame along the pullback, mm (frame 0 = 0).
    pub z_mm: Vec<f64>,
    /// Lumen area per frame, mm², from the geometry.
    pub area_mm2: Vec<f64>,
    /// Area the lumen would have without the stenosis, per frame, mm².
    pub reference_area_mm2: Vec<f64>,
    pub channels: Vec<u8>,
    pub mla_frame: usize,
    pub mla_mm2: f64,
    /// `(reference - MLA) / reference * 100` at the MLA frame.
    pub area_stenosis_pct: f64,
    pub frames: Vec<OctFrameTruth>,
    pub polar_fnv1a: String,
    pub cart_fnv1a: String,
}

/// A pullback phantom.
#[derive(Debug, Clone)]
pub struct PullbackPhantom {
    /// `[frames, alines, samples]`.
    pub polar: Array3<f32>,
    /// `[frames, cart_size, cart_size]`.
    pub cartesian: Array3<f32>,
    pub lumen_masks: Array3<bool>,
    pub truth: PullbackTruth,
}

impl PullbackPhantom {
    pub fn truth_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.truth)?)
    }
}

/// Longitudinal (L-mode) view: the cut through the catheter centre at `angle_deg` from the +col
/// axis, one column per frame: `[cart_size, frames]`.
pub fn longitudinal_view(cartesian: &Array3<f32>, angle_deg: f64) -> Array2<f32> {
    let (nf, n, _) = cartesian.dim();
    let c0 = n as f64 / 2.0 - 0.5;
    let (sa, ca) = (angle_deg.to_radians().sin(), angle_deg.to_radians().cos());
    Array2::from_shape_fn((n, nf), |(i, f)| {
        let t = i as f64 - c0;
        let frame = cartesian.index_axis(Axis(0), f).to_owned();
        crate::common::bilinear(&frame, c0 + t * sa, c0 + t * ca)
    })
}

/// Polar image, cartesian image, lumen mask and truth of one pullback frame.
type RenderedFrame = (Array2<f32>, Array2<f32>, Array2<bool>, OctFrameTruth);

/// Generate a pullback: frames along the vessel with a smooth stenosis.
pub fn generate_pullback(params: &PullbackParams, seed: u64) -> Result<PullbackPhantom> {
    params.oct.validate()?;
    check_size("frames", params.frames, 2, 2000)?;
    check_range("frame_spacing_mm", params.frame_spacing_mm, 0.01, 5.0)?;
    check_range("stenosis_area_pct", params.stenosis_area_pct, 0.0, 90.0)?;
    check_range("stenosis_length_mm", params.stenosis_length_mm, 0.1, 100.0)?;
    check_range("stenosis_position", params.stenosis_position, 0.0, 1.0)?;
    check_range("taper", params.taper, 0.0, 0.5)?;
    if !(1..=4).contains(&params.stenosis_channels) {
        return Err(PhantomError::param(
            "stenosis_channels",
            format!("must be 1 to 4, got {}", params.stenosis_channels),
        ));
    }
    let p = &params.oct;
    let mut geo = stream(seed, 300);
    // Two random shapes; frames blend between them so the outline changes smoothly.
    let a = random_shape(
        &OctParams {
            channels: 1,
            ..p.clone()
        },
        &mut geo,
    );
    let b = random_shape(
        &OctParams {
            channels: 1,
            ..p.clone()
        },
        &mut geo,
    );
    let tex = texture(&mut geo);
    let web_angles: Vec<f64> = if params.stenosis_channels > 1 {
        let base = geo.random_range(0.0..TAU);
        let n = params.stenosis_channels as usize;
        (0..n).map(|k| base + TAU * k as f64 / n as f64).collect()
    } else {
        vec![]
    };
    let total = (params.frames - 1) as f64 * params.frame_spacing_mm;
    let zc = params.stenosis_position * total;
    let half = params.stenosis_length_mm / 2.0;
    let as_frac = params.stenosis_area_pct / 100.0;
    let shapes: Vec<(LumenShape, f64, f64)> = (0..params.frames)
        .map(|f| {
            let z = f as f64 * params.frame_spacing_mm;
            let w = smoothstep(z / total.max(1e-9));
            let taper = 1.0 - params.taper * z / total.max(1e-9);
            let mut s = a.clone();
            s.harmonics = a
                .harmonics
                .iter()
                .zip(&b.harmonics)
                .map(|(x, y)| (x.0, x.1 * (1.0 - w) + y.1 * w, x.2 * (1.0 - w) + y.2 * w))
                .collect();
            s.ellipticity = a.ellipticity * (1.0 - w) + b.ellipticity * w;
            s.ellipse_angle = a.ellipse_angle * (1.0 - w) + b.ellipse_angle * w;
            let u = (z - zc) / half;
            let bump = if u.abs() < 1.0 {
                0.5 * (1.0 + (PI * u).cos())
            } else {
                0.0
            };
            let reference_r0 = a.r0_mm * taper;
            // Area scales with r0^2: r0 = ref * sqrt(1 - AS * bump).
            s.r0_mm = reference_r0 * (1.0 - as_frac * bump).sqrt();
            s.septa_angles = if bump > 0.5 { web_angles.clone() } else { vec![] };
            // The catheter stays at the image centre; keep it inside the narrowed lumen.
            let mut sub = geo.clone();
            let sub_params = OctParams {
                lumen_diameter_mm: 2.0 * s.r0_mm,
                ..p.clone()
            };
            place_catheter(&sub_params, &mut s, &mut sub);
            let mut reference = s.clone();
            reference.r0_mm = reference_r0;
            reference.septa_angles.clear();
            (s, reference.outline_area_mm2(), z)
        })
        .collect();
    let rendered: Vec<RenderedFrame> = shapes
        .par_iter()
        .enumerate()
        .map(|(f, (s, _, _))| {
            let polar = render_polar(p, s, &tex, &mut stream(seed, 400 + f as u64));
            let cart = scan_convert(p, &polar);
            let mask = lumen_mask(p, s);
            let t = frame_truth(p, s, &polar, &cart, &mask);
            (polar, cart, mask, t)
        })
        .collect();
    let nf = params.frames;
    let mut polar = Array3::<f32>::zeros((nf, p.alines, p.samples));
    let mut cartesian = Array3::<f32>::zeros((nf, p.cart_size, p.cart_size));
    let mut masks = Array3::<bool>::from_elem((nf, p.cart_size, p.cart_size), false);
    let mut frames = Vec::with_capacity(nf);
    for (f, (pl, ca, m, t)) in rendered.into_iter().enumerate() {
        polar.index_axis_mut(Axis(0), f).assign(&pl);
        cartesian.index_axis_mut(Axis(0), f).assign(&ca);
        masks.index_axis_mut(Axis(0), f).assign(&m);
        frames.push(t);
    }
    let area: Vec<f64> = frames.iter().map(|t| t.lumen_area_mm2).collect();
    let reference: Vec<f64> = shapes.iter().map(|x| r4(x.1)).collect();
    let mla_frame = (0..nf).min_by(|&i, &j| area[i].total_cmp(&area[j])).unwrap_or(0);
    let mla = area[mla_frame];
    let truth = PullbackTruth {
        schema: crate::TRUTH_SCHEMA.into(),
        notice: vesselkit_core::RESEARCH_NOTICE.into(),
        kind: "pullback".into(),
        seed,
        params: params.clone(),
        mm_per_sample: p.mm_per_sample(),
        cart_mm_per_px: p.cart_mm_per_px(),
        z_mm: shapes.iter().map(|x| r4(x.2)).collect(),
        channels: frames.iter().map(|t| t.channels).collect(),
        area_mm2: area.clone(),
        reference_area_mm2: reference.clone(),
        mla_frame,
        mla_mm2: mla,
        area_stenosis_pct: r4((reference[mla_frame] - mla) / reference[mla_frame] * 100.0),
        frames,
        polar_fnv1a: fnv1a_f32(polar.iter()),
        cart_fnv1a: fnv1a_f32(cartesian.iter()),
    };
    Ok(PullbackPhantom {
        polar,
        cartesian,
        lumen_masks: masks,
        truth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> OctParams {
        OctParams {
            alines: 256,
            samples: 250,
            cart_size: 200,
            ..Default::default()
        }
    }

    #[test]
    fn round_lumen_area_is_analytic_and_mask_agrees() {
        let p = OctParams {
            irregularity: 0.0,
            ellipticity: 0.0,
            guidewire: false,
            ..small()
        };
        let ph = generate_oct_frame(&p, 1).unwrap();
        let want = PI * 1.6f64.powi(2);
        assert!(
            (ph.truth.frame.lumen_area_mm2 - want).abs() < 1e-3,
            "{}",
            ph.truth.frame.lumen_area_mm2
        );
        let s = p.cart_mm_per_px();
        let mask_area = ph.truth.frame.mask_pixels as f64 * s * s;
        assert!((mask_area - want).abs() / want < 0.02, "{mask_area} vs {want}");
        assert!((ph.truth.frame.min_diameter_mm - 3.2).abs() < 1e-6);
    }

    #[test]
    fn lumen_is_dark_and_wall_is_bright_in_the_polar_image() {
        let p = small();
        let ph = generate_oct_frame(&p, 2).unwrap();
        let dz = p.mm_per_sample();
        let mut lumen = (0.0, 0);
        let mut wall = (0.0, 0);
        let wire_shadow = |k: usize| {
            ph.truth.frame.shape.guidewire_mm.is_some_and(|[wy, wx, _]| {
                let a = wy.atan2(wx).rem_euclid(TAU);
                let th = TAU * k as f64 / p.alines as f64;
                let d = (a - th).abs();
                d.min(TAU - d) < 0.35
            })
        };
        for k in 0..p.alines {
            if wire_shadow(k) {
                continue;
            }
            let b = ph.truth.frame.polar_boundary_mm[k];
            let jb = (b / dz) as usize;
            for j in ((p.catheter_radius_mm + 0.1) / dz) as usize..jb.saturating_sub(5) {
                lumen.0 += f64::from(ph.polar[[k, j]]);
                lumen.1 += 1;
            }
            for j in jb + 2..(jb + 12).min(p.samples) {
                wall.0 += f64::from(ph.polar[[k, j]]);
                wall.1 += 1;
            }
        }
        let (l, w) = (lumen.0 / lumen.1 as f64, wall.0 / wall.1 as f64);
        assert!(w > l + 0.25, "wall {w} lumen {l}");
    }

    #[test]
    fn web_channels_and_catheter_in_one_channel() {
        for n in 2..=4u8 {
            let p = OctParams {
                channels: n,
                lumen_diameter_mm: 3.6,
                ..small()
            };
            let ph = generate_oct_frame(&p, 10 + u64::from(n)).unwrap();
            let t = &ph.truth.frame;
            assert_eq!(t.channels, n);
            assert!(t.lumen_area_mm2 < t.outline_area_mm2);
            // Catheter centre inside the lumen, not on a septum.
            assert!(t.shape.in_lumen(0.0, 0.0));
            // Septa area ~ n * thickness * radius.
            let septa = t.outline_area_mm2 - t.lumen_area_mm2;
            let approx = f64::from(n) * p.septum_thickness_mm * t.shape.r0_mm;
            assert!((septa - approx).abs() / approx < 0.35, "{septa} vs {approx}");
        }
    }

    #[test]
    fn pullback_profile_has_the_requested_stenosis() {
        let p = PullbackParams {
            oct: OctParams {
                alines: 128,
                samples: 160,
                cart_size: 96,
                depth_mm: 4.0,
                ..Default::default()
            },
            frames: 21,
            frame_spacing_mm: 0.25,
            stenosis_area_pct: 60.0,
            ..Default::default()
        };
        let pb = generate_pullback(&p, 4).unwrap();
        let t = &pb.truth;
        assert_eq!(t.mla_frame, 10);
        assert!((t.area_stenosis_pct - 60.0).abs() < 1.0, "{}", t.area_stenosis_pct);
        assert!((t.z_mm[20] - 5.0).abs() < 1e-9);
        assert_eq!(pb.cartesian.dim(), (21, 96, 96));
        let lv = longitudinal_view(&pb.cartesian, 0.0);
        assert_eq!(lv.dim(), (96, 21));
    }
}
