//! Metrics with known answers: overlap, centerline overlap, diameter agreement, lesion
//! detection, type confusion and rank agreement.

use crate::skeleton::zhang_suen;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use vesselkit_core::{LesionType, Point};

/// Dice = 2|A∩B| / (|A|+|B|); 1 when both are empty. `None` when the shapes differ.
pub fn dice(pred: &Array2<bool>, truth: &Array2<bool>) -> Option<f64> {
    if pred.dim() != truth.dim() {
        return None;
    }
    let (mut inter, mut a, mut b) = (0usize, 0usize, 0usize);
    for (&p, &t) in pred.iter().zip(truth.iter()) {
        a += usize::from(p);
        b += usize::from(t);
        inter += usize::from(p && t);
    }
    if a + b == 0 {
        return Some(1.0);
    }
    Some(2.0 * inter as f64 / (a + b) as f64)
}

/// clDice (Shit et al. 2021): harmonic mean of topology precision |S(P)∩G|/|S(P)| and
/// topology sensitivity |S(G)∩P|/|S(G)|, skeletons by Zhang-Suen. 1 when both are empty, 0 when
/// exactly one is empty.
pub fn cl_dice(pred: &Array2<bool>, truth: &Array2<bool>) -> Option<f64> {
    if pred.dim() != truth.dim() {
        return None;
    }
    let sp = zhang_suen(pred);
    let st = zhang_suen(truth);
    let frac = |s: &Array2<bool>, other: &Array2<bool>| {
        let n = s.iter().filter(|&&v| v).count();
        if n == 0 {
            return None;
        }
        let k = s.iter().zip(other.iter()).filter(|&(&a, &b)| a && b).count();
        Some(k as f64 / n as f64)
    };
    match (frac(&sp, truth), frac(&st, pred)) {
        (None, None) => Some(1.0),
        (Some(p), Some(s)) if p + s > 0.0 => Some(2.0 * p * s / (p + s)),
        _ => Some(0.0),
    }
}

/// Mean, SD (n-1) and count of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    /// Mean absolute value.
    pub mae: f64,
}

impl Stat {
    pub fn of(v: &[f64]) -> Option<Stat> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let mae = v.iter().map(|x| x.abs()).sum::<f64>() / n as f64;
        Some(Stat { n, mean, sd, mae })
    }
}

/// Diameter bands by true diameter, mm: [0, 1), [1, 1.5), [1.5, 3), [3, 6), [6, inf), and the
/// whole [1, 6) range that the accuracy targets are stated for (it overlaps the others).
pub const DIAMETER_BANDS_MM: [(f64, f64); 6] = [
    (0.0, 1.0),
    (1.0, 1.5),
    (1.5, 3.0),
    (3.0, 6.0),
    (6.0, f64::INFINITY),
    (1.0, 6.0),
];

/// Measured-minus-true diameter per band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiameterBand {
    pub lo_mm: f64,
    pub hi_mm: f64,
    /// Bias (mean) and precision (SD) of measured - true, mm.
    pub error: Option<Stat>,
}

/// A diameter at a centerline point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiameterSample {
    pub point: Point,
    pub diameter_mm: f64,
}

/// Pair each measured sample with the nearest truth sample within `tolerance_px` and return the
/// errors `measured - true` with the true diameter. Non-finite measurements are skipped.
pub fn diameter_pairs(measured: &[DiameterSample], truth: &[DiameterSample], tolerance_px: f64) -> Vec<(f64, f64)> {
    // Bucket grid of truth points with cell = tolerance, so each query looks at 3x3 cells.
    let cell = tolerance_px.max(0.5);
    let key = |p: Point| ((p.row / cell).floor() as i64, (p.col / cell).floor() as i64);
    let mut grid: std::collections::BTreeMap<(i64, i64), Vec<usize>> = std::collections::BTreeMap::new();
    for (i, t) in truth.iter().enumerate() {
        if t.diameter_mm.is_finite() {
            grid.entry(key(t.point)).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for m in measured.iter().filter(|m| m.diameter_mm.is_finite()) {
        let (kr, kc) = key(m.point);
        let mut best: Option<(f64, usize)> = None;
        for dr in -1..=1 {
            for dc in -1..=1 {
                if let Some(ids) = grid.get(&(kr + dr, kc + dc)) {
                    for &i in ids {
                        let d = m.point.dist(truth[i].point);
                        if d <= tolerance_px && best.is_none_or(|(bd, bi)| d < bd || (d == bd && i < bi)) {
                            best = Some((d, i));
                        }
                    }
                }
            }
        }
        if let Some((_, i)) = best {
            out.push((truth[i].diameter_mm, m.diameter_mm - truth[i].diameter_mm));
        }
    }
    out
}

/// Bias and SD by band from `(true diameter, error)` pairs.
pub fn diameter_bands(pairs: &[(f64, f64)]) -> Vec<DiameterBand> {
    DIAMETER_BANDS_MM
        .iter()
        .map(|&(lo, hi)| {
            let e: Vec<f64> = pairs
                .iter()
                .filter(|(d, _)| *d >= lo && *d < hi)
                .map(|(_, e)| *e)
                .collect();
            DiameterBand {
                lo_mm: lo,
                hi_mm: hi,
                error: Stat::of(&e),
            }
        })
        .collect()
}

/// One-to-one greedy matching by distance: all pairs within `tolerance`, shortest first (ties by
/// index). Returns `(detected index, true index, distance)`.
pub fn match_sites(detected: &[Point], truth: &[Point], tolerance: f64) -> Vec<(usize, usize, f64)> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, d) in detected.iter().enumerate() {
        for (j, t) in truth.iter().enumerate() {
            let dist = d.dist(*t);
            if dist <= tolerance {
                pairs.push((dist, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut used_d = vec![false; detected.len()];
    let mut used_t = vec![false; truth.len()];
    let mut out = Vec::new();
    for (dist, i, j) in pairs {
        if !used_d[i] && !used_t[j] {
            used_d[i] = true;
            used_t[j] = true;
            out.push((i, j, dist));
        }
    }
    out
}

/// Index of a lesion type in [`LesionType::ALL`].
pub fn type_index(t: LesionType) -> usize {
    LesionType::ALL.iter().position(|&x| x == t).unwrap_or(0)
}

/// 5x5 confusion matrix, rows = true type, columns = predicted type (order of
/// [`LesionType::ALL`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    pub counts: [[u32; 5]; 5],
}

impl Confusion {
    pub fn add(&mut self, truth: LesionType, predicted: LesionType) {
        self.counts[type_index(truth)][type_index(predicted)] += 1;
    }
    pub fn merge(&mut self, o: &Confusion) {
        for r in 0..5 {
            for c in 0..5 {
                self.counts[r][c] += o.counts[r][c];
            }
        }
    }
    pub fn total(&self) -> u32 {
        self.counts.iter().flatten().sum()
    }
    /// Fraction on the diagonal; `None` when empty.
    pub fn accuracy(&self) -> Option<f64> {
        let t = self.total();
        (t > 0).then(|| (0..5).map(|i| self.counts[i][i]).sum::<u32>() as f64 / t as f64)
    }
    /// Recall of one true type; `None` when that type never occurred.
    pub fn recall(&self, t: LesionType) -> Option<f64> {
        let i = type_index(t);
        let row: u32 = self.counts[i].iter().sum();
        (row > 0).then(|| self.counts[i][i] as f64 / row as f64)
    }
}

/// Kendall tau-b between two rankings of the same items; `None` with fewer than two items or
/// when either ranking is all ties.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (mut conc, mut disc, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let a = (x[i] - x[j]).signum();
            let b = (y[i] - y[j]).signum();
            let (ax, by) = (x[i] == x[j], y[i] == y[j]);
            if ax && by {
                continue;
            }
            if ax {
                tx += 1;
            } else if by {
                ty += 1;
            } else if a == b {
                conc += 1;
            } else {
                disc += 1;
            }
        }
    }
    let n1 = (conc + disc + tx) as f64;
    let n2 = (conc + disc + ty) as f64;
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    Some((conc - disc) as f64 / (n1 * n2).sqrt())
}

/// Recommendation 9 group: 0 = ring/web/subtotal (treat first), 1 = occlusion/tortuous.
pub fn rec9_group(t: LesionType) -> u8 {
    match t {
        LesionType::Ring | LesionType::Web | LesionType::Subtotal => 0,
        LesionType::Occlusion | LesionType::Tortuous => 1,
    }
}

/// Whether every group-0 lesion has a smaller priority number than every group-1 lesion.
/// `None` when the list is empty.
pub fn obeys_rec9(items: &[(LesionType, u32)]) -> Option<bool> {
    if items.is_empty() {
        return None;
    }
    let worst0 = items.iter().filter(|(t, _)| rec9_group(*t) == 0).map(|x| x.1).max();
    let best1 = items.iter().filter(|(t, _)| rec9_group(*t) == 1).map(|x| x.1).min();
    Some(match (worst0, best1) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn rect(h: usize, w: usize, r0: usize, r1: usize, c0: usize, c1: usize) -> Array2<bool> {
        Array2::from_shape_fn((h, w), |(r, c)| (r0..r1).contains(&r) && (c0..c1).contains(&c))
    }

    #[test]
    fn dice_known_values() {
        let a = rect(10, 10, 0, 10, 0, 5); // 50 px
        let b = rect(10, 10, 0, 10, 2, 7); // 50 px, overlap 30
        assert!((dice(&a, &b).unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(dice(&a, &a), Some(1.0));
        let e = Array2::from_elem((10, 10), false);
        assert_eq!(dice(&e, &e), Some(1.0));
        assert_eq!(dice(&a, &e), Some(0.0));
        assert_eq!(dice(&a, &Array2::from_elem((3, 3), false)), None);
    }

    #[test]
    fn cldice_rewards_topology_over_thickness() {
        // Truth: a 5-px thick horizontal bar; a 1-px line along its middle is topologically
        // perfect (clDice 1) although its Dice is low.
        let t = rect(20, 50, 8, 13, 5, 45);
        let line = rect(20, 50, 10, 11, 5, 45);
        assert!((cl_dice(&line, &t).unwrap() - 1.0).abs() < 1e-12);
        assert!(dice(&line, &t).unwrap() < 0.4);
        // A broken prediction (gap in the middle) loses sensitivity.
        let mut broken = t.clone();
        for r in 0..20 {
            for c in 20..30 {
                broken[[r, c]] = false;
            }
        }
        let cl = cl_dice(&broken, &t).unwrap();
        assert!(cl < 0.9 && cl > 0.5, "{cl}");
    }

    #[test]
    fn diameter_pairs_and_bands() {
        let truth: Vec<DiameterSample> = (0..10)
            .map(|i| DiameterSample {
                point: Point::new(0.0, i as f64),
                diameter_mm: if i < 5 { 1.0 } else { 4.0 },
            })
            .collect();
        let measured: Vec<DiameterSample> = (0..10)
            .map(|i| DiameterSample {
                point: Point::new(0.4, i as f64 + 0.1),
                diameter_mm: if i < 5 { 1.1 } else { 3.8 + 0.2 * (i % 2) as f64 },
            })
            .chain([DiameterSample {
                point: Point::new(50.0, 50.0), // far away: unmatched
                diameter_mm: 9.0,
            }])
            .collect();
        let pairs = diameter_pairs(&measured, &truth, 2.0);
        assert_eq!(pairs.len(), 10);
        let bands = diameter_bands(&pairs);
        let b1 = bands[1].error.unwrap();
        assert_eq!(b1.n, 5);
        assert!((b1.mean - 0.1).abs() < 1e-9 && b1.sd < 1e-9);
        let b3 = bands[3].error.unwrap();
        assert_eq!(b3.n, 5);
        // errors 0, -0.2, 0, -0.2, 0 (i = 5..9)
        assert!((b3.mean - (-0.08)).abs() < 1e-9, "{b3:?}");
        assert!((b3.sd - 0.012f64.sqrt()).abs() < 1e-9, "{b3:?}");
        assert!(bands[0].error.is_none() && bands[2].error.is_none() && bands[4].error.is_none());
        // The 1-6 mm target range holds all ten.
        assert_eq!(bands[5].error.unwrap().n, 10);
    }

    #[test]
    fn greedy_matching_is_one_to_one() {
        let truth = [Point::new(0.0, 0.0), Point::new(0.0, 10.0)];
        let det = [Point::new(0.0, 1.0), Point::new(0.0, 2.0), Point::new(0.0, 30.0)];
        let m = match_sites(&det, &truth, 3.0);
        assert_eq!(m, vec![(0, 0, 1.0)]);
        let m = match_sites(&det, &truth, 8.0);
        // det 0 -> truth 0 (1.0); det 1 -> truth 1 (8.0)
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].0, m[1].1), (1, 1));
    }

    #[test]
    fn confusion_accuracy_and_recall() {
        let mut c = Confusion::default();
        c.add(LesionType::Ring, LesionType::Ring);
        c.add(LesionType::Ring, LesionType::Web);
        c.add(LesionType::Occlusion, LesionType::Occlusion);
        c.add(LesionType::Subtotal, LesionType::Occlusion);
        assert_eq!(c.accuracy(), Some(0.5));
        assert_eq!(c.recall(LesionType::Ring), Some(0.5));
        assert_eq!(c.recall(LesionType::Subtotal), Some(0.0));
        assert_eq!(c.recall(LesionType::Tortuous), None);
    }

    #[test]
    fn kendall_known_values() {
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // One swap among 4 items: (5 - 1) / 6.
        let t = kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((t - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(kendall_tau_b(&[1.0], &[1.0]), None);
    }

    #[test]
    fn rec9_rule() {
        use LesionType::*;
        assert_eq!(
            obeys_rec9(&[(Ring, 1), (Web, 2), (Occlusion, 3), (Tortuous, 4)]),
            Some(true)
        );
        assert_eq!(obeys_rec9(&[(Ring, 1), (Occlusion, 2), (Subtotal, 3)]), Some(false));
        assert_eq!(obeys_rec9(&[(Occlusion, 1)]), Some(true));
        assert_eq!(obeys_rec9(&[]), None);
    }
}
