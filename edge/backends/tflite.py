"""TFLite backend: ai-edge-litert (preferred) or tflite-runtime, XNNPACK on CPU."""
from __future__ import annotations

from typing import Optional

import os

import numpy as np

from ..errors import BackendUnavailable, ModelError
from .base import Backend, TensorInfo


def _interpreter_class():
    """ai_edge_litert first (numpy 2, the reference runtime), then tflite_runtime (numpy < 2)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError as e:
        raise BackendUnavailable("no TFLite runtime is installed: pip install 'edge[tflite]'") from e


class TFLiteBackend(Backend):
    """Runs a .tflite flatbuffer with the TFLite interpreter."""

    name = "tflite"

    def __init__(self, path: str, threads: Optional[int] = None):
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] != b"TFL3":
            raise ModelError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
        interpreter_class, self.runtime = _interpreter_class()
        try:
            # The interpreter defaults to one thread; a device dedicated to detection wants every core.
            self._interpreter = interpreter_class(model_path=str(path), num_threads=threads or os.cpu_count())
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: the TFLite interpreter cannot load it ({str(e).strip().splitlines()[0][:300]})") from None
        self.inputs = [_info(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_info(d) for d in self._interpreter.get_output_details()]
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_indices = [d["index"] for d in self._interpreter.get_output_details()]
        self.metadata = {}

    def run(self, tensor: np.ndarray) -> list:
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._output_indices]


def _info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        quant_scale=float(scale) if scale else None,
        quant_zero_point=int(zero_point),
    )
