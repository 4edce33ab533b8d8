"""Constant-velocity Kalman filter over many boxes at once (state cx, cy, w, h and their velocities).

The model is BoT-SORT's KalmanFilterXYWH (8-d state, noise of x and w scaled by the box width, of y and h by its
height). ByteTrack's XYAH model (aspect w/h with a fixed 1e-2 noise) barely follows a box whose shape changes, e.g.
an object entering through the frame edge, whose clipped width grows every frame: its track is lost within a few
frames and a new id starts. Transition, noises and initial covariance never couple different box coordinates, so
the 8x8 covariance stays four independent 2x2 (position, velocity) blocks: we keep only those, as `var` (N, 3, 4) =
[position variance, position-velocity covariance, velocity variance] per coordinate, and every step is element-wise
(same numbers as the 8x8 matrices).
"""
from __future__ import annotations

import numpy as np

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160


def xyxy_to_xywh(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) corners -> (N, 4) centre x, centre y, width, height."""
    xyxy = np.asarray(xyxy, np.float64)
    wh = np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1e-6)  # a zero-size box would give zero noise: 0 / 0 gains
    return np.concatenate([xyxy[:, :2] + wh / 2, wh], 1)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) corners."""
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], 1)


def _std(mean: np.ndarray, weight: float) -> np.ndarray:
    """(N, 4) per-coordinate std: weight * (w, h, w, h) of each box."""
    return weight * mean[:, [2, 3, 2, 3]]


def initiate(xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from measurements: (mean (N, 8), var (N, 3, 4)) with zero velocity."""
    var = np.zeros((len(xywh), 3, 4))
    var[:, 0] = _std(xywh, 2 * _STD_POSITION) ** 2
    var[:, 2] = _std(xywh, 10 * _STD_VELOCITY) ** 2
    return np.concatenate([xywh, np.zeros_like(xywh)], 1), var


def predict(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: x += v; P = F P F^T + Q."""
    pp, pv, vv = var[:, 0], var[:, 1], var[:, 2]
    out = np.empty_like(var)
    out[:, 0] = pp + 2 * pv + vv + _std(mean, _STD_POSITION) ** 2
    out[:, 1] = pv + vv
    out[:, 2] = vv + _std(mean, _STD_VELOCITY) ** 2
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    return mean, out


def update(mean: np.ndarray, var: np.ndarray, xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct each track with its measurement (one row each): K = P H^T S^-1, P -= K S K^T."""
    pp, pv, vv = var[:, 0], var[:, 1], var[:, 2]
    s = pp + _std(mean, _STD_POSITION) ** 2
    k_pos, k_vel = pp / s, pv / s
    innovation = xywh - mean[:, :4]
    mean = np.concatenate([mean[:, :4] + k_pos * innovation, mean[:, 4:] + k_vel * innovation], 1)
    out = np.empty_like(var)
    out[:, 0] = pp - k_pos * pp
    out[:, 1] = pv - k_pos * pv
    out[:, 2] = vv - k_vel * pv
    return mean, out
