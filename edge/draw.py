"""Annotate a frame with its detections, track ids, zones and lines (for --save-dir, previews and the demo)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .detections import Detections


def _colour(class_id: int) -> tuple:
    """A stable, distinct BGR colour per class."""
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(v) for v in bgr)


def _pixels(points: Sequence, frame: np.ndarray) -> np.ndarray:
    """(K, 1, 2) int32 points for OpenCV; points all within 0..1 are fractions of the frame (as edge.track)."""
    pts = np.asarray(points, np.float64)
    if pts.max() <= 1.0:
        pts = pts * (frame.shape[1], frame.shape[0])
    return np.round(pts).astype(np.int32).reshape(-1, 1, 2)


def draw_areas(out: np.ndarray, zones: Sequence = (), lines: Sequence = (), thickness: int = 2) -> None:
    """Draw zone outlines and counting lines (edge.track Zone/Line) with their names onto `out` in place."""
    areas = [(z, (0, 200, 255), True) for z in zones] + [(ln, (255, 0, 255), False) for ln in lines]
    for area, colour, closed in areas:
        pts = _pixels(area.points, out)
        cv2.polylines(out, [pts], closed, colour, thickness, cv2.LINE_AA)
        cv2.putText(out, area.name, tuple(int(v) for v in pts[0, 0] + (4, -6)), cv2.FONT_HERSHEY_SIMPLEX,
                    thickness / 3, colour, max(1, thickness - 1), cv2.LINE_AA)


def draw_detections(frame: np.ndarray, detections: Detections, zones: Sequence = (),
                    lines: Sequence = ()) -> np.ndarray:
    """A copy of the frame with zones, lines, boxes and '#track name score' labels (no '#' when untracked)."""
    out = frame.copy()
    thickness = max(1, round(sum(frame.shape[:2]) / 600))
    draw_areas(out, zones, lines, thickness)
    tracks = [None] * len(detections) if detections.track_ids is None else detections.track_ids.tolist()
    for ((x1, y1, x2, y2), score, class_id, name), track in zip(detections, tracks):
        colour = _colour(class_id)
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, colour, thickness, cv2.LINE_AA)
        label = f"{name} {score:.2f}" if track is None else f"#{track} {name} {score:.2f}"
        (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, thickness / 3, max(1, thickness - 1))
        top = p1[1] - h - 3 if p1[1] - h - 3 >= 0 else p1[1] + h + 3
        cv2.rectangle(out, (p1[0], top), (p1[0] + w, top + h + 3), colour, -1, cv2.LINE_AA)
        cv2.putText(out, label, (p1[0], top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, thickness / 3, (255, 255, 255),
                    max(1, thickness - 1), cv2.LINE_AA)
    return out
