//! Full analysis of one 1024x1024 frame and of a 60-frame 512x512 cine (synthetic trees), and
//! the cine's peak-opacification image (alone, and with the subtracted image the facade reads
//! refills on), and the DCA1-sized segmentation with and without the learned mask.

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array3, Axis};
use std::hint::black_box;
use vesselkit_angio::{
    AngioOptions, LearnedMask, SegmentOptions, analyze_cine, analyze_view, peak_and_subtracted_opacification,
    peak_opacification,
};
use vesselkit_core::{Calibration, Cine};

#[path = "common/bench_tree.rs"]
mod bench_tree;
use bench_tree::synthetic;

fn bench(c: &mut Criterion) {
    let img = synthetic(1024, 1.0);
    let cal = Calibration::user(0.2).unwrap_or_default();
    let opts = AngioOptions::default();
    c.bench_function("analyze_frame_1024", |b| {
        b.iter(|| analyze_view(black_box(img.view()), &cal, &opts))
    });

    // A DCA1-sized frame (300 x 300): the preset's filters, then the same with the U-Net mask.
    let small = synthetic(300, 1.0);
    let filters = SegmentOptions::dca1();
    c.bench_function("segment_300_filters", |b| {
        b.iter(|| vesselkit_angio::segment(black_box(small.view()), &filters))
    });
    let learned = SegmentOptions {
        learned: LearnedMask::dca1().ok(),
        ..SegmentOptions::dca1()
    };
    c.bench_function("segment_300_unet", |b| {
        b.iter(|| vesselkit_angio::segment(black_box(small.view()), &learned))
    });

    let nf = 60;
    let mut frames = Array3::<f32>::zeros((nf, 512, 512));
    for f in 0..nf {
        let fill = ((f as f32 - 10.0) / 15.0).clamp(0.0, 1.0);
        frames.index_axis_mut(Axis(0), f).assign(&synthetic(512, fill));
    }
    let times: Vec<f64> = (0..nf).map(|i| i as f64 * 66.7).collect();
    let Ok(cine) = Cine::new(frames, Calibration::user(0.3).unwrap_or_default(), times) else {
        return;
    };
    c.bench_function("analyze_cine_60x512", |b| {
        b.iter(|| analyze_cine(black_box(&cine), &opts))
    });
    // The mask from the best frame alone (no registered mean, no second pass).
    let mut single = opts.clone();
    single.flow.mask_mean_half_width = 0;
    c.bench_function("analyze_cine_60x512_single_frame_mask", |b| {
        b.iter(|| analyze_cine(black_box(&cine), &single))
    });
    let shifts: Vec<(f64, f64)> = (0..nf).map(|i| ((i % 5) as f64 - 2.0, (i % 3) as f64 - 1.0)).collect();
    let polarity = opts.segment.vesselness.polarity;
    c.bench_function("peak_opacification_60x512", |b| {
        b.iter(|| peak_opacification(black_box(cine.frames.view()), &shifts, polarity))
    });
    c.bench_function("peak_and_subtracted_opacification_60x512", |b| {
        b.iter(|| peak_and_subtracted_opacification(black_box(cine.frames.view()), &shifts, polarity))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
