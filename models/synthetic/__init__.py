"""Deterministic synthetic detection dataset: shapes at varied scale, rotation, colour, blur, noise and occlusion.

Drawing lives in `edge.scene` (shared with `edge demo`, which must not import `models`); this module samples
scenes and writes COCO-style splits: DIR/{train,val}/*.jpg, DIR/{train,val}.json and DIR/names.txt.
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from edge.scene import CLASSES, Shape, background, coverage, degrade, paint, polygon

SPLITS = {"train": 1, "val": 2}  # split index mixed into each image's seed
MIN_VISIBLE = 0.6  # occlusion never hides more than 40% of an object


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of every other image and of the split sizes."""
    return np.random.default_rng([seed, SPLITS[split], index])


def _colour(rng: np.random.Generator, under: np.ndarray) -> tuple:
    """A random BGR colour at least 80 away (L2) from `under`, the mean background it covers."""
    colour = rng.uniform(0, 255, 3)
    for _ in range(20):
        if np.linalg.norm(colour - under) >= 80:
            break
        colour = rng.uniform(0, 255, 3)
    return tuple(float(v) for v in colour)


def _occluder(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coverage of a random bar or scribble that may cover parts of objects."""
    mask = np.zeros((size, size), np.uint8)
    centre = rng.uniform(0, size, 2)
    if rng.random() < 0.5:  # bar
        length, half = rng.uniform(0.2, 0.6) * size, rng.uniform(0.01, 0.04) * size
        a = rng.uniform(0, np.pi)
        d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        pts = [centre + sl * d * length / 2 + sh * n * half for sl, sh in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        cv2.fillPoly(mask, [np.round(np.array(pts) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    else:  # scribble: a thick polyline, nothing like a shape class
        pts = centre + np.cumsum(rng.uniform(-0.15, 0.15, (int(rng.integers(3, 6)), 2)) * size, 0)
        cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 255, int(rng.integers(3, 9)), cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def _fits(mask: np.ndarray, placed: list) -> bool:
    """Whether covering with `mask` keeps every placed object at least MIN_VISIBLE visible."""
    return all((vis * (1 - mask)).sum() >= MIN_VISIBLE * full for _, full, vis in placed)


def sample(rng: np.random.Generator, size: int, max_objects: int = 6) -> tuple:
    """One uint8 BGR image and its objects as (class index, [x, y, w, h], visible area) tuples."""
    canvas = background(rng, size, size)
    want, placed = int(rng.integers(1, max_objects + 1)), []
    for _ in range(10 * want):
        if len(placed) == want:
            break
        diameter = float(np.exp(rng.uniform(np.log(0.12), np.log(0.45))) * size)
        shape = Shape(int(rng.integers(len(CLASSES))), 0.0, 0.0, diameter, rng.uniform(0, 360), (0, 0, 0),
                      float(np.exp(rng.uniform(-0.2, 0.2))))
        pts = polygon(shape)
        lo, hi = -pts.min(0) + 1, size - 1 - pts.max(0)
        if (hi < lo).any():
            continue
        shape = shape._replace(cx=rng.uniform(lo[0], hi[0]), cy=rng.uniform(lo[1], hi[1]))
        mask = coverage(shape, size, size)
        if not _fits(mask, placed):
            continue
        under = (canvas * mask[..., None]).sum((0, 1)) / max(float(mask.sum()), 1.0)
        paint(canvas, mask, _colour(rng, under), rng.uniform(0, 0.25), rng.uniform(0, 360))
        placed = [(c, full, vis * (1 - mask)) for c, full, vis in placed] + [(shape.cls, float(mask.sum()), mask)]
    for _ in range(int(rng.integers(0, 3))):
        mask = _occluder(rng, size)
        if _fits(mask, placed):
            paint(canvas, mask, tuple(float(v) for v in rng.uniform(0, 255, 3)))
            placed = [(c, full, vis * (1 - mask)) for c, full, vis in placed]
    objects = []
    for cls, _, vis in placed:
        ys, xs = np.nonzero(vis > 0.5)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        objects.append((cls, box, int(len(xs))))
    return degrade(rng, canvas, blur=1.5, noise=8.0), objects


def write_split(out: str, split: str, count: int, size: int, seed: int) -> str:
    """Write `count` images of `split` under out/split/ and their COCO JSON at out/split.json; returns the JSON path."""
    folder = os.path.join(out, split)
    os.makedirs(folder, exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        image, objects = sample(image_rng(seed, split, index), size)
        name = f"{index:06d}.jpg"
        cv2.imwrite(os.path.join(folder, name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        for cls, box, area in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": cls + 1,
                                "bbox": box, "area": area, "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES)]}
    path = os.path.join(out, f"{split}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return path


def generate(out: str, train: int, val: int, size: int = 320, seed: int = 0) -> dict:
    """Write both splits and names.txt under `out`; returns {split: json path, 'names': path}."""
    os.makedirs(out, exist_ok=True)
    paths = {split: write_split(out, split, n, size, seed) for split, n in (("train", train), ("val", val)) if n}
    paths["names"] = os.path.join(out, "names.txt")
    with open(paths["names"], "w", encoding="utf-8") as f:
        f.write("\n".join(CLASSES) + "\n")
    return paths
