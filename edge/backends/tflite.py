"""TFLite backend: ai-edge-litert (preferred) or tflite-runtime, XNNPACK on CPU."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional

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


@contextlib.contextmanager
def _native_stderr_quiet() -> Iterator[None]:
    """Send what native code writes to fd 2 to /dev/null meanwhile (LiteRT logs with printf, not Python logging)."""
    if logging.getLogger("edge").isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class TFLiteBackend(Backend):
    """Runs a .tflite flatbuffer with the TFLite interpreter."""

    name = "tflite"
    releases_gil = True

    def __init__(self, path: str, threads: Optional[int] = None):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
        problem = flatbuffer_problem(data)
        if problem:
            raise ModelError(f"{path}: corrupt or truncated TFLite model ({problem})")
        interpreter_class, self.runtime = _interpreter_class()
        try:
            # The interpreter defaults to one thread; a device dedicated to detection wants every core.
            with _native_stderr_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate" unless --debug
                self._interpreter = interpreter_class(model_path=str(path), num_threads=threads or os.cpu_count())
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: the TFLite interpreter cannot load it ({str(e).strip().splitlines()[0][:300]})") from None
        self.inputs = [_info(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_info(d) for d in self._interpreter.get_output_details()]
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_indices = [d["index"] for d in self._interpreter.get_output_details()]
        self.metadata = {}
        self.precision = _weights_precision(self._interpreter)

    def run(self, tensor: np.ndarray) -> list:
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._output_indices]


def flatbuffer_problem(data: bytes) -> Optional[str]:
    """Bounds-check the Model table and every weight buffer, or say what is out of bounds.

    Older runtimes (ai-edge-litert < 2.3, tflite-runtime) read such offsets unchecked and crash the process;
    this walks the parts of the schema a truncated or damaged file breaks first.
    """
    size = len(data)

    def u32(pos: int) -> int:
        return int.from_bytes(data[pos:pos + 4], "little")

    def table(pos: int) -> Optional[tuple]:
        """(table position, vtable position, vtable size) when both lie inside the file."""
        if not 0 <= pos <= size - 4:
            return None
        vtable = pos - int.from_bytes(data[pos:pos + 4], "little", signed=True)
        if not 0 <= vtable <= size - 4:
            return None
        vt_size = int.from_bytes(data[vtable:vtable + 2], "little")
        return (pos, vtable, vt_size) if vt_size >= 4 and vtable + vt_size <= size else None

    def field(t: tuple, index: int) -> Optional[int]:
        """Position of a table field, None when absent."""
        pos, vtable, vt_size = t
        slot = 4 + 2 * index
        offset = int.from_bytes(data[vtable + slot:vtable + slot + 2], "little") if slot + 2 <= vt_size else 0
        return pos + offset if offset else None

    def vector(t: tuple, index: int, element: int) -> Optional[tuple]:
        """(first element position, length) of a vector field; raises ValueError when out of bounds."""
        at = field(t, index)
        if at is None:
            return None
        if at > size - 4 or at + u32(at) > size - 4:
            raise ValueError(f"field {index} points past the end")
        start = at + u32(at)
        length = u32(start)
        if start + 4 + length * element > size:
            raise ValueError(f"vector {index} of {length} items runs past the end")
        return start + 4, length

    model = table(u32(0))
    if model is None:
        return "root table out of bounds"
    try:
        for index in (1, 2):  # operator codes, subgraphs
            vector(model, index, 4)
        first, count = vector(model, 4, 4) or (0, 0)
        for k in range(count):
            at = first + 4 * k
            buffer = table(at + u32(at))
            if buffer is None:
                return f"buffer {k} out of bounds"
            vector(buffer, 0, 1)
            offset_at, size_at = field(buffer, 1), field(buffer, 2)
            if offset_at and size_at:  # weights stored after the flatbuffer (models over 2 GB)
                start = int.from_bytes(data[offset_at:offset_at + 8], "little")
                if start > 1 and start + int.from_bytes(data[size_at:size_at + 8], "little") > size:
                    return f"buffer {k} data runs past the end"
    except ValueError as e:
        return str(e)
    return None


def _weights_precision(interpreter) -> Optional[str]:
    """int8 when any tensor (weights or activations) is a quantized 8-bit integer, fp16 when float16 weights
    are stored (an fp16 export dequantizes them at load), else fp32; None when the interpreter cannot list them."""
    try:
        details = interpreter.get_tensor_details()
    except (ValueError, RuntimeError):
        return None
    kinds = {np.dtype(d["dtype"]).name for d in details if _quantized(d)}
    if kinds & {"int8", "uint8"}:
        return "int8"
    return "fp16" if any(np.dtype(d["dtype"]).name == "float16" for d in details) else "fp32"


def _quantized(detail: dict) -> bool:
    """The tensor has a scale: per tensor (`quantization`) or per channel (`quantization_parameters`)."""
    scales = detail.get("quantization_parameters", {}).get("scales")
    return bool(detail.get("quantization", (0.0, 0))[0]) or (scales is not None and len(scales) > 0)


def _info(detail: dict) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]).name,
        quant_scale=float(scale) if scale else None,
        quant_zero_point=int(zero_point),
    )
