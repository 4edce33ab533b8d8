"""Cost of bit-reproducible preprocessing: the Preprocessor with INTER_LINEAR (default) vs INTER_LINEAR_EXACT.

Both run alternately on the same frames in one process and the best time of each counts (a busy machine only
ever adds time); read the ratio, not the absolute numbers. OpenCV spreads INTER_LINEAR over threads, so
--cv-threads 1 shows the single-core cost:

    python bench/exact_resize.py --runs 300 [--cv-threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edge.contract import family_input  # noqa: E402
from edge.preprocess import Preprocessor  # noqa: E402

SIZES = {"1920x1080": (1080, 1920), "1640x1232": (1232, 1640), "1280x720": (720, 1280), "810x1080": (1080, 810)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--cv-threads", type=int, help="cv2.setNumThreads (default: OpenCV's own)")
    args = p.parse_args()
    if args.cv_threads:
        cv2.setNumThreads(args.cv_threads)
    spec = family_input("yolo11", "images", 640, 640, "NCHW", "float32")
    rng = np.random.default_rng(0)
    results = {}
    for name, hw in SIZES.items():
        frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        runs = {"linear": Preprocessor(spec, exact_resize=False), "linear_exact": Preprocessor(spec, exact_resize=True)}
        times = {k: [] for k in runs}
        for _ in range(args.runs):
            for k, pre in runs.items():
                t0 = time.perf_counter()
                pre(frame)
                times[k].append(time.perf_counter() - t0)
        ms = {k: min(v) * 1e3 for k, v in times.items()}
        results[name] = {**{f"{k}_ms": round(v, 3) for k, v in ms.items()},
                         "ratio": round(ms["linear_exact"] / ms["linear"], 2)}
        print(f"{name:>10}  INTER_LINEAR {ms['linear']:.2f} ms  INTER_LINEAR_EXACT {ms['linear_exact']:.2f} ms  "
              f"x{results[name]['ratio']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
