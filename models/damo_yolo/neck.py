"""GiraffeNeckV2 (RepGFPN) with its CSP nodes and blocks (SPEC §2.9-2.10)."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import mobile_v3
from .blocks import ConvBNAct, RepConv, activation, batch_norm, conv, make_divisible
from .configs import DamoConfig


class DepthwiseConv(nn.Module):
    """Depthwise 3x3 stride 2 -> BN -> act -> pointwise 1x1 -> BN -> act (nano down-sampling)."""

    def __init__(self, channels: int, act: str):
        super().__init__()
        self.depthwise = conv(channels, channels, 3, 2, groups=channels)
        self.pointwise = conv(channels, channels, 1)
        self.dwnorm = batch_norm(channels)
        self.pwnorm = batch_norm(channels)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Down-sample by 2."""
        return self.act(self.pwnorm(self.pointwise(self.act(self.dwnorm(self.depthwise(x))))))


class BasicBlockReverse(nn.Module):
    """x + conv1(conv2(x)): RepConv (ch->hidden) first, then 3x3 ConvBNAct back; keys list conv1 first."""

    def __init__(self, channels: int, hidden: int, act: str):
        super().__init__()
        self.conv1 = ConvBNAct(hidden, channels, 3, act=act)
        self.conv2 = RepConv(channels, hidden, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        return x + self.conv1(self.conv2(x))


class MobileV3Block(nn.Module):
    """The nano neck block: MobileV3 with ratio 3.0 and a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = mobile_v3(channels, make_divisible(channels * 3.0), channels, 1, se_slot=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block."""
        return x + self.conv(x)


class DepthwiseBlock(nn.Module):
    """Holds a MobileV3Block under `conv` (the official depthwise BasicBlock_3x3_Reverse)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = MobileV3Block(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return self.conv(x)


class CSPStage(nn.Module):
    """conv1 / conv2 split; blocks chained on conv2's branch; concat [y1, every block output]; conv3."""

    def __init__(self, cin: int, cout: int, n: int, cfg: DamoConfig):
        super().__init__()
        first, mid = cout // 2, cout - cout // 2
        self.conv1 = ConvBNAct(cin, first, 1, act=cfg.act)
        self.conv2 = ConvBNAct(cin, mid, 1, act=cfg.act)
        self.convs = nn.ModuleList(DepthwiseBlock(mid) if cfg.depthwise else
                                   BasicBlockReverse(mid, int(mid * cfg.hidden_ratio), cfg.act) for _ in range(n))
        self.conv3 = ConvBNAct(first + n * mid, cout, 1, act=cfg.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """CSP node."""
        outputs, y = [self.conv1(x)], self.conv2(x)
        for block in self.convs:
            y = block(y)
            outputs.append(y)
        return self.conv3(torch.cat(outputs, 1))


class GiraffeNeckV2(nn.Module):
    """RepGFPN: (s8, s16, s32) backbone maps -> (P3, P4, P5)."""

    def __init__(self, cfg: DamoConfig):
        super().__init__()
        (c0, c1, c2), (o0, o1, o2), n = cfg.backbone_out, cfg.neck_out, cfg.neck_blocks

        def down(ch: int) -> nn.Module:
            return DepthwiseConv(ch, cfg.act) if cfg.depthwise else ConvBNAct(ch, ch, 3, 2, act=cfg.act)

        self.bu_conv13 = down(c1)
        self.merge_3 = CSPStage(c2 + c1, c2, n, cfg)
        self.bu_conv24 = down(c0)
        self.merge_4 = CSPStage(c1 + c0 + c2, c1, n, cfg)
        self.merge_5 = CSPStage(c0 + c1, o0, n, cfg)
        self.bu_conv57 = down(o0)
        self.merge_7 = CSPStage(c1 + o0, o1, n, cfg)
        self.bu_conv46 = down(c1)
        self.bu_conv76 = down(o1)
        self.merge_6 = CSPStage(c2 + c1 + o1, o2, n, cfg)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, features: list) -> list:
        """Fuse the three scales; concat orders follow SPEC §2.10."""
        x2, x1, x0 = features
        x3 = self.merge_3(torch.cat([x0, self.bu_conv13(x1)], 1))
        x4 = self.merge_4(torch.cat([x1, self.bu_conv24(x2), self.upsample(x3)], 1))
        x5 = self.merge_5(torch.cat([x2, self.upsample(x4)], 1))
        x7 = self.merge_7(torch.cat([x4, self.bu_conv57(x5)], 1))
        x6 = self.merge_6(torch.cat([x3, self.bu_conv46(x4), self.bu_conv76(x7)], 1))
        return [x5, x7, x6]
