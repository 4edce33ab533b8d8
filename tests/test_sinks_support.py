"""Helpers shared by the sink tests (no tests here): real events and frames, a mutable status, bounded waits."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Callable

import numpy as np

from edge.detections import Detections
from edge.stream.events import detections_event
from edge.stream.sources import Frame

from .stream_helpers import tiny_model

MODEL = {"id": "tiny", "family": "yolo11", "backend": "onnxruntime", "precision": "fp32", "version": None}


def image(seq: int = 0, width: int = 320, height: int = 240) -> np.ndarray:
    """A BGR test picture that changes with seq."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :, 1] = np.linspace(0, 255, width, dtype=np.uint8)
    img[20:120, 40 + seq % 100:140 + seq % 100] = (0, 0, 255)
    return img


def detections() -> Detections:
    """Two boxes with names."""
    return Detections(np.array([[40, 20, 140, 120], [10, 10, 60, 50]], np.float32), np.array([0.9, 0.4]),
                      np.array([0, 2]), ["person", "car"])


def event(seq: int, source: str = "cam0") -> dict:
    """A real event (edge.stream.events) for frame seq of source."""
    frame = Frame(image(seq), seq, time.time(), source)
    return detections_event(frame, detections(), MODEL, {"preprocess": 1.0, "inference": 5.0}, time.time())


class Status:
    """A pipeline status() stand-in whose snapshot the test edits."""

    def __init__(self) -> None:
        self.snapshot = {
            "model": {"path": "tiny.onnx", "family": "yolo11", "backend": "onnxruntime"},
            "started_at": time.time(), "inferred": 0, "last_inference_at": None, "fps": 0.0,
            "latency_ms": {"capture_to_result": {"p50": 12.5, "p99": 40.0}, "inference": {"p50": 5.0, "p99": 9.0}},
            "sources": {"cam0": {"uri": "synthetic", "connected": True, "captured": 0, "inferred": 0, "dropped": 0,
                                 "reconnects": 0, "last_frame_at": None, "error": None}},
            "sinks": {"http": {"published": 0, "failed": 0, "dropped": 0}},
        }

    def __call__(self) -> dict:
        return self.snapshot


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll predicate until true or timeout (only a guard against hangs, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edge_run(tmp_path, *args, frames: int = 5) -> subprocess.CompletedProcess:
    """`edge run` on the tiny model and the synthetic source (named cam0) with these sink flags."""
    model = tiny_model(tmp_path / "tiny.onnx")
    command = [sys.executable, "-m", "edge", "run", "--model", model, "--source", "cam0=synthetic:96x64",
               "--all-frames", "--max-frames", str(frames), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)
