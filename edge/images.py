"""Image files on disk: which extensions count, and a folder's images in name order."""
from __future__ import annotations

import glob
import os

from .errors import EdgeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: str) -> list:
    """Image files in a folder, sorted; an EdgeError when there are none."""
    files = sorted(f for f in glob.glob(os.path.join(folder, "*")) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise EdgeError(f"{folder}: no images (.jpg, .png, ...) found")
    return files
