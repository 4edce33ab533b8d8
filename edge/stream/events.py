"""The versioned events every sink sends (schema: edge/schema/event.schema.json): one per inferred frame, plus
zone and line events when the source has zones or lines."""
from __future__ import annotations

import json
import os
from typing import Optional

from ..detections import Detections
from ..schema import schema_path
from .sources import Frame

SCHEMA_VERSION = 3  # 2: track_id, counts, zone_enter/zone_exit/line_cross; 3: `file` on events from file sources
SCHEMA_PATH = schema_path("event")


def model_identity(detector) -> dict:
    """{id, family, backend, precision, version} of a Detector; id is the bundle directory or model file name."""
    info = detector.info()
    path = info["model"]
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    in_bundle = bool(path) and os.path.isfile(os.path.join(folder, "manifest.json"))
    version = info["metadata"].get("version")
    return {"id": os.path.basename(folder if in_bundle else path) or "model", "family": info["family"],
            "backend": info["backend"], "precision": info["precision"] or None,
            "version": None if version is None else str(version)}


def detections_event(frame: Frame, detections: Detections, model: dict, timings_ms: dict, inferred_at: float,
                     counts: Optional[dict] = None) -> dict:
    """The JSON-ready event for one inferred frame; `counts` (zones and lines now) when the source has any."""
    height, width = frame.image.shape[:2]
    scale = [1.0 / width, 1.0 / height, 1.0 / width, 1.0 / height]
    items = detections.to_list()
    for item in items:
        item["box_norm"] = [round(min(max(v * s, 0.0), 1.0), 6) for v, s in zip(item["box"], scale)]
    event = {
        "schema_version": SCHEMA_VERSION,
        "type": "detections",
        "source": frame.source_id,
        "seq": int(frame.seq),
        **({"file": frame.file} if frame.file is not None else {}),
        "captured_at": round(frame.timestamp, 6),
        "inferred_at": round(inferred_at, 6),
        "model": model,
        "frame": {"width": int(width), "height": int(height)},
        "detections": items,
        "timings_ms": {k: round(float(v), 3) for k, v in timings_ms.items()},
    }
    if counts is not None:
        event["counts"] = counts
    return event


def analytics_event(source: str, seq: int, raw: dict, file: Optional[str] = None) -> dict:
    """A zone_enter / zone_exit / line_cross event from what edge.track.Analytics.update returned; `file`: the
    video or image the frame came from."""
    event = {"schema_version": SCHEMA_VERSION, "type": raw["type"], "source": source, "seq": int(seq)}
    if file is not None:
        event["file"] = file
    event.update((k, v) for k, v in raw.items() if k not in ("type", "time", "dwell_s"))
    event["time"] = round(raw["time"], 6)
    if "dwell_s" in raw:
        event["dwell_s"] = round(raw["dwell_s"], 3)
    return event


def load_schema(path: Optional[str] = None) -> dict:
    """The event JSON Schema."""
    with open(path or SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)
