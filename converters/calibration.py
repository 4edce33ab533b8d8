"""Calibration data for int8 quantization: the user's images or video, pre-processed exactly as the runtime does.

The tensors come from `edge.preprocess.Preprocessor` with the bundle's own input contract, so what the
quantizer calibrates on is byte-for-byte what `edge.Detector` feeds the model at inference time.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Iterator, Tuple

import cv2
import numpy as np

from edge.contract import InputSpec
from edge.errors import EdgeError
from edge.images import list_images
from edge.preprocess import Preprocessor
from edge.progress import Progress

from . import ConvertError

log = logging.getLogger("edge-convert")

DEFAULT_COUNT = 200  # images used when the folder has more; spread evenly over it
MINIMUM = 32  # fewer than this calibrates int8 scales poorly: warn, naming the number used
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


@dataclass
class CalibrationSet:
    """Pre-processed input tensors (N, *input shape) and where they came from."""

    tensors: np.ndarray
    sources: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    origin: str = ""  # the folder or video they were read from

    def __len__(self) -> int:
        return len(self.tensors)


def evenly(n_available: int, count: int) -> list:
    """`count` indices spread evenly over range(n_available) (all of them when there are fewer)."""
    if n_available <= count:
        return list(range(n_available))
    return sorted({int(i) for i in np.linspace(0, n_available - 1, count).round()})


def load_calibration(source: str, spec: InputSpec, count: int = DEFAULT_COUNT,
                     minimum: int = MINIMUM) -> CalibrationSet:
    """Read up to `count` frames from an image folder or a video file and pre-process them for `spec`."""
    if count < 1:
        raise ConvertError(f"--calib-count must be at least 1, got {count}")
    if os.path.isdir(source):
        total, frames = _folder_frames(source, count)
    elif os.path.isfile(source) and source.lower().endswith(VIDEO_EXTENSIONS):
        total, frames = _video_frames(source, count)
    else:
        raise ConvertError(f"--calib {source}: not an image folder or a video file ({', '.join(VIDEO_EXTENSIONS)})")
    preprocess = Preprocessor(spec)
    tensors, sources, skipped = [], [], []
    with Progress("calibration images", total) as progress:
        for name, frame in frames:
            progress.update()
            if frame is None:
                skipped.append(name)
                continue
            tensors.append(preprocess(frame)[0][0].copy())
            sources.append(name)
    if skipped:
        log.warning("calibration: skipped %d file(s) that do not decode, first: %s", len(skipped), skipped[0])
    if not tensors:
        raise ConvertError(f"--calib {source}: no usable images or frames")
    if len(tensors) < minimum:
        log.warning("calibration: only %d image(s) from %s (at least %d recommended); int8 scales may be poor",
                    len(tensors), source, minimum)
    log.info("calibration: %d image(s) from %s", len(tensors), source)
    return CalibrationSet(np.stack(tensors), sources, skipped, source)


def _folder_frames(folder: str, count: int) -> Tuple[int, Iterator[tuple]]:
    """(number of images, (name, image or None) read one at a time)."""
    try:
        files = list_images(folder)
    except EdgeError as e:
        raise ConvertError(f"--calib {e}") from None
    chosen = [files[i] for i in evenly(len(files), count)]
    return len(chosen), ((os.path.basename(path), cv2.imread(path, cv2.IMREAD_COLOR)) for path in chosen)


def _video_frames(path: str, count: int) -> Tuple[int, Iterator[tuple]]:
    """(number of frames, (name, frame or None) read one at a time); the video is closed after the last."""
    capture = cv2.VideoCapture(path)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    if not capture.isOpened() or total <= 0:
        capture.release()
        raise ConvertError(f"--calib {path}: OpenCV cannot read this video")
    indices = evenly(total, count)

    def frames() -> Iterator[tuple]:
        try:
            for index in indices:
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                ok, frame = capture.read()
                yield f"{os.path.basename(path)}#{index}", frame if ok else None
        finally:
            capture.release()

    return len(indices), frames()
