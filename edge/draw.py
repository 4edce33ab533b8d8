"""Annotate a frame with its detections, track ids, zones and lines (for --save-dir, previews and the demo)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import cv2
import numpy as np

from .detections import Detections

SLIDE = 4  # label heights further above and below the box a crowded label may move


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


def place_labels(boxes: Union[Sequence, np.ndarray], sizes: Sequence, width: int, height: int) -> List[Optional[tuple]]:
    """Where each box's label goes: (x1, y1, x2, y2), end-exclusive, inside the width x height frame and clear of
    every label placed before it; None where no spot near the box is free (that box is drawn without its label).

    Labels are placed in the given order, so pass the most important first. Each tries, nearest first: above the
    box, inside its top, below it, inside its bottom (left-aligned, then right-aligned), then further above and
    below; every spot is shifted into the frame first (a box at the right edge gets a right-aligned label).
    """
    placed = np.empty((0, 4), np.int64)
    out: List[Optional[tuple]] = []
    for (bx1, by1, bx2, by2), (w, h) in zip(boxes, sizes):
        if w > width or h > height:
            out.append(None)
            continue
        rows = [by1 - h, by1, by2, by2 - h] + [y for k in range(1, SLIDE + 1) for y in (by1 - h * (k + 1), by2 + h * k)]
        xs = np.clip(np.round([bx1, bx2 - w]), 0, width - w)
        ys = np.clip(np.round(rows), 0, height - h)
        x1 = np.tile(xs, len(ys))
        y1 = np.repeat(ys, len(xs))
        spots = np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.int64)
        clash = ((spots[:, None, 0] < placed[None, :, 2]) & (placed[None, :, 0] < spots[:, None, 2])
                 & (spots[:, None, 1] < placed[None, :, 3]) & (placed[None, :, 1] < spots[:, None, 3])).any(1)
        free = np.flatnonzero(~clash)
        if len(free) == 0:
            out.append(None)
            continue
        spot = spots[free[0]]
        placed = np.vstack([placed, spot])
        out.append(tuple(int(v) for v in spot))
    return out


def draw_detections(frame: np.ndarray, detections: Detections, zones: Sequence = (),
                    lines: Sequence = ()) -> np.ndarray:
    """A copy of the frame with zones, lines, boxes and '#track name score' labels (no '#' when untracked); labels
    stay inside the frame and never cover each other (the most confident first; one with no free spot is left out)."""
    out = frame.copy()
    thickness = max(1, round(sum(frame.shape[:2]) / 600))
    scale, weight, pad = thickness / 3, max(1, thickness - 1), thickness
    draw_areas(out, zones, lines, thickness)
    tracks = [None] * len(detections) if detections.track_ids is None else detections.track_ids.tolist()
    labels = []  # (text, colour, baseline, size)
    for ((x1, y1, x2, y2), score, class_id, name), track in zip(detections, tracks):
        colour = _colour(class_id)
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, thickness, cv2.LINE_AA)
        text = f"{name} {score:.2f}" if track is None else f"#{track} {name} {score:.2f}"
        (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        labels.append((text, colour, baseline, (w + 2 * pad, h + baseline + 2 * pad)))
    order = np.argsort(-detections.scores, kind="stable")
    spots = place_labels(detections.xyxy[order], [labels[i][3] for i in order], out.shape[1], out.shape[0])
    for i, spot in zip(order, spots):
        if spot is not None:
            text, colour, baseline, _ = labels[i]
            cv2.rectangle(out, spot[:2], (spot[2] - 1, spot[3] - 1), colour, -1)
            cv2.putText(out, text, (spot[0] + pad, spot[3] - pad - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), weight, cv2.LINE_AA)
    return out
