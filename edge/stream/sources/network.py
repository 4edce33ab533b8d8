"""`rtsp://`, `rtsps://`, `http(s)://` streams through OpenCV's FFmpeg backend, with open/read timeouts."""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

import cv2

from .opencv import OpenCVSource


class NetworkSource(OpenCVSource):
    """A network camera or stream; a lost connection raises so the pipeline reconnects."""

    def __init__(self, uri: str, timeout: float = 10.0, source_id: Optional[str] = None):
        ms = int(timeout * 1000)
        super().__init__(uri, uri, cv2.CAP_FFMPEG,
                         [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
                         source_id or urlsplit(uri).hostname or "stream")

    def cannot_open(self) -> str:
        """Network-specific hint."""
        return "cannot open stream (host unreachable, wrong path or credentials, or unsupported codec)"
