//! A small learned vessel segmenter: a U-Net of a few resolution levels
//! (`scripts/train_unet.py` gives the architecture and trains it) run on the CPU in f32.
//!
//! Why: on real coronary angiograms the hand-made filters of [`crate::segment`] stop near a
//! Dice of 0.70 against manual masks, where the networks of the literature reach about 0.78.
//! [`UnetModel::dca1`] is trained on the DCA1 *training* images only (300 x 300 coronary
//! frames, vessels up to about 6 px in radius); it knows that kind of image and no other.
//!
//! Each 3 x 3 convolution is an im2col product ([`ndarray::linalg::general_mat_mul`]) over bands
//! of rows, in parallel.

use crate::error::{AngioError, Result, check_image};
use ndarray::{Array2, ArrayView2, linalg::general_mat_mul, s};
use rayon::prelude::*;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"VKUNET01";
/// Most resolution levels a weight file may have (the encoder halves the size at each).
const MAX_LEVELS: usize = 6;
/// Largest input the network takes (px): its activations need about 200 bytes per pixel.
pub const MAX_PIXELS: usize = 4096 * 4096;

/// One convolution: `weights` is `out x (in * k * k)`, row-major over `(in, ky, kx)`.
#[derive(Debug, Clone, PartialEq)]
struct Conv {
    cin: usize,
    cout: usize,
    k: usize,
    weights: Array2<f32>,
    bias: Vec<f32>,
}

/// One trained U-Net of `levels` resolution levels with base width `channels`: two
/// convolutions per encoder and decoder level and a 1 x 1 head, `4 * levels - 1` in all (see
/// `scripts/train_unet.py`).
#[derive(Debug, Clone, PartialEq)]
struct Net {
    channels: usize,
    inputs: usize,
    levels: usize,
    layers: Vec<Conv>,
}

/// A learned segmenter: one U-Net, or an ensemble of U-Nets of the same inputs whose vessel
/// probabilities are averaged (networks fitted from different random starts err in different
/// places, so their mean is steadier than any one of them).
/// Its input planes: the frame (dark vessels), standardised; then, for a model of 3 inputs,
/// the maps of [`filter_features`].
#[derive(Debug, Clone, PartialEq)]
pub struct UnetModel {
    nets: Vec<Net>,
}

/// The filter maps a 3-input model takes after the frame: vesselness over its 99.5th
/// percentile and top-hat contrast over its 99th (the references [`crate::segment`]'s
/// hysteresis thresholds are relative to), so the model sees them on the scale of the
/// thresholds, whatever the frame's units.
pub fn filter_features(vesselness: &Array2<f32>, contrast: &Array2<f32>) -> [Array2<f32>; 2] {
    let scaled = |a: &Array2<f32>, q: f32| {
        let r = crate::segment::quantile(a, q);
        if r > 0.0 {
            a.mapv(|v| v / r)
        } else {
            Array2::zeros(a.dim())
        }
    };
    [scaled(vesselness, 0.995), scaled(contrast, 0.99)]
}

/// Activations, channel-major: `data[c * h * w + r * w + col]`.
struct Tensor {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Tensor {
    fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

static DCA1: std::sync::OnceLock<Result<Arc<UnetModel>>> = std::sync::OnceLock::new();

impl UnetModel {
    /// The model trained on the DCA1 training images (`models/unet_dca1.bin`, embedded; read
    /// once). An error here means a damaged build.
    pub fn dca1() -> Result<Arc<Self>> {
        DCA1.get_or_init(|| Self::from_bytes(include_bytes!("../models/unet_dca1.bin")).map(Arc::new))
            .clone()
    }

    /// Base channel count (the first level's width) of the first network.
    pub fn channels(&self) -> usize {
        self.nets[0].channels
    }

    /// Resolution levels of the first network: its encoder halves the frame `levels - 1` times.
    pub fn levels(&self) -> usize {
        self.nets[0].levels
    }

    /// Networks whose probabilities are averaged (1 for a single U-Net).
    pub fn members(&self) -> usize {
        self.nets.len()
    }

    /// Input planes: 1 (the frame) or 3 (the frame and [`filter_features`]).
    pub fn inputs(&self) -> usize {
        self.nets[0].inputs
    }

    /// Read a weight file from disk (see [`Self::from_bytes`]); a file that cannot be read is
    /// an error naming it.
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| AngioError::invalid("unet weights", format!("cannot read {}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// Read the weight file written by `scripts/train_unet.py`: one network, or several written
    /// one after the other (an ensemble; all must take the same inputs).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut nets = Vec::new();
        let mut at = 0usize;
        while at < bytes.len() || nets.is_empty() {
            // Past the first network, errors say which one.
            let net = Net::read(bytes, &mut at).map_err(|e| match e {
                AngioError::Invalid { field, reason } if !nets.is_empty() => AngioError::Invalid {
                    field,
                    reason: format!("network {}: {reason}", nets.len() + 1),
                },
                other => other,
            })?;
            if let Some(first) = nets.first().map(|n: &Net| n.inputs)
                && net.inputs != first
            {
                return Err(AngioError::invalid(
                    "unet weights",
                    format!(
                        "network {} takes {} inputs, the first {first}",
                        nets.len() + 1,
                        net.inputs
                    ),
                ));
            }
            nets.push(net);
        }
        Ok(Self { nets })
    }

    /// Vessel logits (before the sigmoid) for a frame with dark vessels, same size as `img`,
    /// for a model of one input (see [`Self::logits_with`]).
    pub fn logits(&self, img: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.logits_with(img, &[])
    }

    /// Vessel logits for a frame with dark vessels and the model's further input planes
    /// (`inputs() - 1` of them, the frame's size, used as they are). The frame is standardised
    /// (mean 0, SD 1); every plane is zero-padded to a multiple of `2^(levels - 1)` px. An
    /// ensemble gives the logit of its members' mean probability.
    pub fn logits_with(&self, img: ArrayView2<f32>, extra: &[ArrayView2<f32>]) -> Result<Array2<f32>> {
        check_image("image", &img)?;
        let (h, w) = img.dim();
        if extra.len() + 1 != self.inputs() {
            return Err(AngioError::invalid(
                "features",
                format!(
                    "the model takes {} input planes, got {}",
                    self.inputs(),
                    extra.len() + 1
                ),
            ));
        }
        for (i, e) in extra.iter().enumerate() {
            if e.dim() != (h, w) {
                return Err(AngioError::invalid(
                    "features",
                    format!("plane {} is {:?}, the frame {h} x {w}", i + 1, e.dim()),
                ));
            }
            check_image("features", e)?;
        }
        if h * w > MAX_PIXELS {
            return Err(AngioError::invalid(
                "image",
                format!("{h} x {w} px exceeds the network's limit of {MAX_PIXELS} px"),
            ));
        }
        if let [net] = self.nets.as_slice() {
            return net.logits(img, extra);
        }
        let mut mean_p = Array2::<f32>::zeros((h, w));
        for net in &self.nets {
            let z = net.logits(img, extra)?;
            mean_p.zip_mut_with(&z, |p, &z| *p += 1.0 / (1.0 + (-z).exp()));
        }
        let n = self.nets.len() as f32;
        // Back to a logit; the clamp keeps a unanimous 0 or 1 finite.
        Ok(mean_p.mapv(|p| {
            let p = (p / n).clamp(1e-7, 1.0 - 1e-7);
            (p / (1.0 - p)).ln()
        }))
    }
}

impl Net {
    /// One network from `bytes` at `at`, moving `at` past it.
    fn read(bytes: &[u8], at_out: &mut usize) -> Result<Self> {
        let bad = |reason: String| AngioError::invalid("unet weights", reason);
        let start = *at_out;
        let mut at = start;
        let mut take = |n: usize| -> Result<&[u8]> {
            let end = at.checked_add(n).filter(|&e| e <= bytes.len()).ok_or_else(|| {
                bad(format!(
                    "truncated: need {n} bytes at offset {at}, file has {}",
                    bytes.len()
                ))
            })?;
            let out = &bytes[at..end];
            at = end;
            Ok(out)
        };
        if take(8)? != MAGIC {
            return Err(bad("not a VKUNET01 file (bad magic)".into()));
        }
        let read_u32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let channels = read_u32(take(4)?);
        let count = read_u32(take(4)?);
        // The first layer's input count, read ahead: its header (out, in, k) starts at byte 16.
        let inputs = bytes.get(start + 20..start + 24).map_or(0, read_u32);
        let levels = (count + 1) / 4;
        if channels == 0
            || channels > 256
            || count + 1 != 4 * levels
            || !(2..=MAX_LEVELS).contains(&levels)
            || !(inputs == 1 || inputs == 3)
        {
            return Err(bad(format!(
                "{count} layers of base width {channels} on {inputs} inputs; expected 4 * levels - 1 \
                 layers for 2..={MAX_LEVELS} levels, of width 1..=256 on 1 or 3 inputs"
            )));
        }
        let expect = expected_layers(channels, inputs, levels);
        let mut layers = Vec::with_capacity(count);
        for (i, &(cin, cout, k)) in expect.iter().enumerate() {
            let head = take(12)?;
            let (o, n, kk) = (read_u32(&head[0..4]), read_u32(&head[4..8]), read_u32(&head[8..12]));
            if (o, n, kk) != (cout, cin, k) {
                return Err(bad(format!(
                    "layer {i} is {o} x {n} x {kk}x{kk}; the architecture needs {cout} x {cin} x {k}x{k}"
                )));
            }
            let floats = |b: &[u8]| -> Vec<f32> {
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            let w = floats(take(cout * cin * k * k * 4)?);
            let bias = floats(take(cout * 4)?);
            if let Some(v) = w.iter().chain(&bias).find(|v| !v.is_finite()) {
                return Err(bad(format!("layer {i} holds a non-finite weight {v}")));
            }
            let weights = Array2::from_shape_vec((cout, cin * k * k), w).map_err(|e| bad(format!("layer {i}: {e}")))?;
            layers.push(Conv {
                cin,
                cout,
                k,
                weights,
                bias,
            });
        }
        *at_out = at;
        Ok(Self {
            channels,
            inputs,
            levels,
            layers,
        })
    }

    /// Logits for a checked frame and planes (see [`UnetModel::logits_with`]).
    fn logits(&self, img: ArrayView2<f32>, extra: &[ArrayView2<f32>]) -> Result<Array2<f32>> {
        let (h, w) = img.dim();
        let n = (h * w) as f64;
        let mean = img.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = img.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt().max(1e-6);
        let stride = 1 << (self.levels - 1);
        let (hp, wp) = (h.div_ceil(stride) * stride, w.div_ceil(stride) * stride);
        let mut x = Tensor {
            c: self.inputs,
            h: hp,
            w: wp,
            data: vec![0.0; self.inputs * hp * wp],
        };
        for (r, row) in img.rows().into_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                x.data[r * wp + c] = ((v as f64 - mean) / sd) as f32;
            }
        }
        for (i, e) in extra.iter().enumerate() {
            let base = (i + 1) * hp * wp;
            for (r, row) in e.rows().into_iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    x.data[base + r * wp + c] = v;
                }
            }
        }
        let mut layers = self.layers.iter();
        let mut pair = |x: &Tensor| -> Result<Tensor> {
            match (layers.next(), layers.next()) {
                (Some(a), Some(b)) => Ok(conv(&conv(x, a, true), b, true)),
                _ => Err(AngioError::invalid("unet weights", "fewer layers than levels")),
            }
        };
        // Encoder: each level's output is kept for the decoder's skip connection; the frame's
        // planes are freed once the first level has read them.
        let mut y = pair(&x)?;
        drop(x);
        let mut skips: Vec<Tensor> = Vec::with_capacity(self.levels);
        for _ in 1..self.levels {
            let below = pair(&pool(&y))?;
            skips.push(std::mem::replace(&mut y, below));
        }
        while let Some(skip) = skips.pop() {
            y = pair(&concat(&up(&y), &skip))?;
        }
        let head = self
            .layers
            .last()
            .ok_or_else(|| AngioError::invalid("unet weights", "no layers"))?;
        let out = conv(&y, head, false);
        let full =
            ArrayView2::from_shape((hp, wp), out.plane(0)).map_err(|e| AngioError::invalid("image", e.to_string()))?;
        Ok(full.slice(s![..h, ..w]).to_owned())
    }
}

/// `(in, out, k)` of each layer for base width `c` on `inputs` planes over `levels` levels, in
/// file order: level `i` is `c << i` wide; each decoder level takes the upsampled level below
/// and the skip.
fn expected_layers(c: usize, inputs: usize, levels: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::with_capacity(4 * levels - 1);
    for i in 0..levels {
        let cin = if i == 0 { inputs } else { c << (i - 1) };
        out.extend([(cin, c << i, 3), (c << i, c << i, 3)]);
    }
    for i in (0..levels - 1).rev() {
        out.extend([((c << (i + 1)) + (c << i), c << i, 3), (c << i, c << i, 3)]);
    }
    out.push((c, 1, 1));
    out
}

/// Rows per band of the im2col product: about 2 MB of columns per band.
fn band_rows(cin: usize, k: usize, w: usize) -> usize {
    (2_000_000 / (4 * cin * k * k * w).max(1)).clamp(1, 64)
}

/// "Same" convolution with zero padding, plus bias, optionally ReLU.
fn conv(x: &Tensor, layer: &Conv, relu: bool) -> Tensor {
    debug_assert_eq!(x.c, layer.cin);
    let (h, w, k) = (x.h, x.w, layer.k);
    let half = (k / 2) as isize;
    let rows = band_rows(layer.cin, k, w);
    let mut out = vec![0.0f32; layer.cout * h * w];
    // Each band writes its own rows of every output channel, gathered after the product.
    let bands: Vec<(usize, Array2<f32>)> = (0..h.div_ceil(rows))
        .into_par_iter()
        .map(|b| {
            let (r0, r1) = (b * rows, ((b + 1) * rows).min(h));
            let npx = (r1 - r0) * w;
            let mut cols = Array2::<f32>::zeros((layer.cin * k * k, npx));
            for ci in 0..layer.cin {
                let plane = x.plane(ci);
                for ky in 0..k {
                    for kx in 0..k {
                        let mut dst = cols.row_mut((ci * k + ky) * k + kx);
                        // A fresh `zeros` array is row-major, so every row is one slice; the
                        // empty fallback cannot be taken.
                        let dst = dst.as_slice_mut().unwrap_or(&mut []);
                        for r in r0..r1 {
                            let sr = r as isize + ky as isize - half;
                            if sr < 0 || sr >= h as isize {
                                continue;
                            }
                            let src = &plane[sr as usize * w..(sr as usize + 1) * w];
                            let d = &mut dst[(r - r0) * w..(r - r0 + 1) * w];
                            let dx = kx as isize - half;
                            // d[c] = src[c + dx] where in range
                            let (c0, c1) = ((-dx).max(0) as usize, (w as isize - dx).min(w as isize) as usize);
                            if c0 < c1 {
                                d[c0..c1]
                                    .copy_from_slice(&src[(c0 as isize + dx) as usize..(c1 as isize + dx) as usize]);
                            }
                        }
                    }
                }
            }
            let mut y = Array2::<f32>::zeros((layer.cout, npx));
            general_mat_mul(1.0, &layer.weights, &cols, 0.0, &mut y);
            (r0, y)
        })
        .collect();
    for (r0, y) in bands {
        let npx = y.ncols();
        for (co, row) in y.rows().into_iter().enumerate() {
            let dst = &mut out[co * h * w + r0 * w..co * h * w + r0 * w + npx];
            let bias = layer.bias[co];
            for (d, &v) in dst.iter_mut().zip(row.iter()) {
                let v = v + bias;
                *d = if relu { v.max(0.0) } else { v };
            }
        }
    }
    Tensor {
        c: layer.cout,
        h,
        w,
        data: out,
    }
}

/// 2 x 2 max pooling, stride 2 (sizes are even by construction).
fn pool(x: &Tensor) -> Tensor {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut data = vec![0.0f32; x.c * h * w];
    data.par_chunks_mut(h * w).enumerate().for_each(|(c, dst)| {
        let p = x.plane(c);
        for r in 0..h {
            for col in 0..w {
                let i = 2 * r * x.w + 2 * col;
                dst[r * w + col] = p[i].max(p[i + 1]).max(p[i + x.w]).max(p[i + x.w + 1]);
            }
        }
    });
    Tensor { c: x.c, h, w, data }
}

/// Nearest-neighbour upsampling by 2.
fn up(x: &Tensor) -> Tensor {
    let (h, w) = (x.h * 2, x.w * 2);
    let mut data = vec![0.0f32; x.c * h * w];
    data.par_chunks_mut(h * w).enumerate().for_each(|(c, dst)| {
        let p = x.plane(c);
        for r in 0..h {
            for col in 0..w {
                dst[r * w + col] = p[(r / 2) * x.w + col / 2];
            }
        }
    });
    Tensor { c: x.c, h, w, data }
}

/// Channels of `a` then `b` (same size).
fn concat(a: &Tensor, b: &Tensor) -> Tensor {
    debug_assert_eq!((a.h, a.w), (b.h, b.w));
    let mut data = Vec::with_capacity(a.data.len() + b.data.len());
    data.extend_from_slice(&a.data);
    data.extend_from_slice(&b.data);
    Tensor {
        c: a.c + b.c,
        h: a.h,
        w: a.w,
        data,
    }
}
