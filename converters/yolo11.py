"""YOLO11 .pt -> ONNX through Ultralytics' own exporter (imported lazily; never downloads)."""
from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Optional

from . import INSTALL_HINT, ConvertError

OPSET = 17


def export_yolo11(checkpoint: str, onnx_path: str, imgsz: Optional[tuple] = None) -> dict:
    """Export an Ultralytics detection checkpoint to `onnx_path`; returns provenance for the manifest."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics
        from ultralytics import YOLO
    except ImportError as e:
        raise ConvertError(f"YOLO11 export needs Ultralytics ({e.name} is missing): {INSTALL_HINT}") from None
    # Ultralytics writes the export beside the weights: work on a copy so the user's folder stays untouched.
    work_copy = os.path.join(os.path.dirname(onnx_path), os.path.basename(checkpoint))
    shutil.copyfile(checkpoint, work_copy)
    try:
        model = YOLO(work_copy)
    except Exception as e:  # Ultralytics raises many types for a file that is not its checkpoint
        raise ConvertError(f"{checkpoint}: not an Ultralytics checkpoint ({_first_line(e)})") from None
    if model.task != "detect":
        raise ConvertError(f"{checkpoint}: task {model.task!r}; only detection models convert")
    try:
        exported = model.export(format="onnx", imgsz=list(imgsz) if imgsz else 640, opset=OPSET, dynamic=False,
                                simplify=importlib.util.find_spec("onnxslim") is not None, device="cpu")
    except Exception as e:  # same: surface Ultralytics' reason as one line
        raise ConvertError(f"{checkpoint}: Ultralytics export failed ({_first_line(e)})") from None
    shutil.move(str(exported), onnx_path)
    return {"ultralytics": ultralytics.__version__, "opset": OPSET}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
