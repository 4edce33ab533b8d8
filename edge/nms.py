"""Greedy non-maximum suppression in numpy (class-aware via coordinate offsets, or agnostic)."""
from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int = -1) -> np.ndarray:
    """Indices of kept boxes, by descending score; a box is dropped when IoU with a kept one is > threshold.

    Reproduces torchvision.ops.nms (plain areas, no +1) and stops early once max_keep are kept.
    """
    n = len(boxes)
    if n == 0 or max_keep == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float64)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    # Inverted boxes count as empty rather than negative, so they can neither suppress nor be suppressed.
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    rest = np.arange(n)
    while rest.size:
        i = rest[0]
        keep.append(i)
        if len(keep) == max_keep:
            break
        rest = rest[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        union = areas[i] + areas[rest] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        rest = rest[iou <= iou_threshold]
    return order[np.asarray(keep, np.int64)]


def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float = 0.7,
    max_det: int = 300,
    agnostic: bool = False,
    max_candidates: int = 30000,
) -> np.ndarray:
    """Indices of the detections to keep, best first.

    Non-finite candidates are dropped, the top `max_candidates` by score go into NMS (Ultralytics' max_nms),
    and classes are separated by offsetting each class's boxes into its own region (Ultralytics' trick, with
    the offset sized from the data instead of a fixed 7680 so huge boxes cannot collide).
    """
    finite = np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
    idx = np.flatnonzero(finite)
    if idx.size > max_candidates:
        idx = idx[np.argsort(-scores[idx], kind="stable")[:max_candidates]]
    if idx.size == 0:
        return np.zeros(0, np.int64)
    b = boxes[idx].astype(np.float64)
    if not agnostic:
        span = float(np.abs(b).max()) * 2 + 1.0
        b += (class_ids[idx].astype(np.float64) * span)[:, None]
    keep = nms(b, scores[idx], iou_threshold, max_keep=max_det)
    return idx[keep]
