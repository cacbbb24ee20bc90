//! Speed of one 750x750 frame, of a four-channel web frame and of a 270-frame pullback
//! (synthetic frames; real frames from `shared/data/ivoct-pullback` are timed by the
//! `ivoct_eval` example).

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array3, Axis};
use std::hint::black_box;
use vesselkit_oct::synthetic::{SeptumSpec, SyntheticSpec};
use vesselkit_oct::{OctOptions, PullbackOptions, oct_lumen, oct_pullback};

const MM: f64 = 1.0 / 149.4;

fn spec(i: u64) -> SyntheticSpec {
    SyntheticSpec {
        lumen_offset_mm: (0.1, -0.15),
        lumen_radius_mm: 1.2 + 0.2 * ((i as f64) * 0.1).sin(),
        harmonics: vec![(2, 0.12, 0.3), (3, 0.05, 1.0)],
        guidewire_angle: Some(1.0),
        septa: if i.is_multiple_of(10) {
            vec![SeptumSpec {
                normal_angle: 0.5,
                offset_mm: 0.6,
                thickness_mm: 0.08,
            }]
        } else {
            vec![]
        },
        seed: i,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let opts = OctOptions {
        mm_per_px: MM,
        ..Default::default()
    };
    let (frame, _) = spec(3).cartesian(750, MM);
    c.bench_function("oct_lumen 750x750", |b| {
        b.iter(|| oct_lumen(black_box(frame.view()), &opts))
    });

    // A four-channel web (phantom, 512x512): septa found, sized on the image and left out.
    let mut wp = vesselkit_phantom::OctParams {
        channels: 4,
        ..Default::default()
    };
    wp.lumen_diameter_mm = wp.lumen_diameter_mm.max(4.0 * wp.catheter_radius_mm + 0.8);
    if let Ok(web) = vesselkit_phantom::generate_oct_frame(&wp, 4005) {
        let wo = OctOptions {
            mm_per_px: wp.cart_mm_per_px(),
            ..Default::default()
        };
        c.bench_function("oct_lumen web 512x512 (4 channels)", |b| {
            b.iter(|| oct_lumen(black_box(web.cartesian.view()), &wo))
        });
    }

    let n = 270;
    let base: Vec<_> = (0..10).map(|i| spec(i).cartesian(750, MM).0).collect();
    let mut frames = Array3::<f32>::zeros((n, 750, 750));
    for i in 0..n {
        frames.index_axis_mut(Axis(0), i).assign(&base[i % base.len()]);
    }
    let p = PullbackOptions {
        frame_spacing_mm: 0.2,
        frame: opts.clone(),
        ..Default::default()
    };
    let mut g = c.benchmark_group("pullback");
    g.sample_size(10);
    g.bench_function("oct_pullback 270 x 750x750", |b| {
        b.iter(|| oct_pullback(black_box(frames.view()), &p))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
