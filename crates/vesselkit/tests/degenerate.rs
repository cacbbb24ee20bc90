//! Degenerate frames through the whole chain: tiny, thin, flat, extreme and random images,
//! calibrated and not, with the filters and with the learned mask. Frames of at least 3 x 3
//! finite pixels whose range f32 can hold give a report; the rest give an error that names the
//! problem. Panics are caught, so a failure lists every frame and setting that went wrong.

use ndarray::Array2;
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};
use vesselkit::{Options, analyze_frame};
use vesselkit_angio::LearnedMask;
use vesselkit_core::{Calibration, Frame};

/// What a frame should give: a report, or an error containing this text.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Report,
    Error(&'static str),
}

/// Run the chain on `img` uncalibrated and at 0.2 mm/px, with the filters and the model; every
/// outcome that differs from `want` (a panic included), named.
fn check(name: &str, img: &Array2<f32>, want: Expect) -> Vec<String> {
    let mut wrong = Vec::new();
    let learned = LearnedMask::dca1().expect("bundled model");
    for cal in [Calibration::uncalibrated(), Calibration::user(0.2).expect("scale")] {
        let frame = Frame::new(img.clone(), cal.clone()).expect("finite, non-empty frame");
        for with_model in [false, true] {
            let mut opts = Options::default();
            if with_model {
                opts.angio.segment.learned = Some(learned.clone());
            }
            let setting = format!("{name} ({}, model {with_model})", cal.source);
            let run = catch_unwind(AssertUnwindSafe(|| analyze_frame(&frame, &opts).map(|_| ())));
            match (run, want) {
                (Err(panic), _) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    wrong.push(format!("{setting}: panicked: {msg}"));
                }
                (Ok(Ok(())), Expect::Report) => {}
                (Ok(Err(e)), Expect::Error(text)) if e.to_string().contains(text) => {}
                (Ok(got), _) => wrong.push(format!("{setting}: wanted {want:?}, got {got:?}")),
            }
        }
    }
    wrong
}

#[test]
fn degenerate_frames_give_reports_or_named_errors() {
    let mut cases: Vec<(String, Array2<f32>, Expect)> = Vec::new();
    let too_small = Expect::Error("too small (need 3 x 3)");
    for (r, c, want) in [
        (1, 1, too_small),
        (1, 2, too_small),
        (2, 2, too_small),
        (1, 300, too_small),
        (300, 1, too_small),
        (2, 200, too_small),
        (3, 3, Expect::Report),
        (200, 3, Expect::Report),
        (5, 5, Expect::Report),
        (7, 64, Expect::Report),
    ] {
        cases.push((format!("flat {r}x{c}"), Array2::from_elem((r, c), 100.0), want));
        let ramp = Array2::from_shape_fn((r, c), |(i, j)| (i * 7 + j * 3) as f32);
        cases.push((format!("ramp {r}x{c}"), ramp, want));
    }
    cases.push(("zeros".into(), Array2::zeros((64, 64)), Expect::Report));
    let mut dot = Array2::from_elem((64, 64), 200.0);
    dot[[32, 32]] = 0.0;
    cases.push(("one dark pixel".into(), dot, Expect::Report));
    let board = Array2::from_shape_fn((64, 64), |(i, j)| if (i + j) % 2 == 0 { 0.0 } else { 255.0 });
    cases.push(("checkerboard".into(), board, Expect::Report));
    let stripes = Array2::from_shape_fn((64, 64), |(_, j)| if j % 6 < 2 { 20.0 } else { 220.0 });
    cases.push(("stripes".into(), stripes, Expect::Report));
    for (label, v) in [
        ("huge", f32::MAX),
        ("tiny", f32::MIN_POSITIVE),
        ("negative huge", f32::MIN),
    ] {
        cases.push((format!("{label} flat"), Array2::from_elem((48, 48), v), Expect::Report));
        let line = Array2::from_shape_fn((48, 48), |(i, _)| if i == 24 { 0.0 } else { v });
        cases.push((format!("{label} with a dark line"), line, Expect::Report));
    }
    // Finite pixels whose differences are not: refused up front, not reported as an inf pixel
    // of some intermediate map.
    let full = Array2::from_shape_fn(
        (48, 48),
        |(i, j)| if (i / 8 + j / 8) % 2 == 0 { f32::MIN } else { f32::MAX },
    );
    cases.push(("full range".into(), full, Expect::Error("a range f32 cannot hold")));
    let wrong: Vec<String> = cases.iter().flat_map(|(n, img, want)| check(n, img, *want)).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong outcomes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random small frames, at scales from 1e-30 to 1e30: a report whenever the frame is at
    /// least 3 x 3, the size error otherwise.
    #[test]
    fn random_small_frames_give_reports(
        rows in 1usize..48,
        cols in 1usize..48,
        seed in any::<u64>(),
        scale_exp in -30i32..30,
    ) {
        let mut s = seed | 1;
        let scale = 10f32.powi(scale_exp);
        let img = Array2::from_shape_fn((rows, cols), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 1000) as f32 * scale
        });
        let want = if rows < 3 || cols < 3 { Expect::Error("too small (need 3 x 3)") } else { Expect::Report };
        let wrong = check("random", &img, want);
        prop_assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
