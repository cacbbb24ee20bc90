//! The overlay picture: the frame with vessels coloured by diameter, lesions marked with their
//! type and priority, a diameter legend, a scale bar and the research-use notice.

use crate::draw::{self, Color};
use crate::model::Report;
use crate::{ReportError, Result};
use image::RgbImage;
use ndarray::ArrayView2;
use std::path::Path;
use vesselkit_core::LesionType;

/// Marker colour of each lesion type.
pub fn lesion_color(t: LesionType) -> Color {
    match t {
        LesionType::Ring => [0, 229, 255],
        LesionType::Web => [255, 64, 255],
        LesionType::Subtotal => [255, 152, 0],
        LesionType::Occlusion => [255, 23, 68],
        LesionType::Tortuous => [255, 235, 59],
    }
}

const PANEL_PX: u32 = 230;

/// Grey image scaled between its 1st and 99th percentiles.
fn to_grey(image: ArrayView2<f32>) -> Vec<u8> {
    let mut v: Vec<f32> = image.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return vec![0; image.len()];
    }
    let lo_i = v.len() / 100;
    let hi_i = (v.len() * 99 / 100).min(v.len() - 1);
    let lo = *v.select_nth_unstable_by(lo_i, f32::total_cmp).1;
    let hi = *v.select_nth_unstable_by(hi_i, f32::total_cmp).1;
    let span = if hi > lo { hi - lo } else { 1.0 };
    image
        .iter()
        .map(|&x| (((x - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Render the overlay. `image` is the analysed frame (`report.input.frame_used`).
pub fn render(image: ArrayView2<f32>, report: &Report) -> Result<RgbImage> {
    let (rows, cols) = image.dim();
    if rows == 0 || cols == 0 {
        return Err(ReportError::Invalid {
            field: "image",
            reason: "empty image".into(),
        });
    }
    // Small frames are magnified so that labels stay legible.
    let zoom = (768 / rows.max(cols)).clamp(1, 4) as f64;
    let (h, w) = ((rows as f64 * zoom) as u32, (cols as f64 * zoom) as u32);
    let height = h.max(420);
    let mut img = RgbImage::from_pixel(w + PANEL_PX, height, draw::rgb([24, 24, 28]));
    let grey = to_grey(image);
    for y in 0..h {
        for x in 0..w {
            let (r, c) = ((y as f64 / zoom) as usize, (x as f64 / zoom) as usize);
            let g = grey[r.min(rows - 1) * cols + c.min(cols - 1)];
            img.put_pixel(x, y, draw::rgb([g, g, g]));
        }
    }
    let at = |p: (f64, f64)| ((p.0 + 0.5) * zoom - 0.5, (p.1 + 0.5) * zoom - 0.5);

    // Diameter range for the colour bar: 0 to the 98th percentile, at least 4 units.
    let mut all: Vec<f64> = report
        .vessels
        .iter()
        .flat_map(|v| v.diameter_mm.iter().copied())
        .filter(|d| d.is_finite())
        .collect();
    all.sort_by(f64::total_cmp);
    let dmax = all
        .get(all.len().saturating_sub(1) * 98 / 100)
        .copied()
        .unwrap_or(4.0)
        .max(4.0)
        .ceil();

    for v in &report.vessels {
        for (i, w2) in v.centerline.windows(2).enumerate() {
            let d = v.diameter_mm.get(i).copied().unwrap_or(f64::NAN);
            let c = if d.is_finite() {
                draw::colormap(d / dmax)
            } else {
                [160, 160, 160]
            };
            draw::line(
                &mut img,
                at((w2[0].row, w2[0].col)),
                at((w2[1].row, w2[1].col)),
                2.0 * zoom.max(1.5),
                c,
                0.85,
            );
        }
    }
    let scale = if zoom >= 2.0 { 2 } else { 1 };
    let mut lesions: Vec<_> = report.lesions.iter().collect();
    lesions.sort_by_key(|l| l.priority);
    let radius = 7.0 * zoom.max(1.5);
    let labels = place_labels(&lesions, &at, radius, scale, (h as i64, w as i64));
    // Markers first, lowest priority at the bottom; then the labels that found room.
    for l in lesions.iter().rev() {
        let (y, x) = at((l.site.row, l.site.col));
        draw::ring(&mut img, y, x, radius, 2.0, lesion_color(l.lesion_type));
    }
    for (l, placed) in lesions.iter().zip(&labels).rev() {
        if let Some((row, col, text)) = placed {
            draw::label(&mut img, *row, *col, text, scale, lesion_color(l.lesion_type));
        }
    }
    let unlabelled = labels.iter().filter(|x| x.is_none()).count();

    // Scale bar, bottom left of the image: 10 mm (or 50 px uncalibrated), shortened to fit.
    let calibrated = report.calibration.is_calibrated();
    let unit_px = zoom / report.calibration.mm_per_px; // canvas px per mm (or per px)
    let mut bar = if calibrated { 10.0 } else { 50.0 };
    while bar * unit_px > w as f64 * 0.4 && bar > 1.0 {
        bar /= 2.0;
    }
    let (by, bx) = (h as i64 - 18, 12i64);
    draw::fill_rect(
        &mut img,
        by - 14,
        bx - 4,
        28,
        (bar * unit_px) as i64 + 8,
        [0, 0, 0],
        0.55,
    );
    draw::fill_rect(
        &mut img,
        by,
        bx,
        4,
        (bar * unit_px).round() as i64,
        [255, 255, 255],
        1.0,
    );
    let unit = if calibrated { "mm" } else { "px" };
    draw::text(&mut img, by - 11, bx, &format!("{bar} {unit}"), 1, [255, 255, 255]);

    // Legend panel.
    let px = w as i64 + 14;
    let white = [235, 235, 235];
    draw::text(&mut img, 12, px, "vesselkit", 2, white);
    draw::text(&mut img, 44, px, &format!("diameter ({unit})"), 1, white);
    let bar_h = 150i64;
    for k in 0..bar_h {
        let t = 1.0 - k as f64 / (bar_h - 1) as f64;
        draw::fill_rect(&mut img, 60 + k, px, 1, 22, draw::colormap(t), 1.0);
    }
    for k in 0..=4 {
        let t = k as f64 / 4.0;
        let y = 60 + ((1.0 - t) * (bar_h - 1) as f64) as i64;
        draw::fill_rect(&mut img, y, px + 22, 1, 5, white, 1.0);
        draw::text(&mut img, y - 4, px + 30, &format!("{:.1}", t * dmax), 1, white);
    }
    draw::text(&mut img, 226, px, "lesions (priority type)", 1, white);
    for (i, t) in LesionType::ALL.iter().enumerate() {
        let y = 244 + 16 * i as i64;
        draw::ring(&mut img, y as f64 + 3.5, px as f64 + 5.0, 5.0, 2.0, lesion_color(*t));
        draw::text(
            &mut img,
            y,
            px + 16,
            &format!("{} {}", t.kawakami(), t.as_str()),
            1,
            white,
        );
    }
    // Source names such as `imager_pixel_spacing/ermf` are too long for one legend line.
    draw::text(&mut img, 334, px, "scale from:", 1, white);
    draw::text(&mut img, 348, px, report.calibration.source.as_str(), 1, white);
    if unlabelled > 0 {
        draw::text(
            &mut img,
            372,
            px,
            &format!("{unlabelled} of {} lesions", lesions.len()),
            1,
            white,
        );
        draw::text(&mut img, 386, px, "unlabelled (no room)", 1, white);
    }
    draw::text(
        &mut img,
        height as i64 - 40,
        px,
        "Research use only.",
        1,
        [255, 200, 120],
    );
    draw::text(
        &mut img,
        height as i64 - 26,
        px,
        "Not for clinical use.",
        1,
        [255, 200, 120],
    );
    Ok(img)
}

/// Label text and position (top-left row, col on the canvas) per lesion, in the order given
/// (first priority first): each label goes right of its marker, else left, above or below,
/// wherever its box stays on the image and clear of the labels already placed; `None` when
/// there is no room (a crowded frame keeps every marker but only the labels that fit).
fn place_labels(
    lesions: &[&crate::model::LesionReport],
    at: &impl Fn((f64, f64)) -> (f64, f64),
    radius: f64,
    scale: u32,
    (h, w): (i64, i64),
) -> Vec<Option<(i64, i64, String)>> {
    let text_h = 8 * scale as i64;
    let mut boxes: Vec<(i64, i64, i64, i64)> = Vec::new(); // top, left, bottom, right
    let overlaps =
        |a: &(i64, i64, i64, i64), b: &(i64, i64, i64, i64)| a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3;
    lesions
        .iter()
        .map(|l| {
            let text = format!("{} {}", l.priority, l.lesion_type.as_str());
            let tw = draw::text_width(&text, scale);
            let (y, x) = at((l.site.row, l.site.col));
            let gap = radius + 2.0;
            let mid = (y - text_h as f64 / 2.0) as i64;
            let candidates = [
                (mid, (x + gap) as i64),
                (mid, (x - gap) as i64 - tw),
                ((y - gap) as i64 - text_h, (x - tw as f64 / 2.0) as i64),
                ((y + gap) as i64, (x - tw as f64 / 2.0) as i64),
            ];
            let spot = candidates.into_iter().find_map(|(row, col)| {
                let b = draw::label_box(row, col, &text, scale);
                let inside = b.0 >= 0 && b.1 >= 0 && b.2 <= h && b.3 <= w;
                (inside && !boxes.iter().any(|o| overlaps(o, &b))).then_some((row, col, b))
            })?;
            boxes.push(spot.2);
            Some((spot.0, spot.1, text))
        })
        .collect()
}

/// Render and write the overlay as PNG.
pub fn write_png(path: &Path, image: ArrayView2<f32>, report: &Report) -> Result<()> {
    let img = render(image, report)?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| ReportError::Encode {
            what: "overlay PNG",
            reason: format!("{}: {e}", path.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LesionReport;
    use crate::model::tests::sample;
    use ndarray::Array2;

    #[test]
    fn marks_lesions_and_vessels() {
        let image = Array2::<f32>::from_elem((64, 64), 100.0);
        let r = sample();
        let img = render(image.view(), &r).unwrap();
        let zoom = 768 / 64; // 12 -> clamped to 4
        assert_eq!(zoom.min(4), 4);
        assert_eq!(img.width(), 64 * 4 + PANEL_PX);
        // The ring marker of the lesion at (10, 30) is drawn in the ring colour.
        let c = lesion_color(LesionType::Ring);
        let cy = (10.5 * 4.0 - 0.5) as u32;
        let cx = (30.5 * 4.0 - 0.5) as u32;
        let hits = (cy - 40..cy + 40)
            .flat_map(|y| (cx - 40..cx + 40).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 == c)
            .count();
        assert!(hits > 50, "{hits}");
        // The vessel (3 mm of a 4 mm scale) is coloured, not grey, along its centerline.
        let p = img.get_pixel(20 * 4, (10.5 * 4.0) as u32).0;
        assert_ne!(p[0], p[1]);
    }

    #[test]
    fn labels_go_where_there_is_room_and_never_overlap() {
        let base = sample().lesions[0].clone();
        let at = |p: (f64, f64)| p;
        let lesion = |priority: u32, row: f64, col: f64| LesionReport {
            priority,
            site: crate::model::Site { row, col },
            ..base.clone()
        };
        // Six lesions on one spot: right, left, above and below of it hold four labels.
        let crowd: Vec<LesionReport> = (1..=6).map(|p| lesion(p, 100.0, 100.0)).collect();
        let refs: Vec<&LesionReport> = crowd.iter().collect();
        let placed = place_labels(&refs, &at, 7.0, 1, (200, 300));
        assert_eq!(placed.iter().filter(|x| x.is_some()).count(), 4);
        assert!(placed[4].is_none() && placed[5].is_none());
        let (row, col, ref text) = placed[0].clone().unwrap();
        assert_eq!(text, "1 ring");
        assert_eq!((row, col), (96, 109), "first priority right of its marker");
        let boxes: Vec<(i64, i64, i64, i64)> = placed
            .iter()
            .flatten()
            .map(|(r, c, t)| (*r, *c, r + 8, c + draw::text_width(t, 1)))
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                assert!(
                    !(a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3),
                    "{a:?} overlaps {b:?}"
                );
            }
        }
        // At the right edge the label goes to the left of its marker.
        let edge = [lesion(1, 50.0, 295.0)];
        let placed = place_labels(&[&edge[0]], &at, 7.0, 1, (200, 300));
        let (_, col, text) = placed[0].clone().unwrap();
        assert_eq!(col + draw::text_width(&text, 1), 295 - 9);
    }

    #[test]
    fn empty_image_is_an_error() {
        let image = Array2::<f32>::zeros((0, 5));
        assert!(render(image.view(), &sample()).is_err());
    }
}
