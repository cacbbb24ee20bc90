//! 4-scale vesselness on a synthetic 1024x1024 angiogram-like image: the default sampling
//! (sigma >= 2 on the 2x decimated grid) and, for Frangi, the exact full-resolution path.

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use std::hint::black_box;
use vesselkit_filters::{Method, SamplingOptions, VesselnessOptions, vesselness, vesselness_with_sampling};

/// Dark curved tubes of several radii on a smooth bright background with mild texture.
fn synthetic(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(r, c)| {
        let (y, x) = (r as f32, c as f32);
        let mut v = 200.0 + 20.0 * (x / 200.0).sin() * (y / 300.0).cos();
        for k in 0..8 {
            let centre = 60.0 + 120.0 * k as f32 + 25.0 * (x / (80.0 + 10.0 * k as f32)).sin();
            let radius = 1.5 + k as f32 * 0.7;
            let d = (y - centre).abs();
            if d < radius {
                v -= 0.3 * 2.0 * (radius * radius - d * d).sqrt() * 10.0;
            }
        }
        v + ((r * 7919 + c * 104_729) % 13) as f32 * 0.5
    })
}

fn bench(c: &mut Criterion) {
    let img = synthetic(1024);
    for (name, method) in [("frangi", Method::Frangi), ("jerman", Method::Jerman)] {
        let opts = VesselnessOptions {
            sigmas_px: vec![1.0, 2.0, 3.0, 4.0],
            method,
            ..Default::default()
        };
        c.bench_function(&format!("vesselness_{name}_1024_4scales"), |b| {
            b.iter(|| vesselness(black_box(img.view()), &opts))
        });
        if method == Method::Frangi {
            let exact = SamplingOptions::exact();
            c.bench_function("vesselness_frangi_1024_4scales_exact", |b| {
                b.iter(|| vesselness_with_sampling(black_box(img.view()), &opts, &exact))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
