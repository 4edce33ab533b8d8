"""Image files on disk: which extensions count, a folder's images in name order, and reading one with a reason."""
from __future__ import annotations

import glob
import os

import cv2
import numpy as np

from .errors import EdgeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: str) -> list:
    """Image files in a folder, sorted; an EdgeError when there are none."""
    files = sorted(f for f in glob.glob(os.path.join(folder, "*")) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise EdgeError(f"{folder}: no images (.jpg, .png, ...) found")
    return files


def read_image(path: str) -> np.ndarray:
    """The BGR image in a file; EdgeError `PATH: cannot read image (why)` when there is none (every command words
    an unreadable image this way)."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise EdgeError(f"{path}: cannot read image ({why_unreadable(path)})")
    return image


def why_unreadable(path: str) -> str:
    """Why OpenCV could not read an image file: missing, a folder, empty, not readable, or not an image."""
    if os.path.isdir(path):
        return "a folder, not a file"
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as e:
        return (e.strerror or str(e)).lower()
    return "empty file" if empty else "not an image, or a format this OpenCV build cannot decode"
