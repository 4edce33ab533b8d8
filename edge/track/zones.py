"""Zone presence (with inertia and dwell time) and line-crossing counts over tracked detections.

Geometry is in frame pixels with y pointing down. A line's sides are named looking from point 1 towards point 2 on
screen: a crossing from the left side to the right side is "in", right to left is "out" (a line drawn bottom to
top counts left-to-right movement as "in").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..detections import Detections

ANCHORS = ("bottom_center", "center", "top_left", "top_right", "bottom_left", "bottom_right")
_ANCHOR_WEIGHTS = {  # anchor = xyxy @ weights -> (x, y)
    "bottom_center": [[0.5, 0], [0, 0], [0.5, 0], [0, 1]],
    "center": [[0.5, 0], [0, 0.5], [0.5, 0], [0, 0.5]],
    "top_left": [[1, 0], [0, 1], [0, 0], [0, 0]],
    "top_right": [[0, 0], [0, 1], [1, 0], [0, 0]],
    "bottom_left": [[1, 0], [0, 0], [0, 0], [0, 1]],
    "bottom_right": [[0, 0], [0, 0], [1, 0], [0, 1]],
}


def anchor_points(xyxy: np.ndarray, anchor: str = "bottom_center") -> np.ndarray:
    """(N, 2) anchor point of each xyxy box."""
    if anchor not in _ANCHOR_WEIGHTS:
        raise ValueError(f"unknown anchor {anchor!r}; use one of {', '.join(ANCHORS)}")
    return np.asarray(xyxy, np.float64).reshape(-1, 4) @ np.asarray(_ANCHOR_WEIGHTS[anchor], np.float64)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of (a - o) x (b - o); > 0 when b is right of o->a on screen (y down)."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def _segments_intersect(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Whether segments p1-p2 and q1-q2 touch (broadcast over leading axes; collinear overlap counts)."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    def on(a, b, c, d):  # c collinear with a-b and within its bounding box
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        return (d == 0) & np.all((c >= lo) & (c <= hi), axis=-1)

    return proper | on(q1, q2, p1, d1) | on(q1, q2, p2, d2) | on(p1, p2, q1, d3) | on(p1, p2, q2, d4)


def _check_points(kind: str, name: str, points: Sequence[Sequence[float]]) -> np.ndarray:
    if not name or any(c in name for c in "=:,"):
        raise ValueError(f"{kind} name {name!r} must be non-empty without '=', ':' or ','")
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{kind} {name!r}: points must be (x, y) pairs")
    if not np.isfinite(pts).all() or (pts < 0).any():
        raise ValueError(f"{kind} {name!r}: coordinates must be finite and >= 0")
    return pts


@dataclass(frozen=True)
class Zone:
    """Polygon zone; points in pixels, or all in 0..1 (normalized, resolved on the first frame)."""

    name: str
    points: tuple
    classes: tuple = ()

    def __post_init__(self) -> None:
        pts = _check_points("zone", self.name, self.points)
        if len(pts) < 3:
            raise ValueError(f"zone {self.name!r}: needs at least 3 points, got {len(pts)}")
        nxt = np.roll(pts, -1, 0)
        if abs(float(np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1]))) < 1e-12:
            raise ValueError(f"zone {self.name!r}: polygon has zero area")
        if (np.abs(nxt - pts).sum(1) == 0).any():
            raise ValueError(f"zone {self.name!r}: repeats a point")
        k = len(pts)
        i, j = np.triu_indices(k, 2)
        nonadjacent = ~((i == 0) & (j == k - 1))
        i, j = i[nonadjacent], j[nonadjacent]
        if _segments_intersect(pts[i], nxt[i], pts[j], nxt[j]).any():
            raise ValueError(f"zone {self.name!r}: polygon edges cross each other")
        object.__setattr__(self, "points", tuple(map(tuple, pts.tolist())))
        object.__setattr__(self, "classes", tuple(self.classes))


@dataclass(frozen=True)
class Line:
    """Counting line from point 1 to point 2; pixels, or both in 0..1 (normalized)."""

    name: str
    points: tuple
    classes: tuple = ()

    def __post_init__(self) -> None:
        pts = _check_points("line", self.name, self.points)
        if len(pts) != 2:
            raise ValueError(f"line {self.name!r}: needs exactly 2 points, got {len(pts)}")
        if (pts[0] == pts[1]).all():
            raise ValueError(f"line {self.name!r}: has zero length")
        object.__setattr__(self, "points", tuple(map(tuple, pts.tolist())))
        object.__setattr__(self, "classes", tuple(self.classes))


def _parse(kind: str, text: str) -> tuple[str, tuple, tuple]:
    name, sep, rest = text.partition("=")
    if not sep:
        raise ValueError(f"{kind} {text!r}: expected NAME=x1,y1,x2,y2,...[:class,class]")
    coords, _, classes = rest.partition(":")
    try:
        values = [float(v) for v in coords.split(",")]
    except ValueError:
        raise ValueError(f"{kind} {name.strip()!r}: coordinates must be numbers, got {coords!r}") from None
    if len(values) % 2:
        raise ValueError(f"{kind} {name.strip()!r}: odd number of coordinates ({len(values)})")
    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    return name.strip(), tuple(tuple(values[i:i + 2]) for i in range(0, len(values), 2)), names


def parse_zone(text: str) -> Zone:
    """`NAME=x1,y1,x2,y2,x3,y3[,...][:class,class]` -> Zone (ValueError with one line if malformed)."""
    return Zone(*_parse("zone", text))


def parse_line(text: str) -> Line:
    """`NAME=x1,y1,x2,y2[:class,class]` -> Line (ValueError with one line if malformed)."""
    return Line(*_parse("line", text))


@dataclass
class _Presence:
    """One track's state in one zone."""

    inside: bool = False
    streak: int = 0  # consecutive frames disagreeing with `inside`
    streak_start: float = 0.0  # timestamp of the first of those frames
    since: float = 0.0  # when the current visit began (first inside frame)
    last_inside: float = 0.0
    name: str = ""
    class_id: int = 0


@dataclass
class _Side:
    """One track's last clear side of one line and where its anchor was then."""

    side: int
    point: np.ndarray


@dataclass
class _TrackSeen:
    last_frame: int
    presence: dict = field(default_factory=dict)  # zone name -> _Presence
    sides: dict = field(default_factory=dict)  # line name -> _Side


class Analytics:
    """Per-source zone presence, dwell times and line counts from tracked detections (pure state, no I/O)."""

    def __init__(self, zones: Sequence[Zone] = (), lines: Sequence[Line] = (), anchor: str = "bottom_center",
                 inertia: int = 3, line_margin: float = 4.0, max_missing: int = 30) -> None:
        """inertia: consecutive frames inside to enter and outside to leave a zone (Frigate's default 3).

        line_margin: pixels an anchor must be away from a line to be on a side; jitter within it never counts.
        max_missing: frames a track may be unseen (tracker dropout) before it leaves its zones and is forgotten.
        """
        names = [z.name for z in zones] + [ln.name for ln in lines]
        if len(set(names)) != len(names):
            raise ValueError(f"zone and line names must be unique: {names}")
        if inertia < 1 or line_margin < 0 or max_missing < 0:
            raise ValueError("Analytics needs inertia >= 1, line_margin >= 0 and max_missing >= 0")
        anchor_points(np.zeros((0, 4)), anchor)  # validates the anchor name
        self.zones, self.lines = list(zones), list(lines)
        self.anchor, self.inertia, self.line_margin, self.max_missing = anchor, inertia, line_margin, max_missing
        self._polygons: dict = {}  # pixel geometry, resolved against the first frame's size
        self._segments: dict = {}
        self._resolved = False
        self.reset()

    def reset(self) -> None:
        """Forget tracks and counts (geometry stays resolved)."""
        self._frame = 0
        self._tracks: dict[int, _TrackSeen] = {}
        self._line_counts: dict[str, dict] = {ln.name: {"in": 0, "out": 0, "classes": {}} for ln in self.lines}

    def _resolve(self, frame_size: tuple[int, int]) -> None:
        """Normalized coordinates (all within 0..1) -> pixels of this (width, height)."""
        scale = np.asarray(frame_size[:2], np.float64)

        def px(points: tuple) -> np.ndarray:
            pts = np.asarray(points, np.float64)
            return pts * scale if pts.max() <= 1.0 else pts

        self._polygons = {z.name: _edges(px(z.points)) for z in self.zones}
        self._segments = {ln.name: px(ln.points) for ln in self.lines}
        self._resolved = True

    def update(self, detections: Detections, timestamp: float, frame_size: tuple[int, int]) -> list[dict]:
        """Feed one frame's tracked detections (track_ids set); returns this frame's events as dicts."""
        if detections.track_ids is None:
            raise ValueError("Analytics.update needs tracked detections (run Tracker.update first)")
        if not self._resolved:
            self._resolve(frame_size)
        self._frame += 1
        events: list[dict] = []
        anchors = anchor_points(detections.xyxy, self.anchor)
        names = detections.names or [str(c) for c in detections.class_ids.tolist()]
        ids, classes = detections.track_ids.tolist(), detections.class_ids.tolist()
        for zone in self.zones:
            inside = _inside_edges(anchors, self._polygons[zone.name]).tolist()
            for k, tid in enumerate(ids):
                if zone.classes and names[k] not in zone.classes:
                    continue
                seen = self._tracks.get(tid)
                if not inside[k] and (seen is None or zone.name not in seen.presence):
                    continue  # outside and never seen inside: no state to keep (the common case, kept cheap)
                if seen is None:
                    seen = self._tracks[tid] = _TrackSeen(self._frame)
                state = seen.presence.setdefault(zone.name, _Presence())
                state.name, state.class_id = names[k], classes[k]
                self._vote(zone.name, tid, state, inside[k], timestamp, events)
        for line in self.lines:
            self._cross_line(line, anchors, ids, classes, names, timestamp, events)
        for tid in ids:
            self._tracks.setdefault(tid, _TrackSeen(self._frame)).last_frame = self._frame
        self._forget(timestamp, events)
        return events

    def _vote(self, zone: str, tid: int, state: _Presence, inside: bool, t: float, events: list) -> None:
        """Inertia: `inertia` frames in a row on the other side flip the presence; times from the first of them."""
        if inside:
            state.last_inside = t
        if inside == state.inside:
            state.streak = 0
            return
        if state.streak == 0:
            state.streak_start = t
        state.streak += 1
        if state.streak < self.inertia:
            return
        state.inside, state.streak = inside, 0
        event = {"type": "zone_enter" if inside else "zone_exit", "zone": zone, "track_id": tid,
                 "class_id": state.class_id, "name": state.name, "time": t}
        if inside:
            state.since = state.streak_start
        else:
            event["dwell_s"] = state.streak_start - state.since
        events.append(event)

    def _cross_line(self, line: Line, anchors: np.ndarray, ids: list, classes: list, names: list, t: float,
                    events: list) -> None:
        """Count a track when its anchor gets clearly to the other side along a path that cuts the segment."""
        p1, p2 = self._segments[line.name]
        length = float(np.hypot(*(p2 - p1)))
        distance = _cross(p1, p2, anchors) / length  # signed pixels, > 0 on the right
        sides = np.where(np.abs(distance) <= self.line_margin, 0, np.sign(distance)).astype(int).tolist()
        for k, tid in enumerate(ids):
            side = sides[k]
            if side == 0 or (line.classes and names[k] not in line.classes):
                continue  # on the line (no side yet, keep the last clear one) or a class not counted
            seen = self._tracks.setdefault(tid, _TrackSeen(self._frame))
            last = seen.sides.get(line.name)
            seen.sides[line.name] = _Side(side, anchors[k])
            if last is None or last.side == side or not _segments_intersect(last.point, anchors[k], p1, p2):
                continue
            direction = "in" if side > 0 else "out"
            counts = self._line_counts[line.name]
            counts[direction] += 1
            per_class = counts["classes"].setdefault(names[k], {"in": 0, "out": 0})
            per_class[direction] += 1
            events.append({"type": "line_cross", "line": line.name, "track_id": tid, "class_id": classes[k],
                           "name": names[k], "direction": direction, "time": t})

    def _forget(self, t: float, events: list) -> None:
        """Tracks unseen for more than max_missing frames leave their zones (dwell up to their last inside frame)."""
        for tid in [tid for tid, s in self._tracks.items() if self._frame - s.last_frame > self.max_missing]:
            for zone, state in self._tracks.pop(tid).presence.items():
                if state.inside:
                    events.append({"type": "zone_exit", "zone": zone, "track_id": tid, "class_id": state.class_id,
                                   "name": state.name, "time": t, "dwell_s": state.last_inside - state.since})

    def dwell(self, zone: str, timestamp: float) -> dict[int, float]:
        """Seconds each object now in `zone` has been there, by track id (loitering)."""
        return {tid: timestamp - s.presence[zone].since for tid, s in self._tracks.items()
                if zone in s.presence and s.presence[zone].inside}

    def counts(self) -> dict:
        """JSON-ready {"zones": {name: {"count", "classes"}}, "lines": {name: {"in", "out", "classes"}}}."""
        zones = {}
        for zone in self.zones:
            present = [s.presence[zone.name] for s in self._tracks.values()
                       if zone.name in s.presence and s.presence[zone.name].inside]
            per_class: dict[str, int] = {}
            for p in present:
                per_class[p.name] = per_class.get(p.name, 0) + 1
            zones[zone.name] = {"count": len(present), "classes": per_class}
        lines = {name: {"in": c["in"], "out": c["out"], "classes": {k: dict(v) for k, v in c["classes"].items()}}
                 for name, c in self._line_counts.items()}
        return {"zones": zones, "lines": lines}


def _edges(polygon: np.ndarray) -> tuple:
    """(x1, y1, y2, dx/dy) of each edge, computed once per zone for _inside_edges."""
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (x2 - x1) / (y2 - y1)
    return x1, y1, y2, slope


def _inside_edges(points: np.ndarray, edges: tuple) -> np.ndarray:
    """(N,) whether each point is inside the polygon (even-odd ray casting, vectorised over points and edges)."""
    x1, y1, y2, slope = edges
    x, y = points[:, 0:1], points[:, 1:2]
    straddles = (y1 > y) != (y2 > y)  # horizontal edges never straddle, so their inf/nan slope is never used
    with np.errstate(invalid="ignore"):
        x_at = x1 + (y - y1) * slope
    return (straddles & (x < x_at)).sum(1) % 2 == 1

