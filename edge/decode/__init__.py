"""Raw network outputs -> candidate boxes (xyxy, input pixels), scores and class ids before NMS."""
from . import formats  # noqa: F401  (registers the built-in formats; a new format's module is imported here too)
from .damo_yolo import decode_damo_yolo, decode_damo_yolo_head
from .dfl import decode_dfl, make_anchors
from .registry import FORMATS, DecodeContext, DecodeFormat, decode_format, register_format
from .yolo11 import decode_yolo11, decode_yolo11_end2end

__all__ = ["decode_yolo11", "decode_yolo11_end2end", "decode_damo_yolo", "decode_damo_yolo_head", "decode_dfl",
           "make_anchors", "FORMATS", "DecodeContext", "DecodeFormat", "decode_format", "register_format"]
