"""TensorRT backend: a plain serialized engine (.engine/.plan) run through pinned host buffers on one CUDA stream.

The engine file is exactly what TensorRT serialized (no JSON header), so `trtexec --loadEngine` and Triton load
it too; the detector contract lives in the bundle's manifest.json. TensorRT and pycuda are imported only here, when
a backend or an engine build is created. Two execution paths, chosen by what the API offers (not its version
string): the named-tensor API (TensorRT 8.5+ and 10: set_tensor_address + execute_async_v3) and the binding API
(TensorRT 8.0-8.4: bindings list + execute_async_v2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import BackendUnavailable, ModelError
from ..base import Backend, TensorInfo

INSTALL_HINT = ("TensorRT comes from JetPack on Jetson (sudo apt install python3-libnvinfer, or nvidia-jetpack; "
                "create the venv with --system-site-packages) and pycuda from pip install 'edge[tensorrt]'")

_LOGGER = None


def import_tensorrt() -> tuple:
    """(tensorrt, pycuda.driver); BackendUnavailable with the install hint when either is missing."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailable(f"TensorRT is not installed: {INSTALL_HINT}") from None
    try:
        import pycuda.driver as cuda
    except ImportError as e:  # also raised when pycuda is there but libcuda is not
        raise BackendUnavailable(f"pycuda cannot be imported ({e}): {INSTALL_HINT}") from None
    return trt, cuda


def trt_logger(trt):
    """One TensorRT logger for the process (warnings and errors go to stderr)."""
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


class CudaContext:
    """The GPU's primary context, retained once and made current around each piece of GPU work.

    The primary context is the one TensorRT's CUDA runtime calls use, so pycuda buffers and TensorRT share it;
    pushing it per call also lets a backend built on one thread run on another.
    """

    def __init__(self, cuda, device: int = 0):
        self._cuda = cuda
        try:
            cuda.init()
            if cuda.Device.count() <= device:
                raise BackendUnavailable(f"TensorRT needs a CUDA GPU; found {cuda.Device.count()} device(s)")
            self.device = cuda.Device(device)
            self._context = self.device.retain_primary_context()
        except cuda.Error as e:
            raise BackendUnavailable(f"CUDA is not usable here ({e}); check the NVIDIA driver") from None

    def __enter__(self) -> "CudaContext":
        self._context.push()
        return self

    def __exit__(self, *exc) -> None:
        self._cuda.Context.pop()

    def release(self) -> None:
        """Drop this process's reference to the primary context."""
        if self._context is not None:
            self._context.detach()
            self._context = None


@dataclass(frozen=True)
class IOTensor:
    """One engine input or output, in engine order."""

    name: str
    is_input: bool
    shape: tuple
    dtype: np.dtype


def uses_tensor_api(engine, context) -> bool:
    """True when the named-tensor API is there (TensorRT 8.5+); the binding API is the fallback."""
    return hasattr(engine, "num_io_tensors") and hasattr(context, "execute_async_v3")


def tensor_layout(engine, trt, named: bool) -> list:
    """The engine's inputs and outputs in engine (binding) order."""
    if named:
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        return [IOTensor(n, engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT, tuple(engine.get_tensor_shape(n)),
                         np.dtype(trt.nptype(engine.get_tensor_dtype(n)))) for n in names]
    return [IOTensor(engine.get_binding_name(i), bool(engine.binding_is_input(i)), tuple(engine.get_binding_shape(i)),
                     np.dtype(trt.nptype(engine.get_binding_dtype(i)))) for i in range(engine.num_bindings)]


def check_layout(layout: list, where: str) -> None:
    """One input and at least one output, static but for a dynamic batch axis, as the detector runs them."""
    inputs = [t for t in layout if t.is_input]
    if len(inputs) != 1 or len(layout) < 2:
        raise ModelError(f"{where}: expected one input and at least one output, the engine has "
                         f"{len(inputs)} input(s) and {len(layout) - len(inputs)} output(s)")
    dynamic = [t.name for t in layout if any(d < 0 for d in t.shape[1:])]
    if dynamic:
        raise ModelError(f"{where}: dynamic shapes on {', '.join(dynamic)}; build the engine from a fixed-size ONNX")
    if inputs[0].shape[0] > 0 and any(t.shape[0] < 0 for t in layout):
        raise ModelError(f"{where}: dynamic batch on outputs of a fixed-batch input")


def profile_max_batch(engine, name: str, index: int, named: bool) -> int:
    """The largest batch of optimization profile 0 (TensorRT's dynamic shapes need the max to size buffers)."""
    if named:
        _, _, largest = engine.get_tensor_profile_shape(name, 0)
    else:
        _, _, largest = engine.get_profile_shape(0, index)
    return int(largest[0])


class TensorRTBackend(Backend):
    """Runs a serialized TensorRT engine: H2D copy, execute, D2H copy on one stream, then one sync."""

    name = "tensorrt"
    releases_gil = True
    accelerated = True

    def __init__(self, path: str, device: int = 0):
        path = str(path)
        if path.lower().endswith(".onnx"):
            raise ModelError(f"{path}: TensorRT runs engines; build one with edge-convert --target tensorrt-fp16")
        trt, cuda = import_tensorrt()
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError as e:
            raise ModelError(f"{path}: cannot read the engine ({e.strerror})") from None
        self._cuda = cuda
        self._gpu: Any = CudaContext(cuda, device)  # None once closed
        self._host_buffers: list = []
        self._device_buffers: list = []
        try:
            layout = self._open(trt, cuda, path, blob)
        except BaseException:
            self._gpu.release()
            raise
        pairs = list(zip(layout, self._host_buffers, self._device_buffers))
        self._input: Any = next((h, d) for t, h, d in pairs if t.is_input)
        self._outputs = [(h, d) for t, h, d in pairs if not t.is_input]
        self._results = [h for h, _ in self._outputs]
        self._batch = 0 if self.dynamic_batch else self.max_batch  # the batch the context's input shape holds
        self.inputs = [TensorInfo(t.name, t.shape, t.dtype.name) for t in layout if t.is_input]
        self.outputs = [TensorInfo(t.name, t.shape, t.dtype.name) for t in layout if not t.is_input]
        self.metadata = {}  # by design: an engine carries no metadata, the manifest does

    def _open(self, trt, cuda, path: str, blob: bytes) -> list:
        """Deserialize the engine and allocate pinned host and device buffers; returns the tensor layout."""
        with self._gpu:
            self._runtime = trt.Runtime(trt_logger(trt))  # kept: the runtime must outlive its engine
            self._engine = self._runtime.deserialize_cuda_engine(blob)
            if self._engine is None:
                raise ModelError(_unreadable(path, blob, trt.__version__))
            self._context = self._engine.create_execution_context()
            self._named = uses_tensor_api(self._engine, self._context)
            layout = tensor_layout(self._engine, trt, self._named)
            check_layout(layout, path)
            index, first = next((i, t) for i, t in enumerate(layout) if t.is_input)
            self.dynamic_batch = first.shape[0] < 0
            self.max_batch = (profile_max_batch(self._engine, first.name, index, self._named)
                              if self.dynamic_batch else first.shape[0])
            self._input_index = index
            self._stream = cuda.Stream()
            # A dynamic batch axis gets buffers for the profile's largest batch; a run uses their first rows.
            self._host_buffers = [cuda.pagelocked_empty((self.max_batch if t.shape[0] < 0 else t.shape[0],
                                                         *t.shape[1:]), t.dtype) for t in layout]
            self._device_buffers = [cuda.mem_alloc(h.nbytes) for h in self._host_buffers]
            if self._named:
                for t, d in zip(layout, self._device_buffers):
                    self._context.set_tensor_address(t.name, int(d))
            self._bindings = [int(d) for d in self._device_buffers]
        return layout

    def run(self, tensor: np.ndarray) -> list:
        host_in, device_in = self._input
        batch = tensor.shape[0] if self.dynamic_batch else self.max_batch
        if not 0 < batch <= self.max_batch:
            raise ModelError(f"a batch of {batch} images; this engine takes 1 to {self.max_batch}")
        host_in = host_in[:batch]
        np.copyto(host_in, tensor.reshape(host_in.shape), casting="same_kind")
        cuda, stream = self._cuda, self._stream
        with self._gpu:
            if batch != self._batch:
                self._set_batch(batch)
            cuda.memcpy_htod_async(device_in, host_in, stream)
            if self._named:
                ok = self._context.execute_async_v3(stream.handle)
            else:
                ok = self._context.execute_async_v2(self._bindings, stream.handle)
            for host, device in self._outputs:
                cuda.memcpy_dtoh_async(host[:batch], device, stream)
            stream.synchronize()
        if not ok:
            raise ModelError("TensorRT could not enqueue the inference (see the TensorRT log above)")
        return self._results if batch == self.max_batch else [r[:batch] for r in self._results]

    def _set_batch(self, batch: int) -> None:
        """Tell the context the input shape of the next runs (dynamic batch only)."""
        shape = (batch, *self.inputs[0].shape[1:])
        if self._named:
            self._context.set_input_shape(self.inputs[0].name, shape)
        else:
            self._context.set_binding_shape(self._input_index, shape)
        self._batch = batch

    def close(self) -> None:
        if self._gpu is None:
            return
        with self._gpu:
            for d in self._device_buffers:
                d.free()
            for h in self._host_buffers:
                h.base.free()  # pinned memory goes back while its context is current, not at interpreter exit
            self._context, self._engine, self._runtime, self._stream = None, None, None, None
            self._device_buffers = self._host_buffers = self._input = self._outputs = self._results = []
        self._gpu.release()
        self._gpu = None


def _unreadable(path: str, blob: bytes, version: str) -> str:
    """Why an engine does not deserialize, with the fix."""
    # Ultralytics' .engine export prepends a 4-byte little-endian length and a JSON header to the engine.
    if blob[4:5] == b"{":
        return (f"{path}: starts with a JSON header (an Ultralytics .engine export); edge loads plain engines: "
                "bundle the ONNX with edge-convert --target tensorrt-fp16 instead")
    return (f"{path}: TensorRT {version} cannot load this engine (built for another TensorRT version or GPU, or "
            "not an engine); rebuild it on this device with `edge models build-engine`")
