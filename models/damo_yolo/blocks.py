"""DAMO-YOLO building blocks with the official sub-module names (SPEC §2.1-2.5)."""
from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3  # SPEC §1: the official model overwrites every BatchNorm's eps after construction
BN_MOMENTUM = 0.03


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with the official eps and momentum."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def activation(name: str) -> nn.Module:
    """'relu' | 'silu' | 'identity' -> module."""
    return {"relu": nn.ReLU, "silu": nn.SiLU, "identity": nn.Identity}[name]()


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of `divisor` as the official nano blocks do (SPEC §1)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """Conv2d with 'same' padding for odd kernels."""
    return nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias)


class ConvBNAct(nn.Module):
    """Conv -> BN -> act; keys `conv`, `bn`."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, act: str = "silu", groups: int = 1):
        super().__init__()
        self.conv = conv(cin, cout, k, stride, groups)
        self.bn = batch_norm(cout)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, BN and activation."""
        return self.act(self.bn(self.conv(x)))


class ConvKXBN(nn.Module):
    """Conv -> BN without activation; keys `conv1`, `bn1` (backbone naming)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv(cin, cout, k, stride)
        self.bn1 = batch_norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv and BN."""
        return self.bn1(self.conv1(x))


class ConvKXBNAct(nn.Module):
    """ConvKXBN under `conv`, then an activation (official ConvKXBNRELU)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, act: str = "relu"):
        super().__init__()
        self.conv = ConvKXBN(cin, cout, k, stride)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, BN and activation."""
        return self.act(self.conv(x))


class RepConv(nn.Module):
    """3x3+BN in parallel with 1x1+BN (no identity branch), fusable into one biased 3x3 conv (SPEC §2.3)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: str = "identity"):
        super().__init__()
        self.rbr_dense = nn.Sequential()
        self.rbr_dense.add_module("conv", conv(cin, cout, 3, stride))
        self.rbr_dense.add_module("bn", batch_norm(cout))
        self.rbr_1x1 = nn.Sequential()
        self.rbr_1x1.add_module("conv", conv(cin, cout, 1, stride))
        self.rbr_1x1.add_module("bn", batch_norm(cout))
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of both branches (or the fused conv), then the activation."""
        if hasattr(self, "rbr_reparam"):
            return self.act(self.rbr_reparam(x))
        return self.act(self.rbr_dense(x) + self.rbr_1x1(x))

    @torch.no_grad()
    def fuse(self) -> None:
        """Replace both branches by `rbr_reparam` (the official switch_to_deploy)."""
        if hasattr(self, "rbr_reparam"):
            return
        k3, b3 = _fold_bn(self.rbr_dense.conv.weight, self.rbr_dense.bn)
        k1, b1 = _fold_bn(self.rbr_1x1.conv.weight, self.rbr_1x1.bn)
        dense = self.rbr_dense.conv
        self.rbr_reparam = nn.Conv2d(dense.in_channels, dense.out_channels, 3, dense.stride, 1, bias=True,
                                     dtype=k3.dtype, device=k3.device)
        self.rbr_reparam.weight.copy_(k3 + nn.functional.pad(k1, [1, 1, 1, 1]))
        self.rbr_reparam.bias.copy_(b3 + b1)
        del self.rbr_dense, self.rbr_1x1


def _fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple:
    """(kernel, bias) of conv followed by BN in eval mode."""
    std = (bn.running_var + bn.eps).sqrt()
    factor = bn.weight / std
    return weight * factor.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * factor


class Focus(nn.Module):
    """Space-to-depth (TL, BL, TR, BR) then ConvBNAct 12->C (SPEC §2.4)."""

    def __init__(self, cout: int, k: int, act: str):
        super().__init__()
        self.conv = ConvBNAct(12, cout, k, 1, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stride-2 stem."""
        parts = (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2])
        return self.conv(torch.cat(parts, 1))


class SPPBottleneck(nn.Module):
    """1x1 C->C/2, concat with max-pools 5/9/13, 1x1 -> C_out; always SiLU (SPEC §2.5)."""

    def __init__(self, cin: int, cout: int, kernels: tuple = (5, 9, 13)):
        super().__init__()
        hidden = cin // 2
        self.conv1 = ConvBNAct(cin, hidden, 1, act="silu")
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernels)
        self.conv2 = ConvBNAct(hidden * (len(kernels) + 1), cout, 1, act="silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial pyramid pooling."""
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], 1))
