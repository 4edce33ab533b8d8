"""int8 calibration for TensorRT engines built from an fp32 ONNX: batches, cache file, and the calibrator class.

The batching and the cache file are plain Python (unit-tested without TensorRT); `make_calibrator` wraps them
in a subclass of TensorRT's calibrator interface, created only when an engine is built.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ...errors import ModelError

ALGORITHMS = ("entropy", "minmax")


class CalibrationBatches:
    """(N, *input shape) pre-processed tensors served as contiguous float32 batches of a fixed size.

    TensorRT calibrates on full batches only, so a remainder that does not fill a batch is left out.
    """

    def __init__(self, tensors: np.ndarray, batch_size: int, input_shape: tuple):
        tensors = np.asarray(tensors)
        if tuple(tensors.shape[1:]) != tuple(input_shape):
            raise ModelError(f"calibration tensors {tuple(tensors.shape)} do not fit the network input "
                             f"(N, {', '.join(map(str, input_shape))})")
        if batch_size < 1 or len(tensors) < batch_size:
            raise ModelError(f"need at least {max(batch_size, 1)} calibration image(s), got {len(tensors)}")
        count = len(tensors) // batch_size
        self.batch_size = batch_size
        self._batches = np.ascontiguousarray(tensors[: count * batch_size], np.float32).reshape(
            count, batch_size, *input_shape)
        self._next = 0

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def nbytes(self) -> int:
        """Bytes in one batch (the device buffer size)."""
        return self._batches[0].nbytes

    def next_batch(self) -> Optional[np.ndarray]:
        """The next batch, or None once all were served."""
        if self._next >= len(self._batches):
            return None
        self._next += 1
        return self._batches[self._next - 1]


def read_cache(path: str) -> Optional[bytes]:
    """The calibration cache file's bytes, or None (TensorRT then calibrates from batches)."""
    try:
        with open(path, "rb") as f:
            return f.read() or None
    except FileNotFoundError:
        return None


def write_cache(path: str, data: bytes) -> None:
    """Write the cache once (atomically); an existing cache is the bundle's and stays untouched."""
    if os.path.exists(path):
        return
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_calibrator(trt, cuda, batches: Optional[CalibrationBatches], cache_path: str, algorithm: str = "entropy"):
    """A TensorRT IInt8EntropyCalibrator2 (or IInt8MinMaxCalibrator) over `batches`, reading/writing `cache_path`."""
    if algorithm not in ALGORITHMS:
        raise ModelError(f"calibration algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    base = trt.IInt8EntropyCalibrator2 if algorithm == "entropy" else trt.IInt8MinMaxCalibrator

    class Calibrator(base):  # type: ignore[valid-type,misc]  # TensorRT's class for the algorithm asked for
        def __init__(self):
            base.__init__(self)  # TensorRT's Python bindings need the base constructor called explicitly
            self.device_batch = cuda.mem_alloc(batches.nbytes) if batches else None

        def get_batch_size(self) -> int:
            return batches.batch_size if batches else 1

        def get_batch(self, names) -> Optional[list]:
            batch = batches.next_batch() if batches else None
            if batch is None:
                return None
            cuda.memcpy_htod(self.device_batch, batch)
            return [int(self.device_batch)]

        def read_calibration_cache(self) -> Optional[bytes]:
            return read_cache(cache_path)

        def write_calibration_cache(self, cache) -> None:
            write_cache(cache_path, bytes(cache))

    return Calibrator()
