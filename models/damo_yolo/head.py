"""ZeroHead: per-level class and distribution-regression convs, decoded to xyxy boxes (SPEC §2.11)."""
from __future__ import annotations

import torch
from torch import nn


class Scale(nn.Module):
    """A learnable scalar multiplier (0-dim parameter `scale`)."""

    def __init__(self, value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Multiply by the scale."""
        return x * self.scale


class Integral(nn.Module):
    """Expected value of the per-side bin distribution; `project` = 0..reg_max is a persistent buffer."""

    def __init__(self, reg_max: int):
        super().__init__()
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """[..., 4, R+1] probabilities -> [..., 4] distances in stride units."""
        return probs @ self.project


class ZeroHead(nn.Module):
    """No tower: one k x k conv per level for classes and one for the 4*(R+1) box bins."""

    def __init__(self, channels: tuple, num_classes: int, reg_max: int, kernel: int, strides: tuple = (8, 16, 32)):
        super().__init__()
        self.strides, self.reg_max = tuple(strides), reg_max
        self.integral = Integral(reg_max)
        self.gfl_cls = nn.ModuleList(nn.Conv2d(c, num_classes, kernel, padding=kernel // 2) for c in channels)
        self.gfl_reg = nn.ModuleList(nn.Conv2d(c, 4 * (reg_max + 1), kernel, padding=kernel // 2) for c in channels)
        self.scales = nn.ModuleList(Scale(1.0) for _ in channels)

    def level_maps(self, features: list) -> tuple:
        """Sigmoid class maps and scaled regression logits per level (the official `--benchmark` outputs)."""
        cls_maps = [self.gfl_cls[i](x).sigmoid() for i, x in enumerate(features)]
        reg_maps = [self.scales[i](self.gfl_reg[i](x)) for i, x in enumerate(features)]
        return cls_maps, reg_maps

    def forward(self, features: list) -> tuple:
        """(scores [B,N,C], boxes [B,N,4] xyxy in input pixels); anchors at cell top-left corners, no clipping."""
        cls_maps, reg_maps = self.level_maps(features)
        scores, boxes = [], []
        for cls, reg, stride in zip(cls_maps, reg_maps, self.strides):
            b, _, h, w = reg.shape
            scores.append(cls.flatten(2).transpose(1, 2))
            probs = reg.reshape(b, 4, self.reg_max + 1, h, w).softmax(2).flatten(3).permute(0, 3, 1, 2)
            dist = self.integral(probs) * stride
            grid = {"dtype": dist.dtype, "device": dist.device}
            ys, xs = torch.meshgrid(torch.arange(h, **grid), torch.arange(w, **grid), indexing="ij")
            points = torch.stack([xs, ys], -1).reshape(1, h * w, 2) * stride
            boxes.append(torch.cat([points - dist[..., :2], points + dist[..., 2:]], -1))
        return torch.cat(scores, 1), torch.cat(boxes, 1)
