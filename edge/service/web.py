"""The device web page: its static files (package data, an allow-list) and the /api/status document it polls
(schema: edge/schema/status.schema.json)."""
from __future__ import annotations

import functools
import glob
import os
import threading
import time
from collections import deque
from typing import Optional

from ..stream.capture import describe_state

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# Only these paths map to files, so no request path can reach anything outside the folder.
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SCHEMA_VERSION = 1


@functools.lru_cache(maxsize=None)
def static_file(name: str) -> bytes:
    """The bytes of one file of the page (read once)."""
    with open(os.path.join(STATIC_DIR, name), "rb") as f:
        return f.read()


def cpu_temperature(root: str = "/sys/class/thermal") -> Optional[float]:
    """The CPU temperature in °C from the kernel's thermal zones (the CPU/SoC zone, else the first); None if none."""
    def not_cpu(zone: str) -> bool:
        return not any(k in _read(os.path.join(zone, "type")).lower() for k in ("cpu", "soc"))

    for zone in sorted(sorted(glob.glob(os.path.join(root, "thermal_zone*"))), key=not_cpu):
        value = _read(os.path.join(zone, "temp"))
        if value.strip().lstrip("-").isdigit():
            return round(int(value) / 1000.0, 1)
    return None


def rss_mb() -> Optional[float]:
    """This process's resident memory in MB (Linux /proc), None elsewhere."""
    fields = _read("/proc/self/statm").split()
    return round(int(fields[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1) if len(fields) > 1 else None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class InputRates:
    """Captured frames per second per source, from the counters seen at successive status requests."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: deque = deque(maxlen=64)
        self._lock = threading.Lock()

    def update(self, sources: dict, now: float) -> dict:
        """{source: fps} between the oldest sample within the window (at least 0.5 s old) and now."""
        counts = {sid: src.get("captured") or 0 for sid, src in sources.items()}
        with self._lock:
            while self._samples and now - self._samples[0][0] > self.window:
                self._samples.popleft()
            old = next((s for s in self._samples if now - s[0] >= 0.5), None)
            self._samples.append((now, counts))
        if old is None:
            return {sid: None for sid in counts}
        return {sid: round(max(0, n - old[1].get(sid, n)) / (now - old[0]), 2) for sid, n in counts.items()}


def status_document(status: dict, reasons: list, events: list, latest: dict, uptime_s: float,
                    rates: InputRates) -> dict:
    """The JSON the page polls: readiness, model, rates, latencies, per-source state, sinks, recent events, system."""
    now, now_mono = time.time(), time.monotonic()
    sources = status.get("sources") or {}
    fps_in = rates.update(sources, now_mono)
    model = {"id": None, "family": None, "backend": None, "precision": None, "version": None, "path": None}
    model.update(status.get("model") or {})
    model.update((events[0] if events else {}).get("model") or {})  # id and precision come with the events
    sinks = status.get("sinks") or {}
    rows = []
    for sid, src in sources.items():
        event = latest.get(sid) or {}
        stamp = src.get("last_frame_at")
        rows.append({
            "id": str(sid), "uri": src.get("uri"), "connected": bool(src.get("connected")), "error": src.get("error"),
            "state": describe_state(src),
            # a source is down exactly when /readyz names it, so the page and the probes never disagree
            "ok": not any(r.startswith(f"source {sid}:") for r in reasons),
            "captured": src.get("captured") or 0, "inferred": src.get("inferred") or 0,
            "dropped": src.get("dropped") or 0, "reconnects": src.get("reconnects") or 0,
            "age_s": None if stamp is None else round(now - stamp, 3), "fps_in": fps_in.get(sid),
            "seq": event.get("seq"), "detections": event.get("detections") or [], "counts": event.get("counts"),
        })
    return {
        "schema_version": SCHEMA_VERSION, "time": round(now, 3), "uptime_s": round(uptime_s, 3),
        "ready": not reasons, "reasons": list(reasons), "model": model,
        "fps_out": status.get("fps") or 0.0, "inferred": status.get("inferred") or 0,
        "latency_ms": status.get("latency_ms") or {},
        "sources": rows,
        "sinks": {str(k): {"published": v.get("published") or 0, "failed": v.get("failed") or 0,
                           "dropped": v.get("dropped") or 0} for k, v in sinks.items()},
        "sink_failures": sum(v.get("failed") or 0 for v in sinks.values()),
        "model_reloads": {k: (status.get("model_reloads") or {}).get(k) or 0 for k in ("succeeded", "failed")},
        "events": events,
        "system": {"cpu_temp_c": cpu_temperature(), "rss_mb": rss_mb()},
    }
