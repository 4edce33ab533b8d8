"""DAMO-YOLO outputs (SPEC §2.11, §4.2, §5): scores [1,N,C] + xyxy boxes [1,N,4], or the raw head maps."""
from __future__ import annotations

import numpy as np

from .dfl import dfl_distances


def decode_damo_yolo(scores: np.ndarray, boxes: np.ndarray, conf: float, multi_label: bool = True) -> tuple:
    """Candidates as the official post-processing selects them: every (anchor, class) with score > conf."""
    s = scores.reshape(-1, scores.shape[-1])
    b = boxes.reshape(-1, 4)
    if len(s) != len(b):
        raise ValueError(f"DAMO-YOLO scores {scores.shape} and boxes {boxes.shape} disagree on anchors")
    if multi_label:
        anchors, class_ids = np.nonzero(s > conf)
        kept = s[anchors, class_ids]
    else:
        best = s.max(axis=1)
        anchors = np.flatnonzero(best > conf)
        kept = best[anchors]
        class_ids = s[anchors].argmax(axis=1)
    return b[anchors].astype(np.float32), kept.astype(np.float32), class_ids.astype(np.int64)


def decode_damo_yolo_head(cls_maps: list, reg_maps: list, strides=(8, 16, 32), reg_max: int = 16) -> tuple:
    """The `--benchmark` export (three sigmoid class maps, three reg logit maps) -> (scores [N,C], boxes [N,4]).

    Per level: softmax over the R+1 bins of each side (l, t, r, b), distance = sum(p_b * b) * stride,
    anchors at the cell's top-left corner (col*stride, row*stride), levels and rows in row-major order.
    """
    all_scores, all_boxes = [], []
    for cls, reg, stride in zip(cls_maps, reg_maps, strides):
        _, c, h, w = cls.shape
        all_scores.append(cls[0].reshape(c, h * w).T)
        dist = dfl_distances(reg[0].reshape(4, reg_max + 1, h * w)).T * stride
        ys, xs = np.divmod(np.arange(h * w, dtype=np.float32), w)
        ax, ay = xs * stride, ys * stride
        all_boxes.append(np.stack([ax - dist[:, 0], ay - dist[:, 1], ax + dist[:, 2], ay + dist[:, 3]], axis=1))
    return np.concatenate(all_scores).astype(np.float32), np.concatenate(all_boxes).astype(np.float32)
