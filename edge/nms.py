"""Greedy non-maximum suppression in numpy (class-aware via coordinate offsets, or agnostic)."""
from __future__ import annotations

import numpy as np

MATRIX_LIMIT = 48  # up to this many boxes a plain-Python greedy pass is cheapest; above, an x-sweep scores the pairs
PAIR_CHUNK = 1 << 16  # pairs scored per step: temporaries stay small (fresh large arrays cost page faults)


def _iou(c: np.ndarray, areas: np.ndarray, rows, cols) -> np.ndarray:
    """IoU of boxes `rows` against boxes `cols` (index arrays) from coordinate rows c = (x1, y1, x2, y2); 0 where the
    union is 0."""
    x1, y1, x2, y2 = c
    w = np.maximum(np.minimum(x2[rows], x2[cols]) - np.maximum(x1[rows], x1[cols]), 0.0)
    h = np.maximum(np.minimum(y2[rows], y2[cols]) - np.maximum(y1[rows], y1[cols]), 0.0)
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
    c = np.ascontiguousarray(boxes[order].T, dtype=np.float64)  # coordinate rows x1, y1, x2, y2
    if iou_threshold < 0:  # every IoU (>= 0) exceeds it: the best box suppresses all others
        keep = np.zeros(1, np.int64)
    elif n <= MATRIX_LIMIT and np.isfinite(c).all():
        keep = _greedy_python(c, iou_threshold, max_keep)
    else:
        # Inverted boxes count as empty rather than negative, so they can neither suppress nor be suppressed.
        areas = np.maximum(c[2] - c[0], 0.0) * np.maximum(c[3] - c[1], 0.0)
        keep = _greedy_pairs(c, areas, iou_threshold, max_keep)
    return order[keep]


def _greedy_python(c: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy selection of a few finite score-sorted boxes, each checked against the kept ones in Python floats.

    The same IEEE double arithmetic as `_iou` (inverted boxes have area 0, IoU is 0 when the union is 0). Right
    after inference the caches are cold, and this costs about half as much as the same work in numpy calls.
    """
    kept: list = []
    keep = []
    for i, (x1, y1, x2, y2) in enumerate(zip(*c.tolist())):
        area = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
        for k1, l1, k2, l2, k_area in kept:
            inter = max(min(x2, k2) - max(x1, k1), 0.0) * max(min(y2, l2) - max(y1, l1), 0.0)
            union = area + k_area - inter
            if union > 0 and inter / union > iou_threshold:
                break
        else:
            kept.append((x1, y1, x2, y2, area))
            keep.append(i)
            if len(keep) == max_keep:
                break
    return np.asarray(keep, np.int64)


def _greedy_pairs(c: np.ndarray, areas: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Greedy selection over the suppression edges of score-sorted boxes: visit the boxes that suppress, best first."""
    src, dst = _suppression_edges(c, areas, iou_threshold)
    by_src = np.argsort(src, kind="stable")
    heads, starts = np.unique(src[by_src], return_index=True)
    targets = dst[by_src].tolist()
    removed = bytearray(len(areas))  # plain Python loop: per edge it costs less than a numpy call per suppressing box
    for i, start, stop in zip(heads.tolist(), starts.tolist(), [*starts[1:].tolist(), len(targets)]):
        if not removed[i]:
            for j in targets[start:stop]:
                removed[j] = 1
    keep = np.flatnonzero(np.frombuffer(removed, np.uint8) == 0)
    return keep if max_keep < 0 else keep[:max_keep]


def _suppression_edges(c: np.ndarray, areas: np.ndarray, iou_threshold: float) -> tuple:
    """(better, worse) index pairs with IoU > threshold >= 0, scoring only pairs whose x-ranges overlap enough.

    A sweep over the boxes sorted by x1. IoU never exceeds the 1-D IoU of the x-ranges, so the box at x-position
    p can only reach IoU > t with boxes that start before x2 - t * width (plus a slack far above rounding error):
    positions p+1 .. ends[p]-1. Class offsets give every class its own x-range, so on real outputs this scores a
    small fraction of the n*n pairs.
    """
    n = len(areas)
    by_x = np.argsort(c[0], kind="stable")
    s, s_areas = c[:, by_x], areas[by_x]
    x1, x2 = s[0], s[2]
    reach = x2 - iou_threshold * np.clip(x2 - x1, 0, None) + 1e-9 * (np.abs(x1) + np.abs(x2))
    counts = np.maximum(np.searchsorted(x1, reach, side="left") - np.arange(1, n + 1), 0)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    src, dst = [], []
    p = 0
    while p < n:  # in chunks of about PAIR_CHUNK pairs, so dense inputs stay within cache and memory
        q = max(int(np.searchsorted(offsets, offsets[p] + PAIR_CHUNK, side="right")) - 1, p + 1)
        first = np.repeat(np.arange(p, q), counts[p:q])
        second = np.arange(offsets[p], offsets[q]) - np.repeat(offsets[p:q], counts[p:q]) + first + 1
        hit = _iou(s, s_areas, first, second) > iou_threshold
        rows, cols = by_x[first[hit]], by_x[second[hit]]
        src.append(np.minimum(rows, cols))  # boxes are score-sorted: the lower index is the better box
        dst.append(np.maximum(rows, cols))
        p = q
    return np.concatenate(src), np.concatenate(dst)


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
    idx = None if finite.all() else np.flatnonzero(finite)  # None: all of them (the usual case, no copies)
    if idx is not None:
        boxes, scores, class_ids = boxes[idx], scores[idx], class_ids[idx]
    if len(scores) > max_candidates:
        best = np.argsort(-scores, kind="stable")[:max_candidates]
        idx = best if idx is None else idx[best]
        boxes, scores, class_ids = boxes[best], scores[best], class_ids[best]
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    b = boxes.astype(np.float64)
    if not agnostic:
        span = float(np.abs(b).max()) * 2 + 1.0
        b += np.multiply(class_ids, span, dtype=np.float64)[:, None]
    keep = nms(b, scores, iou_threshold, max_keep=max_det)
    return keep if idx is None else idx[keep]
