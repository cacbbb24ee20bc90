#!/usr/bin/env python3
"""Time 4-scale Frangi vesselness: scikit-image vs vesselkit on the same synthetic 1024x1024 image.

Usage: python benches/vesselness_vs_skimage.py [--size 1024] [--repeat 5]
Prints the best wall time per call of each (vesselkit Frangi and Jerman, threads from
VESSELKIT_NUM_THREADS or all cores), the speed ratio against the issue 4 targets (at most 25 ms,
at least 50x), and the correlation of the outputs on a case where scikit-image is right (clean
dark tubes). vesselkit is skipped when not importable. Note the machine load: timings are wall
clock.
"""
import argparse
import os
import time

import numpy as np


def synthetic(n: int, noise: bool = True) -> np.ndarray:
    """Dark Beer-Lambert tubes of radius 1.5..6.4 px on a smooth bright background."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    img = 200.0 + 20.0 * np.sin(x / 200.0) * np.cos(y / 300.0)
    for k in range(8):
        centre = 60.0 + 120.0 * k * n / 1024 + 25.0 * np.sin(x / (80.0 + 10.0 * k))
        radius = 1.5 + 0.7 * k
        d = np.abs(y - centre)
        chord = np.where(d < radius, 2.0 * np.sqrt(np.maximum(radius**2 - d**2, 0.0)), 0.0)
        img = img - 3.0 * chord
    if noise:
        img = img + np.random.default_rng(0).normal(0.0, 1.0, img.shape)
    return img.astype(np.float32)


def best_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sigmas = [1, 2, 3, 4]
    img = synthetic(args.size)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    from skimage.filters import frangi

    sk_ms = best_ms(lambda: frangi(img, sigmas=sigmas, black_ridges=True), args.repeat)
    print(f"skimage.filters.frangi   {sk_ms:9.1f} ms  ({args.size}x{args.size}, sigmas {sigmas})")
    try:
        import vesselkit
    except ImportError:
        print("vesselkit not importable: skipped (build the Python bindings to compare)")
        return
    vk_ms = best_ms(lambda: vesselkit.vesselness(img, sigmas=sigmas, method="frangi"), args.repeat)
    jerman_ms = best_ms(lambda: vesselkit.vesselness(img, sigmas=sigmas, method="jerman"), args.repeat)
    print(f"vesselkit.vesselness     {vk_ms:9.1f} ms  (frangi; target <= 25 ms)")
    print(f"vesselkit.vesselness     {jerman_ms:9.1f} ms  (jerman)")
    print(f"speed-up                 {sk_ms / vk_ms:9.1f} x  (frangi vs frangi; target >= 50 x)")

    clean = synthetic(256, noise=False)
    a = frangi(clean, sigmas=sigmas, black_ridges=True)
    out = vesselkit.vesselness(clean, sigmas=sigmas, method="frangi")
    b = out[0] if isinstance(out, tuple) else out
    b = np.asarray(b, dtype=np.float64)
    r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    print(f"correlation with skimage on clean tubes: {r:.3f}")


if __name__ == "__main__":
    main()
