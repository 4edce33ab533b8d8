"""Greedy non-maximum suppression in numpy (class-aware via coordinate offsets, or agnostic)."""
from __future__ import annotations

import numpy as np

MATRIX_LIMIT = 48  # up to this many boxes one IoU matrix is cheapest; above, only pairs that overlap in x are scored
PAIR_CHUNK = 1 << 16  # pairs scored per step: temporaries stay small (fresh large arrays cost page faults)


def _iou(c: np.ndarray, areas: np.ndarray, rows, cols) -> np.ndarray:
    """IoU of boxes `rows` against boxes `cols` (index arrays, broadcast) from coordinate rows c = (x1, y1, x2, y2);
    0 where the union is 0."""
    x1, y1, x2, y2 = c
    w = np.clip(np.minimum(x2[rows], x2[cols]) - np.maximum(x1[rows], x1[cols]), 0, None)
    h = np.clip(np.minimum(y2[rows], y2[cols]) - np.maximum(y1[rows], y1[cols]), 0, None)
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
    # Inverted boxes count as empty rather than negative, so they can neither suppress nor be suppressed.
    areas = np.clip(c[2] - c[0], 0, None) * np.clip(c[3] - c[1], 0, None)
    if n <= MATRIX_LIMIT:
        keep = _greedy_matrix(_iou(c, areas, np.arange(n)[:, None], np.arange(n)) > iou_threshold, max_keep)
    elif iou_threshold < 0:  # every IoU (>= 0) exceeds it: the best box suppresses all others
        keep = np.zeros(1, np.int64)
    else:
        keep = _greedy_pairs(c, areas, iou_threshold, max_keep)
    return order[keep]


def _greedy_matrix(overlaps: np.ndarray, max_keep: int) -> np.ndarray:
    """Greedy selection over a full (n, n) suppression matrix of score-sorted boxes."""
    keep = []
    removed = np.zeros(len(overlaps), bool)
    for i in range(len(overlaps)):
        if removed[i]:
            continue
        keep.append(i)
        if len(keep) == max_keep:
            break
        removed |= overlaps[i]
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
    small fraction of the n*n pairs; each IoU is computed exactly as in the matrix path.
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
