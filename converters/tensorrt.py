"""ONNX bundle -> TensorRT bundle (tensorrt-fp16 / tensorrt-int8); the engine build is edge.backends.tensorrt.engines.

The new bundle ships the ONNX and a manifest; the engine is built into its engines/ cache right away where
TensorRT and a GPU are present, and otherwise on the device (`edge models install` / `edge models build-engine`).
An int8 bundle from an fp32 ONNX needs TensorRT here: calibration runs inside TensorRT and leaves a calibration
cache in the bundle, from which each device then builds its engine without the images.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Optional

import numpy as np

from edge import Detector
from edge.backends.tensorrt.engines import CALIBRATION_CACHE, PRECISIONS, build_engine, current_platform
from edge.bundle import read_bundle, sha256_file, write_bundle
from edge.errors import BackendUnavailable, EdgeError

from . import ConvertError
from .bundle import verify_bundle
from .onnx_int8 import is_quantized

log = logging.getLogger("edge-convert")


def build_tensorrt_bundle(source_bundle: str, precision: str, out_dir: str, calibration: Optional[np.ndarray] = None,
                          workspace_gb: float = 2.0) -> str:
    """Write a tensorrt-<precision> bundle from an ONNX bundle into out_dir (engine built here when TensorRT is).

    out_dir should be new and empty: edge-convert stages it and renames it into place when complete.
    """
    if precision not in PRECISIONS:
        raise ConvertError(f"TensorRT precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    try:
        source = read_bundle(source_bundle)
    except EdgeError as e:
        raise ConvertError(str(e)) from None
    model_path, contract = source.model_path, source.contract
    if source.manifest.model.format != "onnx":
        raise ConvertError(f"{source_bundle}: TensorRT bundles are built from an ONNX bundle, this one holds "
                           f"{source.manifest.model.format!r}")
    calibrate = precision == "int8" and not is_quantized(model_path)
    if calibrate and calibration is None:
        raise ConvertError(f"{model_path}: an fp32 ONNX needs calibration images for int8: pass --calib "
                           "IMAGES_OR_VIDEO (or convert from an int8 QDQ ONNX)")
    here = tensorrt_here()
    if calibrate and not here:
        raise ConvertError(f"int8 calibration of {model_path} runs inside TensorRT, which is not usable here: run "
                           "edge-convert with --calib on the device (or a machine with TensorRT and a GPU)")
    contract = replace(contract, target=f"tensorrt-{precision}", precision=precision)
    write_bundle(out_dir, model_path, contract)
    if here:
        _build_here(out_dir, contract, calibration if calibrate else None, workspace_gb)
    else:
        _check_onnx(out_dir)
    if not here:
        log.info("%s: TensorRT is not usable here, so the %s engine will be built on the device "
                 "(edge models install, or edge models build-engine)", out_dir, precision)
    return out_dir


def tensorrt_here() -> bool:
    """True when TensorRT, pycuda and a CUDA GPU are all usable in this process."""
    try:
        platform = current_platform()
    except BackendUnavailable as e:
        log.debug("no TensorRT engine build here: %s", e)
        return False
    log.info("building the engine here: TensorRT %s on %s (sm %s)", platform.tensorrt, platform.gpu,
             platform.compute_capability)
    return True


def _build_here(work: str, contract, calibration: Optional[np.ndarray], workspace_gb: float) -> None:
    """Build this machine's engine into the bundle (and record a new calibration cache), then run the bundle."""
    bundle = read_bundle(work)
    try:
        engine = build_engine(bundle, calibration=calibration, workspace_gb=workspace_gb)
    except EdgeError as e:
        raise ConvertError(str(e)) from None
    if calibration is not None:
        cache = os.path.join(work, CALIBRATION_CACHE)
        if not os.path.isfile(cache):
            raise ConvertError(f"{work}: TensorRT calibrated but wrote no calibration cache")
        entry = {"calibration_cache": {"file": CALIBRATION_CACHE, "sha256": sha256_file(cache)}}
        write_bundle(work, bundle.model_path, contract, extra={"tensorrt": entry})
    verify_bundle(work)
    log.info("engine %s", engine)


def _check_onnx(work: str) -> None:
    """Without TensorRT, at least prove that the manifest fits the ONNX (run with onnxruntime)."""
    try:
        Detector.load(work, backend="onnxruntime")
    except EdgeError as e:
        raise ConvertError(f"{work}: the written bundle does not load: {e}") from None
