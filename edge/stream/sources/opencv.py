"""OpenCVSource: the shared cv2.VideoCapture reader behind V4L2, network, GStreamer and file sources."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .base import Frame, Source, SourceError


class OpenCVSource(Source):
    """Frames from cv2.VideoCapture; open() reads one frame so a dead device fails at start-up."""

    def __init__(self, uri: str, target: Union[str, int], api: int, params: Sequence[int] = (),
                 source_id: Optional[str] = None):
        super().__init__(uri, source_id)
        self.target, self.api, self.params = target, api, list(params)
        self.capture: Optional[cv2.VideoCapture] = None
        self._first: Optional[Frame] = None

    def open(self) -> None:
        """Open the capture, apply settings, and check that a frame arrives."""
        self.close()
        capture = cv2.VideoCapture(self.target, self.api, self.params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.uri}: {self.cannot_open()}")
        self.capture = capture
        try:
            self.configure(capture)
            ok, image = capture.read()
            if not ok or image is None:
                raise SourceError(f"{self.uri}: opened but delivered no frame")
        except BaseException:
            self.close()
            raise
        self._first = self.frame(image)

    def cannot_open(self) -> str:
        """Why opening may have failed, for the error line."""
        return "cannot open (unreachable, wrong URL, or unsupported by this OpenCV build)"

    def configure(self, capture: cv2.VideoCapture) -> None:
        """Apply source-specific settings after opening (default: none)."""

    def read(self) -> Optional[Frame]:
        """The next frame; a failed read means the stream was lost."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        image = self.grab()
        if image is None:
            return self.end_of_stream()
        return self.frame(image)

    def grab(self) -> Optional[np.ndarray]:
        """One decoded BGR image from the capture, or None."""
        if self.capture is None:
            raise SourceError(f"{self.uri}: not open")
        ok, image = self.capture.read()
        return image if ok else None

    def end_of_stream(self) -> Optional[Frame]:
        """What a failed read means: a lost live stream (raise) unless overridden."""
        raise SourceError(f"{self.uri}: stream lost (no frame)")

    def close(self) -> None:
        """Release the capture."""
        if self.capture is not None:
            self.capture.release()
            self.capture = None
        self._first = None
