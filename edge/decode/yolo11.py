"""YOLO11 (Ultralytics Detect head) outputs: [1, 4+nc, N] cxcywh + class scores, or end2end [1, K, 6]."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .quantized import IDENTITY, Dequantize


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(4, M) centre/size rows -> (M, 4) corners."""
    centre, half = xywh[:2].T, xywh[2:].T / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32, copy=False)


def decode_yolo11(
    output: np.ndarray,
    num_classes: int,
    conf: float,
    multi_label: bool = False,
    input_size: tuple = (1.0, 1.0),
    best_buffer: Optional[np.ndarray] = None,
    dequantize: Dequantize = IDENTITY,
) -> tuple:
    """Candidates from a raw Detect output, as Ultralytics non_max_suppression selects them.

    A candidate's score must be > conf. Single-label keeps each anchor's best class; multi-label keeps
    every (anchor, class) pair above conf. `input_size` (w, h) scales normalized boxes to input pixels.
    `best_buffer` (one per anchor, the output's dtype) is reused for the per-anchor maximum instead of allocating
    it. An integer output is selected on its integers and only the candidates are dequantized.
    """
    pred = output[0] if output.ndim == 3 else output
    if pred.shape[0] != 4 + num_classes:
        if pred.shape[1] != 4 + num_classes:
            raise ValueError(f"YOLO11 output {output.shape} has no axis of size 4+{num_classes}")
        pred = pred.T
    anchors, scores, class_ids = select_candidates(pred[4:], conf, multi_label, best_buffer, dequantize)
    boxes = _xywh_to_xyxy(dequantize(pred[:4, anchors]))
    if input_size != (1.0, 1.0):
        boxes[:, 0::2] *= input_size[0]
        boxes[:, 1::2] *= input_size[1]
    return boxes, scores.astype(np.float32, copy=False), class_ids.astype(np.int64, copy=False)


def select_candidates(cls: np.ndarray, conf: float, multi_label: bool, best_buffer: Optional[np.ndarray],
                      dequantize: Dequantize = IDENTITY) -> tuple:
    """(anchor indices, scores, class ids) above conf from class rows (nc, N), as Ultralytics selects them.

    Integer rows are compared with the lowest integer above conf and only the selected scores are dequantized:
    the same candidates, scores and classes as on the dequantized rows (Dequantize.lowest_above says why).
    """
    above: Any = np.greater
    limit: float = conf
    if dequantize.applies(cls):
        lowest = dequantize.lowest_above(conf, cls.dtype)
        if lowest is None:
            empty = np.zeros(0, np.int64)
            return empty, np.zeros(0, np.float32), empty
        above, limit = np.greater_equal, lowest
    if multi_label:
        class_ids, anchors = np.nonzero(above(cls, limit))
        return anchors, dequantize(cls[class_ids, anchors]), class_ids
    fits = best_buffer is not None and best_buffer.shape == cls.shape[1:] and best_buffer.dtype == cls.dtype
    best = np.max(cls, axis=0, out=best_buffer if fits else None)
    anchors = np.flatnonzero(above(best, limit))
    return anchors, dequantize(best[anchors]), cls[:, anchors].argmax(axis=0)


def decode_yolo11_end2end(output: np.ndarray, conf: float, input_size: tuple = (1.0, 1.0)) -> tuple:
    """Detections of an `nms=True` / end2end export: rows (x1, y1, x2, y2, score, class), NMS already done."""
    rows = output.reshape(-1, output.shape[-1])
    if rows.shape[1] != 6:
        raise ValueError(f"end2end output must have 6 values per row, got shape {output.shape}")
    rows = rows[rows[:, 4] > conf]
    boxes = rows[:, :4].astype(np.float32)
    if input_size != (1.0, 1.0):
        boxes[:, 0::2] *= input_size[0]
        boxes[:, 1::2] *= input_size[1]
    return boxes, rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64)
