//! Cross-check on the `vesselkit-phantom` OCT generator (ray-marched speckle, guidewire, webs).

use vesselkit_oct::{OctOptions, contour_mask, dice, oct_lumen};
use vesselkit_phantom::{OctParams, generate_oct_frame};

#[test]
fn phantom_frames_dice_area_and_two_channel_webs() {
    for (channels, seed) in [(1u8, 0u64), (1, 1), (2, 2), (2, 3)] {
        let p = OctParams {
            channels,
            lumen_diameter_mm: 3.4,
            ..Default::default()
        };
        let ph = generate_oct_frame(&p, seed).unwrap();
        let truth = contour_mask(&ph.truth.frame.lumen_contour, p.cart_size, p.cart_size);
        let o = OctOptions {
            mm_per_px: p.cart_mm_per_px(),
            ..Default::default()
        };
        let r = oct_lumen(ph.cartesian.view(), &o).unwrap();
        let d = dice(&r.lumen_mask(p.cart_size, p.cart_size), &truth);
        let e = (r.metrics.area_mm2 - ph.truth.frame.outline_area_mm2).abs() / ph.truth.frame.outline_area_mm2;
        assert!(d >= 0.98, "channels {channels} seed {seed}: dice {d}");
        assert!(e <= 0.02, "channels {channels} seed {seed}: area error {e}");
        assert_eq!(r.n_channels(), channels as usize, "seed {seed}");
    }
}
