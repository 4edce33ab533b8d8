"""Video files: every frame, paced at the file's own frame rate (like a camera) or as fast as decoded."""
from __future__ import annotations

import logging
import os
import time
from typing import Optional

import cv2

from .base import Frame
from .opencv import OpenCVSource

log = logging.getLogger("edge")


class VideoFileSource(OpenCVSource):
    """A video file, every frame (a finite source: opened at start, never reconnected); `realtime` plays it at its
    own frame rate like a camera, otherwise as fast as decoded. Its frames name the file; seq is the frame index."""

    live = False

    def __init__(self, uri: str, realtime: bool = True, source_id: Optional[str] = None):
        super().__init__(uri, uri, cv2.CAP_ANY, (), source_id or os.path.splitext(os.path.basename(uri))[0])
        self.realtime = bool(realtime)
        self._start = 0.0
        self._period = 0.0
        self._expected = 0  # frames the container declares
        self.truncated = 0  # times the file ended before them

    def cannot_open(self) -> str:
        """File-specific hint."""
        return "cannot open video (unsupported container or codec)"

    def configure(self, capture: cv2.VideoCapture) -> None:
        """Read the frame rate for pacing."""
        fps = capture.get(cv2.CAP_PROP_FPS)
        self._period = 1.0 / fps if self.realtime and 0 < fps < 1000 else 0.0
        self._expected = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))

    def open(self) -> None:
        """Open the file and read its first frame; the pacing clock starts with that frame."""
        super().open()
        self._start = time.monotonic()

    def read(self) -> Optional[Frame]:
        """The next frame, waiting for its play time when paced."""
        if self._period and self._first is None:  # open() already read the first frame, at its time
            delay = self._start + self._seq * self._period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = super().read()
        if frame is not None:
            frame.file = self.uri
        return frame

    def end_of_stream(self) -> Optional[Frame]:
        """A file simply ends; before the frame count its container declares, it was truncated or corrupt: said once."""
        if self._seq < self._expected and not self.truncated:
            self.truncated += 1
            self.skipped = self._expected - self._seq
            log.warning("%s: ended after %d of the %d frames it declares (truncated or corrupt file)", self.uri,
                        self._seq, self._expected)
        return None
