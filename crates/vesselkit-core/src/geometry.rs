//! Points, polylines and closed contours in `(row, col)` pixel coordinates.

use serde::{Deserialize, Serialize};

/// A sub-pixel position `(row, col)`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "[f64; 2]", into = "[f64; 2]")]
pub struct Point {
    pub row: f64,
    pub col: f64,
}

impl From<[f64; 2]> for Point {
    fn from(a: [f64; 2]) -> Self {
        Point { row: a[0], col: a[1] }
    }
}
impl From<Point> for [f64; 2] {
    fn from(p: Point) -> Self {
        [p.row, p.col]
    }
}

impl Point {
    pub const fn new(row: f64, col: f64) -> Self {
        Self { row, col }
    }
    pub fn dist(self, o: Point) -> f64 {
        (self.row - o.row).hypot(self.col - o.col)
    }
    pub fn lerp(self, o: Point, t: f64) -> Point {
        Point::new(self.row + (o.row - self.row) * t, self.col + (o.col - self.col) * t)
    }
}

/// An open, ordered chain of points.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Polyline {
    pub points: Vec<Point>,
}

impl Polyline {
    pub fn new(points: Vec<Point>) -> Self {
        Self { points }
    }
    pub fn len(&self) -> usize {
        self.points.len()
    }
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Total length in pixels.
    pub fn length_px(&self) -> f64 {
        self.points.windows(2).map(|w| w[0].dist(w[1])).sum()
    }

    /// Cumulative arc length at each point, starting at 0.
    pub fn arc_lengths_px(&self) -> Vec<f64> {
        let mut acc = 0.0;
        let mut out = Vec::with_capacity(self.points.len());
        for (i, p) in self.points.iter().enumerate() {
            if i > 0 {
                acc += self.points[i - 1].dist(*p);
            }
            out.push(acc);
        }
        out
    }

    /// Resample at a fixed arc-length step (px). Keeps both ends; the last step may be shorter.
    /// Returns the input unchanged for a non-positive step or fewer than two points.
    pub fn resample(&self, step_px: f64) -> Polyline {
        if step_px.is_nan() || step_px <= 0.0 || self.points.len() < 2 {
            return self.clone();
        }
        let total = self.length_px();
        let n = (total / step_px).floor() as usize;
        let mut out = Vec::with_capacity(n + 2);
        let mut seg = 0;
        let mut seg_start = 0.0;
        for k in 0..=n {
            let s = k as f64 * step_px;
            while seg + 1 < self.points.len() - 1 && seg_start + self.points[seg].dist(self.points[seg + 1]) < s {
                seg_start += self.points[seg].dist(self.points[seg + 1]);
                seg += 1;
            }
            let l = self.points[seg].dist(self.points[seg + 1]);
            let t = if l > 0.0 {
                ((s - seg_start) / l).clamp(0.0, 1.0)
            } else {
                0.0
            };
            out.push(self.points[seg].lerp(self.points[seg + 1], t));
        }
        let last = *self.points.last().unwrap_or(&Point::default());
        if out.last().is_none_or(|p| p.dist(last) > 1e-9) {
            out.push(last);
        }
        Polyline::new(out)
    }
}

/// A closed contour (the last point joins the first implicitly).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Contour {
    pub points: Vec<Point>,
}

impl Contour {
    pub fn new(points: Vec<Point>) -> Self {
        Self { points }
    }

    /// Enclosed area in px² (shoelace formula, orientation-independent).
    pub fn area_px2(&self) -> f64 {
        self.signed_area_px2().abs()
    }

    fn signed_area_px2(&self) -> f64 {
        let n = self.points.len();
        if n < 3 {
            return 0.0;
        }
        let mut s = 0.0;
        for i in 0..n {
            let a = self.points[i];
            let b = self.points[(i + 1) % n];
            s += a.col * b.row - b.col * a.row;
        }
        0.5 * s
    }

    /// Perimeter in px.
    pub fn perimeter_px(&self) -> f64 {
        let n = self.points.len();
        (0..n).map(|i| self.points[i].dist(self.points[(i + 1) % n])).sum()
    }

    /// Area centroid; falls back to the vertex mean for degenerate contours.
    pub fn centroid(&self) -> Point {
        let n = self.points.len();
        if n == 0 {
            return Point::default();
        }
        let a = self.signed_area_px2();
        if a.abs() < 1e-12 {
            let (r, c) = self.points.iter().fold((0.0, 0.0), |(r, c), p| (r + p.row, c + p.col));
            return Point::new(r / n as f64, c / n as f64);
        }
        let (mut cr, mut cc) = (0.0, 0.0);
        for i in 0..n {
            let p = self.points[i];
            let q = self.points[(i + 1) % n];
            let cross = p.col * q.row - q.col * p.row;
            cr += (p.row + q.row) * cross;
            cc += (p.col + q.col) * cross;
        }
        Point::new(cr / (6.0 * a), cc / (6.0 * a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle(n: usize, r: f64, c: Point) -> Contour {
        Contour::new(
            (0..n)
                .map(|i| {
                    let t = i as f64 / n as f64 * std::f64::consts::TAU;
                    Point::new(c.row + r * t.sin(), c.col + r * t.cos())
                })
                .collect(),
        )
    }

    #[test]
    fn circle_area_perimeter_centroid() {
        let c = circle(720, 10.0, Point::new(5.0, -3.0));
        assert!((c.area_px2() - std::f64::consts::PI * 100.0).abs() < 0.05);
        assert!((c.perimeter_px() - std::f64::consts::TAU * 10.0).abs() < 0.01);
        let m = c.centroid();
        assert!((m.row - 5.0).abs() < 1e-9 && (m.col + 3.0).abs() < 1e-9);
    }

    #[test]
    fn resample_keeps_length_and_ends() {
        let p = Polyline::new(vec![
            Point::new(0.0, 0.0),
            Point::new(0.0, 10.0),
            Point::new(10.0, 10.0),
        ]);
        let r = p.resample(0.5);
        assert_eq!(r.len(), 41);
        assert!((r.length_px() - 20.0).abs() < 1e-9);
        assert_eq!(r.points[0], Point::new(0.0, 0.0));
        assert_eq!(*r.points.last().unwrap(), Point::new(10.0, 10.0));
        assert_eq!(r.points[20], Point::new(0.0, 10.0));
    }

    #[test]
    fn point_serialises_as_pair() {
        assert_eq!(serde_json::to_string(&Point::new(1.5, 2.0)).unwrap(), "[1.5,2.0]");
    }
}
