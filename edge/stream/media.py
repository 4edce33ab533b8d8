"""Event snapshots and clips: on a zone or line event, a clean and an annotated JPEG of the frame and, when clips
are on, an MJPG .avi starting `pre_roll_seconds` before the event and ending `clip_seconds` after it.

The frame loop only queues work (bounded; when full, dropped and counted); one background thread encodes the
pre-roll ring (downscaled JPEGs, only while clips are on), writes the files and applies retention. Every file is
written under a hidden temp name in its folder, fsynced and renamed, so a file under its final name is complete.
Events of one source during a clip share that clip. Paths in events are relative to the media directory.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import threading
import time
from collections import deque
from typing import Optional, Sequence

import cv2
import numpy as np

from ..detections import Detections
from ..draw import draw_detections
from ..errors import ConfigError
from ..settings import MediaConfig
from .avi import MjpegAvi
from .sources import Frame

log = logging.getLogger("edge.media")

JPEG_QUALITY = 85
RING_WIDTH = 640  # pre-roll frames are downscaled to at most this width before JPEG encoding
FRAME_QUEUE = 8  # frames waiting for the ring; beyond it a frame is dropped (the clip skips it)
LOG_EVERY_S = 30.0
CONTENT_TYPES = {".jpg": "image/jpeg", ".avi": "video/x-msvideo"}


def check_dir(path: str) -> str:
    """Create the media directory and prove it writable; its real path, or a ConfigError naming media.dir."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"media.dir: {path} is not a writable directory: {e.strerror or e}") from None
    return os.path.realpath(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _temp(path: str) -> str:
    """The hidden temp name a file is written under before it is renamed to `path` (same folder, same suffix)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.part{os.path.splitext(name)[1]}")


def commit(temp: str, path: str) -> None:
    """fsync the finished temp file and rename it to its final name; the temp file is removed on failure."""
    try:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` to `path` through a hidden temp file (fsync, rename): never half-written under its name."""
    temp = _temp(path)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except BaseException:
        _unlink(temp)
        raise
    commit(temp, path)


def media_file(root: str, relative: str) -> Optional[str]:
    """The real path of a saved file `relative` to root; None when it leaves root, is hidden (a temp file) or
    is not a regular file."""
    parts = relative.split("/")
    if "\0" in relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, full]) != root or not os.path.isfile(full):
        return None
    return full


class Retention:
    """The saved files, oldest first; the oldest go while there are too many, too many bytes or too old ones."""

    def __init__(self, root: str, max_files: int, max_bytes: float, max_age_s: Optional[float]) -> None:
        self.root, self.max_files, self.max_bytes, self.max_age_s = root, max_files, max_bytes, max_age_s
        found = []
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                if name.startswith("."):  # a temp file a crash left behind
                    _unlink(path)
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                found.append((st.st_mtime, st.st_size, path))
        self.files = deque(sorted(found))
        self.bytes = sum(f[1] for f in found)

    def add(self, path: str) -> None:
        """Count a newly written file, then prune."""
        st = os.stat(path)
        self.files.append((st.st_mtime, st.st_size, path))
        self.bytes += st.st_size
        self.prune()

    def prune(self, now: Optional[float] = None) -> None:
        """Remove the oldest files beyond the limits."""
        now = time.time() if now is None else now
        while self.files and (len(self.files) > self.max_files or self.bytes > self.max_bytes or
                              (self.max_age_s is not None and now - self.files[0][0] > self.max_age_s)):
            _, size, path = self.files.popleft()
            self.bytes -= size
            _unlink(path)


class _Clip:
    """One clip being written: JPEG frames into an MJPG AVI under a hidden temp name, until `end` (capture time)."""

    def __init__(self, path: str, end: float, fps: float, size: tuple) -> None:
        self.path, self.temp, self.end, self.size = path, _temp(path), end, size
        self.file = open(self.temp, "wb")
        self.avi = MjpegAvi(self.file, size[0], size[1], fps)

    def write(self, jpeg: np.ndarray, size: tuple) -> None:
        """One frame; a frame of another size (the source changed resolution) is scaled to the clip's."""
        if size != self.size:
            jpeg = _encode(cv2.resize(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), self.size, interpolation=cv2.INTER_AREA))
        self.avi.write(jpeg.tobytes())

    def finish(self) -> None:
        """Complete the file and give it its final name."""
        try:
            self.avi.close()
            self.file.close()
        except BaseException:
            self.abandon()
            raise
        commit(self.temp, self.path)

    def abandon(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        _unlink(self.temp)


def _encode(image: np.ndarray) -> np.ndarray:
    """JPEG bytes (a uint8 array) of a BGR image."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(errno.EIO, "JPEG encoding failed")
    return jpeg


def _small(image: np.ndarray) -> np.ndarray:
    """The image downscaled to at most RING_WIDTH wide."""
    h, w = image.shape[:2]
    if w <= RING_WIDTH:
        return image
    return cv2.resize(image, (RING_WIDTH, max(1, round(h * RING_WIDTH / w))), interpolation=cv2.INTER_AREA)


class Media:
    """Saves snapshots and clips of zone and line events from a background thread (one for all sources)."""

    def __init__(self, settings: MediaConfig) -> None:
        self.settings = settings
        self.root = check_dir(settings.dir)
        self.clips = settings.clip_seconds > 0
        self.retention = Retention(self.root, settings.max_files, settings.max_mb * 1e6,
                                   settings.max_age_hours * 3600 if settings.max_age_hours else None)
        self.counts = {"written": 0, "failed": 0, "dropped": 0, "frames_dropped": 0}
        self._items: deque = deque()
        self._queued = {"frame": 0, "event": 0}
        self._cond = threading.Condition()
        self._closing = False
        self._open: dict = {}  # frame loop side: source -> (clip path, end time) of the clip being recorded
        self._rings: dict = {}  # worker side: source -> deque of (timestamp, JPEG) for the pre-roll
        self._clips: dict = {}  # worker side: source -> _Clip
        self._last_log = 0.0
        self._thread = threading.Thread(target=self._run, name="edge-media", daemon=True)
        self._thread.start()

    def frame(self, frame: Frame) -> None:
        """Offer an inferred frame for the pre-roll ring and the clips being written (frame loop; never blocks)."""
        if self.clips:
            self._put(("frame", frame), FRAME_QUEUE, "frames_dropped")

    def on_events(self, frame: Frame, detections: Detections, events: list, zones: Sequence = (),
                  lines: Sequence = ()) -> None:
        """Queue the files for this frame's zone and line events and add their paths to the events (frame loop)."""
        if not events or not (self.settings.snapshots or self.clips):
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(frame.timestamp))
        base = f"{re.sub(r'[^A-Za-z0-9_-]', '_', frame.source_id)}/{stamp}-{frame.seq}"
        paths = {}
        if self.settings.snapshots:
            paths = {"snapshot": f"{base}.jpg", "snapshot_annotated": f"{base}-annotated.jpg"}
        new_clip = None
        if self.clips:
            current = self._open.get(frame.source_id)
            if current is not None and frame.timestamp <= current[1]:
                paths["clip"] = current[0]
            else:
                new_clip = (f"{base}.avi", frame.timestamp + self.settings.clip_seconds)
                paths["clip"] = new_clip[0]
        if not paths.keys() - {"clip"} and new_clip is None:
            for event in events:
                event.update(paths)
            return
        if not self._put(("event", frame, detections, paths, new_clip, zones, lines), self.settings.queue, "dropped"):
            return
        if new_clip is not None:
            self._open[frame.source_id] = new_clip
        for event in events:
            event.update(paths)

    def stats(self) -> dict:
        """{"written", "failed", "dropped" (events without files: queue full), "frames_dropped"} so far."""
        return dict(self.counts)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, finish the clips being recorded (shorter) and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _put(self, item: tuple, limit: int, counter: str) -> bool:
        with self._cond:
            if self._closing or self._queued[item[0]] >= limit:
                self.counts[counter] += 1
                return False
            self._items.append(item)
            self._queued[item[0]] += 1
            self._cond.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._items and not self._closing:
                    if not self._cond.wait(60.0):
                        self._guard(self.retention.prune)  # age limit when nothing happens
                if not self._items:
                    if self._closing:
                        break
                    continue
                item = self._items.popleft()
                self._queued[item[0]] -= 1
            self._guard(self._on_frame if item[0] == "frame" else self._on_event, *item[1:])
        for sid in list(self._clips):
            self._guard(self._finish, sid)

    def _guard(self, work, *args) -> None:
        """Run one piece of work; a failure (a full disk...) is counted and logged at most every 30 s."""
        try:
            work(*args)
        except Exception as e:
            self.counts["failed"] += 1
            if time.monotonic() - self._last_log > LOG_EVERY_S:
                self._last_log = time.monotonic()
                log.warning("media: cannot save an event file (%s); %d failure(s) so far, inference goes on",
                            e, self.counts["failed"])

    def _on_frame(self, frame: Frame) -> None:
        """Encode the frame once (small JPEG) for the pre-roll ring and the clip being written."""
        small = _small(frame.image)
        entry = (frame.timestamp, _encode(small), small.shape[1::-1])
        ring = self._rings.setdefault(frame.source_id, deque())
        ring.append(entry)
        while ring[0][0] < frame.timestamp - self.settings.pre_roll_seconds:
            ring.popleft()
        clip = self._clips.get(frame.source_id)
        if clip is None:
            return
        if frame.timestamp > clip.end:
            self._finish(frame.source_id)
        else:
            try:
                clip.write(*entry[1:])
            except Exception:
                self._clips.pop(frame.source_id).abandon()
                raise

    def _on_event(self, frame: Frame, detections: Detections, paths: dict, new_clip: Optional[tuple],
                  zones: Sequence, lines: Sequence) -> None:
        if "snapshot" in paths:
            self._save_jpeg(paths["snapshot"], frame.image)
            self._save_jpeg(paths["snapshot_annotated"], draw_detections(frame.image, detections, zones, lines))
        if new_clip is not None:
            self._start_clip(frame, *new_clip)

    def _save_jpeg(self, relative: str, image: np.ndarray) -> None:
        jpeg = _encode(image)
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, jpeg.tobytes())
        self.counts["written"] += 1
        self.retention.add(path)

    def _start_clip(self, frame: Frame, relative: str, end: float) -> None:
        sid = frame.source_id
        if sid in self._clips:
            self._finish(sid)
        ring = [e for e in self._rings.get(sid, ()) if e[0] <= frame.timestamp]
        if not ring:  # the event's frame was dropped before the ring saw it
            small = _small(frame.image)
            ring = [(frame.timestamp, _encode(small), small.shape[1::-1])]
        span = ring[-1][0] - ring[0][0]
        fps = min(max((len(ring) - 1) / span, 1.0), 60.0) if span > 0 else 10.0
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        clip = _Clip(path, end, fps, ring[0][2])
        try:
            for _, jpeg, size in ring:
                clip.write(jpeg, size)
        except Exception:
            clip.abandon()
            raise
        self._clips[sid] = clip

    def _finish(self, sid: str) -> None:
        clip = self._clips.pop(sid)
        clip.finish()
        self.counts["written"] += 1
        self.retention.add(clip.path)
