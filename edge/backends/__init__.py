"""Backends, chosen by name or by the model file's extension; each is imported only when used."""
from __future__ import annotations

import os
from typing import Optional

from ..errors import ModelError
from .base import Backend, TensorInfo

EXTENSIONS = {".onnx": "onnxruntime", ".tflite": "tflite", ".engine": "tensorrt", ".plan": "tensorrt"}
BACKENDS = ("onnxruntime", "tflite", "tensorrt")


def backend_for(path: str) -> str:
    """The backend that runs this file, by extension."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in EXTENSIONS:
        raise ModelError(f"{path}: unsupported model file type {ext or '(none)'!r}; expected .onnx, .tflite or .engine")
    return EXTENSIONS[ext]


def open_backend(path: str, backend: Optional[str] = None, **options) -> Backend:
    """Open `path` with the named backend (or the one its extension implies)."""
    kind = backend or backend_for(path)
    if kind == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend
        return OnnxRuntimeBackend(path, providers=options.get("providers"), threads=options.get("threads"))
    if kind == "tflite":
        from .tflite import TFLiteBackend
        return TFLiteBackend(path, threads=options.get("threads"))
    if kind == "tensorrt":
        from .tensorrt.backend import TensorRTBackend
        return TensorRTBackend(path)
    raise ModelError(f"unknown backend {kind!r}; expected one of {', '.join(BACKENDS)}")


__all__ = ["Backend", "TensorInfo", "open_backend", "backend_for", "EXTENSIONS", "BACKENDS"]
