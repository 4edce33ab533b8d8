"""Capture side of the pipeline: one thread per source feeding a bounded frame queue, reconnecting live sources.

A live source that cannot be opened at start-up is retried by its own thread with the same capped backoff as a
lost source, so the other sources run meanwhile; its state reads `connecting` (first attempt), `up`, `down` (since
`down_since`, retrying) or `ended` (end of file, or a fault a non-live source cannot come back from).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

from ..settings import DROP_POLICIES
from .sources import Frame, Source

log = logging.getLogger("edge")


@dataclass
class SourceStats:
    """Per-source counters as the status snapshot reports them (one writer thread per field)."""

    uri: str
    state: str = "connecting"
    down_since: Optional[float] = None  # epoch seconds of the failure that started the current outage
    captured: int = 0
    inferred: int = 0
    dropped: int = 0
    reconnects: int = 0  # open attempts after a failure, at start-up as well as after a loss
    skipped: int = 0  # inputs the source could not use (Source.skipped)
    last_frame_at: Optional[float] = None
    error: Optional[str] = None

    def snapshot(self) -> dict:
        """JSON-ready copy; `connected` is true while the state is up."""
        return {**asdict(self), "connected": self.state == "up"}


def describe_state(source: dict) -> str:
    """`up`, `connecting`, `ended` or `down since 2025-01-31T12:00:00Z` for a source's status snapshot."""
    state = source.get("state") or ("up" if source.get("connected") else "down")
    since = source.get("down_since")
    if state == "down" and since is not None:
        return "down since " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    return state


class FrameQueue:
    """Bounded frames of one source; when full, `latest` drops the oldest queued frame, `oldest` drops the
    new frame, `block` makes capture wait. All queues share the pipeline's condition `ready`."""

    def __init__(self, capacity: int, policy: str, ready: threading.Condition):
        if policy not in DROP_POLICIES:
            raise ValueError(f"drop policy must be one of {', '.join(DROP_POLICIES)}, got {policy!r}")
        self.capacity, self.policy, self.ready = max(1, int(capacity)), policy, ready
        self._frames: deque = deque()

    def put(self, frame: Frame, stopping: threading.Event) -> int:
        """Queue a frame; returns how many frames were dropped (0 or 1)."""
        with self.ready:
            dropped = 0
            if len(self._frames) >= self.capacity:
                if self.policy == "oldest":
                    return 1
                if self.policy == "latest":
                    self._frames.popleft()
                    dropped = 1
                while len(self._frames) >= self.capacity and not stopping.is_set():
                    self.ready.wait(0.1)
            self._frames.append(frame)
            self.ready.notify_all()
            return dropped

    def get_nowait(self) -> Optional[Frame]:
        """The next frame or None; wakes a capture thread blocked on a full queue."""
        with self.ready:
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self.ready.notify_all()
            return frame

    def __len__(self) -> int:
        return len(self._frames)


class CaptureWorker(threading.Thread):
    """Opens one source (unless start-up already did) and reads it into its queue until the end of stream or
    stop; never raises."""

    def __init__(self, source: Source, queue: FrameQueue, stopping: threading.Event, every: int = 1,
                 backoff: Tuple[float, float] = (0.5, 10.0)):
        super().__init__(name=f"capture-{source.id}", daemon=True)
        self.source, self.queue, self.stopping = source, queue, stopping
        self.every, self.backoff = max(1, int(every)), backoff
        self.stats = SourceStats(source.uri)
        self.done = False

    def opened(self) -> None:
        """Record that the source was opened before the thread started (strict start-up, non-live sources)."""
        self.stats.state = "up"

    def run(self) -> None:
        """Capture loop."""
        try:
            if self.stats.state == "connecting" and not self._open():
                return
            while not self.stopping.is_set():
                try:
                    frame = self.source.read()
                except Exception as e:  # a lost device or a decoder fault: reconnect live sources, end files
                    if not self.source.live:
                        self._fail(e)
                        break
                    self._reconnect(e)
                    continue
                self.stats.skipped = self.source.skipped
                if frame is None:
                    self.stats.state = "ended"
                    break
                self._offer(frame)
        finally:
            self.done = True
            with self.queue.ready:
                self.queue.ready.notify_all()

    def _open(self) -> bool:
        """The first open: a live source that fails is retried until it opens; False when the source ends."""
        try:
            self.source.open()
        except Exception as e:
            if not self.source.live:
                self._fail(e)
                return False
            self._reconnect(e, at_start=True)
            return not self.stopping.is_set()
        self.stats.state = "up"
        return True

    def _offer(self, frame: Frame) -> None:
        """Count a captured frame and queue every Nth."""
        stats = self.stats
        stats.captured += 1
        stats.last_frame_at = frame.timestamp
        if (stats.captured - 1) % self.every == 0:
            stats.dropped += self.queue.put(frame, self.stopping)

    def _fail(self, error: Exception) -> None:
        """Record a fault that ends a non-live source."""
        self.stats.error = _describe(error)
        self.stats.state = "ended"
        log.error("%s: %s; source ended", self.source.id, self.stats.error)

    def _reconnect(self, error: Exception, at_start: bool = False) -> None:
        """Reopen the source with capped exponential backoff until it works or the pipeline stops."""
        stats = self.stats
        stats.state, stats.down_since, stats.error = "down", time.time(), _describe(error)
        delay, cap = self.backoff
        log.warning("%s: %s; %s in %.1f s", self.source.id, stats.error,
                    "retrying (the other sources run)" if at_start else "reconnecting", delay)
        attempts = 0
        while not self.stopping.wait(delay):
            attempts += 1
            stats.reconnects += 1
            try:
                self.source.close()
                self.source.open()
            except Exception as e:
                stats.error = _describe(e)
                delay = min(delay * 2, cap)
                log.warning("%s: reconnect attempt %d failed: %s; next try in %.1f s", self.source.id, attempts,
                            stats.error, delay)
                continue
            stats.state, stats.down_since, stats.error = "up", None, None
            log.info("%s: %s after %d attempt(s)", self.source.id, "opened" if at_start else "reconnected",
                     attempts)
            return


def _describe(error: Exception) -> str:
    """One line for a fault."""
    return str(error) or type(error).__name__
