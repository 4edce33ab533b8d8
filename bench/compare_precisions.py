"""Side-by-side latency of several bundles of one model (fp32, fp16, int8; ONNX Runtime or TFLite).

All models are loaded in one process and run alternately on the same frames, so a noisy shared machine
slows them alike; read the ratios against the first bundle, not the absolute numbers:

    python bench/compare_precisions.py bundles/yolo11n-onnx bundles/yolo11n-onnx-int8 --images val2017 --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edge import Detector  # noqa: E402
from edge.images import list_images  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", help="bundles or model files; the first is the baseline")
    p.add_argument("--images", help="frames to cycle over (default: one synthetic 1280x720 frame)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--threads", type=int, help="backend threads (default: the backend's own)")
    args = p.parse_args()
    detectors = [Detector.load(b, threads=args.threads) for b in args.bundles]
    frames = [cv2.imread(f) for f in list_images(args.images)][:50] if args.images else \
        [np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)]
    for d in detectors:  # warm up
        for frame in frames[:5]:
            d(frame)
    inference = [[] for _ in detectors]
    total = [[] for _ in detectors]
    for i in range(args.runs):
        for k, d in enumerate(detectors):
            d(frames[i % len(frames)])
            inference[k].append(d.timing_ms["inference"])
            total[k].append(sum(d.timing_ms.values()))
    base_inf, base_total = statistics.median(inference[0]), statistics.median(total[0])
    print(f"{'model':<44}{'backend':<13}{'precision':<10}{'inference ms':>13}{'speedup':>9}{'total ms':>10}{'speedup':>9}")
    for name, d, inf, tot in zip(args.bundles, detectors, inference, total):
        mi, mt = statistics.median(inf), statistics.median(tot)
        print(f"{name[-43:]:<44}{d.backend.name:<13}{d.contract.precision or d.contract.input.dtype:<10}"
              f"{mi:>13.2f}{base_inf / mi:>8.2f}x{mt:>10.2f}{base_total / mt:>8.2f}x")


if __name__ == "__main__":
    main()
