"""Synthetic MOTChallenge-style sequences with known identities, for tracker and analytics benchmarks.

People and cars walk/drive across the frame in lanes, both directions, so they cross and occlude each other; after
leaving they come back later through the side they left by (same identity). Detections are the ground truth with
box noise, occlusion-dependent scores, dropouts and false positives.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sequence:
    """Per-frame ground truth (ids, boxes, classes) and detections (boxes, scores, classes)."""

    width: int
    height: int
    fps: float
    gt: list = field(default_factory=list)  # per frame: (ids (k,), xyxy (k, 4), class_ids (k,))
    dets: list = field(default_factory=list)  # per frame: (xyxy (n, 4), scores (n,), class_ids (n,))


def _trajectories(rng, n_objects, frames, width, height, size_scale):
    """Boxes per object per frame (NaN when off screen) and class per object."""
    boxes = np.full((n_objects, frames, 4), np.nan)
    classes = (rng.random(n_objects) < 0.3).astype(np.int64) * 2  # 0 person, 2 car
    for k in range(n_objects):
        t = int(rng.integers(-frames // 3, frames // 2))
        direction = 1 if rng.random() < 0.5 else -1
        while t < frames:
            bottom = rng.uniform(0.35, 0.98) * height
            h = size_scale * (0.3 + 0.7 * bottom / height) * (70 if classes[k] == 0 else 60)
            w = h * (0.4 if classes[k] == 0 else 1.8)
            speed = rng.uniform(1.5, 4.0) * size_scale * (1 if classes[k] == 0 else 2)
            x = -w if direction > 0 else width + w
            drift = rng.normal(0, 0.2)
            while -w <= x <= width + w and t < frames:
                if t >= 0:
                    boxes[k, t] = [x - w / 2, bottom - h, x + w / 2, bottom]
                x += direction * speed
                bottom = float(np.clip(bottom + drift, 0.3 * height, height))
                t += 1
            t += int(rng.integers(20, 90))  # off screen, then back through the same side
            direction = -direction
    return boxes, classes


def _visibility(xyxy):
    """Fraction of each box not covered by the box most overlapping it from in front (lower bottom edge)."""
    lt = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
    rb = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area = np.prod(xyxy[:, 2:] - xyxy[:, :2], 1)
    in_front = xyxy[None, :, 3] > xyxy[:, None, 3]
    covered = np.where(in_front, inter, 0).max(1, initial=0) / np.maximum(area, 1e-9)
    return 1 - covered


def make_sequence(seed: int, n_objects: int = 16, frames: int = 600, width: int = 1280, height: int = 720,
                  fps: float = 30.0, size_scale: float = 1.0, noisy: bool = True) -> Sequence:
    """One sequence; noisy=False gives detections equal to the visible ground truth."""
    rng = np.random.default_rng(seed)
    boxes, classes = _trajectories(rng, n_objects, frames, width, height, size_scale)
    seq = Sequence(width, height, fps)
    for t in range(frames):
        on = np.flatnonzero(~np.isnan(boxes[:, t, 0]))
        xyxy = boxes[on, t].copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        keep = (xyxy[:, 2] - xyxy[:, 0]) > 2
        on, xyxy = on[keep], xyxy[keep]
        seq.gt.append((on + 1, xyxy, classes[on]))
        visible = _visibility(xyxy)
        if not noisy:
            seen = visible > 0.2
            seq.dets.append((xyxy[seen].astype(np.float32), np.full(seen.sum(), 0.9, np.float32), classes[on][seen]))
            continue
        size = (xyxy[:, 3] - xyxy[:, 1])[:, None]
        det_boxes = xyxy + rng.normal(0, 0.03, xyxy.shape) * size
        scores = rng.uniform(0.6, 0.95, len(on)) * (0.25 + 0.75 * visible) + rng.normal(0, 0.05, len(on))
        seen = (rng.random(len(on)) > 0.05) & ((visible > 0.3) | (rng.random(len(on)) < 0.3))
        n_fp = rng.poisson(1.0)
        fp_h = rng.uniform(30, 120, n_fp) * size_scale
        fp_xy = rng.random((n_fp, 2)) * [width, height]
        fp = np.stack([fp_xy[:, 0], fp_xy[:, 1], fp_xy[:, 0] + 0.5 * fp_h, fp_xy[:, 1] + fp_h], 1)
        seq.dets.append((
            np.concatenate([det_boxes[seen], fp]).astype(np.float32),
            np.concatenate([scores[seen].clip(0.01, 0.99), rng.uniform(0.1, 0.65, n_fp)]).astype(np.float32),
            np.concatenate([classes[on][seen], np.zeros(n_fp, np.int64)]),
        ))
    return seq


def line_truth(seq: Sequence, x: float, anchor_y: str = "bottom") -> dict:
    """Ground-truth crossings of the vertical line at x (drawn upwards): {"in": right-moving, "out": left-moving}."""
    last: dict[int, float] = {}
    counts = {"in": 0, "out": 0}
    for ids, xyxy, _ in seq.gt:
        centre = (xyxy[:, 0] + xyxy[:, 2]) / 2
        for i, c in zip(ids.tolist(), centre.tolist()):
            if i in last and (last[i] - x) * (c - x) < 0:
                counts["in" if c > x else "out"] += 1
            last[i] = c
    return counts


def zone_truth(seq: Sequence, x0: float, x1: float) -> list[tuple[int, int, int]]:
    """Completed visits (id, first frame inside, frames inside) of bottom-centre anchors in the band x0 <= x < x1."""
    open_visits: dict[int, int] = {}
    seen_last: dict[int, int] = {}
    visits = []
    for t, (ids, xyxy, _) in enumerate(seq.gt):
        centre = (xyxy[:, 0] + xyxy[:, 2]) / 2
        now = {}
        for i, c in zip(ids.tolist(), centre.tolist()):
            now[i] = x0 <= c < x1
            seen_last[i] = t
        for i in list(open_visits):
            if not now.get(i, False):
                visits.append((i, open_visits[i], t - open_visits[i]))
                del open_visits[i]
        for i, inside in now.items():
            if inside and i not in open_visits:
                open_visits[i] = t
    return visits
