"""Split DFL heads (`yolo11-dfl`, `damo-yolo-dfl`): box bin logits + class scores; DFL and anchors in numpy.

Converters end the graph before the head's distribution integral so boxes and scores quantize separately (int8
TFLite); the runtime then integrates the bins of the candidate anchors only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .quantized import IDENTITY
from .yolo11 import select_candidates


def make_anchors(height: int, width: int, strides: tuple, offset: float) -> np.ndarray:
    """(3, N) rows: anchor x, anchor y (in stride units; cell corner + offset) and stride, levels then rows."""
    levels = []
    for stride in strides:
        ys, xs = np.mgrid[0:height // stride, 0:width // stride].astype(np.float32) + np.float32(offset)
        levels.append(np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, stride, np.float32)]))
    return np.concatenate(levels, axis=1)


def decode_dfl(box_logits: np.ndarray, scores: np.ndarray, anchors: np.ndarray, conf: float,
               multi_label: bool = False, best_buffer: Optional[np.ndarray] = None,
               dequantize: tuple = (IDENTITY, IDENTITY)) -> tuple:
    """Candidates from bin logits [1,4*B,N] (side-major) + scores [1,nc,N], either axis order, as (boxes, scores, ids).

    Only anchors above conf are integrated: softmax over the B bins of each side, expectation = ltrb distance in
    stride units, box = (anchor -/+ distance) * stride. `dequantize` (box logits, scores): integer outputs are
    selected on their integers and only the candidates' values dequantized.
    """
    n = anchors.shape[1]
    logits = _rows(box_logits, n, "box logits")
    cls = _rows(scores, n, "scores")
    if logits.shape[0] % 4:
        raise ValueError(f"box logits {box_logits.shape} are not 4 sides x bins")
    box_dequantize, score_dequantize = dequantize
    picked, kept, class_ids = select_candidates(cls, conf, multi_label, best_buffer, score_dequantize)
    bins = box_dequantize(logits[:, picked]).reshape(4, logits.shape[0] // 4, len(picked))
    left, top, right, bottom = dfl_distances(bins)
    ax, ay, stride = anchors[:, picked]
    boxes = np.stack([(ax - left) * stride, (ay - top) * stride, (ax + right) * stride, (ay + bottom) * stride], axis=1)
    return boxes.astype(np.float32), kept.astype(np.float32), class_ids.astype(np.int64)


def dfl_distances(logits: np.ndarray) -> np.ndarray:
    """Bin logits (4 sides, B bins, n) -> expected distance per side (4, n) in bins: softmax, then sum(p_b * b)."""
    z = logits.astype(np.float32)  # a copy: the softmax runs in place
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return np.einsum("sbn,b->sn", z, np.arange(z.shape[1], dtype=np.float32)) / z.sum(axis=1)


def _rows(output: np.ndarray, n: int, what: str) -> np.ndarray:
    """[1, C, N] or [1, N, C] -> a (C, N) view."""
    pred = output.reshape(output.shape[-2:]) if output.ndim == 3 else output
    if pred.ndim != 2 or n not in pred.shape:
        raise ValueError(f"{what} output {output.shape} has no axis of {n} anchors")
    return pred if pred.shape[1] == n else pred.T
