"""Decode formats by name: the one list of output layouts (the manifest's decode.format) and how to read each.

Adding a format is one new file that defines its decoder and calls `register_format(DecodeFormat(...))`, plus
the line in edge/decode/__init__.py that imports it. Every list of formats (manifest choices, output counts,
shape checks, DFL bin conventions, families) is read from FORMATS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ..errors import ContractError

# What a manifest's decode.reg_max counts, as each format's origin defines it.
REG_MAX_IS_BINS = "bins"  # Ultralytics DFL: reg_max = bins per box side
REG_MAX_IS_LAST_BIN = "bins - 1"  # DAMO-YOLO (official): reg_max = index of the last bin, bins = reg_max + 1


class DecodeContext(NamedTuple):
    """What a decoder may use besides the outputs: spec, class count, thresholds and buffers made once per model."""

    spec: Any  # the contract's DecodeSpec
    num_classes: int
    conf: float
    multi_label: bool
    scale: tuple  # (w, h) to multiply normalized boxes by; (1.0, 1.0) when boxes are in input pixels
    anchors: Optional[np.ndarray]  # (3, N) anchor x, y, stride of a grid format; None otherwise
    best_scores: np.ndarray  # scratch of the scores' dtype, one per anchor, reused for the per-anchor best score
    dequantize: tuple  # one Dequantize per output (integer -> real values; identity for float outputs)


@dataclass(frozen=True)
class DecodeFormat:
    """One output layout: its tensors, the shapes that fit, and the decoder that turns them into candidates."""

    name: str
    family: str
    outputs: int  # tensors the model must have, in this order
    layout: str  # the tensors in words (the manifest schema's description)
    fits: Callable[[list, Any], Optional[str]]  # (output shapes, Contract) -> None, or the shapes it needs
    decode: Callable[[list, DecodeContext], tuple]  # outputs -> (boxes xyxy input px, scores, class ids)
    anchors: Optional[float] = None  # anchor position in its grid cell (0.5 centre, 0 corner); None: no grid
    reg_max: str = ""  # what decode.reg_max counts (REG_MAX_IS_*); "" when the format has no DFL bins
    strides: int = 0  # stride levels the format needs (0: any number)
    nms: bool = True  # False when the graph already ran NMS
    # True: the decoder takes integer outputs as they are and dequantizes only what it selects (ctx.dequantize);
    # False: it is given float outputs (integer ones dequantized whole first).
    quantized: bool = False

    def bins(self, reg_max: int) -> int:
        """DFL bins per box side for a manifest's reg_max."""
        return reg_max if self.reg_max == REG_MAX_IS_BINS else reg_max + 1

    def reg_max_for(self, bins: int) -> int:
        """The manifest's reg_max for this many bins per side."""
        return bins if self.reg_max == REG_MAX_IS_BINS else bins - 1


FORMATS: dict = {}  # name -> DecodeFormat, in registration order


def register_format(fmt: DecodeFormat) -> DecodeFormat:
    """Add a decode format; a name is registered once."""
    if fmt.name in FORMATS:
        raise ValueError(f"decode format {fmt.name!r} is already registered")
    if fmt.reg_max not in ("", REG_MAX_IS_BINS, REG_MAX_IS_LAST_BIN):
        raise ValueError(f"decode format {fmt.name!r}: reg_max must be '', {REG_MAX_IS_BINS!r} or "
                         f"{REG_MAX_IS_LAST_BIN!r}, got {fmt.reg_max!r}")
    FORMATS[fmt.name] = fmt
    return fmt


def decode_format(name: str) -> DecodeFormat:
    """The registered format called `name`."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ContractError(f"unknown decode format {name!r}; expected one of {', '.join(FORMATS)}") from None
