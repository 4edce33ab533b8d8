"""Helpers for the streaming tests: a tiny real Detector, videos written with OpenCV, scripted fake sources."""
from __future__ import annotations

import threading
import time
from typing import Tuple

import cv2
import numpy as np

from edge import Detector
from edge.stream.sources import Source, SourceError
from edge.stream.sources.synthetic import render

from .onnx_models import constant_model, ultralytics_metadata, yolo11_output


def tiny_model(path, size: int = 64) -> str:
    """A 64x64 YOLO11 ONNX model that always finds one 'dog' in the middle."""
    out = yolo11_output([[size / 2, size / 2, size / 4, size / 8]], [[0.0, 0.9]], num_anchors=84)
    return constant_model(path, (1, 3, size, size), {"output0": out}, ultralytics_metadata(["cat", "dog"], (size, size)))


def tiny_detector(tmp_path) -> Detector:
    """The tiny model loaded with the real Detector."""
    return Detector.load(tiny_model(tmp_path / "tiny.onnx"))


def write_video(path, frames: int, size=(96, 64), fps: float = 30.0) -> str:
    """An MJPG .avi whose frame i shows the synthetic scene i (brightness band encodes i)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(render(i, *size))
    writer.release()
    return str(path)


class SlowDetector:
    """The real detector plus a fixed delay per frame (in its inference stage when overlapped: a sleeping backend
    releases the GIL like a real one), recording which frames it saw."""

    def __init__(self, detector: Detector, delay: float):
        self.detector, self.delay, self.seen = detector, delay, []

    def __call__(self, image):
        self.seen.append(image)
        time.sleep(self.delay)
        return self.detector(image)

    def prepare(self, image, slot=0):
        self.seen.append(image)
        return self.detector.prepare(image, slot)

    def infer(self, tensor):
        time.sleep(self.delay)
        return self.detector.infer(tensor)

    def __getattr__(self, name):
        return getattr(self.detector, name)


class ScriptedSource(Source):
    """A fake source: `fail_opens` failed reopenings after `lose_after` frames, then frames again; counts opens."""

    def __init__(self, uri="fake", frames=20, lose_after=None, fail_opens=0, live=True, period=0.0, source_id=None):
        super().__init__(uri, source_id)
        self.frames, self.lose_after, self.fail_opens, self.live, self.period = frames, lose_after, fail_opens, live, period
        self.opens = 0
        self.lost = False
        self.closed = threading.Event()

    def open(self):
        self.opens += 1
        if self.lost and self.fail_opens > 0:
            self.fail_opens -= 1
            raise SourceError(f"{self.uri}: device gone")
        self.lost = False

    def read(self):
        if self.period:
            time.sleep(self.period)
        if self._seq >= self.frames:
            return None
        if self.lose_after is not None and self._seq == self.lose_after and not self.lost and self.opens == 1:
            self.lost = True
            raise SourceError(f"{self.uri}: stream lost")
        return self.frame(np.full((32, 32, 3), self._seq % 256, np.uint8))

    def close(self):
        self.closed.set()


def consume_then_stop(pipeline, after: int, timeout: float) -> Tuple[list, bool]:
    """Iterate `pipeline` on a thread, stop it from there after `after` events: (events seen, thread still alive)."""
    seen: list = []

    def consume():
        for event in pipeline:
            seen.append(event)
            if len(seen) == after:
                pipeline.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    thread.join(timeout)
    return seen, thread.is_alive()

