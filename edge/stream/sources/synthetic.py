"""`synthetic[:WxH[@fps]]`: deterministic moving coloured shapes for tests and demos (fps 0 = unpaced)."""
from __future__ import annotations

import time
from typing import Optional

import cv2
import numpy as np

from .base import Frame, Source

COLOURS = ((40, 40, 220), (40, 200, 40), (220, 120, 30), (0, 200, 230))


class SyntheticSource(Source):
    """Shapes bouncing over a grey background, paced at `fps`; `frames` ends the stream after that many."""

    def __init__(self, uri: str = "synthetic", width: int = 640, height: int = 480, fps: float = 30.0,
                 frames: Optional[int] = None, source_id: Optional[str] = None):
        super().__init__(uri, source_id or "synthetic")
        self.width, self.height, self.fps, self.frames = int(width), int(height), float(fps), frames
        self._start = 0.0

    def open(self) -> None:
        """Nothing to acquire; starts the pacing clock."""
        self._start = time.monotonic() - self._seq / self.fps if self.fps > 0 else 0.0

    def read(self) -> Optional[Frame]:
        """Draw the next frame, waiting for its slot when paced."""
        if self.frames is not None and self._seq >= self.frames:
            return None
        if self.fps > 0:
            delay = self._start + self._seq / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return self.frame(render(self._seq, self.width, self.height))

    def close(self) -> None:
        """Nothing to release."""


def render(seq: int, width: int, height: int) -> np.ndarray:
    """Frame number `seq` of the synthetic scene."""
    image = np.full((height, width, 3), 64, np.uint8)
    size = max(4, min(width, height) // 5)
    for i, colour in enumerate(COLOURS):
        x = _bounce(seq * (3 + 2 * i) + 97 * i, width - size)
        y = _bounce(seq * (2 + i) + 61 * i, height - size)
        if i % 2:
            cv2.circle(image, (x + size // 2, y + size // 2), size // 2, colour, -1)
        else:
            cv2.rectangle(image, (x, y), (x + size, y + size), colour, -1)
    return image


def _bounce(t: int, span: int) -> int:
    """Position bouncing between 0 and span."""
    if span <= 0:
        return 0
    t %= 2 * span
    return t if t <= span else 2 * span - t
