"""`edge bench`: per-stage latency, throughput, load time and peak memory of a Detector."""
from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Optional

import numpy as np

from .detector import Detector
from .errors import EdgeError
from .images import list_images, read_image
from .progress import Progress

log = logging.getLogger("edge")


def readable_images(paths: list) -> list:
    """The images that can be read; each one that cannot is a warning (the same line as `edge run` prints)."""
    frames = []
    for path in paths:
        try:
            frames.append(read_image(path))
        except EdgeError as e:
            log.warning("%s; skipped", e)
    return frames


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def _stats(values: list) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "max": round(float(a.max()), 3)}


def bench(model: str, images: Optional[str] = None, runs: int = 100, warmup: int = 5, **load_options) -> dict:
    """Load the model, warm it up, then time `runs` frames (cycling over the images, or one synthetic frame)."""
    t0 = time.perf_counter()
    detector = Detector.load(model, preset="deployment", **load_options)  # the thresholds edge run would use
    load_ms = (time.perf_counter() - t0) * 1e3
    if images:
        frames: list = readable_images(list_images(images))
        if not frames:
            raise EdgeError(f"{images}: none of its images could be read (each is named above)")
    else:
        frames = [np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)]
    for i in range(warmup):
        detector(frames[i % len(frames)])
    stages: dict = {"preprocess": [], "inference": [], "postprocess": []}
    total: list = []
    start = time.perf_counter()
    with Progress("bench", total=runs) as progress:
        for i in range(runs):
            t = time.perf_counter()
            detector(frames[i % len(frames)])
            total.append((time.perf_counter() - t) * 1e3)
            for key in stages:
                stages[key].append(detector.timing_ms[key])
            progress.update()
    wall = time.perf_counter() - start
    return {
        "model": model, "backend": detector.backend.name, "input": [detector.contract.input.height, detector.contract.input.width],
        "frames": runs, "images": len(frames), "load_ms": round(load_ms, 1),
        "latency_ms": {**{k: _stats(v) for k, v in stages.items()}, "total": _stats(total)},
        "fps": round(runs / wall, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
    }
