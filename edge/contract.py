"""The model contract: what goes into the network, what comes out, and how to read it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

FAMILIES = ("yolo11", "damo-yolo")
DECODERS = ("yolo11", "yolo11-end2end", "yolo11-dfl", "damo-yolo", "damo-yolo-head", "damo-yolo-dfl")
DFL_FORMATS = ("yolo11-dfl", "damo-yolo-dfl")  # split heads: box bin logits + scores, DFL in numpy
DECODER_OUTPUTS = {"yolo11": 1, "yolo11-end2end": 1, "yolo11-dfl": 2, "damo-yolo": 2, "damo-yolo-head": 6, "damo-yolo-dfl": 2}
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


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor as the backend reports it."""

    name: str
    shape: tuple
    dtype: str = "float32"
    quant_scale: Optional[float] = None
    quant_zero_point: int = 0


@dataclass(frozen=True)
class DecodeSpec:
    """How raw outputs become boxes: the decoder and the box convention."""

    format: str
    normalized: bool = False  # boxes in [0, 1] of the input size (onnx2tf TFLite)
    strides: tuple = (8, 16, 32)  # damo-yolo-head and the *-dfl formats
    reg_max: int = 16  # damo-yolo-head/-dfl: bins - 1 (official convention); yolo11-dfl: bins (Ultralytics)

    @property
    def dfl_bins(self) -> int:
        """Bins per box side of a split DFL head."""
        return self.reg_max if self.format == "yolo11-dfl" else self.reg_max + 1

    @property
    def anchor_offset(self) -> float:
        """Where a split DFL head's anchor sits in its cell: YOLO11 at the centre, DAMO-YOLO at the top-left."""
        return 0.5 if self.format == "yolo11-dfl" else 0.0


@dataclass(frozen=True)
class PostprocessDefaults:
    """Thresholds the family's reference pipeline uses by default."""

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    multi_label: bool = False


@dataclass(frozen=True)
class Contract:
    """Everything the runtime needs to turn a frame into Detections with one model file."""

    family: str
    input: InputSpec
    outputs: tuple
    decode: DecodeSpec
    names: tuple
    postprocess: PostprocessDefaults = field(default_factory=PostprocessDefaults)
    task: str = "detect"
    target: str = ""
    precision: str = ""
    source: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def with_names(self, names) -> "Contract":
        """A copy with another class-name table."""
        return replace(self, names=tuple(names))


def family_defaults(family: str, input_size: int) -> PostprocessDefaults:
    """Reference thresholds: Ultralytics predict for YOLO11, the official config heads for DAMO-YOLO."""
    if family == "yolo11":
        return PostprocessDefaults(conf=0.25, iou=0.7, max_det=300, multi_label=False)
    # DAMO-YOLO (SPEC §5): T/S/M/L conf 0.05 IoU 0.7, nano (416 input) conf 0.03 IoU 0.65; top 500, multi-label.
    if input_size <= 416:
        return PostprocessDefaults(conf=0.03, iou=0.65, max_det=500, multi_label=True)
    return PostprocessDefaults(conf=0.05, iou=0.7, max_det=500, multi_label=True)


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
