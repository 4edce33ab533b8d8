"""The model contract: what goes into the network, what comes out, and how to read it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

from .decode.registry import FORMATS, decode_format
from .typed import spec

FAMILIES = tuple(dict.fromkeys(f.family for f in FORMATS.values()))  # the built-in formats' families
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8", "int8")
RESIZES = ("letterbox", "stretch")


@dataclass(frozen=True)
class InputSpec:
    """Shape, dtype, quantization and pixel convention of the network input."""

    name: str
    height: int
    width: int
    layout: str = "NCHW"
    dtype: str = "float32"
    quant_scale: Optional[float] = None  # integer inputs: real = (q - zero_point) * scale
    quant_zero_point: int = 0
    color: str = "RGB"
    pixel_scale: float = 1.0 / 255.0  # float value fed = pixel (0..255) * pixel_scale
    resize: str = "letterbox"
    pad_value: int = 114
    batch: int = 1  # images per run: the fixed batch, or with dynamic_batch the most one run takes (0: no limit)
    dynamic_batch: bool = False  # the batch axis is dynamic: 1..batch images per run, no padding


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor as the backend reports it."""

    name: str
    shape: tuple
    dtype: str = "float32"
    quant_scale: Optional[float] = None
    quant_zero_point: int = 0


def _reg_max_help() -> str:
    """How each DFL format counts decode.reg_max, for the manifest schema."""
    counts: dict = {}
    for f in FORMATS.values():
        if f.reg_max:
            counts.setdefault(f.reg_max, []).append(f.name)
    return "; ".join(f"{', '.join(names)}: {what}" for what, names in counts.items())


@dataclass(frozen=True)
class DecodeSpec:
    """How raw outputs become boxes: the decoder and the box convention (the manifest's `decode`)."""

    format: str = spec("the output layout (edge/decode/registry.py): "
                       + "; ".join(f"{f.name}: {f.layout}" for f in FORMATS.values()), choices=FORMATS)
    normalized: bool = spec("boxes are fractions of the input size (onnx2tf TFLite)", False)
    strides: Tuple[int, ...] = spec("grid levels of the formats with anchors or head maps", (8, 16, 32), minimum=1)
    reg_max: int = spec("DFL bins per box side as the format's origin counts them: " + _reg_max_help(), 16, minimum=1)

    @property
    def dfl_bins(self) -> int:
        """Bins per box side of a DFL head: reg_max means bins or bins - 1 depending on the format."""
        return decode_format(self.format).bins(self.reg_max)


@dataclass(frozen=True)
class PostprocessDefaults:
    """Thresholds the family's reference pipeline uses (evaluation, parity; Detector.load's default)."""

    conf: float = spec("confidence threshold", 0.25, minimum=0.0, maximum=1.0)
    iou: float = spec("NMS IoU threshold", 0.7, minimum=0.0, maximum=1.0)
    max_det: int = spec("maximum detections per image", 300, minimum=1)
    multi_label: bool = spec("keep every class above conf per anchor, not only the best", False)


@dataclass(frozen=True)
class DeploymentThresholds:
    """A bundle's own thresholds for edge run, detect and demo; a key left out takes the family's deployment one."""

    conf: Optional[float] = spec("confidence threshold", None, minimum=0.0, maximum=1.0)
    iou: Optional[float] = spec("NMS IoU threshold", None, minimum=0.0, maximum=1.0)
    max_det: Optional[int] = spec("maximum detections per image", None, minimum=1)
    multi_label: Optional[bool] = spec("keep every class above conf per anchor, not only the best", None)


THRESHOLD_KEYS = ("conf", "iou", "max_det", "multi_label")
PRESETS = ("reference", "deployment")


@dataclass(frozen=True)
class Contract:
    """Everything the runtime needs to turn a frame into Detections with one model file."""

    family: str
    input: InputSpec
    outputs: tuple
    decode: DecodeSpec
    names: tuple
    postprocess: PostprocessDefaults = field(default_factory=PostprocessDefaults)  # the reference (evaluation) ones
    deployment: Optional[DeploymentThresholds] = None  # the bundle's own deployment thresholds, if it has any
    task: str = "detect"
    target: str = ""
    precision: str = ""
    source: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def with_names(self, names) -> "Contract":
        """A copy with another class-name table."""
        return replace(self, names=tuple(names))

    def thresholds(self, preset: str = "reference") -> Tuple[PostprocessDefaults, dict]:
        """(thresholds, {key: where its value comes from}) of a preset: `reference`, the family's reference
        pipeline as this contract records it (`postprocess`: parity tests, the Python API's default); `deployment`
        (`edge run`, `detect`, `demo`), the bundle's own `deployment` keys over the family's deployment default."""
        if preset == "reference":
            return self.postprocess, {key: f"{self.family} reference" for key in THRESHOLD_KEYS}
        if preset != "deployment":
            raise ValueError(f"threshold preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        family = deployment_defaults(self.family, max(self.input.height, self.input.width))
        own = self.deployment or DeploymentThresholds()
        values, origins = {}, {}
        for key in THRESHOLD_KEYS:
            value = getattr(own, key)
            values[key] = getattr(family, key) if value is None else value
            origins[key] = f"{self.family} deployment default" if value is None else "bundle manifest"
        return PostprocessDefaults(**values), origins


def family_defaults(family: str, input_size: int) -> PostprocessDefaults:
    """Reference thresholds: Ultralytics predict for YOLO11, the official config heads (evaluation) for DAMO-YOLO."""
    if family == "yolo11":
        return PostprocessDefaults(conf=0.25, iou=0.7, max_det=300, multi_label=False)
    # DAMO-YOLO (SPEC §5): T/S/M/L conf 0.05 IoU 0.7, nano (416 input) conf 0.03 IoU 0.65; top 500, multi-label.
    if input_size <= 416:
        return PostprocessDefaults(conf=0.03, iou=0.65, max_det=500, multi_label=True)
    return PostprocessDefaults(conf=0.05, iou=0.7, max_det=500, multi_label=True)


DAMO_YOLO_DEPLOY_CONF = 0.6  # the official tools/demo.py draws the boxes scoring at least its --conf, default 0.6


def deployment_defaults(family: str, input_size: int) -> PostprocessDefaults:
    """Thresholds for streaming and `edge detect` when no flag, config or bundle sets them. YOLO11: Ultralytics
    predict's (its reference). DAMO-YOLO: what the official tools/demo.py shows, the config head's NMS IoU and the
    demo's drawing threshold conf 0.6 (drawing after NMS or thresholding before it keeps the same boxes: lower
    scores never suppress higher ones), one class per object."""
    reference = family_defaults(family, input_size)
    if family == "yolo11":
        return reference
    return replace(reference, conf=DAMO_YOLO_DEPLOY_CONF, multi_label=False)


def family_input(family: str, name: str, height: int, width: int, layout: str, dtype: str,
                 quant_scale: Optional[float] = None, quant_zero_point: int = 0) -> InputSpec:
    """The pixel convention each family was trained with."""
    if family == "yolo11":  # Ultralytics: letterbox with 114, RGB, /255
        return InputSpec(name, height, width, layout, dtype, quant_scale, quant_zero_point,
                         color="RGB", pixel_scale=1.0 / 255.0, resize="letterbox", pad_value=114)
    if family == "damo-yolo":  # SPEC §3.3: stretch resize, RGB, raw 0..255, no mean/std
        return InputSpec(name, height, width, layout, dtype, quant_scale, quant_zero_point,
                         color="RGB", pixel_scale=1.0, resize="stretch", pad_value=0)
    raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
