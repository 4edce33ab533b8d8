"""The accuracy cost of a converted model: mAP through the real runtime path, versus its fp32 source."""
from __future__ import annotations

import json
import os
from typing import Callable, Optional, cast

import numpy as np

from edge import Detector
from edge.bench import bench
from edge.bundle import read_bundle
from edge.contract import Contract
from edge.errors import EdgeError
from edge.evaluate import coco_map, evaluate
from edge.images import list_images
from edge.progress import Progress

from . import ConvertError
from .calibration import evenly

REPORT = "accuracy.json"
WORST_CLASSES = 5
BENCH_RUNS = 30


def measure(model: str, contract: Contract, images: str, annotations: str, label: Optional[str] = None) -> dict:
    """mAP50-95/mAP50 (COCO metric, Ultralytics val thresholds), per-class AP, latency and size of one model."""
    try:
        detector = Detector.load(model, family=contract.family, names=contract.names, conf=0.001, iou=0.7,
                                 multi_label=True)
        result = evaluate_with_progress(detector, images, annotations, label or os.path.basename(model))
        timing = bench(model, runs=BENCH_RUNS, warmup=3, family=contract.family, names=contract.names)
    except EdgeError as e:
        raise ConvertError(f"--val: cannot evaluate {model}: {e}") from None
    path = read_bundle(model).model_path if os.path.isdir(model) else model
    return {"map50_95": result["map50_95"], "map50": result["map50"], "per_class": result["per_class"],
            "images": result["images"], "latency_ms": timing["latency_ms"]["inference"]["p50"],
            "size_mb": round(os.path.getsize(path) / 1e6, 2)}


def map_scorer(fp32_path: str, contract: Contract, images: str, annotations: str) -> tuple:
    """(fp32 mAP50-95, score(model path) -> mAP50-95) on an annotated validation folder."""
    def score(path: str) -> float:
        detector = Detector.load(path, family=contract.family, names=contract.names, conf=0.001, iou=0.7,
                                 multi_label=True)
        return evaluate_with_progress(detector, images, annotations, os.path.basename(path))["map50_95"]

    return score(fp32_path), score


def evaluate_with_progress(detector: Detector, images: str, annotations: str, label: str) -> dict:
    """edge.evaluate.evaluate, counting the images on a Progress (total: the images in the folder)."""
    with Progress(f"validation {label}", len(list_images(images))) as progress:
        return evaluate(cast(Detector, _Counting(detector, progress.update)), images, annotations)


class _Counting:
    """A Detector that calls `tick` for every frame it runs on; all else is the detector's."""

    def __init__(self, detector: Detector, tick: Callable[[], None]):
        self._detector, self._tick = detector, tick

    def __call__(self, frame: np.ndarray):
        self._tick()
        return self._detector(frame)

    def __getattr__(self, name: str):
        return getattr(self._detector, name)


def agreement_scorer(fp32_path: str, contract: Contract, tensors: np.ndarray, count: int = 32) -> tuple:
    """Without annotations: mAP50-95 of a model's detections against the fp32 model's, on calibration tensors.

    The fp32 detections above 0.25 confidence are the ground truth; both models are scored with validation
    thresholds, so the fp32 baseline is a little under 100 and a drop is comparable to a mAP drop.
    """
    tensors = tensors[evenly(len(tensors), count)]
    reference = Detector.load(fp32_path, family=contract.family, names=contract.names, conf=0.25)
    annotations: list = []
    for image_id, tensor in enumerate(tensors, 1):
        for box, cls in zip(*_detect(reference, tensor)[::2]):
            x1, y1, x2, y2 = map(float, box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    gt = {"images": [{"id": i} for i in range(1, len(tensors) + 1)], "annotations": annotations,
          "categories": [{"id": k, "name": n} for k, n in enumerate(contract.names)]}

    def score(path: str) -> float:
        detector = Detector.load(path, family=contract.family, names=contract.names, conf=0.001, iou=0.7,
                                 multi_label=True)
        results = []
        for image_id, tensor in enumerate(tensors, 1):
            boxes, scores, classes = _detect(detector, tensor)
            results += [{"image_id": image_id, "category_id": int(c), "score": float(s),
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                        for b, s, c in zip(boxes, scores, classes)]
        return coco_map(gt, results, list(range(1, len(tensors) + 1)))["map50_95"]

    return score(fp32_path), score


def _detect(detector: Detector, tensor: np.ndarray) -> tuple:
    """Boxes (input pixels), scores and classes of one pre-processed tensor through the runtime's decode and NMS."""
    boxes, scores, classes = detector.candidates(detector.backend.run(np.ascontiguousarray(tensor[None])))
    keep = detector.select(boxes, scores, classes)
    return boxes[keep], scores[keep], classes[keep]


def accuracy_report(artifact: dict, reference: dict, max_drop: Optional[float], notes: Optional[dict] = None) -> dict:
    """Compare a measured artifact with its measured fp32 source; `within_max_drop` is False when it loses too much."""
    drop = round(reference["map50_95"] - artifact["map50_95"], 2)
    per_class = [(name, round(reference["per_class"][name] - ap, 2))
                 for name, ap in artifact["per_class"].items() if name in reference["per_class"]]
    worst = sorted((item for item in per_class if item[1] > 0), key=lambda item: -item[1])[:WORST_CLASSES]
    return {
        "metric": "coco", "images": artifact["images"],
        "map50_95": artifact["map50_95"], "map50": artifact["map50"],
        "fp32": {"map50_95": reference["map50_95"], "map50": reference["map50"],
                 "latency_ms": reference["latency_ms"], "size_mb": reference["size_mb"]},
        "drop": {"map50_95": drop, "map50": round(reference["map50"] - artifact["map50"], 2)},
        "worst_classes": [{"name": name, "drop": d, "fp32": reference["per_class"][name]} for name, d in worst],
        "latency_ms": artifact["latency_ms"], "size_mb": artifact["size_mb"],
        "speedup_vs_fp32": round(reference["latency_ms"] / artifact["latency_ms"], 2) if artifact["latency_ms"]
        else None,
        "max_drop": max_drop, "within_max_drop": max_drop is None or drop <= max_drop,
        **(notes or {}),
    }


def write_report(bundle_dir: str, report: dict) -> str:
    """Store the report as accuracy.json in the bundle."""
    path = os.path.join(bundle_dir, REPORT)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    return path


def format_report(target: str, report: dict) -> str:
    """The report as a short table for the terminal."""
    fp32 = report["fp32"]
    lines = [f"{'model':<14}{'mAP50-95':>10}{'mAP50':>8}{'latency ms':>12}{'size MB':>9}"]
    for name, row in (("fp32 source", fp32), (target, report)):
        lines.append(f"{name:<14}{row['map50_95']:>10.2f}{row['map50']:>8.2f}{row['latency_ms']:>12.1f}"
                     f"{row['size_mb']:>9.2f}")
    lines.append(f"drop {report['drop']['map50_95']:.2f} mAP50-95 on {report['images']} images "
                 f"(max {report['max_drop'] if report['max_drop'] is not None else 'not set'})")
    if report["worst_classes"]:
        lines.append("worst classes: " + ", ".join(f"{c['name']} -{c['drop']:.1f}" for c in report["worst_classes"]))
    if report.get("kept_float"):
        lines.append(f"kept in float ({len(report['kept_float'])}): " + ", ".join(report["kept_float"]))
    if not report["within_max_drop"]:
        lines.append(f"FAILED: the drop exceeds --max-drop {report['max_drop']}")
    return "\n".join(lines)
