"""Annotate a frame with its detections (for --save-dir and previews)."""
from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections


def _colour(class_id: int) -> tuple:
    """A stable, distinct BGR colour per class."""
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(v) for v in bgr)


def draw_detections(frame: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of the frame with boxes and 'name score' labels."""
    out = frame.copy()
    thickness = max(1, round(sum(frame.shape[:2]) / 600))
    for (x1, y1, x2, y2), score, class_id, name in detections:
        colour = _colour(class_id)
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, colour, thickness, cv2.LINE_AA)
        label = f"{name} {score:.2f}"
        (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, thickness / 3, max(1, thickness - 1))
        top = p1[1] - h - 3 if p1[1] - h - 3 >= 0 else p1[1] + h + 3
        cv2.rectangle(out, (p1[0], top), (p1[0] + w, top + h + 3), colour, -1, cv2.LINE_AA)
        cv2.putText(out, label, (p1[0], top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, thickness / 3, (255, 255, 255),
                    max(1, thickness - 1), cv2.LINE_AA)
    return out
