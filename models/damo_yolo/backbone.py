"""TinyNAS backbones: residual (T/S), CSP (M/L) and MobileV3 (nano) variants (SPEC §2.6-2.8)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvKXBN, ConvKXBNAct, Focus, RepConv, SPPBottleneck, activation, batch_norm, conv
from .configs import DamoConfig


class ResConvBlock(nn.Module):
    """conv1 (kxk ConvKXBN) -> act -> RepConv, plus a shortcut unless the block down-samples, then act."""

    def __init__(self, cin: int, cout: int, btn: int, stride: int, act: str, k1: int):
        super().__init__()
        self.conv1 = ConvKXBN(cin, btn, k1)
        self.conv2 = RepConv(btn, cout, stride)
        self.shortcut = stride != 2
        if self.shortcut and cin != cout:
            self.residual_proj = ConvKXBN(cin, cout, 1)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        y = self.conv2(self.act(self.conv1(x)))
        if self.shortcut:
            y = y + (self.residual_proj(x) if hasattr(self, "residual_proj") else x)
        return self.act(y)


def mobile_v3(cin: int, hidden: int, cout: int, stride: int, se_slot: bool) -> nn.Sequential:
    """1x1 expand, BN, SiLU, depthwise 5x5, BN, [Identity SE slot], SiLU, 1x1 project, BN."""
    layers = [conv(cin, hidden, 1), batch_norm(hidden), nn.SiLU(),
              conv(hidden, hidden, 5, stride, groups=hidden), batch_norm(hidden)]
    layers += [nn.Identity()] if se_slot else []
    layers += [nn.SiLU(), conv(hidden, cout, 1), batch_norm(cout)]
    return nn.Sequential(*layers)


class MobBlock(nn.Module):
    """TinyNAS_mob block; residual only when the shape is kept."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int):
        super().__init__()
        self.conv = mobile_v3(cin, hidden, cout, stride, se_slot=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted-residual block."""
        y = self.conv(x)
        return x + y if self.residual else y


class SuperStem(nn.Module):
    """A stage of blocks under `block_list`; the last stage has SPP right after its first block."""

    def __init__(self, blocks: list):
        super().__init__()
        self.block_list = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        for block in self.block_list:
            x = block(x)
        return x


def _stage_blocks(cfg: DamoConfig, index: int) -> list:
    stage, blocks = cfg.stages[index], []
    for j in range(stage.n):
        cin, stride = (stage.cin, stage.stride) if j == 0 else (stage.cout, 1)
        if cfg.backbone == "mob":
            blocks.append(MobBlock(cin, stage.cout, stage.btn, stride))
        else:
            blocks.append(ResConvBlock(cin, stage.cout, stage.btn, stride, cfg.act, k1=1))
        if j == 0 and index == len(cfg.stages) - 1:
            blocks.append(SPPBottleneck(stage.cout, stage.cout))
    return blocks


class TinyNASChain(nn.Module):
    """TinyNAS_res / TinyNAS_mob: stem + five stages in `block_list`; returns the s8, s16, s32 maps."""

    def __init__(self, cfg: DamoConfig):
        super().__init__()
        stem = Focus(cfg.stem_out, 3, cfg.act) if cfg.focus else ConvKXBNAct(3, cfg.stem_out, 3, 2, cfg.act)
        self.block_list = nn.ModuleList([stem] + [SuperStem(_stage_blocks(cfg, i)) for i in range(len(cfg.stages))])
        self.out_indices = tuple(i + 1 for i in cfg.out_stages)

    def forward(self, x: torch.Tensor) -> list:
        """Feature maps at the output indices."""
        return _collect(self.block_list, x, self.out_indices)


class CSPWrapper(nn.Module):
    """Down-sample, [SPP], split into shortcut and block branches, concat [blocks, shortcut], fuse.

    The wrapper's own convs use ReLU whatever the backbone act is (SPEC §2.7).
    """

    def __init__(self, cfg: DamoConfig, index: int):
        super().__init__()
        stage = cfg.stages[index]
        half = stage.cout // 2
        self.convstem = nn.ModuleList(ResConvBlock(half, half, stage.btn, 1, cfg.act, k1=3) for _ in range(stage.n))
        self.downsampler = ConvKXBNAct(stage.cin, stage.cout, 3, 2, "relu")
        if index == len(cfg.stages) - 1:
            self.spp = SPPBottleneck(stage.cout, stage.cout)
        self.conv_start = ConvKXBNAct(stage.cout, half, 1, 1, "relu")
        self.conv_shortcut = ConvKXBNAct(stage.cout, stage.cout - half, 1, 1, "relu")
        self.conv_fuse = ConvKXBNAct(stage.cout, stage.cout, 1, 1, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """CSP stage."""
        x = self.downsampler(x)
        if hasattr(self, "spp"):
            x = self.spp(x)
        main = self.conv_start(x)
        for block in self.convstem:
            main = block(main)
        return self.conv_fuse(torch.cat([main, self.conv_shortcut(x)], 1))


class TinyNASCSP(nn.Module):
    """TinyNAS_csp: Focus stem + four CSP stages in `csp_stage`; returns the s8, s16, s32 maps."""

    def __init__(self, cfg: DamoConfig):
        super().__init__()
        stages = [CSPWrapper(cfg, i) for i in range(len(cfg.stages))]
        self.csp_stage = nn.ModuleList([Focus(cfg.stem_out, 3, cfg.act)] + stages)
        self.out_indices = tuple(i + 1 for i in cfg.out_stages)

    def forward(self, x: torch.Tensor) -> list:
        """Feature maps at the output indices."""
        return _collect(self.csp_stage, x, self.out_indices)


def _collect(modules: nn.ModuleList, x: torch.Tensor, indices: tuple) -> list:
    outputs = []
    for i, module in enumerate(modules):
        x = module(x)
        if i in indices:
            outputs.append(x)
    return outputs


def build_backbone(cfg: DamoConfig) -> nn.Module:
    """The backbone of `cfg`."""
    return TinyNASCSP(cfg) if cfg.backbone == "csp" else TinyNASChain(cfg)
