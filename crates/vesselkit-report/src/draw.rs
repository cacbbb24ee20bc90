//! Minimal raster drawing for overlays: thick lines, circles, boxes, 8x8 bitmap text, colour maps.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use image::{Rgb, RgbImage};

pub type Color = [u8; 3];

/// Blend `c` into the pixel at (row, col) with opacity `alpha`; outside the canvas is ignored.
#[inline]
pub fn blend(img: &mut RgbImage, row: i64, col: i64, c: Color, alpha: f32) {
    if row < 0 || col < 0 || row >= img.height() as i64 || col >= img.width() as i64 {
        return;
    }
    let p = img.get_pixel_mut(col as u32, row as u32);
    for (dst, src) in p.0.iter_mut().zip(c) {
        *dst = (*dst as f32 * (1.0 - alpha) + src as f32 * alpha).round() as u8;
    }
}

/// A filled disc of radius `r` px.
pub fn disc(img: &mut RgbImage, row: f64, col: f64, r: f64, c: Color, alpha: f32) {
    let (r0, r1) = ((row - r).floor() as i64, (row + r).ceil() as i64);
    let (c0, c1) = ((col - r).floor() as i64, (col + r).ceil() as i64);
    for y in r0..=r1 {
        for x in c0..=c1 {
            let d = ((y as f64 - row).powi(2) + (x as f64 - col).powi(2)).sqrt();
            if d <= r {
                blend(img, y, x, c, alpha);
            }
        }
    }
}

/// A line of the given width from (r0, c0) to (r1, c1); pixels are set once (no double blend).
pub fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), width: f64, c: Color, alpha: f32) {
    let half = (width / 2.0).max(0.5);
    let (rmin, rmax) = (a.0.min(b.0) - half, a.0.max(b.0) + half);
    let (cmin, cmax) = (a.1.min(b.1) - half, a.1.max(b.1) + half);
    let (dr, dc) = (b.0 - a.0, b.1 - a.1);
    let len2 = dr * dr + dc * dc;
    for y in rmin.floor() as i64..=rmax.ceil() as i64 {
        for x in cmin.floor() as i64..=cmax.ceil() as i64 {
            let (py, px) = (y as f64 - a.0, x as f64 - a.1);
            let t = if len2 > 0.0 {
                ((py * dr + px * dc) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let d = ((py - t * dr).powi(2) + (px - t * dc).powi(2)).sqrt();
            if d <= half {
                blend(img, y, x, c, alpha);
            }
        }
    }
}

/// A circle outline.
pub fn ring(img: &mut RgbImage, row: f64, col: f64, r: f64, width: f64, c: Color) {
    let n = ((r * 8.0).ceil() as usize).max(16);
    for i in 0..n {
        let t0 = i as f64 / n as f64 * std::f64::consts::TAU;
        let t1 = (i + 1) as f64 / n as f64 * std::f64::consts::TAU;
        line(
            img,
            (row + r * t0.sin(), col + r * t0.cos()),
            (row + r * t1.sin(), col + r * t1.cos()),
            width,
            c,
            1.0,
        );
    }
}

pub fn fill_rect(img: &mut RgbImage, row: i64, col: i64, h: i64, w: i64, c: Color, alpha: f32) {
    for y in row..row + h {
        for x in col..col + w {
            blend(img, y, x, c, alpha);
        }
    }
}

/// Width in px of `text` at `scale`.
pub fn text_width(text: &str, scale: u32) -> i64 {
    (text.chars().count() as i64) * 8 * scale as i64
}

/// Draw `text` with its top-left corner at (row, col), 8x8 glyphs magnified by `scale`.
pub fn text(img: &mut RgbImage, row: i64, col: i64, text: &str, scale: u32, c: Color) {
    let s = scale.max(1) as i64;
    for (i, ch) in text.chars().enumerate() {
        let glyph = BASIC_FONTS.get(ch).or_else(|| BASIC_FONTS.get('?')).unwrap_or([0; 8]);
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8 {
                if bits & (1 << gx) != 0 {
                    fill_rect(img, row + gy as i64 * s, col + (i as i64 * 8 + gx) * s, s, s, c, 1.0);
                }
            }
        }
    }
}

/// The dark box [`label`] draws behind text whose top-left corner is at (row, col):
/// `(top, left, bottom, right)`, bottom and right exclusive.
pub fn label_box(row: i64, col: i64, s: &str, scale: u32) -> (i64, i64, i64, i64) {
    const PAD: i64 = 2;
    (
        row - PAD,
        col - PAD,
        row + 8 * scale as i64 + PAD,
        col + text_width(s, scale) + PAD,
    )
}

/// Text on a dark box, for labels over the image.
pub fn label(img: &mut RgbImage, row: i64, col: i64, s: &str, scale: u32, c: Color) {
    let (top, left, bottom, right) = label_box(row, col, s, scale);
    fill_rect(img, top, left, bottom - top, right - left, [0, 0, 0], 0.7);
    text(img, row, col, s, scale, c);
}

/// A perceptually ordered blue→green→yellow→red map for t in [0, 1] (clamped).
pub fn colormap(t: f64) -> Color {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [48.0, 18.0, 160.0]),
        (0.25, [30.0, 136.0, 229.0]),
        (0.5, [38.0, 198.0, 98.0]),
        (0.75, [250.0, 204.0, 21.0]),
        (1.0, [220.0, 38.0, 38.0]),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    for w in STOPS.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let u = (t - t0) / (t1 - t0);
            return [0, 1, 2].map(|k| (c0[k] + (c1[k] - c0[k]) * u).round() as u8);
        }
    }
    [220, 38, 38]
}

/// Convert to an `image` pixel.
pub fn rgb(c: Color) -> Rgb<u8> {
    Rgb(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_sets_glyph_pixels() {
        let mut img = RgbImage::new(20, 10);
        text(&mut img, 0, 0, "I", 1, [255, 255, 255]);
        let lit = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        // font8x8 'I' has 2+2+2+2+2+4+4... count its bits exactly
        let glyph = BASIC_FONTS.get('I').unwrap();
        let bits: u32 = glyph.iter().map(|b| b.count_ones()).sum();
        assert_eq!(lit as u32, bits);
        assert!(bits > 8);
    }

    #[test]
    fn line_covers_its_width() {
        let mut img = RgbImage::new(30, 30);
        line(&mut img, (15.0, 2.0), (15.0, 27.0), 3.0, [255, 0, 0], 1.0);
        assert_eq!(img.get_pixel(10, 15).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(10, 16).0, [255, 0, 0]);
        assert_eq!(img.get_pixel(10, 18).0, [0, 0, 0]);
    }

    #[test]
    fn colormap_ends() {
        assert_eq!(colormap(0.0), [48, 18, 160]);
        assert_eq!(colormap(1.0), [220, 38, 38]);
        assert_eq!(colormap(f64::NAN), colormap(0.0));
    }
}
