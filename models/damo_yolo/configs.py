"""The eight official DAMO-YOLO configurations as data (SPEC §0, §2.6-2.8, keys_<cfg>.json)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Stage(NamedTuple):
    """One backbone stage: channels in/out, bottleneck (res/csp) or expansion (mob) width, stride, blocks."""

    cin: int
    cout: int
    btn: int
    stride: int
    n: int


@dataclass(frozen=True)
class DamoConfig:
    """Everything that distinguishes one official DAMO-YOLO model from another."""

    name: str
    backbone: str  # "res" (TinyNAS_res), "csp" (TinyNAS_csp) or "mob" (TinyNAS_mob)
    focus: bool  # Focus stem (else a stride-2 3x3 conv)
    stem_out: int
    stages: tuple
    act: str  # backbone and neck activation
    neck_out: tuple
    neck_depth: float
    hidden_ratio: float
    depthwise: bool  # nano neck: depthwise down-sampling and MobileV3 blocks
    head_kernel: int
    reg_max: int
    input_size: int
    conf: float
    iou: float
    num_classes: int = 80
    max_det: int = 500

    @property
    def out_stages(self) -> tuple:
        """Indices into `stages` whose outputs feed the neck (s8, s16, s32)."""
        return (1, 2, 3) if self.backbone == "csp" else (1, 3, 4)

    @property
    def backbone_out(self) -> tuple:
        """Backbone output channels (s8, s16, s32)."""
        return tuple(self.stages[i].cout for i in self.out_stages)

    @property
    def neck_blocks(self) -> int:
        """Blocks per neck CSP node; Python's banker's rounding is part of the official structure."""
        return round(3 * self.neck_depth)


def _res(*stages) -> tuple:
    """TinyNAS_res / TinyNAS_mob stages: strides 2, 2, 2, 1, 2."""
    return tuple(Stage(cin, cout, btn, s, n) for (cin, cout, btn, n), s in zip(stages, (2, 2, 2, 1, 2)))


def _csp(*stages) -> tuple:
    """TinyNAS_csp wrapper stages: each down-samples by 2."""
    return tuple(Stage(cin, cout, btn, 2, n) for cin, cout, btn, n in stages)


_LARGE = dict(head_kernel=3, reg_max=16, input_size=640, conf=0.05, iou=0.7)
_NANO = dict(backbone="mob", act="silu", neck_depth=0.5, hidden_ratio=0.5, depthwise=True, reg_max=7,
             input_size=416, conf=0.03, iou=0.65)

CONFIGS = {c.name: c for c in (
    DamoConfig("T", "res", True, 24, _res((24, 64, 24, 2), (64, 96, 64, 2), (96, 192, 96, 2), (192, 192, 152, 2),
                                         (192, 384, 192, 1)),
               "relu", (64, 128, 256), 1.0, 1.0, False, **_LARGE),
    DamoConfig("S", "res", True, 32, _res((32, 128, 24, 1), (128, 128, 88, 5), (128, 256, 128, 3), (256, 256, 120, 2),
                                         (256, 512, 144, 1)),
               "relu", (128, 256, 512), 1.0, 0.75, False, **_LARGE),
    DamoConfig("M", "csp", True, 32, _csp((32, 128, 64, 1), (128, 128, 64, 3), (128, 256, 256, 7), (256, 512, 256, 2)),
               "silu", (128, 256, 512), 1.5, 1.0, False, **_LARGE),
    DamoConfig("L", "csp", True, 32, _csp((32, 128, 96, 2), (128, 128, 96, 4), (128, 256, 384, 9), (256, 512, 384, 3)),
               "silu", (128, 256, 512), 2.0, 1.0, False, **_LARGE),
    DamoConfig("N", focus=True, stem_out=16, stages=_res((16, 40, 144, 2), (40, 80, 320, 2), (80, 112, 504, 2),
                                                         (112, 112, 560, 2), (112, 160, 880, 1)),
               neck_out=(64, 128, 256), head_kernel=3, **_NANO),
    DamoConfig("Ns", focus=False, stem_out=16, stages=_res((16, 24, 88, 1), (24, 40, 160, 2), (40, 64, 288, 2),
                                                           (64, 80, 400, 2), (80, 160, 880, 2)),
               neck_out=(40, 80, 160), head_kernel=1, **_NANO),
    DamoConfig("Nm", focus=False, stem_out=16, stages=_res((16, 40, 144, 2), (40, 64, 256, 2), (64, 112, 504, 2),
                                                           (112, 128, 640, 2), (128, 256, 1408, 1)),
               neck_out=(64, 128, 256), head_kernel=1, **_NANO),
    DamoConfig("Nl", focus=False, stem_out=24, stages=_res((24, 48, 168, 1), (48, 80, 320, 2), (80, 160, 720, 2),
                                                           (160, 160, 800, 3), (160, 320, 1760, 2)),
               neck_out=(80, 160, 320), head_kernel=1, **_NANO),
)}


def get_config(name: str) -> DamoConfig:
    """The config called `name` (T, S, M, L, N, Ns, Nm, Nl); case-insensitive."""
    for key, cfg in CONFIGS.items():
        if key.lower() == str(name).lower():
            return cfg
    raise ValueError(f"unknown DAMO-YOLO config {name!r}; expected one of {', '.join(CONFIGS)}")
