"""Parity with the reference implementation: Ultralytics 8.4 predict/val outputs stored in ../shared/reference.

The ONNX checks are exact (IoU >= 0.99, same class, score within 0.01, nothing extra). TFLite int8 outputs depend
on which XNNPACK kernels the CPU selects (AVX2 vs AVX512-VNNI give different rounding), so the exact check runs
only when this machine's kernels reproduce the reference machine's; elsewhere a documented looser tolerance
applies. On an AVX512-VNNI x86 machine, Ultralytics 8.4.190 itself matches our TFLite detections 651/651 but the
stored reference only within that looser tolerance.
"""
import json

import cv2
import numpy as np
import pytest

from edge import Detector
from edge.evaluate import evaluate

from .conftest import SHARED

pytestmark = pytest.mark.needs_shared


def box_iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(reference: dict, detector: Detector, min_iou: float, score_tol: float) -> tuple:
    """(unmatched reference detections, our detections matching none) over every reference image."""
    missing, extra = [], []
    for image, expected in reference.items():
        ours = detector(cv2.imread(str(SHARED / image))).to_list()
        used = set()
        for ref in expected["detections"]:
            candidates = [(box_iou(ref["box"], o["box"]), j) for j, o in enumerate(ours)
                          if j not in used and o["class_id"] == ref["class_id"] and abs(o["score"] - ref["score"]) <= score_tol]
            best = max(candidates, default=(0.0, -1))
            if best[0] >= min_iou:
                used.add(best[1])
            else:
                missing.append((image, ref))
        extra += [(image, o) for j, o in enumerate(ours) if j not in used]
    return missing, extra


def predictions(model: str) -> dict:
    return json.loads((SHARED / "reference" / "ultralytics_predict.json").read_text())["models"][model]


def same_kernels_as_reference(detector: Detector, reference: dict) -> bool:
    """Does this CPU's TFLite run reproduce the reference machine's scores on bus.jpg to 1e-4?"""
    ours = detector(cv2.imread(str(SHARED / "images" / "bus.jpg")))
    expected = [d["score"] for d in reference["images/bus.jpg"]["detections"]]
    return len(ours) == len(expected) and np.allclose(sorted(ours.scores), sorted(expected), atol=1e-4)


def test_onnx_predict_matches_ultralytics_exactly():
    missing, extra = compare(predictions("yolo11n.onnx"), Detector.load(SHARED / "models" / "yolo11n.onnx"), 0.99, 0.01)
    assert not missing, f"{len(missing)} reference detections unmatched, first: {missing[:3]}"
    assert not extra, f"{len(extra)} detections Ultralytics does not give, first: {extra[:3]}"


def test_tflite_predict_matches_ultralytics():
    reference = predictions("yolo11n_int8.tflite")
    detector = Detector.load(SHARED / "models" / "yolo11n_int8.tflite")
    if same_kernels_as_reference(detector, reference):
        missing, extra = compare(reference, detector, 0.99, 0.01)
        assert not missing and not extra, (missing[:3], extra[:3])
        return
    # Different int8 kernels. Measured within IoU 0.9 / score 0.05 on an AVX512-VNNI x86: 98 % of the reference
    # detections with ai-edge-litert 2.3, 91 % with tflite-runtime 2.14 (numpy < 2), whose kernels differ more.
    allowed = 0.12 if detector.backend.runtime == "tflite-runtime" else 0.05
    total = sum(len(r["detections"]) for r in reference.values())
    missing, extra = compare(reference, detector, 0.9, 0.05)
    assert len(missing) <= allowed * total, f"{len(missing)}/{total} unmatched, first: {missing[:3]}"
    assert len(extra) <= allowed * total, f"{len(extra)} extra, first: {extra[:3]}"


@pytest.mark.parametrize("model,tolerance", [("yolo11n.onnx", 0.3), ("yolo11n_int8.tflite", None)])
def test_eval_matches_ultralytics_val(model, tolerance):
    reference = json.loads((SHARED / "reference" / "ultralytics_val.json").read_text())
    detector = Detector.load(SHARED / "models" / model, conf=0.001, iou=0.7, multi_label=True, max_det=300)
    if tolerance is None:  # TFLite: exact only where the int8 kernels match the reference machine's (see module doc)
        tolerance = 0.3 if same_kernels_as_reference(detector.with_thresholds(conf=0.25, multi_label=False),
                                                     predictions(model)) else 0.6
    result = evaluate(detector, str(SHARED / "coco" / "val2017"),
                      str(SHARED / "coco" / "annotations" / "instances_val2017.json"), metric="ultralytics")
    expected = reference["models"][model]
    assert result["images"] == 86
    assert abs(result["map50_95"] - expected["map50_95"]) <= tolerance, (result, expected)
    assert abs(result["map50"] - expected["map50"]) <= tolerance + 0.2, (result, expected)
