"""An image folder (or one image file): each readable image once, in name order."""
from __future__ import annotations

import logging
import os
from typing import Optional

import numpy as np

from ...errors import EdgeError
from ...images import list_images, read_image
from .base import Frame, Source, SourceError

log = logging.getLogger("edge")


MAX_SIDE = 8192
MAX_PIXELS = 40_000_000  # 120 MB as BGR; a 16384 x 16384 PNG of zeros is under 1 MB on disk but 805 MB decoded


class FolderSource(Source):
    """Images from a folder as frames, each event naming its file; an unreadable or oversized image in a folder is
    a warning, counted in `skipped`, and skipped; a single image file that cannot be read fails open()."""

    live = False

    def __init__(self, uri: str, source_id: Optional[str] = None):
        super().__init__(uri, source_id or os.path.basename(os.path.normpath(uri)))
        self._paths: list = []
        self._image: Optional[np.ndarray] = None  # a single image file, read by open()
        self.skipped = 0

    def open(self) -> None:
        """List the images (read a single image file now, so an unreadable one is a start-up error)."""
        try:
            if os.path.isdir(self.uri):
                self._paths = list_images(self.uri)
            else:
                self._paths, self._image = [self.uri], load_image(self.uri)
        except EdgeError as e:
            raise SourceError(str(e)) from None

    def read(self) -> Optional[Frame]:
        """The next readable image, None after the last."""
        while self._paths:
            path = self._paths.pop(0)
            image, self._image = self._image, None
            try:
                if image is None:
                    image = load_image(path)
            except EdgeError as e:
                log.warning("%s; skipped", e)
                self.skipped += 1
                self._seq += 1
                continue
            return self.frame(image, file=path)
        return None

    def close(self) -> None:
        """Nothing to release."""


def load_image(path: str) -> np.ndarray:
    """The image in a file, refused before decoding when its header declares more than MAX_SIDE / MAX_PIXELS;
    EdgeError `PATH: ...` otherwise."""
    size = image_size(path)
    if size and (max(size) > MAX_SIDE or size[0] * size[1] > MAX_PIXELS):
        raise EdgeError(f"{path}: {size[0]} x {size[1]} image is over the limit ({MAX_SIDE} a side, "
                        f"{MAX_PIXELS // 1_000_000} MP)")
    return read_image(path)


def image_size(path: str) -> Optional[tuple]:
    """(width, height) from a PNG, JPEG, BMP or WebP header without decoding; None when unknown or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            if head.startswith(b"BM") and len(head) >= 26:
                return int.from_bytes(head[18:22], "little"), abs(int.from_bytes(head[22:26], "little", signed=True))
            if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                return _webp_size(head)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                return _jpeg_size(f)
    except OSError:
        pass
    return None


def _webp_size(head: bytes) -> Optional[tuple]:
    """The canvas size of a VP8X, lossy VP8 or lossless VP8L WebP (RFC 9649)."""
    chunk = head[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if chunk == b"VP8 ":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(f) -> Optional[tuple]:
    """Walk the JPEG markers up to the first SOFn frame header (height, width follow the sample precision)."""
    while True:
        byte = f.read(1)
        if byte != b"\xff":
            return None
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
            continue
        length = int.from_bytes(f.read(2), "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            return (int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")) if len(data) == 5 else None
        if length < 2:
            return None
        f.seek(length - 2, 1)
