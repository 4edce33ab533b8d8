"""`gst:PIPELINE`: a GStreamer pipeline ending in appsink (Jetson CSI: nvarguscamerasrc ... ! appsink drop=true max-buffers=1)."""
from __future__ import annotations

import re
from typing import Optional

import cv2

from .base import SourceError
from .opencv import OpenCVSource


def opencv_has_gstreamer() -> bool:
    """Whether this cv2 build can open GStreamer pipelines."""
    return bool(re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()))


class GStreamerSource(OpenCVSource):
    """A GStreamer pipeline read through OpenCV's CAP_GSTREAMER backend."""

    def __init__(self, uri: str, source_id: Optional[str] = None):
        super().__init__(uri, uri[len("gst:"):].strip(), cv2.CAP_GSTREAMER, (), source_id or "gst")

    def open(self) -> None:
        """Check the cv2 build first, then open the pipeline."""
        if not opencv_has_gstreamer():
            raise SourceError(f"{self.uri}: this OpenCV ({cv2.__version__}) is built without GStreamer (pip's "
                              "opencv-python-headless has none); on a Jetson use JetPack's system OpenCV "
                              "(python3-opencv, venv with --system-site-packages)")
        super().open()

    def cannot_open(self) -> str:
        """Pipeline-specific hint."""
        return "cannot start the GStreamer pipeline (check it with gst-launch-1.0; it must end in appsink)"
