"""The built-in decode formats: YOLO11 (single output, end2end, split DFL) and DAMO-YOLO (ONNX, raw head, split DFL)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .damo_yolo import decode_damo_yolo, decode_damo_yolo_head
from .dfl import decode_dfl
from .registry import REG_MAX_IS_BINS, REG_MAX_IS_LAST_BIN, DecodeContext, DecodeFormat, register_format
from .yolo11 import decode_yolo11, decode_yolo11_end2end


def _yolo11_fits(shapes: list, contract) -> Optional[str]:
    nc = len(contract.names)
    return None if len(shapes[0]) == 3 and 4 + nc in shapes[0][1:] else f"[1, {4 + nc}, N] or [1, N, {4 + nc}]"


def _end2end_fits(shapes: list, contract) -> Optional[str]:
    return None if len(shapes[0]) == 3 and shapes[0][-1] == 6 else "[1, K, 6]"


def _damo_yolo_fits(shapes: list, contract) -> Optional[str]:
    nc = len(contract.names)
    return None if len(shapes[0]) == 3 and shapes[0][-1] == nc else f"scores [1, N, {nc}] first"


def _damo_head_fits(shapes: list, contract) -> Optional[str]:
    nc = len(contract.names)
    return None if len(shapes[0]) == 4 and shapes[0][1] == nc else f"class maps [1, {nc}, H, W] first"


def _dfl_fits(boxes_first: bool):
    """Shape check of a split DFL head: box bin logits [1, 4*bins, N] and scores [1, nc, N], either axis order."""
    def fits(shapes: list, contract) -> Optional[str]:
        spec, nc = contract.decode, len(contract.names)
        n = sum((contract.input.height // s) * (contract.input.width // s) for s in spec.strides)
        bins = spec.dfl_bins
        boxes, scores = shapes if boxes_first else shapes[::-1]
        if (len(boxes) == 3 and sorted(boxes[1:]) == sorted((4 * bins, n))
                and len(scores) == 3 and sorted(scores[1:]) == sorted((nc, n))):
            return None
        return f"[1,{4 * bins},{n}] box logits and [1,{nc},{n}] scores for strides {list(spec.strides)}"
    return fits


def _yolo11(outputs: list, ctx: DecodeContext) -> tuple:
    return decode_yolo11(outputs[0], ctx.num_classes, ctx.conf, ctx.multi_label, ctx.scale, ctx.best_scores,
                         ctx.dequantize[0])


def _yolo11_end2end(outputs: list, ctx: DecodeContext) -> tuple:
    return decode_yolo11_end2end(outputs[0], ctx.conf, ctx.scale)


def _grid(ctx: DecodeContext) -> np.ndarray:
    """The anchors a grid format is always given (Detector builds them from the format's `anchors`)."""
    if ctx.anchors is None:
        raise ValueError("a split DFL head needs the anchor grid")
    return ctx.anchors


def _yolo11_dfl(outputs: list, ctx: DecodeContext) -> tuple:  # (box logits, scores)
    return decode_dfl(outputs[0], outputs[1], _grid(ctx), ctx.conf, ctx.multi_label, ctx.best_scores, ctx.dequantize)


def _damo_yolo_dfl(outputs: list, ctx: DecodeContext) -> tuple:  # (scores, box logits): DAMO-YOLO's own order
    return decode_dfl(outputs[1], outputs[0], _grid(ctx), ctx.conf, ctx.multi_label, ctx.best_scores,
                      ctx.dequantize[::-1])


def _damo_yolo(outputs: list, ctx: DecodeContext) -> tuple:
    return decode_damo_yolo(outputs[0], outputs[1], ctx.conf, ctx.multi_label)


def _damo_yolo_head(outputs: list, ctx: DecodeContext) -> tuple:
    last_bin = ctx.spec.dfl_bins - 1  # decode_damo_yolo_head takes the official reg_max
    scores, boxes = decode_damo_yolo_head(outputs[:3], outputs[3:], ctx.spec.strides, last_bin)
    return decode_damo_yolo(scores, boxes, ctx.conf, ctx.multi_label)


register_format(DecodeFormat("yolo11", "yolo11", 1, "[1,4+nc,N] cxcywh + class scores", _yolo11_fits, _yolo11,
                             quantized=True))
register_format(DecodeFormat("yolo11-end2end", "yolo11", 1, "[1,K,6] x1,y1,x2,y2,score,class after NMS in the graph",
                             _end2end_fits, _yolo11_end2end, nms=False))
register_format(DecodeFormat("yolo11-dfl", "yolo11", 2, "DFL box logits [1,4*reg_max,N] + scores [1,nc,N], each with "
                             "its own quantization (anchors = cell centres of each stride level)", _dfl_fits(True),
                             _yolo11_dfl, anchors=0.5, reg_max=REG_MAX_IS_BINS, quantized=True))
register_format(DecodeFormat("damo-yolo", "damo-yolo", 2, "scores [1,N,C] + xyxy boxes [1,N,4]", _damo_yolo_fits,
                             _damo_yolo))
register_format(DecodeFormat("damo-yolo-head", "damo-yolo", 6, "3 class maps + 3 DFL maps of reg_max+1 bins per side",
                             _damo_head_fits, _damo_yolo_head, reg_max=REG_MAX_IS_LAST_BIN, strides=3))
register_format(DecodeFormat("damo-yolo-dfl", "damo-yolo", 2, "scores [1,N,C] + DFL box logits [1,N,4*(reg_max+1)] "
                             "(anchors = cell top-left corners)", _dfl_fits(False), _damo_yolo_dfl, anchors=0.0,
                             reg_max=REG_MAX_IS_LAST_BIN, quantized=True))
