"""Constant-velocity Kalman filter over many boxes at once (state cx, cy, aspect w/h, h and their velocities).

The model is ByteTrack's / DeepSORT's KalmanFilterXYAH (8-d state, noise scaled by box height). Its transition,
noises and initial covariance never couple different box coordinates, so the 8x8 covariance stays four independent
2x2 (position, velocity) blocks: we keep only those, as `var` (N, 3, 4) = [position variance, position-velocity
covariance, velocity variance] per coordinate, and every step is element-wise (same numbers as the 8x8 matrices).
"""
from __future__ import annotations

import numpy as np

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160


def xyxy_to_xyah(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) corners -> (N, 4) centre x, centre y, aspect w/h, height."""
    xyxy = np.asarray(xyxy, np.float64)
    w = xyxy[:, 2] - xyxy[:, 0]
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1e-6)
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], 1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, aspect, height -> (N, 4) corners."""
    half_w = xyah[:, 2] * xyah[:, 3] / 2
    half_h = xyah[:, 3] / 2
    return np.stack([xyah[:, 0] - half_w, xyah[:, 1] - half_h, xyah[:, 0] + half_w, xyah[:, 1] + half_h], 1)


def _std(h: np.ndarray, aspect: float) -> np.ndarray:
    """(N, 4) per-coordinate std: h for x, y, height; a constant for the aspect ratio."""
    std = np.repeat(h[:, None], 4, 1)
    std[:, 2] = aspect
    return std


def initiate(xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from measurements: (mean (N, 8), var (N, 3, 4)) with zero velocity."""
    h = xyah[:, 3]
    var = np.zeros((len(xyah), 3, 4))
    var[:, 0] = _std(2 * _STD_POSITION * h, 1e-2) ** 2
    var[:, 2] = _std(10 * _STD_VELOCITY * h, 1e-5) ** 2
    return np.concatenate([xyah, np.zeros_like(xyah)], 1), var


def predict(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: x += v; P = F P F^T + Q."""
    h = mean[:, 3]
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    pp, pv, vv = var[:, 0], var[:, 1], var[:, 2]
    out = np.empty_like(var)
    out[:, 0] = pp + 2 * pv + vv + _std(_STD_POSITION * h, 1e-2) ** 2
    out[:, 1] = pv + vv
    out[:, 2] = vv + _std(_STD_VELOCITY * h, 1e-5) ** 2
    return mean, out


def update(mean: np.ndarray, var: np.ndarray, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct each track with its measurement (one row each): K = P H^T S^-1, P -= K S K^T."""
    pp, pv, vv = var[:, 0], var[:, 1], var[:, 2]
    s = pp + _std(_STD_POSITION * mean[:, 3], 1e-1) ** 2
    k_pos, k_vel = pp / s, pv / s
    innovation = xyah - mean[:, :4]
    mean = np.concatenate([mean[:, :4] + k_pos * innovation, mean[:, 4:] + k_vel * innovation], 1)
    out = np.empty_like(var)
    out[:, 0] = pp - k_pos * pp
    out[:, 1] = pv - k_pos * pv
    out[:, 2] = vv - k_vel * pv
    return mean, out
