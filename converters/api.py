"""The converter from Python: `convert(source, target, out, ConvertOptions(...))`; edge-convert only wraps it.

    from converters import ConvertOptions, convert
    result = convert("yolo11n.pt", "onnx-int8", options=ConvertOptions(calib="frames/", val="val/",
                                                                        annotations="val.json"))
    result.path, result.bundle.contract, result.report
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, fields
from typing import Optional, Sequence, Tuple, Union

from edge.bundle import Bundle, is_bundle, read_bundle
from edge.contract import FAMILIES
from edge.errors import FamilyMismatch
from edge.names import load_names
from edge.progress import silenced
from edge.typed import spec
from models.registry import REGISTRY, damo_entry, lookup

from . import ConvertError
from .bundle import source_info
from .calibration import DEFAULT_COUNT
from .onnx_int8 import DEFAULT_METHOD, METHODS
from .targets import TARGETS, Source, build

CONFIGS = tuple(dict.fromkeys(e.config for e in REGISTRY.values() if e.config))  # unique, registry order
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class ConvertOptions:
    """Every edge-convert option; the flag of `calib_count` is --calib-count, and so on."""

    family: Optional[str] = spec("model family (inferred from official file names)", None, choices=FAMILIES)
    config: Optional[str] = spec(f"DAMO-YOLO config: {'|'.join(CONFIGS)} (inferred from official file names)", None)
    imgsz: Union[str, int, Tuple[int, int], None] = spec("input size H or H,W (default: the model's)", None)
    names: Union[str, Sequence[str], None] = spec("class names (file or comma list); default COCO-80 for 80-class "
                                                  "models", None)
    calib: Optional[str] = spec("folder of images or a video: int8 calibration data (required for *-int8 unless the "
                                "source is already an int8 ONNX)", None)
    calib_count: int = spec(f"images (or video frames) to calibrate on, spread evenly (default {DEFAULT_COUNT})",
                            DEFAULT_COUNT, minimum=1)
    calib_method: str = spec(f"onnx-int8 activation ranges (default {DEFAULT_METHOD})", DEFAULT_METHOD,
                             choices=METHODS)
    val: Optional[str] = spec("folder of validation images: measure mAP of the result against the fp32 source", None)
    annotations: Optional[str] = spec("ground truth for --val: COCO instances JSON or a folder of YOLO labels", None)
    max_drop: Optional[float] = spec("largest mAP50-95 loss accepted versus fp32 (default 0.5 for int8, 0.1 otherwise);"
                                     " onnx-int8 keeps sensitive layers float to meet it", None, minimum=0)
    quiet: bool = spec("no progress on stderr (calibration, sensitivity search, validation)", False)
    batch: int = spec("images per inference: N >= 2 exports a dynamic batch axis, and the runtime runs up to N "
                      "frames from several sources at once (TensorRT: profile min 1 / opt N / max N); TFLite stays 1",
                      1, minimum=1, maximum=1024)

    def validation(self) -> Optional[Tuple[str, str]]:
        """(images, annotations) when --val was given (check() makes sure --annotations is too)."""
        return (self.val, self.annotations) if self.val and self.annotations else None


@dataclass
class ConvertResult:
    """The written bundle and, with --val, its accuracy report (also stored as accuracy.json in the bundle)."""

    path: str  # the bundle directory as given (`out`), or the default ./<model name>_<target>
    bundle: Bundle  # the bundle read back: typed manifest and Contract
    report: Optional[dict] = None

    @property
    def within_max_drop(self) -> bool:
        """False when the bundle was written but loses more mAP50-95 than max_drop allows."""
        return self.report is None or bool(self.report["within_max_drop"])


def flag(name: str) -> str:
    """'calib_count' -> '--calib-count'."""
    return "--" + name.replace("_", "-")


def check(options: ConvertOptions, target: str) -> None:
    """Every check on the options' values, before any work; the error names the flag."""
    if target not in TARGETS:
        raise ConvertError(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    for f in fields(options):
        value, meta = getattr(options, f.name), f.metadata
        if value is None:
            continue
        if meta["choices"] and value not in meta["choices"]:
            raise ConvertError(f"{flag(f.name)} {value!r}: expected one of {', '.join(meta['choices'])}")
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ConvertError(f"{flag(f.name)} must be >= {meta['minimum']}, got {value}")
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise ConvertError(f"{flag(f.name)} must be <= {meta['maximum']}, got {value}")
    if options.batch > 1 and target.startswith("tflite"):
        raise ConvertError(f"--batch {options.batch}: TFLite bundles run one image per inference; batch for the "
                           "onnx or tensorrt-* targets")
    if options.val and not options.annotations:
        raise ConvertError("--val needs --annotations (a COCO instances JSON or a folder of YOLO labels)")


def convert(source: PathLike, target: str = "onnx", out: Optional[PathLike] = None,
            options: Optional[ConvertOptions] = None) -> ConvertResult:
    """Build `target` from a checkpoint, an ONNX file or an ONNX bundle into `out` (default ./<name>_<target>)."""
    options = options or ConvertOptions()
    check(options, target)
    path = os.fspath(source)
    resolved = resolve_source(path, options)
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    with silenced() if options.quiet else contextlib.nullcontext():
        written, report = build(resolved, target, os.fspath(out) if out else f"{stem}_{target}", options)
    return ConvertResult(written, read_bundle(written), report)


def resolve_source(path: str, options: ConvertOptions) -> Source:
    """What the user gave: a checkpoint to export, an ONNX file, or an existing ONNX bundle."""
    if is_bundle(path):
        if options.imgsz:
            raise ConvertError(f"{path}: --imgsz cannot resize an existing bundle; convert the checkpoint")
        bundle = read_bundle(path)
        if bundle.manifest.model.format != "onnx":
            raise ConvertError(f"{path}: a {bundle.manifest.model.format} bundle; convert from an ONNX bundle or the "
                               "checkpoint")
        contract = bundle.contract
        if options.family not in (None, contract.family):
            raise FamilyMismatch(options.family, contract.family, path, "manifest")
        return Source(bundle.model_path, contract.family, _names(options) or contract.names, dict(contract.source),
                      bundle=path, precision=bundle.precision, batch=(contract.input.batch, contract.input.dynamic_batch))
    if os.path.isdir(path):
        raise ConvertError(f"{path}: a directory but not a bundle (no manifest.json)")
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    entry = lookup(path)
    family = options.family or (entry.family if entry else None)
    is_onnx = path.lower().endswith(".onnx")
    if family is None and not is_onnx:  # the runtime infers an ONNX file's family from its outputs
        raise ConvertError(f"{path}: cannot tell the model family from the file name; pass --family yolo11|damo-yolo")
    names = _names(options)
    imgsz = parse_imgsz(options.imgsz)
    if is_onnx and imgsz:
        raise ConvertError(f"{path}: --imgsz cannot resize an existing ONNX file; convert the checkpoint")
    if entry is not None and entry.family == family and not is_onnx:  # a known checkpoint needs no more options
        names = names or entry.names
        imgsz = imgsz or (entry.input_size, entry.input_size)
    licence = entry.licence if entry and entry.family == family else None
    extra = {"licence": licence} if licence else {}
    config = damo_config(path, options.config, entry) if family == "damo-yolo" and not is_onnx else None
    return Source(path, family, names, source_info(path, **extra), checkpoint=not is_onnx, imgsz=imgsz, config=config)


def _names(options: ConvertOptions) -> Optional[tuple]:
    """--names as a tuple: a file or comma list, or the names themselves."""
    if not options.names:
        return None
    return load_names(options.names) if isinstance(options.names, str) else tuple(options.names)


def damo_config(path: str, config: Optional[str], entry) -> str:
    """--config, else the config an official checkpoint name implies."""
    if config:
        try:
            entry = damo_entry(config)  # the tag as the registry spells it
        except KeyError:
            raise ConvertError(f"--config {config!r}: expected one of {', '.join(CONFIGS)}") from None
    if entry is not None and entry.family == "damo-yolo" and entry.config:
        return entry.config
    raise ConvertError(f"{path}: cannot tell the DAMO-YOLO config from the file name; pass --config "
                       f"{'|'.join(CONFIGS)}")


def parse_imgsz(value: Union[str, int, Sequence[int], None]) -> Optional[tuple]:
    """'640' or 640 -> (640, 640); '480,640' or (480, 640) -> (480, 640); None -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            sizes: tuple = tuple(int(v) for v in value.replace("x", ",").split(","))
        except ValueError:
            sizes = ()
    else:
        sizes = (value,) if isinstance(value, int) else tuple(value)
    if len(sizes) not in (1, 2) or not all(isinstance(v, int) and 0 < v <= 8192 for v in sizes):
        raise ConvertError(f"--imgsz {value!r}: expected H or H,W (positive integers)")
    return sizes * 2 if len(sizes) == 1 else sizes
