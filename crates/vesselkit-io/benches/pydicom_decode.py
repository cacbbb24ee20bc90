#!/usr/bin/env python3
"""Time pydicom (+ pylibjpeg) decoding every frame of a DICOM file (``ds.pixel_array``).

Usage: python pydicom_decode.py FILE [REPEATS]
Make FILE with: cargo run --release -p vesselkit-io --example write_bench_cine -- FILE
Writes nothing; prints the median and best wall time in ms.
"""
import statistics
import sys
import time

import pydicom


def main() -> None:
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    times = []
    shape = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        times.append((time.perf_counter() - t0) * 1000.0)
        shape = arr.shape
    print(f"pydicom {pydicom.__version__} decode of {shape} from {ds.file_meta.TransferSyntaxUID.name}: "
          f"median {statistics.median(times):.1f} ms, best {min(times):.1f} ms over {repeats} runs")


if __name__ == "__main__":
    main()
