"""TensorRT engines built on the device from a bundle's ONNX, cached per TensorRT version, GPU, precision and size.

Bundle design. A TensorRT bundle is an ONNX bundle whose manifest says target `tensorrt-fp16` or `tensorrt-int8`.
Its ONNX is fp32 or, for int8, either an int8 QDQ ONNX (explicit quantization: no calibrator) or an fp32 ONNX
plus a TensorRT calibration cache named in the manifest (`"tensorrt": {"calibration_cache": {"file", "sha256"}}`).
Engines are not portable, so each device builds its own into <bundle>/engines/<key>.engine, the key naming the
precision, input size, TensorRT version, GPU and compute capability; <key>.json beside it records those fields
and the sha256 of the ONNX and of the engine. The engine file is the plain serialized engine (trtexec and
Triton load it): metadata stays in manifest.json. A timing cache per TensorRT version and GPU sits in engines/
too and speeds up every later build.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...bundle import Bundle, Manifest, sha256_file
from ...errors import ModelError
from . import backend as trt_backend
from .calibrator import CalibrationBatches, make_calibrator, read_cache

ENGINES = "engines"
CALIBRATION_CACHE = "calibration.cache"
PRECISIONS = ("fp16", "int8")


@dataclass(frozen=True)
class Platform:
    """What an engine is tied to: the TensorRT version and the GPU it was built on."""

    tensorrt: str
    gpu: str
    compute_capability: str

    @property
    def tag(self) -> str:
        """Filesystem-safe 'trt<version>-<gpu>-sm<cc>'."""
        return f"trt{_safe(self.tensorrt)}-{_safe(self.gpu)}-sm{_safe(self.compute_capability.replace('.', ''))}"


def current_platform() -> Platform:
    """This device's TensorRT version, GPU name and compute capability."""
    trt, cuda = trt_backend.import_tensorrt()
    gpu = trt_backend.CudaContext(cuda)
    try:
        major, minor = gpu.device.compute_capability()
        return Platform(trt.__version__, gpu.device.name(), f"{major}.{minor}")
    finally:
        gpu.release()


def needs_engine(manifest: Manifest) -> bool:
    """True when the bundle targets TensorRT but ships ONNX: the engine is built on the device."""
    return manifest.target.startswith("tensorrt") and manifest.model.format == "onnx"


def precision_of(manifest: Manifest) -> str:
    """'fp16' or 'int8' from the manifest's target tensorrt-<precision>."""
    target = manifest.target
    precision = target.partition("-")[2]
    if not target.startswith("tensorrt-") or precision not in PRECISIONS:
        raise ModelError(f"target {target!r}: expected one of {', '.join('tensorrt-' + p for p in PRECISIONS)}")
    return precision


def engine_key(platform: Platform, precision: str, height: int, width: int, batch: int = 1) -> str:
    """'<precision>-<H>x<W>[-b<batch>]-trt<version>-<gpu>-sm<cc>': one name per engine that is not
    interchangeable (batch: the largest batch, named when it is not 1)."""
    batched = f"-b{int(batch)}" if batch != 1 else ""
    return f"{_safe(precision)}-{int(height)}x{int(width)}{batched}-{platform.tag}"


def bundle_engine_key(bundle: Bundle, platform: Platform) -> str:
    """The engine key of a bundle's model on `platform`."""
    spec = bundle.manifest.input
    return engine_key(platform, precision_of(bundle.manifest), spec.height, spec.width, spec.batch)


def engine_paths(bundle_dir: str, key: str) -> tuple:
    """(engine file, JSON sidecar) for a key in the bundle's engine cache."""
    stem = os.path.join(bundle_dir, ENGINES, key)
    return stem + ".engine", stem + ".json"


def timing_cache_path(bundle_dir: str, platform: Platform) -> str:
    """The builder timing cache for this TensorRT version and GPU."""
    return os.path.join(bundle_dir, ENGINES, f"timing-{platform.tag}.cache")


def calibration_cache_path(bundle: Bundle) -> Optional[str]:
    """The calibration cache the manifest names, checked against its sha256; None when there is none."""
    entry = bundle.manifest.tensorrt.calibration_cache if bundle.manifest.tensorrt else None
    if entry is None:
        return None
    path = os.path.join(bundle.path, entry.file)  # the manifest's schema makes `file` a plain file name
    if not os.path.isfile(path) or sha256_file(path) != entry.sha256:
        raise ModelError(f"{path}: the calibration cache is missing or does not match the manifest's sha256")
    return path


def find_engine(bundle: Bundle, platform: Optional[Platform] = None, verify: bool = True) -> str:
    """The cached engine for this device, or a ModelError saying how to build it."""
    platform = platform or current_platform()
    manifest = bundle.manifest
    key = bundle_engine_key(bundle, platform)
    engine, sidecar = engine_paths(bundle.path, key)
    record = _read_record(sidecar)
    if record is None or not os.path.isfile(engine) or record.get("onnx_sha256") != manifest.model.sha256:
        raise ModelError(f"{bundle.path}: no TensorRT engine {key} for this device yet; build it with "
                         f"`edge models build-engine` (installed bundles) or `edge-convert {bundle.path} --target "
                         f"{manifest.target}` here")
    if verify and sha256_file(engine) != record.get("sha256"):
        raise ModelError(f"{engine}: sha256 does not match {os.path.basename(sidecar)}; delete both and rebuild "
                         "with `edge models build-engine`")
    return engine


def build_engine(bundle: Bundle, calibration: Optional[np.ndarray] = None, workspace_gb: float = 2.0,
                 calibrator: str = "entropy") -> str:
    """Build (or reuse) this device's engine for the bundle; returns the engine path.

    `calibration` ((N, *input shape) float32, pre-processed as the runtime does) is only used for an int8 engine
    from an fp32 ONNX; TensorRT's calibration cache is then written beside the ONNX as CALIBRATION_CACHE.
    """
    platform = current_platform()
    try:
        return find_engine(bundle, platform)
    except ModelError:
        pass
    manifest, spec = bundle.manifest, bundle.manifest.input
    precision, key = precision_of(manifest), bundle_engine_key(bundle, platform)
    engine_path, sidecar = engine_paths(bundle.path, key)
    os.makedirs(os.path.dirname(engine_path), exist_ok=True)
    trt, cuda = trt_backend.import_tensorrt()
    started = time.monotonic()
    gpu = trt_backend.CudaContext(cuda)
    try:
        with gpu:
            quantization = _build(trt, cuda, bundle, engine_path, timing_cache_path(bundle.path, platform),
                                  calibration, workspace_gb, calibrator)
    finally:
        gpu.release()
    record = {"key": key, "tensorrt": platform.tensorrt, "gpu": platform.gpu,
              "compute_capability": platform.compute_capability, "precision": precision,
              "input": [spec.height, spec.width], "batch": spec.batch, "dynamic_batch": spec.dynamic_batch,
              "quantization": quantization,
              "onnx_sha256": manifest.model.sha256, "sha256": sha256_file(engine_path),
              "built_at": time.time(), "build_seconds": round(time.monotonic() - started, 1)}
    _write_atomic(sidecar, (json.dumps(record, indent=1) + "\n").encode())  # last: the sidecar marks it complete
    return engine_path


def _build(trt, cuda, bundle: Bundle, engine_path: str, timing_path: str, calibration, workspace_gb: float,
           calibrator: str) -> Optional[str]:
    """Parse the ONNX, configure the builder, write the engine and timing cache; returns the int8 quantization."""
    manifest, onnx_path = bundle.manifest, bundle.model_path
    builder = trt.Builder(trt_backend.trt_logger(trt))
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, trt_backend.trt_logger(trt))
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise ModelError(f"{onnx_path}: TensorRT's ONNX parser refused it: {'; '.join(errors)[:300]}")
    config = builder.create_builder_config()
    _set_workspace(config, trt, int(workspace_gb * 2**30))
    profile = _batch_profile(builder, network, manifest.input, onnx_path)
    if profile is not None:
        config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)  # int8 engines keep fp16 for the layers int8 cannot run
    quantization = None
    if precision_of(manifest) == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        quantization = "qdq" if _explicitly_quantized(network, trt) else "calibration"
        if quantization == "calibration":
            config.int8_calibrator = _calibrator(trt, cuda, network, bundle, calibration, calibrator)
            if profile is not None:
                config.set_calibration_profile(profile)  # calibrates on batches of the profile's opt size
    if not config.set_timing_cache(config.create_timing_cache(read_cache(timing_path) or b""), False):
        config.set_timing_cache(config.create_timing_cache(b""), False)  # a cache from another build: start afresh
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(f"{onnx_path}: TensorRT could not build a {precision_of(manifest)} engine (see its log above)")
    _write_atomic(engine_path, serialized)
    _write_atomic(timing_path, config.get_timing_cache().serialize())
    return quantization


def _calibrator(trt, cuda, network, bundle: Bundle, calibration, algorithm: str):
    """The int8 calibrator: the bundle's calibration cache, else batches of `calibration` (writing a new cache)."""
    cache = calibration_cache_path(bundle)
    if cache is None and calibration is None:
        raise ModelError(f"{bundle.path}: an int8 engine from an fp32 ONNX needs calibration data: convert with "
                         "edge-convert --target tensorrt-int8 --calib IMAGES, or from an int8 QDQ ONNX")
    if cache is None:
        cache = os.path.join(bundle.path, CALIBRATION_CACHE)
        if os.path.exists(cache):  # not in the manifest: stale, and TensorRT would prefer it to the new data
            os.remove(cache)
    shape = tuple(network.get_input(0).shape)
    batch = shape[0] if shape[0] > 0 else bundle.manifest.input.batch
    batches = CalibrationBatches(calibration, batch, shape[1:]) if calibration is not None else None
    return make_calibrator(trt, cuda, batches, cache, algorithm)


def _batch_profile(builder, network, spec, where: str):
    """The optimization profile of a dynamic batch axis, None for a fixed-batch network: min 1 (a fixed batch in
    the manifest: that batch), opt and max the manifest's batch, so full batches run the kernels tuned for them."""
    tensor = network.get_input(0)
    shape = tuple(tensor.shape)
    if shape[0] > 0:
        return None
    if spec.batch < 1:
        raise ModelError(f"{where}: the ONNX has a dynamic batch and the manifest no largest batch, which TensorRT "
                         "needs: convert it with edge-convert --batch N")
    if any(d < 0 for d in shape[1:]):
        raise ModelError(f"{where}: dynamic image axes {shape}; export the ONNX at a fixed input size")
    image = shape[1:]
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, (1 if spec.dynamic_batch else spec.batch, *image), (spec.batch, *image),
                      (spec.batch, *image))
    return profile


def _network_flags(trt) -> int:
    # ONNX needs an explicit-batch network; TensorRT 10 networks always are and deprecate the flag.
    if int(trt.__version__.split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def _set_workspace(config, trt, size: int) -> None:
    if hasattr(config, "set_memory_pool_limit"):  # TensorRT 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, size)
    else:
        config.max_workspace_size = size


def _explicitly_quantized(network, trt) -> bool:
    """True when the parsed ONNX has Q/DQ nodes (an int8 QDQ model needs no calibrator)."""
    return any(network.get_layer(i).type == trt.LayerType.QUANTIZE for i in range(network.num_layers))


def _read_record(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_atomic(path: str, data) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(memoryview(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _safe(text: str) -> str:
    """Lower-case letters, digits, dots and dashes only (GPU names have spaces and slashes)."""
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-.")[:48] or "unknown"
