//! The synthetic vessel tree shared by `benches/analyze.rs` and `examples/stage_time.rs`.

use ndarray::Array2;

/// Dark Beer-Lambert vessel tree: a trunk with branches of decreasing radius, mild texture.
pub fn synthetic(n: usize, fill: f32) -> Array2<f32> {
    let s = n as f32 / 1024.0;
    // (start (row, col), end (row, col), radius px) in 1024-px coordinates.
    type Seg = ((f32, f32), (f32, f32), f32);
    let segs: Vec<Seg> = vec![
        ((0.0, 500.0), (400.0, 480.0), 9.0),
        ((400.0, 480.0), (700.0, 250.0), 7.0),
        ((400.0, 480.0), (750.0, 700.0), 6.5),
        ((700.0, 250.0), (1023.0, 150.0), 5.0),
        ((700.0, 250.0), (950.0, 420.0), 4.0),
        ((750.0, 700.0), (1000.0, 650.0), 4.5),
        ((750.0, 700.0), (980.0, 950.0), 3.5),
        ((200.0, 490.0), (120.0, 900.0), 3.0),
    ];
    Array2::from_shape_fn((n, n), |(r, c)| {
        let (y, x) = (r as f32 / s, c as f32 / s);
        let mut chord: f32 = 0.0;
        for &((r0, c0), (r1, c1), rad) in &segs {
            let (dr, dc) = (r1 - r0, c1 - c0);
            let u = (((y - r0) * dr + (x - c0) * dc) / (dr * dr + dc * dc)).clamp(0.0, 1.0);
            let d = (y - r0 - u * dr).hypot(x - c0 - u * dc);
            if d < rad {
                chord = chord.max(2.0 * (rad * rad - d * d).sqrt() * s);
            }
        }
        let bg = 1000.0 + 80.0 * (x / 300.0).sin() * (y / 400.0).cos();
        bg * (-0.03 * fill * chord).exp() + ((r * 7919 + c * 104_729) % 17) as f32
    })
}
