"""Backends by name: the files each runs and where its class lives (imported only when a model is opened).

Adding a backend is one new file with its Backend subclass plus one `register_backend(...)` line below.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import ModelError
from .base import Backend, TensorInfo

OPTIONS = ("providers", "threads", "spin")  # what Detector.load can pass on to a backend


@dataclass(frozen=True)
class BackendEntry:
    """One backend: its name, the file extensions it runs, its class and the options its constructor takes."""

    name: str
    extensions: tuple
    target: Union[str, type]  # "edge.backends.<module>:<Class>" (imported when first opened) or the class itself
    options: tuple = ()  # which of OPTIONS the constructor accepts; the others are not passed

    def load(self) -> type:
        """The Backend class, importing its module now."""
        if not isinstance(self.target, str):
            return self.target
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


BACKENDS: dict = {}  # name -> BackendEntry, in registration order


def register_backend(name: str, extensions: tuple, target: Union[str, type], options: tuple = ()) -> BackendEntry:
    """Add a backend; a name and each extension are registered once."""
    taken = [e for e in extensions if any(e.lower() in b.extensions for b in BACKENDS.values())]
    if name in BACKENDS or taken:
        raise ValueError(f"backend {name!r} or extension(s) {taken} already registered")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"backend {name!r}: unknown option(s) {sorted(unknown)}; expected some of {OPTIONS}")
    entry = BackendEntry(name, tuple(e.lower() for e in extensions), target, tuple(options))
    BACKENDS[name] = entry
    return entry


def backend_for(path: str) -> str:
    """The backend that runs this file, by extension."""
    ext = os.path.splitext(str(path))[1].lower()
    for entry in BACKENDS.values():
        if ext in entry.extensions:
            return entry.name
    known = [e for entry in BACKENDS.values() for e in entry.extensions]
    raise ModelError(f"{path}: unsupported model file type {ext or '(none)'!r}; expected "
                     f"{', '.join(known[:-1])} or {known[-1]}")


def open_backend(path: str, backend: Optional[str] = None, **options) -> Backend:
    """Open `path` with the named backend (or the one its extension implies)."""
    kind = backend or backend_for(path)
    if kind not in BACKENDS:
        raise ModelError(f"unknown backend {kind!r}; expected one of {', '.join(BACKENDS)}")
    entry = BACKENDS[kind]
    return entry.load()(path, **{k: options.get(k) for k in entry.options})


register_backend("onnxruntime", (".onnx",), "edge.backends.onnxruntime:OnnxRuntimeBackend",
                 ("providers", "threads", "spin"))
register_backend("tflite", (".tflite",), "edge.backends.tflite:TFLiteBackend", ("threads",))
register_backend("tensorrt", (".engine", ".plan"), "edge.backends.tensorrt.backend:TensorRTBackend")

__all__ = ["Backend", "TensorInfo", "BackendEntry", "BACKENDS", "OPTIONS", "register_backend", "open_backend",
           "backend_for"]
