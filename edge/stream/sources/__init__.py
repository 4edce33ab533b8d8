"""Frame sources chosen by a URI-like string: `open_source("rtsp://cam/stream")`."""
from __future__ import annotations

import inspect
import os
import re
from typing import Optional

from .base import Frame, Source, SourceError

__all__ = ["Frame", "Source", "SourceError", "open_source", "split_name"]

URIS = ("synthetic[:WxH[@fps]], a video file, an image folder, /dev/videoN, v4l2:N, rtsp://..., http(s)://..., "
        "gst:PIPELINE or picamera2[:N]")


def split_name(spec: str) -> tuple:
    """`front=rtsp://...` -> ('front', 'rtsp://...'); a spec without a `name=` prefix -> (None, spec)."""
    match = re.match(r"^([A-Za-z][\w-]*)=(.+)$", spec)
    return (match.group(1), match.group(2)) if match else (None, spec)


def open_source(uri: str, source_id: Optional[str] = None, **options) -> Source:
    """Build (not open) the Source for a URI; options a source does not take (width, fps, realtime, ...) are ignored."""
    cls, args = _resolve(uri)
    accepted = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    kwargs.update(args)
    return cls(uri, source_id=source_id, **kwargs)


def _resolve(uri: str) -> tuple:
    """(Source class, arguments parsed from the URI)."""
    lowered = uri.lower()
    if lowered == "synthetic" or lowered.startswith("synthetic:"):
        from .synthetic import SyntheticSource
        return SyntheticSource, _synthetic_args(uri)
    if lowered.startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://")):
        from .network import NetworkSource
        return NetworkSource, {}
    if lowered.startswith("gst:"):
        from .gstreamer import GStreamerSource
        return GStreamerSource, {}
    if lowered == "picamera2" or lowered.startswith("picamera2:"):
        from .picamera2 import Picamera2Source
        return Picamera2Source, {"camera": _int_suffix(uri, "picamera2:")} if ":" in uri else {}
    if lowered.startswith("v4l2:") or re.match(r"^/dev/video\d+$", uri):
        from .v4l2 import V4L2Source
        device = _int_suffix(uri, "v4l2:") if lowered.startswith("v4l2:") else uri
        if isinstance(device, str) and not os.path.exists(device):
            raise SourceError(f"{uri}: no such camera device (ls /dev/video* lists the cameras)")
        return V4L2Source, {"device": device}
    if os.path.isdir(uri):
        from .folder import FolderSource
        return FolderSource, {}
    if os.path.isfile(uri):
        from ...images import IMAGE_EXTENSIONS
        if uri.lower().endswith(IMAGE_EXTENSIONS):
            from .folder import FolderSource
            return FolderSource, {}
        from .video import VideoFileSource
        return VideoFileSource, {}
    if "://" in uri or ":" in uri.split("/", 1)[0]:
        raise SourceError(f"{uri}: unknown source; expected {URIS}")
    raise SourceError(f"{uri}: no such file or folder (a source is {URIS})")


def _synthetic_args(uri: str) -> dict:
    """`synthetic:640x480@30` -> width, height, fps."""
    match = re.match(r"^synthetic(?::(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?$", uri, re.IGNORECASE)
    if not match:
        raise SourceError(f"{uri}: expected synthetic[:WxH[@fps]], e.g. synthetic:640x480@30")
    width, height, fps = match.groups()
    args = {"width": int(width), "height": int(height)} if width else {}
    if fps is not None:
        args["fps"] = float(fps)
    return args


def _int_suffix(uri: str, prefix: str) -> int:
    """The camera number after a prefix such as `v4l2:`."""
    suffix = uri[len(prefix):]
    if not suffix.isdigit():
        raise SourceError(f"{uri}: expected {prefix}N with a camera number N")
    return int(suffix)
