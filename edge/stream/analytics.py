"""Tracking, zones and lines per source: the settings turned into a Tracker and Analytics the pipeline calls."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..detections import Detections
from ..errors import ConfigError
from ..settings import Config, SourceConfig, TrackingConfig
from ..track import Analytics, Line, Tracker, Zone
from .events import analytics_event
from .sources import Frame

DEFAULT_FRAME_RATE = 30.0


def _checked(shape: type, items: list, where: str) -> list:
    """Zone or Line objects from their settings; ConfigError naming the item when one is wrong."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(shape(item.name, tuple(map(tuple, item.points)), tuple(item.classes)))
        except ValueError as e:
            raise ConfigError(f"{where}[{i}]: {e}") from None
    return out


def areas(source: SourceConfig, where: str) -> tuple[list, list]:
    """(zones, lines) of one source as checked geometry; ConfigError naming the key path when one is wrong."""
    built = (_checked(Zone, source.zones, f"{where}.zones"), _checked(Line, source.lines, f"{where}.lines"))
    names = [a.name for a in built[0] + built[1]]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{where}: zone/line name {name!r} is used twice")
    return built


def tracking_on(config: Config) -> bool:
    """Whether sources are tracked: as set, else when any source has zones or lines."""
    has_areas = any(s.zones or s.lines for s in config.sources)
    if config.tracking.enabled is None:
        return has_areas
    return config.tracking.enabled


def check(config: Config) -> None:
    """Zone and line geometry, name clashes and tracker settings; ConfigError naming the key path."""
    for i, source in enumerate(config.sources):
        areas(source, f"sources[{i}]")
    t = config.tracking
    if t.enabled is False and any(s.zones or s.lines for s in config.sources):
        raise ConfigError("tracking.enabled: zones and lines need tracking; remove them or enable it")
    if not t.low_thresh <= t.high_thresh <= t.new_track_thresh:
        raise ConfigError(f"tracking: needs low_thresh <= high_thresh <= new_track_thresh, got {t.low_thresh}, "
                          f"{t.high_thresh}, {t.new_track_thresh}")


class SourceAnalytics:
    """One source's tracker and, when it has zones or lines, their state; call it on each inferred frame."""

    def __init__(self, tracking: TrackingConfig, zones: Sequence[Zone] = (), lines: Sequence[Line] = (),
                 frame_rate: float = DEFAULT_FRAME_RATE) -> None:
        t = tracking
        self.tracker = Tracker(frame_rate=frame_rate, high_thresh=t.high_thresh, low_thresh=t.low_thresh,
                               new_track_thresh=t.new_track_thresh, match_thresh=t.match_thresh,
                               track_buffer=t.track_buffer, min_hits=t.min_hits, class_agnostic=t.class_agnostic)
        self.zones, self.lines = list(zones), list(lines)
        self.analytics = (Analytics(zones, lines, anchor=t.anchor, inertia=t.inertia,
                                    max_missing=self.tracker.max_lost) if zones or lines else None)
        self.tracks_active = 0
        self.counts: Optional[dict] = self.analytics.counts() if self.analytics else None

    def __call__(self, frame: Frame, detections: Detections) -> tuple[Detections, list]:
        """(detections on confirmed tracks, with track_ids; this frame's zone and line events)."""
        tracked = self.tracker.update(detections)
        self.tracks_active = len(tracked)
        if self.analytics is None:
            return tracked, []
        height, width = frame.image.shape[:2]
        raw = self.analytics.update(tracked, frame.timestamp, (width, height))
        self.counts = self.analytics.counts()  # a fresh dict each frame: other threads read it as is
        return tracked, [analytics_event(frame.source_id, frame.seq, e, frame.file) for e in raw]

    def status(self) -> dict:
        """{"tracks_active", "zones", "lines"} for status() and metrics."""
        return {"tracks_active": self.tracks_active, **(self.counts or {"zones": {}, "lines": {}})}


def source_analytics(config: Config, names: Sequence[str]) -> List[Optional[SourceAnalytics]]:
    """One SourceAnalytics per configured source (all None when tracking is off); unknown class names: ConfigError."""
    if not tracking_on(config):
        return [None] * len(config.sources)
    known = set(names)
    out: List[Optional[SourceAnalytics]] = []
    for i, source in enumerate(config.sources):
        zones, lines = areas(source, f"sources[{i}]")
        for kind, items in (("zones", zones), ("lines", lines)):
            for j, item in enumerate(items):
                unknown = [c for c in item.classes if c not in known]
                if unknown:
                    raise ConfigError(f"sources[{i}].{kind}[{j}].classes: unknown class {unknown[0]!r} "
                                      f"(the model has {', '.join(names)})")
        rate = config.tracking.frame_rate or (source.fps if source.fps else DEFAULT_FRAME_RATE)
        out.append(SourceAnalytics(config.tracking, zones, lines, rate))
    return out
