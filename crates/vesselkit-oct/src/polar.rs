//! Polar (A-line) and cartesian views of an OCT frame, and the bilinear maps between them.
//!
//! Polar arrays are `[a_lines, samples]`: row `i` is the A-line at angle
//! `theta = 2 pi i / a_lines`, column `j` the sample at radius `(j + z_offset_px) * spacing`.
//! In the cartesian view, `theta` is measured from the +col axis towards +row (clockwise on
//! screen, since rows grow downwards): `row = center.row + r sin(theta)`,
//! `col = center.col + r cos(theta)`.

use crate::error::{OctError, Result, finite_pixels, positive};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use vesselkit_core::Point;

/// Geometry of polar IVOCT data, from the DICOM IVOCT image module (PS3.3 C.8.30).
///
/// The io crate reads the tags; this crate only needs the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OctGeometry {
    /// A-line Pixel Spacing (0052,0014): distance between samples along an A-line, in mm,
    /// as stored (optical path unless `refractive_index_applied`).
    pub a_line_spacing_mm: f64,
    /// Z Offset Correction (0052,0030): shift of every A-line, in samples. A sample `j` lies at
    /// radius `(j + z_offset_px) * spacing`; a positive value moves the image outwards.
    pub z_offset_px: f64,
    /// Effective Refractive Index (0052,0004) of the medium (blood/flush).
    pub refractive_index: f64,
    /// Refractive Index Applied (0052,003A): true when the spacing is already corrected.
    pub refractive_index_applied: bool,
}

impl Default for OctGeometry {
    /// 10 µm samples, no Z offset, index already applied (i.e. the spacing is physical).
    fn default() -> Self {
        Self {
            a_line_spacing_mm: 0.01,
            z_offset_px: 0.0,
            refractive_index: 1.0,
            refractive_index_applied: true,
        }
    }
}

impl OctGeometry {
    /// Physical spacing between A-line samples in mm: the stored spacing divided by the
    /// effective refractive index unless the index has already been applied (DICOM PS3.3).
    pub fn sample_spacing_mm(&self) -> Result<f64> {
        let s = positive("a_line_spacing_mm", self.a_line_spacing_mm)?;
        if !self.z_offset_px.is_finite() {
            return Err(OctError::invalid(
                "z_offset_px",
                format!("must be finite, got {}", self.z_offset_px),
            ));
        }
        if self.refractive_index_applied {
            Ok(s)
        } else {
            let n = positive("refractive_index", self.refractive_index)?;
            if n < 1.0 {
                return Err(OctError::invalid(
                    "refractive_index",
                    format!("an effective refractive index below 1 ({n}) is not physical"),
                ));
            }
            Ok(s / n)
        }
    }
}

/// A cartesian pixel grid: size, where the catheter centre sits, and its scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CartesianGrid {
    pub rows: usize,
    pub cols: usize,
    /// Rotation centre (the catheter) in pixel coordinates.
    pub center: Point,
    pub mm_per_px: f64,
}

impl CartesianGrid {
    /// The square grid that holds every sample of a polar frame at one pixel per (physical)
    /// sample: side `2R + 1` with `R = ceil(samples - 1 + z_offset)`, centre in the middle.
    pub fn fitting(geometry: &OctGeometry, samples: usize) -> Result<Self> {
        let spacing = geometry.sample_spacing_mm()?;
        let r = ((samples as f64 - 1.0 + geometry.z_offset_px).ceil()).max(1.0) as usize;
        Ok(Self {
            rows: 2 * r + 1,
            cols: 2 * r + 1,
            center: Point::new(r as f64, r as f64),
            mm_per_px: spacing,
        })
    }

    pub(crate) fn validate(&self) -> Result<()> {
        positive("mm_per_px", self.mm_per_px)?;
        if self.rows == 0 || self.cols == 0 {
            return Err(OctError::shape(
                "grid",
                format!("empty grid {} x {}", self.rows, self.cols),
            ));
        }
        if !(self.center.row.is_finite() && self.center.col.is_finite()) {
            return Err(OctError::invalid("center", "must be finite"));
        }
        Ok(())
    }
}

/// Bilinear sample of a cartesian image; `None` outside the pixel-centre hull.
#[inline]
pub(crate) fn bilinear(img: &ArrayView2<f32>, row: f64, col: f64) -> Option<f32> {
    let (h, w) = img.dim();
    if !(row >= 0.0 && col >= 0.0 && row <= (h - 1) as f64 && col <= (w - 1) as f64) {
        return None;
    }
    // Non-negative here, so truncation is floor (and much cheaper than `f64::floor` on
    // baseline x86-64, where it is a library call).
    let r0 = (row as usize).min(h.saturating_sub(2));
    let c0 = (col as usize).min(w.saturating_sub(2));
    let r1 = (r0 + 1).min(h - 1);
    let c1 = (c0 + 1).min(w - 1);
    let fr = (row - r0 as f64) as f32;
    let fc = (col - c0 as f64) as f32;
    let top = img[[r0, c0]] * (1.0 - fc) + img[[r0, c1]] * fc;
    let bot = img[[r1, c0]] * (1.0 - fc) + img[[r1, c1]] * fc;
    Some(top * (1.0 - fr) + bot * fr)
}

/// Bilinear sample of polar data at fractional A-line `i` (wraps around) and sample `j`;
/// `None` when `j` lies outside the recorded samples.
#[inline]
pub(crate) fn bilinear_polar(polar: &ArrayView2<f32>, i: f64, j: f64) -> Option<f32> {
    let (n, s) = polar.dim();
    if !(j >= 0.0 && j <= (s - 1) as f64 && i.is_finite()) {
        return None;
    }
    let i = i.rem_euclid(n as f64);
    // Both non-negative: truncation is floor.
    let i0f = i as usize;
    let i0 = i0f % n;
    let i1 = (i0 + 1) % n;
    let j0 = (j as usize).min(s.saturating_sub(2));
    let j1 = (j0 + 1).min(s - 1);
    let fi = (i - i0f as f64) as f32;
    let fj = (j - j0 as f64) as f32;
    let a = polar[[i0, j0]] * (1.0 - fj) + polar[[i0, j1]] * fj;
    let b = polar[[i1, j0]] * (1.0 - fj) + polar[[i1, j1]] * fj;
    Some(a * (1.0 - fi) + b * fi)
}

/// One polar sample as a bilinear combination of four source pixels: `top`, `top + 1`, `bot`,
/// `bot + 1` (flat indices into the row-major source), weighted by the fractions `fr` (towards
/// `bot`) and `fc` (towards `+1`).
#[derive(Debug, Clone, Copy)]
struct Tap {
    /// Flat index of the polar sample.
    dst: u32,
    top: u32,
    bot: u32,
    fr: f32,
    fc: f32,
}

/// What a [`ResampleTable`] depends on: the source kind and shape, the catheter centre or Z
/// offset, and the polar grid (angles, radial samples and step). Floats by their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableKey {
    polar_source: bool,
    rows: usize,
    cols: usize,
    /// Centre `(row, col)` for a cartesian source, `(z_offset, 0)` for a polar one.
    origin: (u64, u64),
    dr: u64,
    n_angles: usize,
    n_k: usize,
}

/// Precomputed bilinear resampling of a source frame onto the internal polar grid
/// `[n_angles, n_k]` (angle `2 pi a / n_angles`, radius `k dr`). Every frame of a pullback shares
/// one geometry, so the geometry (trigonometry, bounds, weights) is worked out once and each
/// frame is a plain gather. Taps are sorted by source index so that the gather walks the source
/// image in memory order.
#[derive(Debug)]
pub(crate) struct ResampleTable {
    key: TableKey,
    taps: Vec<Tap>,
}

impl ResampleTable {
    fn build(key: TableKey) -> Self {
        let (rows, cols) = (key.rows, key.cols);
        let dr = f64::from_bits(key.dr);
        let mut taps = Vec::with_capacity(key.n_angles * key.n_k);
        for a in 0..key.n_angles {
            let t = TAU * a as f64 / key.n_angles as f64;
            let (s, c) = t.sin_cos();
            for k in 0..key.n_k {
                let r = k as f64 * dr;
                let dst = (a * key.n_k + k) as u32;
                if key.polar_source {
                    // Rows are A-lines (wrapping), columns samples.
                    let i = t / TAU * rows as f64;
                    let j = r - f64::from_bits(key.origin.0);
                    if !(j >= 0.0 && j <= (cols - 1) as f64) {
                        continue;
                    }
                    let i = i.rem_euclid(rows as f64);
                    let i0f = i as usize;
                    let i0 = i0f % rows;
                    let i1 = (i0 + 1) % rows;
                    let j0 = (j as usize).min(cols.saturating_sub(2));
                    taps.push(Tap {
                        dst,
                        top: (i0 * cols + j0) as u32,
                        bot: (i1 * cols + j0) as u32,
                        fr: (i - i0f as f64) as f32,
                        fc: (j - j0 as f64) as f32,
                    });
                } else {
                    let row = f64::from_bits(key.origin.0) + r * s;
                    let col = f64::from_bits(key.origin.1) + r * c;
                    if !(row >= 0.0 && col >= 0.0 && row <= (rows - 1) as f64 && col <= (cols - 1) as f64) {
                        continue;
                    }
                    let r0 = (row as usize).min(rows.saturating_sub(2));
                    let c0 = (col as usize).min(cols.saturating_sub(2));
                    taps.push(Tap {
                        dst,
                        top: (r0 * cols + c0) as u32,
                        bot: ((r0 + 1) * cols + c0) as u32,
                        fr: (row - r0 as f64) as f32,
                        fc: (col - c0 as f64) as f32,
                    });
                }
            }
        }
        taps.sort_unstable_by_key(|t| t.top);
        Self { key, taps }
    }

    /// Fill `out` (`[n_angles, n_k]`, row-major, zeros where a sample falls outside) from the
    /// row-major source pixels.
    fn gather(&self, src: &[f32], out: &mut [f32]) {
        for t in &self.taps {
            let (top, bot) = (t.top as usize, t.bot as usize);
            let (Some(a), Some(b)) = (src.get(top..top + 2), src.get(bot..bot + 2)) else {
                continue;
            };
            let up = a[0] + (a[1] - a[0]) * t.fc;
            let down = b[0] + (b[1] - b[0]) * t.fc;
            if let Some(o) = out.get_mut(t.dst as usize) {
                *o = up + (down - up) * t.fr;
            }
        }
    }
}

thread_local! {
    /// The last table used on this thread (rayon workers keep one each during a pullback).
    static TABLE: std::cell::RefCell<Option<std::rc::Rc<ResampleTable>>> = const { std::cell::RefCell::new(None) };
}

/// Where the internal polar grid samples come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GridSource {
    /// Cartesian frame with the catheter centre at `(row, col)`.
    Cartesian(Point),
    /// Polar A-lines `[a_lines, samples]`; radius `r` px is sample `r - z_offset`.
    Polar { z_offset: f64 },
}

/// Resample `frame` onto the polar grid `[n_angles, n_k]` with radial step `dr` (px of the
/// analysis frame), bilinear, 0 outside. Uses (and refreshes) this thread's cached table.
pub(crate) fn resample_polar(
    frame: &ArrayView2<f32>,
    source: GridSource,
    n_angles: usize,
    n_k: usize,
    dr: f64,
) -> Result<Array2<f32>> {
    let (rows, cols) = frame.dim();
    if rows < 2
        || cols < 2
        || (rows * cols) as u64 >= u64::from(u32::MAX)
        || (n_angles * n_k) as u64 >= u64::from(u32::MAX)
    {
        return Err(OctError::shape(
            "frame",
            format!("{rows} x {cols} onto {n_angles} x {n_k} is outside the resampler's range"),
        ));
    }
    let (polar_source, origin) = match source {
        GridSource::Cartesian(c) => (false, (c.row.to_bits(), c.col.to_bits())),
        GridSource::Polar { z_offset } => (true, (z_offset.to_bits(), 0)),
    };
    let key = TableKey {
        polar_source,
        rows,
        cols,
        origin,
        dr: dr.to_bits(),
        n_angles,
        n_k,
    };
    let table = TABLE.with_borrow_mut(|slot| match slot {
        Some(t) if t.key == key => t.clone(),
        _ => {
            let t = std::rc::Rc::new(ResampleTable::build(key));
            *slot = Some(t.clone());
            t
        }
    });
    let src = frame.as_standard_layout();
    let src = src
        .as_slice()
        .ok_or_else(|| OctError::shape("frame", "not contiguous"))?;
    let mut out = vec![0.0f32; n_angles * n_k];
    table.gather(src, &mut out);
    Array2::from_shape_vec((n_angles, n_k), out).map_err(|e| OctError::shape("polar image", e.to_string()))
}

fn check_image(field: &'static str, img: &ArrayView2<f32>, min_side: usize) -> Result<()> {
    let (r, c) = img.dim();
    if r < min_side || c < min_side {
        return Err(OctError::shape(
            field,
            format!("{r} x {c}; need at least {min_side} x {min_side}"),
        ));
    }
    finite_pixels(field, img.iter())
}

/// Render polar data `[a_lines, samples]` onto a cartesian grid (bilinear; 0 outside the
/// recorded radii). Radii come from `geometry` (Z offset, refractive index) and the grid scale.
pub fn polar_to_cartesian(polar: ArrayView2<f32>, geometry: &OctGeometry, grid: &CartesianGrid) -> Result<Array2<f32>> {
    check_image("polar", &polar, 2)?;
    grid.validate()?;
    let spacing = geometry.sample_spacing_mm()?;
    let n = polar.nrows() as f64;
    let scale = grid.mm_per_px / spacing;
    let mut out = Array2::<f32>::zeros((grid.rows, grid.cols));
    for ((r, c), v) in out.indexed_iter_mut() {
        let dr = r as f64 - grid.center.row;
        let dc = c as f64 - grid.center.col;
        let j = dr.hypot(dc) * scale - geometry.z_offset_px;
        let i = dr.atan2(dc).rem_euclid(TAU) / TAU * n;
        if let Some(x) = bilinear_polar(&polar, i, j) {
            *v = x;
        }
    }
    Ok(out)
}

/// Resample a cartesian frame into polar data `[a_lines, samples]` with the given geometry
/// (bilinear; 0 where a sample falls outside the image).
pub fn cartesian_to_polar(
    image: ArrayView2<f32>,
    center: Point,
    mm_per_px: f64,
    geometry: &OctGeometry,
    a_lines: usize,
    samples: usize,
) -> Result<Array2<f32>> {
    check_image("image", &image, 2)?;
    positive("mm_per_px", mm_per_px)?;
    if a_lines < 8 || samples < 2 {
        return Err(OctError::invalid(
            "a_lines",
            format!("need at least 8 A-lines and 2 samples, got {a_lines} x {samples}"),
        ));
    }
    if !(center.row.is_finite() && center.col.is_finite()) {
        return Err(OctError::invalid("center", "must be finite"));
    }
    let spacing = geometry.sample_spacing_mm()?;
    let mut out = Array2::<f32>::zeros((a_lines, samples));
    for i in 0..a_lines {
        let t = TAU * i as f64 / a_lines as f64;
        let (s, c) = t.sin_cos();
        for j in 0..samples {
            let r_px = (j as f64 + geometry.z_offset_px) * spacing / mm_per_px;
            if r_px < 0.0 {
                continue;
            }
            if let Some(x) = bilinear(&image, center.row + r_px * s, center.col + r_px * c) {
                out[[i, j]] = x;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smooth_field(r: f64, t: f64) -> f32 {
        (0.5 + 0.3 * (r / 40.0).sin() * (3.0 * t).cos() + 0.1 * (r / 17.0).cos()) as f32
    }

    #[test]
    fn spacing_divides_by_index_unless_applied() {
        let mut g = OctGeometry {
            a_line_spacing_mm: 0.0134,
            z_offset_px: 3.0,
            refractive_index: 1.34,
            refractive_index_applied: false,
        };
        assert!((g.sample_spacing_mm().unwrap() - 0.01).abs() < 1e-12);
        g.refractive_index_applied = true;
        assert!((g.sample_spacing_mm().unwrap() - 0.0134).abs() < 1e-12);
        g.a_line_spacing_mm = 0.0;
        let e = g.sample_spacing_mm().unwrap_err().to_string();
        assert!(e.contains("a_line_spacing_mm"), "{e}");
    }

    /// polar -> cartesian -> polar on a smooth field: the bilinear error stays below 1 %
    /// of the signal range away from the centre (where angular sampling is coarse).
    #[test]
    fn round_trip_error_is_bounded() {
        let (n, s) = (512usize, 200usize);
        let g = OctGeometry {
            a_line_spacing_mm: 0.0134,
            z_offset_px: 5.0,
            refractive_index: 1.34,
            refractive_index_applied: false,
        };
        let polar = Array2::from_shape_fn((n, s), |(i, j)| {
            smooth_field(j as f64 + g.z_offset_px, TAU * i as f64 / n as f64)
        });
        let grid = CartesianGrid::fitting(&g, s).unwrap();
        assert_eq!(grid.rows, 2 * 204 + 1);
        let cart = polar_to_cartesian(polar.view(), &g, &grid).unwrap();
        // The cartesian image carries the field at its physical radius (z offset applied).
        let v = cart[[grid.center.row as usize, grid.center.col as usize + 100]];
        assert!((v - smooth_field(100.0, 0.0)).abs() < 0.01, "{v}");
        let back = cartesian_to_polar(cart.view(), grid.center, grid.mm_per_px, &g, n, s).unwrap();
        let mut max_err = 0.0f32;
        for i in 0..n {
            for j in 30..s - 2 {
                max_err = max_err.max((back[[i, j]] - polar[[i, j]]).abs());
            }
        }
        assert!(max_err < 0.01, "max round-trip error {max_err}");
    }

    #[test]
    fn z_offset_moves_samples_outwards() {
        let g = OctGeometry {
            a_line_spacing_mm: 0.01,
            z_offset_px: 10.0,
            ..Default::default()
        };
        let mut polar = Array2::<f32>::zeros((64, 50));
        polar.column_mut(20).fill(1.0);
        let grid = CartesianGrid {
            rows: 101,
            cols: 101,
            center: Point::new(50.0, 50.0),
            mm_per_px: 0.01,
        };
        let cart = polar_to_cartesian(polar.view(), &g, &grid).unwrap();
        // sample 20 sits at radius 30 px
        assert!((cart[[50, 80]] - 1.0).abs() < 1e-5);
        assert!(cart[[50, 70]].abs() < 1e-5);
    }
}
