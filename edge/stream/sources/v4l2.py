"""`/dev/videoN` or `v4l2:N`: USB and V4L2 cameras through OpenCV, with size, rate and pixel format."""
from __future__ import annotations

import os
from typing import Optional, Union

import cv2

from .base import SourceError
from .opencv import OpenCVSource


class V4L2Source(OpenCVSource):
    """A V4L2 camera; `fourcc` (e.g. MJPG) must be one the device offers at that size."""

    def __init__(self, uri: str, device: Union[str, int], width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, fourcc: Optional[str] = None, source_id: Optional[str] = None):
        super().__init__(uri, device, cv2.CAP_V4L2, (), source_id or f"video{str(device).rsplit('video', 1)[-1]}")
        if fourcc is not None and len(fourcc) != 4:
            raise SourceError(f"{uri}: pixel format must be a four-character code like MJPG or YUYV, got {fourcc!r}")
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc

    def cannot_open(self) -> str:
        """Device-specific hint: no permission, else busy (or not a capture node)."""
        path = self.target if isinstance(self.target, str) else f"/dev/video{self.target}"
        if not os.path.exists(path):
            return "no such camera device (unplugged? ls /dev/video* lists the cameras)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"no permission to use {path}: add the user to group video (sudo usermod -aG video USER)"
        return (f"cannot open camera: in use by another program (fuser -v {path} names it), or not a capture "
                "node (a USB camera's second node carries metadata only: v4l2-ctl --list-devices)")

    def configure(self, capture: cv2.VideoCapture) -> None:
        """Apply pixel format, size and rate, keep the driver queue short, and check the format took."""
        if self.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                            (cv2.CAP_PROP_FPS, self.fps)):
            if value:
                capture.set(prop, value)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.fourcc:
            code = int(capture.get(cv2.CAP_PROP_FOURCC))
            actual = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
            if actual.upper() != self.fourcc.upper():
                raise SourceError(f"{self.uri}: the camera does not offer pixel format {self.fourcc} "
                                  f"at this size (it uses {actual.strip() or 'another'}); list formats with v4l2-ctl --list-formats-ext")
