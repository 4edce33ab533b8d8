"""mAP of a Detector on an image folder with COCO-format ground truth.

Two metrics: `coco` (the official COCO protocol via faster-coco-eval) and `ultralytics` (what Ultralytics 8.4
`val` reports: crowd boxes dropped, greedy per-image matching by confidence, per-class AP as the trapezoid
of the precision envelope at 101 recall points). They differ by about half a point on the same detections.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Optional

import numpy as np

from .detector import Detector
from .errors import EdgeError
from .images import list_images, read_image
from .progress import Progress


def category_map(class_names: tuple, categories: list) -> dict:
    """Model class index -> COCO category id: by name when every name is found, else by sorted id."""
    by_name = {c["name"]: c["id"] for c in categories}
    if all(n in by_name for n in class_names):
        return {i: by_name[n] for i, n in enumerate(class_names)}
    ids = sorted(c["id"] for c in categories)
    if len(ids) != len(class_names):
        raise EdgeError(f"the model has {len(class_names)} classes, the annotations {len(ids)} categories, "
                        "and their names differ; cannot map classes to categories")
    return dict(enumerate(ids))


METRICS = ("coco", "ultralytics")
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def evaluate(detector: Detector, images_dir: str, annotations: str, limit: Optional[int] = None,
             metric: str = "coco") -> dict:
    """Run the detector on every annotated image found in images_dir; return mAP50-95/mAP50 in percent."""
    if metric not in METRICS:
        raise EdgeError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    gt = (yolo_ground_truth(annotations, images_dir, detector.names) if os.path.isdir(annotations)
          else coco_ground_truth(annotations))
    to_category = category_map(detector.names, gt["categories"])
    images = [im for im in gt["images"] if os.path.isfile(os.path.join(images_dir, im["file_name"]))]
    images = images[:limit] if limit else images
    if not images:
        raise EdgeError(f"{images_dir}: none of the {len(gt['images'])} annotated images is in this folder")
    results = []
    with Progress("eval", total=len(images)) as progress:
        for im in images:
            frame = read_image(os.path.join(images_dir, im["file_name"]))  # skipping it would bias the mAP
            for (x1, y1, x2, y2), score, cls, _ in detector(frame):
                results.append({"image_id": im["id"], "category_id": to_category[cls],
                                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": score})
            progress.update()
    if metric == "ultralytics":
        summary = ultralytics_map(gt, results, [im["id"] for im in images])
    else:
        summary = coco_map(gt, results, [im["id"] for im in images])
        names = {c["id"]: c["name"] for c in gt["categories"]}
        summary["per_class"] = {names[k]: v for k, v in summary["per_class"].items()}
    return {**summary, "metric": metric, "images": len(images), "detections": len(results)}


def coco_ground_truth(path: str) -> dict:
    """A COCO instances JSON file."""
    try:
        with open(path, encoding="utf-8") as f:
            gt = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise EdgeError(f"{path}: cannot read COCO annotations ({e})") from None
    if not isinstance(gt, dict) or not {"images", "annotations", "categories"} <= set(gt):
        raise EdgeError(f"{path}: not a COCO instances file (needs images, annotations, categories)")
    return gt


def yolo_ground_truth(labels_dir: str, images_dir: str, class_names: tuple) -> dict:
    """YOLO labels (labels_dir/<image stem>.txt: `class cx cy w h` normalized) as a COCO dict; an image without
    a label file has no objects. Image sizes come from the images themselves."""
    images: list = []
    annotations: list = []
    for path in list_images(images_dir):
        height, width = _image_size(path)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": os.path.basename(path), "width": width, "height": height})
        label = os.path.join(labels_dir, os.path.splitext(os.path.basename(path))[0] + ".txt")
        if not os.path.isfile(label):
            continue
        with open(label, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    cls, cx, cy, w, h = int(fields[0]), *map(float, fields[1:5])
                except (ValueError, TypeError):
                    raise EdgeError(f"{label}:{line_no}: expected 'class cx cy w h', got {line.strip()!r}") from None
                if not 0 <= cls < len(class_names):
                    raise EdgeError(f"{label}:{line_no}: class {cls} is not one of the model's {len(class_names)}")
                box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cls,
                                    "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k, "name": n} for k, n in enumerate(class_names)]}


def _image_size(path: str) -> tuple:
    return read_image(path).shape[:2]


def coco_map(gt: dict, results: list, image_ids: list) -> dict:
    """Official COCO bbox mAP (faster-coco-eval), in percent; per_class maps category id -> AP50-95."""
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError as e:
        raise EdgeError("the coco metric needs faster-coco-eval: pip install 'edge[eval]'") from e
    coco_gt = COCO()
    coco_gt.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else None
    if coco_dt is None:
        return {"map50_95": 0.0, "map50": 0.0, "per_class": {}}
    evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
    evaluator.params.imgIds = image_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    # precision[iou, recall, class, area=all, max_dets=100]; -1 marks a class with no ground truth here
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    per_class = {int(cat): round(float(precision[:, :, k][precision[:, :, k] > -1].mean()) * 100, 2)
                 for k, cat in enumerate(evaluator.params.catIds) if (precision[:, :, k] > -1).any()}
    return {"map50_95": round(float(evaluator.stats[0]) * 100, 2), "map50": round(float(evaluator.stats[1]) * 100, 2),
            "per_class": per_class}


def _xyxy(bbox_list: list) -> np.ndarray:
    b = np.asarray(bbox_list, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / (area_a[:, None] + area_b[None] - inter + 1e-7)


def _match(gt_cls: np.ndarray, gt_boxes: np.ndarray, dt_cls: np.ndarray, dt_boxes: np.ndarray) -> np.ndarray:
    """(D, 10) correct matrix: detections by descending score each claim the best unclaimed same-class target."""
    correct = np.zeros((len(dt_cls), len(IOU_THRESHOLDS)), bool)
    if len(gt_cls) == 0 or len(dt_cls) == 0:
        return correct
    iou = _iou_matrix(gt_boxes, dt_boxes) * (gt_cls[:, None] == dt_cls[None, :])
    claimed = np.zeros((len(gt_cls), len(IOU_THRESHOLDS)), bool)
    columns = np.arange(len(IOU_THRESHOLDS))
    for j in np.flatnonzero((iou >= IOU_THRESHOLDS[0]).any(axis=0)):
        available = np.where(claimed, 0.0, iou[:, j, None])
        best = available.argmax(axis=0)
        correct[j] = available[best, columns] >= IOU_THRESHOLDS
        claimed[best, columns] |= correct[j]
    return correct


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Trapezoid over 101 recall points of the precision envelope, zero beyond the last recall reached."""
    mrec = np.concatenate(([0.0], recall, [recall[-1]], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    y = np.interp(x, mrec, mpre)
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())


def ultralytics_map(gt: dict, results: list, image_ids: list) -> dict:
    """mAP as Ultralytics 8.4 val computes it (public behaviour of ultralytics.utils.metrics), in percent."""
    wanted = set(image_ids)
    targets: dict = {}
    for a in gt["annotations"]:
        if a["image_id"] in wanted and not a.get("iscrowd") and a["bbox"][2] > 0 and a["bbox"][3] > 0:
            targets.setdefault(a["image_id"], []).append(a)
    detections: dict = {}
    for r in results:
        detections.setdefault(r["image_id"], []).append(r)
    tps, confs, pred_cls, target_cls = [], [], [], []
    for image_id in image_ids:
        t = targets.get(image_id, [])
        d = sorted(detections.get(image_id, []), key=lambda r: -r["score"])
        t_cls = np.array([a["category_id"] for a in t], np.int64)
        d_cls = np.array([r["category_id"] for r in d], np.int64)
        tps.append(_match(t_cls, _xyxy([a["bbox"] for a in t]), d_cls, _xyxy([r["bbox"] for r in d])))
        confs.append(np.array([r["score"] for r in d], np.float64))
        pred_cls.append(d_cls)
        target_cls.append(t_cls)
    tp, conf, p_cls, t_cls = (np.concatenate(x) for x in (tps, confs, pred_cls, target_cls))
    order = np.argsort(-conf, kind="stable")
    tp, p_cls = tp[order], p_cls[order]
    classes, counts = np.unique(t_cls, return_counts=True)
    ap = np.zeros((len(classes), len(IOU_THRESHOLDS)))
    for k, (c, n_labels) in enumerate(zip(classes, counts)):
        hits = tp[p_cls == c]
        if len(hits) == 0:
            continue
        tpc = hits.cumsum(axis=0)
        fpc = (1 - hits).cumsum(axis=0)
        recall = tpc / (n_labels + 1e-16)
        precision = tpc / (tpc + fpc)
        ap[k] = [_average_precision(recall[:, j], precision[:, j]) for j in range(len(IOU_THRESHOLDS))]
    if len(classes) == 0:
        return {"map50_95": 0.0, "map50": 0.0}
    return {"map50_95": round(float(ap.mean()) * 100, 2), "map50": round(float(ap[:, 0].mean()) * 100, 2)}
