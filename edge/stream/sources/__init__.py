"""Frame sources chosen by a URI-like string: `open_source("rtsp://cam/stream")`."""
from __future__ import annotations

import importlib
import inspect
import os
import re
from typing import Callable, NamedTuple, Optional

from .base import Frame, Source, SourceError

__all__ = ["Frame", "Source", "SourceError", "open_source", "register", "split_name", "SOURCES"]

URIS = ("synthetic[:WxH[@fps]], a video file, an image folder, /dev/videoN, v4l2:N, rtsp://..., http(s)://..., "
        "gst:PIPELINE or picamera2[:N]")


def split_name(spec: str) -> tuple:
    """`front=rtsp://...` -> ('front', 'rtsp://...'); a spec without a `name=` prefix -> (None, spec)."""
    match = re.match(r"^([A-Za-z][\w-]*)=(.+)$", spec)
    return (match.group(1), match.group(2)) if match else (None, spec)


class SourceKind(NamedTuple):
    """A kind of source: `match(uri)` returns the arguments parsed from the URI, or None when it is not this kind."""

    name: str
    match: Callable[[str], Optional[dict]]
    load: Callable[[], type]


SOURCES: list = []
OPTIONS = ("width", "height", "fps", "fourcc", "realtime", "model_size")  # what open_source passes on


def register(name: str, match: Callable[[str], Optional[dict]], load: Callable[[], type], first: bool = False) -> None:
    """Add a kind of source, tried in order (first=True: before the built-in ones); load() returns its class."""
    kind = SourceKind(name, match, load)
    if first:
        SOURCES.insert(0, kind)
    else:
        SOURCES.append(kind)


def _lazy(module: str, cls: str) -> Callable[[], type]:
    """Import edge.stream.sources.<module>.<cls> only when such a source is opened."""
    return lambda: getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def open_source(uri: str, source_id: Optional[str] = None, **options) -> Source:
    """Build (not open) the Source for a URI; common options it does not take (e.g. width for a file) are ignored,
    an option no source knows (a typo) is a SourceError."""
    for kind in SOURCES:
        args = kind.match(uri)
        if args is not None:
            cls = kind.load()
            accepted = inspect.signature(cls).parameters
            unknown = sorted(set(options) - set(OPTIONS) - set(accepted))
            if unknown:
                raise SourceError(f"{uri}: unknown source option(s) {', '.join(unknown)}; a {kind.name} source takes "
                                  f"{', '.join(sorted(set(OPTIONS) | set(accepted) - {'uri', 'source_id'}))}")
            kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
            return cls(uri, source_id=source_id, **{**kwargs, **args})
    if "://" in uri or ":" in uri.split("/", 1)[0]:
        raise SourceError(f"{uri}: unknown source; expected {URIS}")
    raise SourceError(f"{uri}: no such file or folder (a source is {URIS})")


def _prefix(*prefixes: str) -> Callable[[str], Optional[dict]]:
    """Matches URIs that start with one of the prefixes (case-insensitive); no arguments."""
    return lambda uri: {} if uri.lower().startswith(prefixes) else None


def _picamera2(uri: str) -> Optional[dict]:
    """`picamera2` or `picamera2:N`."""
    if uri.lower() != "picamera2" and not uri.lower().startswith("picamera2:"):
        return None
    return {"camera": _int_suffix(uri, "picamera2:")} if ":" in uri else {}


def _v4l2(uri: str) -> Optional[dict]:
    """`v4l2:N` or `/dev/videoN`; a device missing now is retried like a lost camera (USB cameras enumerate late)."""
    if uri.lower().startswith("v4l2:"):
        return {"device": _int_suffix(uri, "v4l2:")}
    return {"device": uri} if re.match(r"^/dev/video\d+$", uri) else None


def _images(uri: str) -> Optional[dict]:
    """An image folder or a single image file."""
    from ...images import IMAGE_EXTENSIONS

    return {} if os.path.isdir(uri) or (os.path.isfile(uri) and uri.lower().endswith(IMAGE_EXTENSIONS)) else None


def _synthetic(uri: str) -> Optional[dict]:
    """`synthetic[:WxH[@fps]]`."""
    lowered = uri.lower()
    return _synthetic_args(uri) if lowered == "synthetic" or lowered.startswith("synthetic:") else None


register("synthetic", _synthetic, _lazy("synthetic", "SyntheticSource"))
register("network", _prefix("rtsp://", "rtsps://", "http://", "https://", "rtmp://"), _lazy("network", "NetworkSource"))
register("gstreamer", _prefix("gst:"), _lazy("gstreamer", "GStreamerSource"))
register("picamera2", _picamera2, _lazy("picamera2", "Picamera2Source"))
register("v4l2", _v4l2, _lazy("v4l2", "V4L2Source"))
register("images", _images, _lazy("folder", "FolderSource"))
register("video", lambda uri: {} if os.path.isfile(uri) else None, _lazy("video", "VideoFileSource"))


def _synthetic_args(uri: str) -> dict:
    """`synthetic:640x480@30` -> width, height, fps."""
    match = re.match(r"^synthetic(?::(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?$", uri, re.IGNORECASE)
    if not match:
        raise SourceError(f"{uri}: expected synthetic[:WxH[@fps]], e.g. synthetic:640x480@30")
    width, height, fps = match.groups()
    args: dict = {"width": int(width), "height": int(height)} if width else {}
    if fps is not None:
        args["fps"] = float(fps)
    return args


def _int_suffix(uri: str, prefix: str) -> int:
    """The camera number after a prefix such as `v4l2:`."""
    suffix = uri[len(prefix):]
    if not suffix.isdigit():
        raise SourceError(f"{uri}: expected {prefix}N with a camera number N")
    return int(suffix)
