"""ONNX Runtime backend (CPU by default; CUDA/TensorRT execution providers when installed)."""
from __future__ import annotations

import mmap
from collections import Counter
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import BackendUnavailable, ModelError
from .base import Backend, TensorInfo

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}

_NUMPY_TYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "int8": np.int8,
                "int32": np.int32, "int64": np.int64}


class OnnxRuntimeBackend(Backend):
    """Runs an .onnx file with onnxruntime.InferenceSession."""

    name = "onnxruntime"
    releases_gil = True

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None,
                 spin: Optional[bool] = None):
        """spin: whether the intra-op threads busy-wait for work after a run (None: ORT's default, on)."""
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable("onnxruntime is not installed: pip install 'edge[onnx]'") from e
        available = ort.get_available_providers()
        providers = list(providers or ["CPUExecutionProvider"])
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendUnavailable(
                f"execution provider(s) {', '.join(missing)} not available; this onnxruntime has {', '.join(available)}"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        if spin is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # ORT raises several exception types for unreadable models
            raise ModelError(f"{path}: onnxruntime cannot load it ({_first_line(e)})") from None
        self.inputs = [TensorInfo(i.name, _shape(i.shape), _ORT_TYPES.get(i.type, i.type)) for i in self._session.get_inputs()]
        self.outputs = [TensorInfo(o.name, _shape(o.shape), _ORT_TYPES.get(o.type, o.type)) for o in self._session.get_outputs()]
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.precision = weights_precision(str(path))
        self.providers = self._session.get_providers()
        self.accelerated = self.providers[0] != "CPUExecutionProvider"  # CUDA, TensorRT, ... run the graph
        self._input_name = self.inputs[0].name
        self._output_names = [o.name for o in self.outputs]
        self._bindings: dict = {}  # batch size -> (io binding, output arrays), made on the first run of that size

    def _bind_outputs(self, batch: int) -> Optional[tuple]:
        """Preallocate the outputs of a run of `batch` images, so every such run writes into the same memory;
        None when an output's shape is not known beyond a dynamic batch axis."""
        dtypes = [_NUMPY_TYPES.get(o.dtype) for o in self.outputs]
        shapes = [(batch if o.shape[:1] == (-1,) else o.shape[0], *o.shape[1:]) for o in self.outputs]
        if any(d is None for d in dtypes) or any(min(s, default=0) <= 0 for s in shapes):
            return None
        binding = self._session.io_binding()
        results = []
        for info, dtype, shape in zip(self.outputs, dtypes, shapes):
            array = np.empty(shape, dtype)
            binding.bind_output(info.name, "cpu", 0, dtype, list(shape), array.ctypes.data)
            results.append(array)
        return binding, results

    def run(self, tensor: np.ndarray) -> list:
        batch = tensor.shape[0]
        if batch not in self._bindings:
            self._bindings[batch] = self._bind_outputs(batch)
        bound = self._bindings[batch]
        if bound is None:
            return self._session.run(self._output_names, {self._input_name: tensor})
        binding, results = bound
        binding.bind_cpu_input(self._input_name, tensor)
        self._session.run_with_iobinding(binding)
        return results


def _shape(dims) -> tuple:
    """ORT reports dynamic dims as strings or None; keep them as -1."""
    return tuple(d if isinstance(d, int) else -1 for d in dims)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__

# ONNX protobuf field numbers (onnx/onnx.proto): ModelProto.graph 7; GraphProto.node 1 and .initializer 5;
# NodeProto.op_type 4; TensorProto.data_type 2 (1 float, 10 float16).
_QUANTIZED_OPS = {b"DequantizeLinear", b"QLinearConv", b"QLinearMatMul", b"ConvInteger", b"MatMulInteger",
                  b"DynamicQuantizeLinear"}
_FLOAT, _FLOAT16 = 1, 10


def weights_precision(path: str) -> Optional[str]:
    """int8 (the graph has quantized ops, e.g. QDQ), fp16 (float16 weights outnumber float32 ones) or fp32, read
    from the file's protobuf without the onnx package; None when the file is not a plain ONNX protobuf."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            graph = next((v for n, v in _fields(data, 0, len(data)) if n == 7 and isinstance(v, tuple)), None)
            if graph is None:
                return None
            ops: set = set()
            dtypes: Counter = Counter()
            for number, value in _fields(data, *graph):
                if number == 1 and isinstance(value, tuple):
                    ops.update(bytes(data[s:e]) for n, (s, e) in _spans(data, value) if n == 4)
                elif number == 5 and isinstance(value, tuple):
                    dtypes.update(v for n, v in _fields(data, *value) if n == 2)
    except (OSError, ValueError, IndexError):
        return None
    if ops & _QUANTIZED_OPS:
        return "int8"
    return "fp16" if dtypes[_FLOAT16] > dtypes[_FLOAT] else "fp32"


def _spans(data, span: tuple) -> Iterator[tuple]:
    """(field number, (start, end)) of the length-delimited fields of one message."""
    return ((n, v) for n, v in _fields(data, *span) if isinstance(v, tuple))


def _fields(data, pos: int, end: int) -> Iterator[tuple]:
    """(field number, value) of one protobuf message: an int (varint), (start, end) (length-delimited) or None."""
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        value: Union[int, tuple, None] = None
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated protobuf message")
        yield key >> 3, value


def _varint(data, pos: int) -> tuple:
    result = shift = 0
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint too long")
