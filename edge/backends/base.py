"""The one interface every inference engine implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape, dtype and (for integer tensors) quantization of one model tensor."""

    name: str
    shape: tuple
    dtype: str
    quant_scale: Optional[float] = None
    quant_zero_point: int = 0


class Backend(ABC):
    """Loads one model file and runs it on one preprocessed tensor."""

    name = "base"
    releases_gil = False  # run() lets other Python threads work meanwhile, so overlapping pre/post with it pays
    accelerated = False  # runs on a GPU or another accelerator, where a batch of frames costs little more than one
    inputs: list
    outputs: list
    metadata: dict  # key/value metadata stored in the model file (e.g. Ultralytics' ONNX metadata_props)
    precision: Optional[str] = None  # the weights: fp32, fp16 or int8, read from the file; None when it cannot tell

    @abstractmethod
    def run(self, tensor: np.ndarray) -> list:
        """Run inference; outputs in the order of `self.outputs` (may be reused buffers: copy to keep past the next run)."""

    def close(self) -> None:
        """Release the engine (optional)."""
