"""Greedy non-maximum suppression (class-aware via coordinate offsets, or agnostic): plain Python for the usual few
candidates, an x-sweep over numpy pair lists for many."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

# Up to this many candidates a plain-Python greedy pass is tried first, and it hands over to the x-sweep after this
# many IoU checks (about 0.2 ms): measured on YOLO11n COCO and DAMO-YOLO demo candidates, Python wins below ~45 boxes.
PYTHON_BOXES = 48
PYTHON_PAIRS = 400
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
    if iou_threshold < 0:  # every IoU (>= 0) exceeds it: the best box suppresses all others
        return order[:1]
    if n <= PYTHON_BOXES and np.isfinite(boxes).all():
        rows = boxes.tolist()
        keep = _greedy_python([rows[i] for i in order.tolist()], None, iou_threshold, max_keep)
        if keep is not None:
            return order[keep]
    return order[_greedy_sweep(boxes[order], iou_threshold, max_keep)]


def _greedy_python(rows: list, classes: Optional[list], iou_threshold: float, max_keep: int) -> Optional[list]:
    """Positions kept from score-sorted finite boxes (lists of 4 floats), each checked against the kept boxes of its
    class (all of them when classes is None); None once it has made PYTHON_PAIRS IoU checks.

    The same IEEE double arithmetic as `_iou` (inverted boxes have area 0, IoU is 0 when the union is 0). Right
    after inference the caches are cold and the first call of each numpy function costs 15-25 us more; for up to
    about 30 candidates this pass was 2-5x cheaper than the sweep even with warm caches.
    """
    kept_by_class: dict = {}
    keep: list = []
    budget = PYTHON_PAIRS
    for i, (x1, y1, x2, y2) in enumerate(rows):
        kept = kept_by_class.setdefault(None if classes is None else classes[i], [])
        budget -= len(kept)
        if budget < 0:
            return None
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
    return keep


def _greedy_sweep(sorted_boxes: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Positions kept from score-sorted boxes by the x-sweep (any count, non-finite coordinates too)."""
    c = np.ascontiguousarray(sorted_boxes.T, dtype=np.float64)  # coordinate rows x1, y1, x2, y2
    # Inverted boxes count as empty rather than negative, so they can neither suppress nor be suppressed.
    areas = np.maximum(c[2] - c[0], 0.0) * np.maximum(c[3] - c[1], 0.0)
    return _greedy_pairs(c, areas, iou_threshold, max_keep)


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
    if len(scores) <= PYTHON_BOXES:
        keep = _small_non_max_suppression(boxes, scores, class_ids, iou_threshold, max_det, agnostic, max_candidates)
        if keep is not None:
            return keep
    finite = np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
    idx = None if finite.all() else np.flatnonzero(finite)  # None: all of them (the usual case, no copies)
    if idx is not None:
        boxes, scores, class_ids = boxes[idx], scores[idx], class_ids[idx]
    if len(scores) > max_candidates:
        best = np.argsort(-scores, kind="stable")[:max_candidates]
        idx = best if idx is None else idx[best]
        boxes, scores, class_ids = boxes[best], scores[best], class_ids[best]
    if len(scores) == 0 or max_det == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-scores, kind="stable")
    if iou_threshold < 0:
        keep = order[:1]
    else:
        b = boxes.astype(np.float64)
        if not agnostic:
            span = float(np.abs(b).max()) * 2 + 1.0
            b += np.multiply(class_ids, span, dtype=np.float64)[:, None]
        keep = order[_greedy_sweep(b[order], iou_threshold, max_det)]
    return keep if idx is None else idx[keep]


def _small_non_max_suppression(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
                               max_det: int, agnostic: bool, max_candidates: int) -> Optional[np.ndarray]:
    """non_max_suppression for a few candidates in plain Python floats: the same filtering, order, class offsets
    and IoU arithmetic as the numpy path, so the same result; None when the greedy pass runs over its budget.

    Boxes of different classes are never compared: after the offset they cannot overlap, so their IoU is 0.
    """
    s, rows, classes = scores.tolist(), boxes.tolist(), class_ids.tolist()
    isfinite = math.isfinite
    order = sorted((i for i, (v, (x1, y1, x2, y2)) in enumerate(zip(s, rows))
                    if isfinite(v) and isfinite(x1) and isfinite(y1) and isfinite(x2) and isfinite(y2)),
                   key=lambda i: -s[i])[:max_candidates]  # sorted() is stable: ties stay in index order
    if not order or max_det == 0:
        return np.zeros(0, np.int64)
    if iou_threshold < 0:
        return np.array(order[:1], np.int64)
    if agnostic:
        keep = _greedy_python([rows[i] for i in order], None, iou_threshold, max_det)
    else:
        span = max(abs(v) for i in order for v in rows[i]) * 2 + 1.0
        shifted = []
        for i in order:
            offset = classes[i] * span
            x1, y1, x2, y2 = rows[i]
            shifted.append((x1 + offset, y1 + offset, x2 + offset, y2 + offset))
        keep = _greedy_python(shifted, [classes[i] for i in order], iou_threshold, max_det)
    return None if keep is None else np.array([order[k] for k in keep], np.int64)
