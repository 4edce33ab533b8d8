"""Build one target bundle from an fp32 ONNX source; bundles are staged and renamed into place when complete."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Optional, Tuple

from edge import Detector
from edge.errors import EdgeError, FamilyMismatch

from . import ConvertError
from .accuracy import accuracy_report, agreement_scorer, map_scorer, measure, write_report
from .bundle import bundle_model
from .calibration import CalibrationSet, load_calibration
from .onnx_int8 import OnnxInt8Quantizer, is_quantized, search_partial

if TYPE_CHECKING:
    from .api import ConvertOptions

log = logging.getLogger("edge-convert")

TARGETS = ("onnx", "onnx-int8", "tflite", "tflite-fp16", "tflite-int8", "tensorrt-fp16", "tensorrt-int8")
DEFAULT_MAX_DROP = {"int8": 0.5}  # mAP50-95 points; float targets default to FLOAT_MAX_DROP
FLOAT_MAX_DROP = 0.1


@dataclass
class Source:
    """The model the user gave, resolved: a checkpoint to export, an ONNX file, or an ONNX bundle."""

    path: str
    family: Optional[str]
    names: Optional[tuple]
    info: dict = field(default_factory=dict)
    checkpoint: bool = False
    imgsz: Optional[tuple] = None
    config: Optional[str] = None
    bundle: Optional[str] = None
    precision: str = ""
    batch: Optional[tuple] = None  # (input.batch, input.dynamic_batch) as a source bundle's manifest declares them


def precision_of(target: str) -> str:
    """'tflite-int8' -> 'int8', 'onnx' -> 'fp32'."""
    return target.rsplit("-", 1)[1] if "-" in target else "fp32"


def build(source: Source, target: str, out: str, options: ConvertOptions) -> tuple:
    """Build `target` into `out` (replacing it only once complete); returns (out, accuracy report or None)."""
    precision = precision_of(target)
    max_drop = options.max_drop if options.max_drop is not None else DEFAULT_MAX_DROP.get(precision, FLOAT_MAX_DROP)
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as work:
        onnx_path = fp32_onnx(source, work)
        quantized = is_quantized(onnx_path)
        if quantized and target != "tensorrt-int8":
            raise ConvertError(f"{source.path}: already an int8 (QDQ) model; convert the fp32 model to {target}")
        contract = _contract(onnx_path, source)
        if options.batch > 1:
            onnx_path, contract = _batched(onnx_path, contract, source, options.batch, work)
        elif source.batch is not None:  # an ONNX bundle's own model: its declared batch stays
            contract = replace(contract, input=replace(contract.input, batch=source.batch[0],
                                                       dynamic_batch=source.batch[1]))
        calib = _calibration(options, contract) if precision == "int8" and not quantized else None
        staging = _staging_dir(out)
        try:
            notes = _build_into(staging, target, source, onnx_path, contract, calib, options, max_drop, work)
            validation = options.validation()
            report = _report(staging, target, onnx_path, contract, validation, max_drop, notes) \
                if validation and _measurable(target) else None
            publish(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out, report


def _build_into(staging: str, target: str, source: Source, onnx_path: str, contract, calib: Optional[CalibrationSet],
                options: ConvertOptions, max_drop: float, work: str) -> dict:
    """Write the target's bundle into `staging`; returns notes for the accuracy report."""
    info = dict(source.info)
    if calib is not None:
        info["calibration"] = {"images": len(calib), "skipped": len(calib.skipped),
                               "from": os.path.abspath(calib.origin)}
    if target == "onnx":
        bundle_model(onnx_path, source.family, staging, source.names, target, info, contract=contract)
        return {}
    if target == "onnx-int8":
        assert calib is not None  # int8 from an fp32 source always calibrates; an int8 source was refused
        return _onnx_int8(staging, source, onnx_path, contract, calib, options, max_drop, work, info)
    if target.startswith("tflite"):
        from .tflite import convert_tflite

        stem = os.path.splitext(os.path.basename(onnx_path))[0]
        tflite_path = os.path.join(work, f"{stem}_{precision_of(target)}.tflite")
        converted = convert_tflite(onnx_path, contract, precision_of(target),
                                   calib.tensors if calib is not None else None, tflite_path)
        bundle_model(tflite_path, source.family, staging, source.names, target, info, contract=converted)
        return {}
    from .tensorrt import build_tensorrt_bundle

    onnx_bundle = source.bundle if options.batch == 1 else None  # --batch rewrote the bundle's ONNX
    if onnx_bundle is None:
        onnx_bundle = bundle_model(onnx_path, source.family, os.path.join(work, "onnx-bundle"), source.names, "onnx",
                                   info, contract=contract)
    build_tensorrt_bundle(onnx_bundle, precision_of(target), staging, calib.tensors if calib is not None else None)
    return {}


def _onnx_int8(staging: str, source: Source, onnx_path: str, contract, calib: CalibrationSet,
               options: ConvertOptions, max_drop: float, work: str, info: dict) -> dict:
    """Static QDQ quantization; sensitive layers stay float until the drop is within max_drop."""
    quantizer = OnnxInt8Quantizer(onnx_path, calib.tensors, work, options.calib_method)
    validation = options.validation()
    if validation:
        baseline, score = map_scorer(onnx_path, contract, *validation)
        basis = f"mAP50-95 on {validation[0]}"
    else:
        baseline, score = agreement_scorer(onnx_path, contract, calib.tensors)
        basis = f"mAP50-95 against fp32 detections on {min(len(calib), 32)} calibration images (no --val)"
    int8_path = os.path.join(work, os.path.splitext(os.path.basename(onnx_path))[0] + "_int8.onnx")
    result = search_partial(quantizer, int8_path, score, baseline, max_drop, work)
    notes = {"kept_float": result.keep_float, "search_basis": basis, "calibration_method": options.calib_method,
             "search_trials": [{"kept_float": k, "map50_95": v} for k, v in result.trials]}
    info["quantization"] = {"format": "QDQ", "weights": "int8 per-channel symmetric", "activations": "uint8",
                            "decode_in_float": quantizer.tail, **notes}
    bundle_model(int8_path, source.family, staging, source.names, "onnx-int8", info,
                 contract=replace(contract, precision="int8"))
    if not result.within:
        log.warning("onnx-int8: %.2f versus fp32 %.2f (%s) even with %d layer(s) in float", result.score, baseline,
                    basis, len(result.keep_float))
    return notes


def _measurable(target: str) -> bool:
    """This machine can run the result (a TensorRT engine only runs where TensorRT is)."""
    if target.startswith("tensorrt"):
        from .tensorrt import tensorrt_here

        if not tensorrt_here():
            log.warning("%s: no TensorRT here, so --val is skipped; measure on the device with edge eval", target)
            return False
    return True


def _report(staging: str, target: str, onnx_path: str, contract, validation: Tuple[str, str], max_drop: float,
            notes: dict) -> dict:
    """Measure the staged bundle against the fp32 source on (images, annotations) and store accuracy.json."""
    report = accuracy_report(measure(staging, contract, *validation, label=target),
                             measure(onnx_path, contract, *validation, label="fp32 source"), max_drop,
                             {"target": target, **notes})
    write_report(staging, report)
    return report


def fp32_onnx(source: Source, work: str) -> str:
    """The source as an ONNX file: exported from the checkpoint into `work`, else the file itself."""
    if not source.checkpoint:
        return source.path
    stem = os.path.splitext(os.path.basename(source.path))[0]
    onnx_path = os.path.join(work, f"{stem}.onnx")
    if source.family == "damo-yolo":
        from .damo import export_damo

        assert source.config, "resolve_source sets a DAMO-YOLO checkpoint's config"
        source.info.update(export_damo(source.path, source.config, onnx_path, source.imgsz, source.names))
    else:
        from .yolo11 import export_yolo11

        source.info.update(export_yolo11(source.path, onnx_path, source.imgsz))
    return onnx_path


def _batched(onnx_path: str, contract, source: Source, batch: int, work: str) -> tuple:
    """(ONNX with a dynamic batch axis, its contract declaring up to `batch` images per run).

    Checkpoints are exported with one image as always and made batchable here, like any ONNX: Ultralytics'
    dynamic export also frees the image and anchor axes and torch's dynamic_axes every output axis, which the
    runtime's preallocated buffers and TensorRT's profile would need pinned again.
    """
    from .batch import batched_onnx

    out = os.path.join(work, "batched", os.path.basename(onnx_path))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    batched_onnx(onnx_path, out, contract.input, batch)
    return out, with_batch(_contract(out, source), batch)


def with_batch(contract, batch: int):
    """The contract of a dynamic-batch model that runs up to `batch` images at once."""
    return replace(contract, input=replace(contract.input, batch=batch, dynamic_batch=True))


def _contract(onnx_path: str, source: Source):
    try:
        return Detector.load(onnx_path, family=source.family, names=source.names).contract
    except FamilyMismatch:
        raise  # a usage error: edge-convert says which flag
    except EdgeError as e:
        raise ConvertError(str(e)) from None


def _calibration(options: ConvertOptions, contract) -> CalibrationSet:
    if not options.calib:
        raise ConvertError("int8 needs calibration images: pass --calib FOLDER_OR_VIDEO (a few hundred frames like "
                           "the ones the camera will see)")
    return load_calibration(options.calib, contract.input, count=options.calib_count)


def _staging_dir(out: str) -> str:
    """A new hidden directory beside `out`; os.mkdir follows the umask (0755 under 022) where mkdtemp makes 0700,
    and the bundle keeps this mode when it is renamed into place."""
    parent, name = os.path.dirname(os.path.abspath(out)), os.path.basename(os.path.normpath(out))
    while True:
        staging = os.path.join(parent, f".{name}.partial-{secrets.token_hex(4)}")
        try:
            os.mkdir(staging)
            return staging
        except FileExistsError:
            continue


def publish(staging: str, out: str) -> None:
    """Move a complete bundle into place; an existing bundle at `out` is replaced only after that succeeds."""
    previous = None
    if os.path.exists(out):
        previous = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.normpath(out))}.old-",
                                    dir=os.path.dirname(os.path.abspath(out)))
        os.replace(out, os.path.join(previous, "bundle"))
    try:
        os.replace(staging, out)
    except OSError:
        if previous:
            os.replace(os.path.join(previous, "bundle"), out)
        raise
    finally:
        if previous:
            shutil.rmtree(previous, ignore_errors=True)
