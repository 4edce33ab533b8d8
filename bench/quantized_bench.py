"""Post-processing of integer-output models: candidates chosen on the integers vs every output dequantized first.

Both variants run the whole Detector on the same images, alternating per image, so each post stage starts right
after its own inference (caches as cold as in a real loop); the detections must be equal on every image.

    python bench/quantized_bench.py --images ../shared/coco/val2017 --models yolo11n_tflite-int8/ --json q.json

A model with integer outputs: `edge-convert yolo11n.onnx --target tflite-int8 --calib DIR` (int8 in and out), or an
Ultralytics `*_full_integer_quant.tflite`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from prepost_bench import alternate, load_frames, summary  # noqa: E402

from edge import Detector  # noqa: E402


def measure(model: str, images: str, limit: int, rounds: int, warmup: int) -> dict:
    """Post stage p50 (each image's best round) of both variants, their ratio and how many images disagreed."""
    frames = load_frames(images, limit)
    selective = Detector.load(model)
    whole = Detector.load(model)
    whole._dequantize_whole = True  # the path before integer selection: every output value dequantized, then decode
    t: dict = {"integers": [], "whole": []}
    found: dict = {}

    def variant(name: str, detector: Detector):
        def run(i: int, keep: bool) -> None:
            found.setdefault(i, {})[name] = detector(frames[i])
            if keep:
                t[name].append(detector.timing_ms["postprocess"])
        return run

    alternate({"integers": variant("integers", selective), "whole": variant("whole", whole)}, len(frames), rounds,
              warmup, 0.0)
    ms = summary(t, len(frames))
    outputs = [f"{o.name} {o.dtype} {list(o.shape)}" for o in selective.backend.outputs]
    return {"model": model, "outputs": outputs, "images": len(frames), "rounds": rounds, "ms": ms,
            "ratio": ms["integers"]["best"] / ms["whole"]["best"],
            "images_with_different_detections": sum(r["integers"] != r["whole"] for r in found.values())}


def main(argv: Optional[list] = None) -> int:
    """Measure each model and print one line per model (and the JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="folder of .jpg/.png images (e.g. ../shared/coco/val2017)")
    ap.add_argument("--models", nargs="+", required=True, help="models or bundles with integer outputs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", metavar="PATH", help="also write the JSON result here")
    args = ap.parse_args(argv)
    results = [measure(m, args.images, args.limit, args.rounds, args.warmup) for m in args.models]
    print(f"{'model':<34}{'post, integers':>15}{'whole':>8}{'ratio':>7}{'differ':>8}   (ms, p50 of per-image best)")
    for r in results:
        ms = r["ms"]
        print(f"{Path(r['model']).name:<34}{ms['integers']['best']:>15.3f}{ms['whole']['best']:>8.3f}"
              f"{r['ratio']:>7.3f}{r['images_with_different_detections']:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
