"""DAMO-YOLO .pth + config -> ONNX with the official converter's contract (SPEC §4.2)."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Optional, Sequence

from . import INSTALL_HINT, ConvertError

OPSET = 13


def export_damo(checkpoint: str, config: str, onnx_path: str, imgsz: Optional[tuple] = None,
                names: Optional[Sequence[str]] = None) -> dict:
    """Load the checkpoint strictly into `config`, fuse RepConv, export; returns provenance for the manifest."""
    try:
        import torch

        from models.damo_yolo import CheckpointError, from_state_dict, get_config, read_state_dict
    except ImportError as e:
        raise ConvertError(f"DAMO-YOLO export needs PyTorch ({e.name} is missing): {INSTALL_HINT}") from None
    try:
        cfg = get_config(config)
        state = read_state_dict(checkpoint)
    except (ValueError, CheckpointError) as e:
        raise ConvertError(str(e)) from None
    classes = state.get("head.gfl_cls.0.weight")
    if classes is not None and cfg.num_classes != classes.shape[0]:
        cfg = dataclasses.replace(cfg, num_classes=int(classes.shape[0]))
    if names is not None and len(names) != cfg.num_classes:
        raise ConvertError(f"{checkpoint}: the checkpoint has {cfg.num_classes} classes but {len(names)} names "
                           "were given")
    height, width = imgsz or (cfg.input_size, cfg.input_size)
    if height % 32 or width % 32:
        raise ConvertError(f"--imgsz {height},{width}: DAMO-YOLO needs multiples of 32")
    try:
        model = from_state_dict(state, cfg, where=checkpoint).fuse()
    except CheckpointError as e:
        raise ConvertError(str(e)) from None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(1, 3, height, width),), onnx_path, input_names=["images"],
                          output_names=["output"], opset_version=OPSET, dynamo=False)
    return {"config": cfg.name, "torch": torch.__version__, "opset": OPSET}
