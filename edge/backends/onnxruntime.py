"""ONNX Runtime backend (CPU by default; CUDA/TensorRT execution providers when installed)."""
from __future__ import annotations

from typing import Optional, Sequence

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

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None, threads: Optional[int] = None):
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
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # ORT raises several exception types for unreadable models
            raise ModelError(f"{path}: onnxruntime cannot load it ({_first_line(e)})") from None
        self.inputs = [TensorInfo(i.name, _shape(i.shape), _ORT_TYPES.get(i.type, i.type)) for i in self._session.get_inputs()]
        self.outputs = [TensorInfo(o.name, _shape(o.shape), _ORT_TYPES.get(o.type, o.type)) for o in self._session.get_outputs()]
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.providers = self._session.get_providers()
        self._input_name = self.inputs[0].name
        self._output_names = [o.name for o in self.outputs]
        self._binding, self._results = self._bind_static_outputs()

    def _bind_static_outputs(self) -> tuple:
        """Preallocate the outputs once (static shapes) so a run writes into the same memory every frame."""
        dtypes = [_NUMPY_TYPES.get(o.dtype) for o in self.outputs]
        if any(d is None for d in dtypes) or any(min(o.shape, default=0) <= 0 for o in self.outputs):
            return None, None
        binding = self._session.io_binding()
        results = []
        for info, dtype in zip(self.outputs, dtypes):
            array = np.empty(info.shape, dtype)
            binding.bind_output(info.name, "cpu", 0, dtype, list(array.shape), array.ctypes.data)
            results.append(array)
        return binding, results

    def run(self, tensor: np.ndarray) -> list:
        if self._binding is None:
            return self._session.run(self._output_names, {self._input_name: tensor})
        self._binding.bind_cpu_input(self._input_name, tensor)
        self._session.run_with_iobinding(self._binding)
        return self._results


def _shape(dims) -> tuple:
    """ORT reports dynamic dims as strings or None; keep them as -1."""
    return tuple(d if isinstance(d, int) else -1 for d in dims)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
