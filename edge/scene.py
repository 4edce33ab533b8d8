"""Procedural shapes over procedural backgrounds: the drawing code of the synthetic dataset and of `edge demo`."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "star", "cross")
_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices


class Shape(NamedTuple):
    """One object: class index, centre (px), size (circumscribed diameter, px), angle (deg), BGR colour, aspect."""

    cls: int
    cx: float
    cy: float
    size: float
    angle: float
    colour: tuple
    aspect: float = 1.0


def outline(cls: int, radius: float) -> np.ndarray:
    """Unrotated (K, 2) vertices of class `cls` inscribed in a circle of `radius` around the origin."""
    name = CLASSES[cls]
    if name == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return radius * np.stack([np.cos(t), np.sin(t)], 1)
    if name in ("square", "triangle"):
        n = 4 if name == "square" else 3
        t = np.deg2rad(-90 + 360 / n * np.arange(n) + (45 if n == 4 else 0))
        return radius * np.stack([np.cos(t), np.sin(t)], 1)
    if name == "star":
        t = np.deg2rad(-90 + 36 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
        return np.stack([r * np.cos(t), r * np.sin(t)], 1)
    w, a = 0.3 * radius, radius  # cross: a plus sign with arms of half-width w and length a
    return np.array([(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w),
                     (-a, -w), (-w, -w)], np.float64)


def polygon(shape: Shape) -> np.ndarray:
    """The shape's (K, 2) vertices in image pixels: aspect-stretched, rotated and placed."""
    pts = outline(shape.cls, shape.size / 2) * (shape.aspect, 1.0 / shape.aspect)
    a = np.deg2rad(shape.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T + (shape.cx, shape.cy)


def coverage(shape: Shape, height: int, width: int) -> np.ndarray:
    """Anti-aliased float32 coverage mask (0..1) of the shape on a height x width image."""
    mask = np.zeros((height, width), np.uint8)
    pts = np.round(polygon(shape) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift=_SHIFT)
    return mask.astype(np.float32) / 255.0


def paint(canvas: np.ndarray, mask: np.ndarray, colour: Sequence[float], shade: float = 0.0,
          direction: float = 0.0) -> None:
    """Blend `colour` into the float32 canvas through `mask`, with a linear shading of +-`shade` along `direction` (deg)."""
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.deg2rad(direction)
    ramp = 1.0 + shade * ((xs / w - 0.5) * np.cos(a) + (ys / h - 0.5) * np.sin(a)) * 2
    fill = np.asarray(colour, np.float32)[None, None, :] * ramp[..., None]
    canvas += (fill - canvas) * mask[..., None]


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A float32 BGR background: a two-colour gradient, then smooth noise or lines (texture) on top."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = ((xs / width) * np.cos(a) + (ys / height) * np.sin(a))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = (c0 + (c1 - c0) * t[..., None]).astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:  # blotchy low-frequency noise
        cells = int(rng.integers(3, 12))
        noise = rng.uniform(-1, 1, (cells, cells, 3)).astype(np.float32)
        image += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * rng.uniform(20, 60)
    elif kind == 1:  # random lines
        for _ in range(int(rng.integers(5, 25))):
            p1 = tuple(int(v) for v in rng.uniform(-0.2, 1.2, 2) * (width, height))
            p2 = tuple(int(v) for v in rng.uniform(-0.2, 1.2, 2) * (width, height))
            cv2.line(image, p1, p2, tuple(float(v) for v in rng.uniform(0, 255, 3)), int(rng.integers(1, 4)),
                     cv2.LINE_AA)
    else:  # fine grain texture
        image += cv2.GaussianBlur(rng.normal(0, 1, (height, width, 1)).astype(np.float32), (0, 0), 1.5)[..., None] \
            * rng.uniform(10, 40)
    return np.clip(image, 0, 255)


def degrade(rng: np.random.Generator, image: np.ndarray, blur: float, noise: float) -> np.ndarray:
    """Gaussian blur (sigma up to `blur`) and pixel noise (sigma up to `noise`), returned as uint8."""
    sigma = rng.uniform(0, blur)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(0, noise), image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def demo_frame(seq: int, width: int = 640, height: int = 480, objects: int = 5, seed: int = 0) -> np.ndarray:
    """Frame `seq` of the demo video: shapes spinning and bouncing in their own columns over a fixed background."""
    rng = np.random.default_rng(seed)
    canvas = background(rng, height, width)
    column = width / objects
    for i, cls in enumerate(rng.permutation(objects) % len(CLASSES)):
        size = rng.uniform(0.7, 0.95) * min(column, height)
        x0, y0 = rng.uniform(0, 1, 2) * (column - size, height - size)
        vx, vy = rng.uniform(0.5, 1.5), rng.uniform(3, 6) * rng.choice((-1, 1))
        hue = (int(cls) * 36 + 10) % 180
        colour = cv2.cvtColor(np.array([[[hue, 220, 230]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(float)
        shape = Shape(int(cls), i * column + _bounce(x0 + vx * seq, column - size) + size / 2,
                      _bounce(y0 + vy * seq, height - size) + size / 2, size,
                      rng.uniform(0, 360) + seq * rng.uniform(-4, 4), tuple(colour))
        paint(canvas, coverage(shape, height, width), shape.colour)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def _bounce(t: float, span: float) -> float:
    """Position bouncing between 0 and span."""
    if span <= 0:
        return 0.0
    t %= 2 * span
    return t if t <= span else 2 * span - t
