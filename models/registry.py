"""Known models: name -> family, config, input size, class names, licence and official checkpoint file names."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from edge.names import COCO80
from edge.scene import CLASSES as SHAPES

DAMO_LICENCE = "Apache-2.0 (DAMO-YOLO architecture and official weights)"
YOLO11_LICENCE = "AGPL-3.0 (Ultralytics YOLO11 weights; commercial use needs an Ultralytics licence)"
SHAPES_LICENCE = "Apache-2.0 (DAMO-YOLO architecture; project-owned weights trained on synthetic shapes)"


@dataclass(frozen=True)
class ModelEntry:
    """One known model."""

    name: str
    family: str  # "yolo11" | "damo-yolo"
    config: Optional[str]  # DAMO-YOLO config tag; None for YOLO11
    input_size: int
    names: tuple
    licence: str
    checkpoints: tuple  # official file names


def _damo(tag: str, depth: int, size: int) -> ModelEntry:
    return ModelEntry(f"damo-yolo-{tag.lower()}", "damo-yolo", tag, size, COCO80, DAMO_LICENCE,
                      (f"damoyolo_tinynasL{depth}_{tag}.pth",))


def _yolo11(scale: str) -> ModelEntry:
    return ModelEntry(f"yolo11{scale}", "yolo11", None, 640, COCO80, YOLO11_LICENCE, (f"yolo11{scale}.pt",))


REGISTRY = {e.name: e for e in (
    _damo("T", 20, 640), _damo("S", 25, 640), _damo("M", 35, 640), _damo("L", 45, 640),
    _damo("N", 20, 416), _damo("Ns", 18, 416), _damo("Nm", 18, 416), _damo("Nl", 20, 416),
    *(_yolo11(s) for s in "nsmlx"),
    ModelEntry("damo-yolo-ns-shapes", "damo-yolo", "Ns", 256, SHAPES, SHAPES_LICENCE, ("damoyolo_ns_shapes.pth",)),
)}

# Release files may carry a suffix (damoyolo_tinynasL25_S_477.pth: mAP x10).
_DAMO_FILE = re.compile(r"tinynasL\d+_(Nm|Ns|Nl|N|T|S|M|L)(?:_\d+)?\.pth$")
_YOLO11_FILE = re.compile(r"^yolo11([nsmlx])\.(pt|onnx)$")


def lookup(name_or_path: str) -> Optional[ModelEntry]:
    """The entry for a registry name or an official checkpoint file name (any directory), else None."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path]
    base = os.path.basename(name_or_path)
    for entry in REGISTRY.values():
        if base in entry.checkpoints:
            return entry
    damo = _DAMO_FILE.search(base)
    if damo:
        return REGISTRY[f"damo-yolo-{damo.group(1).lower()}"]
    yolo = _YOLO11_FILE.match(base)
    return REGISTRY[f"yolo11{yolo.group(1)}"] if yolo else None


def damo_entry(config: str) -> ModelEntry:
    """The registry entry of a DAMO-YOLO config tag (case-insensitive)."""
    for entry in REGISTRY.values():
        if entry.config and entry.config.lower() == config.lower():
            return entry
    raise KeyError(config)
