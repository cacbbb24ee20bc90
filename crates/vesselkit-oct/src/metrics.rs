//! Lumen metrics from a closed contour (domain.md §4 IV-OCT): area, diameters through the
//! centroid, eccentricity; and rasterisation of a contour into a mask.

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use vesselkit_core::{Contour, Point};

/// Size and shape of one lumen cross-section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LumenMetrics {
    /// Lumen area (mm²): the area inside the contour less the septa (tissue bands between
    /// channels); equal to `outline_area_mm2` when there are none.
    pub area_mm2: f64,
    /// Area enclosed by the outer contour, septa included (mm²): the vessel's size.
    #[serde(default)]
    pub outline_area_mm2: f64,
    pub perimeter_mm: f64,
    /// Shortest chord through the centroid (mm).
    pub min_diameter_mm: f64,
    /// Longest chord through the centroid (mm).
    pub max_diameter_mm: f64,
    /// Mean chord through the centroid over 180 directions (mm).
    pub mean_diameter_mm: f64,
    /// Diameter of the circle of the outline's area, `2 sqrt(outline_area_mm2 / pi)` (mm).
    pub area_diameter_mm: f64,
    /// `(Dmax - Dmin) / Dmax` (0 for a circle).
    pub eccentricity: f64,
    /// Area centroid in pixels.
    pub centroid: Point,
}

/// Distances from `p` along `(dr, dc)` and along `(-dr, -dc)` to the farthest crossing of the
/// contour on each side (the two chord ends), in one pass over the edges.
fn chord_ends(contour: &Contour, p: Point, dr: f64, dc: f64) -> (f64, f64) {
    let n = contour.points.len();
    let (mut fwd, mut back) = (0.0f64, 0.0f64);
    for i in 0..n {
        let a = contour.points[i];
        let b = contour.points[(i + 1) % n];
        // Solve p + t d = a + s (b - a), s in [0, 1]; t >= 0 ahead, t < 0 behind. Most edges
        // miss the line: test s = num / den in [0, 1] without dividing.
        let (er, ec) = (b.row - a.row, b.col - a.col);
        let den = dr * ec - dc * er;
        if den.abs() < 1e-12 {
            continue;
        }
        let (wr, wc) = (a.row - p.row, a.col - p.col);
        let num = wr * dc - wc * dr;
        let hit = if den > 0.0 {
            (0.0..=den).contains(&num)
        } else {
            (den..=0.0).contains(&num)
        };
        if hit {
            let t = (wr * ec - wc * er) / den;
            if t >= 0.0 {
                fwd = fwd.max(t);
            } else {
                back = back.max(-t);
            }
        }
    }
    (fwd, back)
}

/// Area, perimeter, Dmin/Dmax/Dmean through the centroid and eccentricity of a contour
/// (without septa: `area_mm2` is the outline area).
pub fn lumen_metrics(contour: &Contour, mm_per_px: f64) -> LumenMetrics {
    let area_mm2 = contour.area_px2() * mm_per_px * mm_per_px;
    let c = contour.centroid();
    let n_dir = 180;
    let (mut dmin, mut dmax, mut dsum) = (f64::INFINITY, 0.0f64, 0.0f64);
    for i in 0..n_dir {
        let t = std::f64::consts::PI * i as f64 / n_dir as f64;
        let (s, co) = t.sin_cos();
        let (f, b) = chord_ends(contour, c, s, co);
        let d = (f + b) * mm_per_px;
        dmin = dmin.min(d);
        dmax = dmax.max(d);
        dsum += d;
    }
    if contour.points.len() < 3 {
        dmin = 0.0;
    }
    LumenMetrics {
        area_mm2,
        outline_area_mm2: area_mm2,
        perimeter_mm: contour.perimeter_px() * mm_per_px,
        min_diameter_mm: dmin,
        max_diameter_mm: dmax,
        mean_diameter_mm: dsum / n_dir as f64,
        area_diameter_mm: 2.0 * (area_mm2 / std::f64::consts::PI).sqrt(),
        eccentricity: if dmax > 0.0 { (dmax - dmin) / dmax } else { 0.0 },
        centroid: c,
    }
}

/// Pixels whose centres lie inside a closed contour (even-odd rule, scanline fill).
pub fn contour_mask(contour: &Contour, rows: usize, cols: usize) -> Array2<bool> {
    let mut mask = Array2::from_elem((rows, cols), false);
    let pts = &contour.points;
    let n = pts.len();
    if n < 3 {
        return mask;
    }
    let mut xs: Vec<f64> = Vec::new();
    for r in 0..rows {
        let y = r as f64;
        xs.clear();
        for i in 0..n {
            let a = pts[i];
            let b = pts[(i + 1) % n];
            if (a.row <= y && b.row > y) || (b.row <= y && a.row > y) {
                let t = (y - a.row) / (b.row - a.row);
                xs.push(a.col + t * (b.col - a.col));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            let c0 = pair[0].ceil().max(0.0);
            let c1 = pair[1].floor().min(cols as f64 - 1.0);
            if c1 < c0 {
                continue;
            }
            for c in c0 as usize..=c1 as usize {
                mask[[r, c]] = true;
            }
        }
    }
    mask
}

/// Dice coefficient of two masks of equal shape (1.0 when both are empty).
pub fn dice(a: &Array2<bool>, b: &Array2<bool>) -> f64 {
    let (mut inter, mut na, mut nb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b.iter()) {
        na += x as usize;
        nb += y as usize;
        inter += (x && y) as usize;
    }
    if na + nb == 0 {
        1.0
    } else {
        2.0 * inter as f64 / (na + nb) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{PI, TAU};

    fn ellipse(n: usize, a: f64, b: f64, c: Point) -> Contour {
        Contour::new(
            (0..n)
                .map(|i| {
                    let t = TAU * i as f64 / n as f64;
                    Point::new(c.row + b * t.sin(), c.col + a * t.cos())
                })
                .collect(),
        )
    }

    #[test]
    fn ellipse_metrics_are_analytic() {
        let e = ellipse(1440, 100.0, 60.0, Point::new(150.0, 160.0));
        let m = lumen_metrics(&e, 0.01);
        assert!((m.area_mm2 - PI * 1.0 * 0.6).abs() < 1e-3, "{}", m.area_mm2);
        assert!((m.max_diameter_mm - 2.0).abs() < 1e-3);
        assert!((m.min_diameter_mm - 1.2).abs() < 1e-3);
        assert!((m.eccentricity - 0.4).abs() < 1e-3);
        assert!((m.centroid.row - 150.0).abs() < 1e-6);
        assert!(m.mean_diameter_mm > 1.2 && m.mean_diameter_mm < 2.0);
    }

    #[test]
    fn mask_area_matches_contour_area() {
        let e = ellipse(720, 40.0, 25.0, Point::new(50.3, 60.7));
        let m = contour_mask(&e, 100, 120);
        let n = m.iter().filter(|&&v| v).count() as f64;
        assert!((n - PI * 40.0 * 25.0).abs() / (PI * 1000.0) < 0.01, "{n}");
        assert!(m[[50, 60]] && !m[[50, 101]] && !m[[10, 10]]);
        assert!((dice(&m, &m) - 1.0).abs() < 1e-12);
    }
}
