//! Image containers: one frame, a cine run, and the size limits checked before allocating.

use crate::calibration::Calibration;
use crate::error::{CoreError, Result};
use ndarray::{Array2, Array3, ArrayView2, Axis};

/// Size limits checked before any pixel buffer is allocated. Callers may raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest allowed rows or columns of one frame.
    pub max_side_px: u32,
    /// Largest allowed number of frames.
    pub max_frames: u32,
    /// Largest allowed number of decoded pixels over all frames (f32 each).
    pub max_total_px: u64,
}

impl Default for Limits {
    /// 16384 px per side, 10 000 frames, 512 Mi pixels (2 GiB of f32) in all.
    fn default() -> Self {
        Self {
            max_side_px: 16_384,
            max_frames: 10_000,
            max_total_px: 512 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// No limits at all (for callers that validate sizes themselves).
    pub fn unlimited() -> Self {
        Self {
            max_side_px: u32::MAX,
            max_frames: u32::MAX,
            max_total_px: u64::MAX,
        }
    }

    /// Check a `[frames, rows, cols]` size against the limits; zero sizes are errors too.
    pub fn check(&self, frames: u64, rows: u64, cols: u64) -> Result<()> {
        if rows == 0 || cols == 0 || frames == 0 {
            return Err(CoreError::shape(
                "image",
                format!("empty image: {frames} frame(s) of {rows} x {cols} pixels"),
            ));
        }
        for (what, v) in [("rows", rows), ("columns", cols)] {
            if v > u64::from(self.max_side_px) {
                return Err(CoreError::TooLarge {
                    what,
                    requested: v,
                    limit: self.max_side_px.into(),
                    knob: "max_side_px",
                });
            }
        }
        if frames > u64::from(self.max_frames) {
            return Err(CoreError::TooLarge {
                what: "number of frames",
                requested: frames,
                limit: self.max_frames.into(),
                knob: "max_frames",
            });
        }
        let total = frames.saturating_mul(rows).saturating_mul(cols);
        if total > self.max_total_px {
            return Err(CoreError::TooLarge {
                what: "total pixel count",
                requested: total,
                limit: self.max_total_px,
                knob: "max_total_px",
            });
        }
        Ok(())
    }
}

fn check_finite<'a>(field: &'static str, values: impl IntoIterator<Item = &'a f32>) -> Result<()> {
    if let Some((i, v)) = values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(CoreError::invalid(
            field,
            format!("pixel {i} is {v}; all pixels must be finite"),
        ));
    }
    Ok(())
}

/// One 2-D image in f32 with its calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub pixels: Array2<f32>,
    pub calibration: Calibration,
}

impl Frame {
    /// Build a frame; rejects empty images and non-finite pixels.
    pub fn new(pixels: Array2<f32>, calibration: Calibration) -> Result<Self> {
        let (r, c) = pixels.dim();
        Limits::unlimited().check(1, r as u64, c as u64)?;
        check_finite("pixels", pixels.iter())?;
        Ok(Self { pixels, calibration })
    }
    pub fn rows(&self) -> usize {
        self.pixels.nrows()
    }
    pub fn cols(&self) -> usize {
        self.pixels.ncols()
    }
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.pixels.view()
    }
}

/// A run of frames over time: `[frames, rows, cols]` f32 with a time stamp per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Cine {
    pub frames: Array3<f32>,
    pub calibration: Calibration,
    /// Time of each frame relative to the first, in ms; empty when unknown.
    pub frame_times_ms: Vec<f64>,
}

impl Cine {
    /// Build a cine; `frame_times_ms` must be empty or have one increasing entry per frame.
    pub fn new(frames: Array3<f32>, calibration: Calibration, frame_times_ms: Vec<f64>) -> Result<Self> {
        let (n, r, c) = frames.dim();
        Limits::unlimited().check(n as u64, r as u64, c as u64)?;
        check_finite("frames", frames.iter())?;
        if !frame_times_ms.is_empty() {
            if frame_times_ms.len() != n {
                return Err(CoreError::shape(
                    "frame_times_ms",
                    format!("{} time stamps for {n} frames", frame_times_ms.len()),
                ));
            }
            if frame_times_ms.iter().any(|t| !t.is_finite()) || frame_times_ms.windows(2).any(|w| w[1] < w[0]) {
                return Err(CoreError::invalid(
                    "frame_times_ms",
                    "time stamps must be finite and non-decreasing",
                ));
            }
        }
        Ok(Self {
            frames,
            calibration,
            frame_times_ms,
        })
    }

    pub fn len(&self) -> usize {
        self.frames.len_of(Axis(0))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn frame(&self, index: usize) -> Option<ArrayView2<'_, f32>> {
        (index < self.len()).then(|| self.frames.index_axis(Axis(0), index))
    }

    /// Frame times from a constant Frame Time (ms) and Frame Delay (ms):
    /// `t(n) = delay + frame_time * n` for n = 0..frames (DICOM PS3.3 C.7.6.5).
    pub fn times_from_frame_time(frames: usize, frame_time_ms: f64, delay_ms: f64) -> Result<Vec<f64>> {
        if !frame_time_ms.is_finite() || frame_time_ms <= 0.0 {
            return Err(CoreError::invalid(
                "frame_time_ms",
                format!("must be > 0, got {frame_time_ms}"),
            ));
        }
        Ok((0..frames).map(|n| delay_ms + frame_time_ms * n as f64).collect())
    }

    /// Frame times from a Frame Time Vector (ms between each frame and the previous one; the
    /// first entry is 0 by definition).
    pub fn times_from_vector(increments_ms: &[f64], delay_ms: f64) -> Result<Vec<f64>> {
        let mut t = delay_ms;
        let mut out = Vec::with_capacity(increments_ms.len());
        for (i, &d) in increments_ms.iter().enumerate() {
            if !d.is_finite() || d < 0.0 {
                return Err(CoreError::invalid("frame_time_vector", format!("entry {i} is {d}")));
            }
            if i > 0 {
                t += d;
            }
            out.push(t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_absurd_and_empty() {
        let l = Limits::default();
        assert!(l.check(1, 512, 512).is_ok());
        let e = l.check(1, 0, 512).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = l.check(1, 100_000, 10).unwrap_err().to_string();
        assert!(e.contains("max_side_px"), "{e}");
        let e = l.check(9_000, 16_000, 16_000).unwrap_err().to_string();
        assert!(e.contains("max_total_px"), "{e}");
    }

    #[test]
    fn frame_rejects_nan() {
        let mut a = Array2::<f32>::zeros((4, 4));
        a[[2, 3]] = f32::NAN;
        let e = Frame::new(a, Calibration::uncalibrated()).unwrap_err().to_string();
        assert!(e.contains("pixel 11"), "{e}");
    }

    #[test]
    fn frame_times() {
        assert_eq!(
            Cine::times_from_frame_time(3, 66.7, 10.0).unwrap(),
            vec![10.0, 76.7, 143.4]
        );
        assert_eq!(
            Cine::times_from_vector(&[0.0, 33.0, 34.0], 0.0).unwrap(),
            vec![0.0, 33.0, 67.0]
        );
        let c = Cine::new(Array3::zeros((2, 3, 3)), Calibration::uncalibrated(), vec![1.0]);
        assert!(c.is_err());
    }
}
