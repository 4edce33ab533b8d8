"""Frame and Source: the one interface every camera, stream and file source implements."""
from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import SourceError

__all__ = ["Frame", "Source", "SourceError"]


@dataclass
class Frame:
    """One captured BGR uint8 image with its per-source sequence number (a file's frame index or a folder's image
    index), capture time (epoch seconds) and, from files, the file's path."""

    image: np.ndarray
    seq: int
    timestamp: float
    source_id: str
    file: Optional[str] = None  # the image or video file it came from (file-backed sources)


class Source(ABC):
    """A frame producer: open(), read() until None (end of stream), close(); `live` sources reconnect."""

    live: bool = True  # a camera or stream: latest frame, reconnects; False: a file or folder, every frame, ends
    skipped: int = 0  # inputs it could not use: unreadable or oversized images, frames missing from a cut video

    def __init__(self, uri: str, source_id: Optional[str] = None):
        self.uri = uri
        self.id = source_id or re.sub(r"[^A-Za-z0-9_.-]+", "_", uri).strip("_") or "source"
        self._seq = 0

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raises SourceError with one actionable line."""

    @abstractmethod
    def read(self) -> Optional[Frame]:
        """The next frame, None at the end of the stream; raises SourceError when the source is lost."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file (safe to call twice)."""

    def frame(self, image: np.ndarray, timestamp: Optional[float] = None, file: Optional[str] = None) -> Frame:
        """Wrap an image as this source's next Frame (capture time defaults to now)."""
        frame = Frame(image, self._seq, time.time() if timestamp is None else timestamp, self.id, file)
        self._seq += 1
        return frame

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r}, id={self.id!r})"
