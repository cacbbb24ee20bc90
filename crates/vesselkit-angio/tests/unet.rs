//! The learned segmenter: the Rust forward pass against the training code's own logits, and
//! typed errors for bad weight files and frames.

use ndarray::Array2;
use vesselkit_angio::{AngioError, UnetModel};

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `tests/data/unet_golden.bin`: a 23 x 18 frame, the model's further input planes, and the
/// logits `scripts/train_unet.py --golden` computed for them with the embedded model (JAX,
/// standardised, padded to 24 x 20).
#[test]
fn logits_match_the_training_code() {
    let m = UnetModel::dca1().unwrap();
    let n = 23 * 18;
    let v = floats(include_bytes!("data/unet_golden.bin"));
    assert_eq!(v.len(), (m.inputs() + 1) * n);
    let plane = |i: usize| Array2::from_shape_vec((23, 18), v[i * n..(i + 1) * n].to_vec()).unwrap();
    let img = plane(0);
    let extra: Vec<Array2<f32>> = (1..m.inputs()).map(plane).collect();
    let views: Vec<_> = extra.iter().map(|e| e.view()).collect();
    let want = plane(m.inputs());
    let got = m.logits_with(img.view(), &views).unwrap();
    assert_eq!(got.dim(), (23, 18));
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(scale > 0.1, "golden logits are all near zero ({scale})");
    assert!(err < 1e-4 * scale.max(1.0), "max |logit error| {err} (scale {scale})");
    // The wrong number or size of planes is a typed error.
    let short = &views[..views.len().saturating_sub(1)];
    if m.inputs() > 1 {
        assert!(
            m.logits_with(img.view(), short)
                .unwrap_err()
                .to_string()
                .contains("input planes")
        );
        let small = Array2::<f32>::zeros((5, 5));
        let mut wrong = views.clone();
        wrong[0] = small.view();
        assert!(
            m.logits_with(img.view(), &wrong)
                .unwrap_err()
                .to_string()
                .contains("plane 1")
        );
    }
}

#[test]
fn bad_weight_files_and_frames_are_typed_errors() {
    let good = include_bytes!("../models/unet_dca1.bin");
    let msg = |b: &[u8]| match UnetModel::from_bytes(b) {
        Err(AngioError::Invalid { field, reason }) => {
            assert_eq!(field, "unet weights");
            reason
        }
        other => panic!("expected an invalid-weights error, got {other:?}"),
    };
    assert!(msg(&good[..good.len() - 3]).contains("truncated"));
    assert!(msg(&good[..5]).contains("truncated"));
    let mut b = good.to_vec();
    b[0] = b'X';
    assert!(msg(&b).contains("magic"));
    let mut b = good.to_vec();
    b.push(0);
    let m = msg(&b);
    assert!(m.contains("network 2") && m.contains("truncated"), "{m}");
    let mut b = good.to_vec();
    b[8..12].copy_from_slice(&7u32.to_le_bytes());
    assert!(msg(&b).contains("needs"), "{}", msg(&b));
    let mut b = good.to_vec();
    b[28..32].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(msg(&b).contains("non-finite"));
    assert_eq!(
        UnetModel::from_bytes(good).unwrap().channels(),
        UnetModel::dca1().unwrap().channels()
    );

    let m = UnetModel::dca1().unwrap();
    let mut img = Array2::from_elem((16, 16), 1.0f32);
    img[[3, 4]] = f32::NAN;
    let planes = vec![Array2::<f32>::zeros((16, 16)); m.inputs() - 1];
    let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
    assert!(matches!(
        m.logits_with(img.view(), &views),
        Err(AngioError::Invalid { field: "image", .. })
    ));
    assert!(matches!(
        m.logits_with(Array2::zeros((2, 9)).view(), &[]),
        Err(AngioError::Invalid { .. })
    ));
    // A flat frame standardises to zeros: finite output, no division by zero.
    let flat = Array2::from_elem((16, 16), 5.0);
    assert!(
        m.logits_with(flat.view(), &views)
            .unwrap()
            .iter()
            .all(|p| p.is_finite())
    );
}

/// A dark bar of radius 3 px (the size of a DCA1 vessel) across a bright, noisy, sloping
/// background, and its true mask.
fn bar_frame() -> (Array2<f32>, Array2<bool>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (h, w) = (96, 80);
    let truth = Array2::from_shape_fn((h, w), |(r, c)| {
        // the line r = 0.5 c + 20
        let d = (r as f64 - 0.5 * c as f64 - 20.0).abs() / (1.0f64 + 0.25).sqrt();
        d <= 3.0
    });
    let img = Array2::from_shape_fn((h, w), |(r, c)| {
        let d = (r as f64 - 0.5 * c as f64 - 20.0).abs() / (1.0f64 + 0.25).sqrt();
        let depth = 2.0 * (9.0 - d * d).max(0.0).sqrt(); // path length through the lumen
        (150.0 + 0.3 * c as f64 - 12.0 * depth + rng.random_range(-6.0..6.0)) as f32
    });
    (img, truth)
}

#[test]
fn learned_mask_finds_a_plain_vessel_in_either_polarity() {
    use vesselkit_angio::{LearnedMask, SegmentOptions, dice, segment};
    use vesselkit_filters::Polarity;
    let (img, truth) = bar_frame();
    let opts = SegmentOptions {
        learned: Some(LearnedMask::dca1().unwrap()),
        ..SegmentOptions::dca1()
    };
    let dark = segment(img.view(), &opts).unwrap();
    let d = dice(&dark.mask, &truth);
    assert!(d > 0.8, "Dice {d:.3} on a plain bar");
    // The filter maps still come with the learned mask.
    assert!(dark.vesselness.iter().any(|&v| v > 0.0));
    let mut bright = opts.clone();
    bright.vesselness.polarity = Polarity::BrightOnDark;
    let inverted = img.mapv(|v| 300.0 - v);
    let flipped = segment(inverted.view(), &bright).unwrap();
    // The model sees the same standardised frame; the filter maps of the inverted frame (its
    // own background and noise estimates) may differ by rounding.
    let agree = dice(&flipped.mask, &dark.mask);
    assert!(
        agree > 0.98,
        "bright-vessel mask agrees with the dark one at Dice {agree:.3}"
    );

    for t in [0.0, 1.0, f32::NAN] {
        let bad = SegmentOptions {
            learned: Some(LearnedMask {
                threshold: t,
                ..LearnedMask::dca1().unwrap()
            }),
            ..SegmentOptions::default()
        };
        let e = segment(img.view(), &bad).unwrap_err().to_string();
        assert!(e.contains("learned.threshold"), "{e}");
    }
}

/// A weight file of one network of `levels` levels, base width 1, on `inputs` planes: every
/// weight zero and the head's bias `head_bias`, so its logit is `head_bias` everywhere.
fn flat_net(levels: usize, inputs: usize, head_bias: f32) -> Vec<u8> {
    let mut shapes = Vec::new(); // (in, out, k)
    for i in 0..levels {
        shapes.extend([
            (if i == 0 { inputs } else { 1 << (i - 1) }, 1 << i, 3),
            (1 << i, 1 << i, 3),
        ]);
    }
    for i in (0..levels - 1).rev() {
        shapes.extend([((1 << (i + 1)) + (1 << i), 1 << i, 3), (1 << i, 1 << i, 3)]);
    }
    shapes.push((1, 1, 1));
    let mut b = b"VKUNET01".to_vec();
    b.extend(1u32.to_le_bytes());
    b.extend((shapes.len() as u32).to_le_bytes());
    for (i, &(cin, cout, k)) in shapes.iter().enumerate() {
        for v in [cout, cin, k] {
            b.extend((v as u32).to_le_bytes());
        }
        b.extend(vec![0u8; 4 * cout * cin * k * k]);
        let bias = if i + 1 == shapes.len() { head_bias } else { 0.0 };
        for _ in 0..cout {
            b.extend(bias.to_le_bytes());
        }
    }
    b
}

#[test]
fn levels_come_from_the_layer_count_and_ensembles_average_probabilities() {
    // Two and four levels: any frame size is padded to the coarsest stride and cropped back.
    for levels in [2, 4] {
        let m = UnetModel::from_bytes(&flat_net(levels, 1, 0.7)).unwrap();
        assert_eq!((m.levels(), m.members(), m.inputs()), (levels, 1, 1));
        let z = m.logits(Array2::from_elem((13, 7), 3.0f32).view()).unwrap();
        assert_eq!(z.dim(), (13, 7));
        assert!(z.iter().all(|&v| (v - 0.7).abs() < 1e-6), "{z:?}");
    }
    // Two members of constant logits 2 and -1: the logit of their mean probability.
    let mut pair = flat_net(3, 1, 2.0);
    pair.extend(flat_net(2, 1, -1.0));
    let m = UnetModel::from_bytes(&pair).unwrap();
    assert_eq!(m.members(), 2);
    let p = (1.0 / (1.0 + (-2.0f32).exp()) + 1.0 / (1.0 + 1.0f32.exp())) / 2.0;
    let z = m.logits(Array2::from_elem((9, 9), 1.0f32).view()).unwrap();
    assert!(z.iter().all(|&v| (v - (p / (1.0 - p)).ln()).abs() < 1e-5), "{z:?}");

    // The embedded model twice over gives its own probabilities.
    let good = include_bytes!("../models/unet_dca1.bin");
    let twice = UnetModel::from_bytes(&[&good[..], &good[..]].concat()).unwrap();
    let one = UnetModel::dca1().unwrap();
    assert_eq!(twice.members(), 2 * one.members());
    let (img, _) = bar_frame();
    let planes = vec![Array2::<f32>::from_elem(img.dim(), 0.5); one.inputs() - 1];
    let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
    let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
    let (a, b) = (
        one.logits_with(img.view(), &views).unwrap(),
        twice.logits_with(img.view(), &views).unwrap(),
    );
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((sig(*x) - sig(*y)).abs()));
    assert!(worst < 1e-5, "probabilities differ by {worst}");

    // Members must take the same inputs; the layer count must be 4 * levels - 1.
    let mixed = [&good[..], &flat_net(2, 1, 0.0)[..]].concat();
    let e = UnetModel::from_bytes(&mixed).unwrap_err().to_string();
    assert!(e.contains("takes 1 inputs"), "{e}");
    let mut b = flat_net(2, 1, 0.0);
    b[12..16].copy_from_slice(&6u32.to_le_bytes());
    let e = UnetModel::from_bytes(&b).unwrap_err().to_string();
    assert!(e.contains("4 * levels - 1"), "{e}");
}
