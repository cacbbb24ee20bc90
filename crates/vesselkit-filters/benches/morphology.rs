//! Background closing of a 1024x1024 frame with a 21x21 square (the segmentation's default
//! full-resolution top-hat window).

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use std::hint::black_box;
use vesselkit_filters::{Polarity, morphological_background};

fn bench(c: &mut Criterion) {
    let img = Array2::from_shape_fn((1024, 1024), |(r, c)| ((r * 7919 + c * 104_729) % 1009) as f32);
    c.bench_function("closing_1024_r10", |b| {
        b.iter(|| morphological_background(black_box(img.view()), 10, Polarity::DarkOnBright))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
