"""Greedy non-maximum suppression in numpy (class-aware via coordinate offsets, or agnostic)."""
from __future__ import annotations

import numpy as np


MATRIX_LIMIT = 512  # up to this many boxes, one IoU matrix beats a numpy call per kept box


def _iou(b: np.ndarray, areas: np.ndarray, rows, cols) -> np.ndarray:
    """IoU of boxes `rows` against boxes `cols` (index arrays or scalars, broadcast); 0 where the union is 0."""
    w = np.clip(np.minimum(b[rows, 2], b[cols, 2]) - np.maximum(b[rows, 0], b[cols, 0]), 0, None)
    h = np.clip(np.minimum(b[rows, 3], b[cols, 3]) - np.maximum(b[rows, 1], b[cols, 1]), 0, None)
    inter = w * h
    union = areas[rows] + areas[cols] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int = -1) -> np.ndarray:
    """Indices of kept boxes, by descending score; a box is dropped when IoU with a kept one is > threshold.

    Reproduces torchvision.ops.nms (plain areas, no +1) and stops early once max_keep are kept.
    """
    n = len(boxes)
    if n == 0 or max_keep == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float64)
    # Inverted boxes count as empty rather than negative, so they can neither suppress nor be suppressed.
    areas = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    keep = []
    if n <= MATRIX_LIMIT:
        overlaps = _iou(b, areas, np.arange(n)[:, None], np.arange(n)) > iou_threshold
        removed = np.zeros(n, bool)
        for i in range(n):
            if removed[i]:
                continue
            keep.append(i)
            if len(keep) == max_keep:
                break
            removed |= overlaps[i]
    else:
        rest = np.arange(n)
        while rest.size:
            i = rest[0]
            keep.append(i)
            if len(keep) == max_keep:
                break
            rest = rest[1:]
            rest = rest[_iou(b, areas, i, rest) <= iou_threshold]
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
