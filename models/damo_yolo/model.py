"""DAMO-YOLO detector: build from a config, load official checkpoints strictly, fuse for deployment."""
from __future__ import annotations

import os
import pickle
import re
from typing import Union

import torch
from torch import nn

from .backbone import build_backbone
from .blocks import RepConv
from .configs import DamoConfig, get_config
from .head import ZeroHead
from .neck import GiraffeNeckV2


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the model; the message is one line."""


class DamoYolo(nn.Module):
    """Backbone -> GiraffeNeckV2 -> ZeroHead; forward returns (scores [1,N,C], boxes [1,N,4] xyxy)."""

    def __init__(self, cfg: Union[DamoConfig, str]):
        super().__init__()
        self.cfg = get_config(cfg) if isinstance(cfg, str) else cfg
        self.backbone = build_backbone(self.cfg)
        self.neck = GiraffeNeckV2(self.cfg)
        self.head = ZeroHead(self.cfg.neck_out, self.cfg.num_classes, self.cfg.reg_max, self.cfg.head_kernel)

    def forward(self, images: torch.Tensor) -> tuple:
        """RGB 0..255 NCHW images -> (scores, boxes) as the official default ONNX export."""
        return self.head(self.neck(self.backbone(images)))

    def fuse(self) -> "DamoYolo":
        """Fuse every RepConv in place (the official deploy form); returns self."""
        for module in self.modules():
            if isinstance(module, RepConv):
                module.fuse()
        return self


def read_state_dict(path: str) -> dict:
    """Weights of an official checkpoint (`{'model': ...}` or a bare state dict), `module.` prefixes stripped."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f"a pickled {found.group(1)} object" if found else "pickled objects"
        raise CheckpointError(f"{path}: holds {what}; only plain tensor checkpoints are loaded (weights_only)") from None
    except Exception as e:  # a corrupt file can fail anywhere inside the unpickler, with any exception type
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__})") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a dict with 'model')")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def check_state_dict(model: nn.Module, state: dict, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    name = getattr(getattr(model, "cfg", None), "name", "this")
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{where}: missing key {key} for DAMO-YOLO-{name}; wrong config?")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{where}: {key} has shape {list(state[key].shape)} in the checkpoint but "
                                  f"{list(tensor.shape)} in DAMO-YOLO-{name}; wrong config?")
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{where}: unexpected key {key} for DAMO-YOLO-{name}; wrong config?")


def from_state_dict(state: dict, cfg: Union[DamoConfig, str], where: str = "checkpoint") -> DamoYolo:
    """Build `cfg`, load `state` strictly and return the model in eval mode (train form)."""
    model = DamoYolo(cfg)
    check_state_dict(model, state, where)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(path: str, cfg: Union[DamoConfig, str]) -> DamoYolo:
    """Build `cfg` and load the checkpoint at `path` strictly (eval mode, train form)."""
    return from_state_dict(read_state_dict(path), cfg, where=path)
