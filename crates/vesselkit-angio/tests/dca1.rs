//! Regression on real coronary angiograms (DCA1 subset); skips when the data are absent.

#[path = "common/dca1_data.rs"]
mod dca1_data;

use dca1_data::load_gray;
use vesselkit_angio::{SegmentOptions, dice, segment};

#[test]
fn dca1_train_dice() {
    let Some(dir) = dca1_data::default_dir().map(|d| d.join("train")) else {
        eprintln!("skipping: ../shared/data/xca-dca1-subset not found");
        return;
    };
    // The first 8 training images; the whole train set averages 0.642, test 0.679.
    let mut scores = Vec::new();
    for n in 1..=8 {
        let img = load_gray(&dir.join(format!("{n}.png"))).unwrap();
        let gt = load_gray(&dir.join(format!("{n}_gt.png"))).unwrap().mapv(|v| v > 127.0);
        let seg = segment(img.view(), &SegmentOptions::dca1()).unwrap();
        scores.push(dice(&seg.mask, &gt));
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    eprintln!("DCA1 train 1-8 Dice {scores:.3?} mean {mean:.3}");
    assert!(mean > 0.55, "mean Dice {mean:.3}");
}

#[test]
fn dca1_test_dice_with_the_learned_mask() {
    use vesselkit_angio::LearnedMask;
    let Some(dir) = dca1_data::default_dir().map(|d| d.join("test")) else {
        eprintln!("skipping: ../shared/data/xca-dca1-subset not found");
        return;
    };
    // Every fourth test image (no choice was made on `test`); the filters are the floor.
    let learned = SegmentOptions {
        learned: Some(LearnedMask::dca1().unwrap()),
        ..SegmentOptions::dca1()
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in (1..=40).step_by(4) {
        let img = load_gray(&dir.join(format!("{n}.png"))).unwrap();
        let gt = load_gray(&dir.join(format!("{n}_gt.png"))).unwrap().mapv(|v| v > 127.0);
        with.push(dice(&segment(img.view(), &learned).unwrap().mask, &gt));
        without.push(dice(&segment(img.view(), &SegmentOptions::dca1()).unwrap().mask, &gt));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (w, f) = (mean(&with), mean(&without));
    eprintln!("DCA1 test (every 4th): U-Net mask {w:.3}, filters {f:.3}");
    assert!(w > 0.74 && w > f + 0.04, "U-Net {w:.3}, filters {f:.3}");
}
