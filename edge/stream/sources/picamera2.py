"""`picamera2[:N]`: Raspberry Pi cameras through picamera2 (from apt: python3-picamera2; venv with --system-site-packages).

A `main` stream serves preview/snapshots; when a model size is given, a `lores` stream scaled by the ISP
to fit it is what the detector sees (no CPU resize). Frames carry the sensor timestamp, converted to epoch.
"""
from __future__ import annotations

import time
from typing import Optional, Tuple

import cv2
import numpy as np

from .base import Frame, Source, SourceError


class Picamera2Source(Source):
    """A Pi camera: requests are captured, copied to BGR and released at once; few buffers keep latency low."""

    def __init__(self, uri: str = "picamera2", camera: int = 0, width: int = 1280, height: int = 720,
                 fps: Optional[float] = None, model_size: Optional[Tuple[int, int]] = None, buffer_count: int = 3,
                 lores_format: str = "YUV420", source_id: Optional[str] = None):
        super().__init__(uri, source_id or ("picamera2" if camera == 0 else f"picamera2-{camera}"))
        self.camera, self.size, self.fps = int(camera), (int(width), int(height)), fps
        self.lores_size = fit_within(self.size, model_size) if model_size else None
        self.buffer_count, self.lores_format = int(buffer_count), lores_format
        self.stream = "lores" if self.lores_size else "main"
        self.camera_config: dict = {}
        self._picam2 = None

    def open(self) -> None:
        """Import picamera2, configure main (+ lores) streams and start the camera."""
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(f"{self.uri}: picamera2 is not installed; install python3-picamera2 with apt and create "
                              "the venv with --system-site-packages") from None
        self.close()
        try:
            picam2 = Picamera2(self.camera)
        except (IndexError, RuntimeError) as e:
            raise SourceError(f"{self.uri}: cannot open camera {self.camera} ({e}); is it connected and not in use?") from None
        try:
            lores = {"size": self.lores_size, "format": self.lores_format} if self.lores_size else None
            controls = {"FrameDurationLimits": (int(1e6 / self.fps),) * 2} if self.fps else {}
            config = picam2.create_video_configuration(main={"size": self.size, "format": "RGB888"}, lores=lores,
                                                       buffer_count=self.buffer_count, controls=controls)
            picam2.configure(config)
            self.camera_config = picam2.camera_configuration()[self.stream]
            if self.camera_config["format"] not in ("RGB888", "BGR888", "YUV420"):
                raise SourceError(f"{self.uri}: unsupported pixel format {self.camera_config['format']}")
            picam2.start()
        except BaseException as e:
            picam2.close()
            if isinstance(e, (SourceError, KeyboardInterrupt)):
                raise
            raise SourceError(f"{self.uri}: cannot configure camera {self.camera} ({e})") from None
        self._picam2 = picam2

    def read(self) -> Optional[Frame]:
        """Capture one request, convert the inference stream to BGR, release the request."""
        if self._picam2 is None:
            raise SourceError(f"{self.uri}: not open")
        try:
            request = self._picam2.capture_request()
        except Exception as e:
            raise SourceError(f"{self.uri}: capture failed ({e})") from None
        try:
            array = request.make_array(self.stream)
            sensor_ns = request.get_metadata().get("SensorTimestamp")
        finally:
            request.release()
        return self.frame(to_bgr(array, self.camera_config), sensor_epoch(sensor_ns))

    def close(self) -> None:
        """Stop and release the camera."""
        if self._picam2 is not None:
            picam2, self._picam2 = self._picam2, None
            try:
                picam2.stop()
            finally:
                picam2.close()


def fit_within(size: Tuple[int, int], box: Tuple[int, int]) -> Tuple[int, int]:
    """`size` scaled to fit inside `box` keeping its aspect ratio, rounded down to even numbers."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(2, int(size[0] * scale) // 2 * 2), max(2, int(size[1] * scale) // 2 * 2)


def to_bgr(array: np.ndarray, config: dict) -> np.ndarray:
    """A picamera2 array as BGR: 'RGB888' already is B,G,R in memory; 'BGR888' is R,G,B; YUV420 is I420 with stride."""
    fmt, (width, _) = config["format"], config["size"]
    if fmt == "RGB888":
        return array
    if fmt == "BGR888":
        return np.ascontiguousarray(array[..., ::-1])
    return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_YUV2BGR_I420)[:, :width])


def sensor_epoch(sensor_ns: Optional[int]) -> Optional[float]:
    """A SensorTimestamp (CLOCK_MONOTONIC nanoseconds) as epoch seconds; None when the request has none."""
    if sensor_ns is None:
        return None
    return time.time() - time.monotonic() + sensor_ns / 1e9
