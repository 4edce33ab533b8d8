"""Small stand-ins for the tensorrt and pycuda.driver modules, shaped like the real API surface we call.

They exercise OUR code around TensorRT (buffer plumbing, binding/tensor layout, build configuration, caches);
they say nothing about TensorRT itself: the `hardware` tests in test_tensorrt.py run the real thing.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np


class FakeCuda:
    """pycuda.driver: 'device memory' is a dict of numpy byte arrays keyed by fake pointers."""

    class Error(Exception):
        pass

    def __init__(self, gpu: str = "Orin", compute: tuple = (8, 7)):
        self.memory, self.pushed, self.freed = {}, 0, 0
        cuda = self

        class Device:
            @staticmethod
            def count() -> int:
                return 1

            def __init__(self, index):
                self.index = index

            def name(self) -> str:
                return gpu

            def compute_capability(self) -> tuple:
                return compute

            def retain_primary_context(self):
                return SimpleNamespace(push=cuda._push, detach=lambda: None)

        class Context:
            @staticmethod
            def pop() -> None:
                cuda.pushed -= 1

        class Stream:
            handle = 1234

            def synchronize(self) -> None:
                pass

        self.Device, self.Context, self.Stream = Device, Context, Stream

    def _push(self) -> None:
        self.pushed += 1

    def init(self) -> None:
        pass

    def pagelocked_empty(self, shape, dtype) -> np.ndarray:
        """An array whose .base is the 'host allocation' (with free()), as pycuda returns."""
        cuda = self

        class HostAllocation(bytearray):
            def free(self) -> None:
                cuda.freed += 1

        dtype = np.dtype(dtype)
        return np.ndarray(shape, dtype, buffer=HostAllocation(int(np.prod(shape)) * dtype.itemsize))

    def mem_alloc(self, nbytes: int):
        pointer = 4096 * (len(self.memory) + 1)
        self.memory[pointer] = np.zeros(nbytes, np.uint8)
        cuda = self

        class Allocation:
            def __int__(self) -> int:
                return pointer

            def free(self) -> None:
                cuda.freed += 1

        return Allocation()

    def memcpy_htod(self, device, host) -> None:
        """Like CUDA: host.nbytes bytes to the start of the allocation (a dynamic batch copies its rows only)."""
        data = np.ascontiguousarray(host).view(np.uint8).ravel()
        self.memory[int(device)][:data.size] = data

    def memcpy_htod_async(self, device, host, stream) -> None:
        self.memcpy_htod(device, host)

    def memcpy_dtoh_async(self, host, device, stream) -> None:
        host.view(np.uint8).ravel()[:] = self.memory[int(device)][:host.nbytes]

    def read(self, pointer: int, shape, dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self.memory[pointer][:nbytes].view(dtype).reshape(shape)


class _Engine:
    """An engine whose context runs `compute` (input array -> list of output arrays) on fake device memory.

    A -1 first axis is a dynamic batch: `profile` is then (min, opt, max) of it, and a context runs only once its
    input shape is set (as TensorRT's execute fails before that)."""

    def __init__(self, cuda: FakeCuda, tensors: list, compute, profile: tuple = ()):
        self.cuda, self.tensors, self.compute = cuda, tensors, compute  # tensors: (name, is_input, shape, dtype)
        self.profile = profile

    def run(self, pointers: list, batch) -> bool:
        """Read the input at its pointer, write each output at its pointer; False without an input shape."""
        if batch is None and any(t[2][0] < 0 for t in self.tensors):
            return False
        placed = [((n, i, (batch if s[0] < 0 else s[0], *s[1:]), d), p) for (n, i, s, d), p in zip(self.tensors, pointers)]
        (inp, p_in), = [(t, p) for t, p in placed if t[1]]
        results = self.compute(self.cuda.read(p_in, inp[2], inp[3]))
        for (t, p), value in zip([(t, p) for t, p in placed if not t[1]], results):
            self.cuda.read(p, t[2], t[3])[...] = value
        return True

    def profile_shapes(self, name: str) -> tuple:
        """(min, opt, max) shapes of a dynamic-batch input."""
        shape = next(t[2] for t in self.tensors if t[0] == name)
        return tuple((b, *shape[1:]) for b in self.profile)


class NamedEngine(_Engine):
    """TensorRT 8.5+/10: named I/O tensors, set_tensor_address and execute_async_v3."""

    @property
    def num_io_tensors(self):
        return len(self.tensors)

    def get_tensor_name(self, i):
        return self.tensors[i][0]

    def get_tensor_mode(self, name):
        return "INPUT" if self._find(name)[1] else "OUTPUT"

    def get_tensor_shape(self, name):
        return list(self._find(name)[2])

    def get_tensor_dtype(self, name):
        return self._find(name)[3]

    def _find(self, name):
        return next(t for t in self.tensors if t[0] == name)

    def get_tensor_profile_shape(self, name, profile_index):
        return self.profile_shapes(name)

    def create_execution_context(self):
        engine, addresses = self, {}

        class Context:
            batch = None
            shapes: list = []

            def set_tensor_address(self, name, pointer):
                addresses[name] = pointer

            def set_input_shape(self, name, shape):
                self.batch = shape[0]
                self.shapes = self.shapes + [tuple(shape)]
                return True

            def execute_async_v3(self, stream_handle):
                return engine.run([addresses[t[0]] for t in engine.tensors], self.batch)

        return Context()


class BindingEngine(_Engine):
    """TensorRT 8.0-8.4: numbered bindings and execute_async_v2, no named-tensor API."""

    @property
    def num_bindings(self):
        return len(self.tensors)

    def get_binding_name(self, i):
        return self.tensors[i][0]

    def binding_is_input(self, i):
        return self.tensors[i][1]

    def get_binding_shape(self, i):
        return list(self.tensors[i][2])

    def get_binding_dtype(self, i):
        return self.tensors[i][3]

    def get_profile_shape(self, profile_index, binding_index):
        return self.profile_shapes(self.tensors[binding_index][0])

    def create_execution_context(self):
        engine = self

        class Context:
            batch = None
            shapes: list = []

            def set_binding_shape(self, index, shape):
                self.batch = shape[0]
                self.shapes = self.shapes + [tuple(shape)]
                return True

            def execute_async_v2(self, bindings, stream_handle):
                return engine.run(bindings, self.batch)

        return Context()


class FakeTrt:
    """The tensorrt module: Runtime deserializes through `engines` (blob -> engine); Builder records its config."""

    TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8")
    MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0)
    LayerType = SimpleNamespace(QUANTIZE="QUANTIZE", CONVOLUTION="CONVOLUTION")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class IInt8EntropyCalibrator2:
        def __init__(self):
            self.algorithm = "entropy"

    class IInt8MinMaxCalibrator:
        def __init__(self):
            self.algorithm = "minmax"

    def __init__(self, version: str = "10.3.0", input_shape: tuple = (1, 3, 640, 640), qdq: bool = False):
        self.__version__, self.input_shape, self.qdq = version, input_shape, qdq
        self.engines, self.builds, self.configs, self.calibrated_batches = {}, 0, [], 0
        trt = self

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, blob):
                return trt.engines.get(bytes(blob))

        self.Runtime = Runtime

    @staticmethod
    def nptype(dtype):
        return dtype  # the fake engines report numpy dtypes already

    def Builder(self, logger):
        return _Builder(self)

    def OnnxParser(self, network, logger):
        return SimpleNamespace(parse=lambda data: bool(data), num_errors=0, get_error=lambda i: "")


class _TimingCache:
    def __init__(self, blob: bytes):
        self.runs = int(blob or b"0")  # how many builds fed this cache

    def serialize(self) -> bytes:
        return str(self.runs).encode()


class _Profile:
    """An optimization profile: input name -> (min, opt, max) shapes."""

    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, minimum, optimum, maximum):
        self.shapes[name] = (tuple(minimum), tuple(optimum), tuple(maximum))


class _Config:
    def __init__(self):
        self.flags, self.pool, self.int8_calibrator, self.timing = set(), None, None, None
        self.profiles, self.calibration_profile = [], None

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_calibration_profile(self, profile):
        self.calibration_profile = profile

    def set_memory_pool_limit(self, pool, size):
        self.pool = (pool, size)

    def set_flag(self, flag):
        self.flags.add(flag)

    def create_timing_cache(self, blob):
        return _TimingCache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.timing = cache
        return True

    def get_timing_cache(self):
        return self.timing


class _Builder:
    def __init__(self, trt: FakeTrt):
        self.trt = trt

    def create_network(self, flags):
        trt = self.trt
        trt.network_flags = flags
        layers = [SimpleNamespace(type=trt.LayerType.QUANTIZE if trt.qdq else trt.LayerType.CONVOLUTION)]
        return SimpleNamespace(flags=flags, num_layers=1, get_layer=lambda i: layers[i],
                               get_input=lambda i: SimpleNamespace(name="images", shape=trt.input_shape))

    def create_optimization_profile(self):
        return _Profile()

    def create_builder_config(self):
        config = _Config()
        self.trt.configs.append(config)
        return config

    def build_serialized_network(self, network, config):
        """Like TensorRT: an int8 calibrator's cache wins over its batches; a new calibration writes a cache."""
        calibrator = config.int8_calibrator
        if calibrator is not None and not calibrator.read_calibration_cache():
            while calibrator.get_batch(["images"]) is not None:
                self.trt.calibrated_batches += 1
            calibrator.write_calibration_cache(memoryview(b"TRT-calibration %d" % self.trt.calibrated_batches))
        self.trt.builds += 1
        config.timing.runs += 1
        return b"ENGINE " + b" ".join(sorted(f.encode() for f in config.flags))
