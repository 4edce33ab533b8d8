"""QueuedSink: publish() only enqueues; one worker thread delivers (shared by JSON lines, MQTT and webhook)."""
from __future__ import annotations

import json
import logging
import threading
import time
from abc import abstractmethod
from collections import deque
from typing import Callable, Optional

import numpy as np

from ...detections import Detections
from .base import Sink

log = logging.getLogger("edge.stream.sinks")


def encode_event(event: dict) -> str:
    """The one JSON text every sink sends for an event (compact, key order kept)."""
    return json.dumps(event, separators=(",", ":"))


class SinkStats:
    """Thread-safe published/failed/dropped counters of one sink."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {"published": 0, "failed": 0, "dropped": 0}

    def add(self, key: str, n: int = 1) -> None:
        """Add n to one counter."""
        with self._lock:
            self._counts[key] += n

    def snapshot(self) -> dict:
        """A copy of the counters, for the pipeline's status()."""
        with self._lock:
            return dict(self._counts)


class Throttle:
    """At most one log line per `every` seconds for one kind of trouble; counts what happened in between."""

    def __init__(self, every: float = 30.0) -> None:
        self.every, self._next, self._pending = every, 0.0, 0

    def due(self, n: int = 1) -> int:
        """Count n more; the count to report when a line is due now, else 0."""
        self._pending += n
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next, count, self._pending = now + self.every, self._pending, 0
        return count


class QueuedSink(Sink):
    """A sink whose publish() appends to a bounded queue (dropping the oldest event when full) for a worker thread."""

    def __init__(self, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError(f"{self.name}: queue size must be at least 1, got {queue_size}")
        self.counters = SinkStats()
        self._queue: deque = deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._closing = False
        self._abort = threading.Event()  # set when close() gives up waiting: delivery stops retrying
        self._failing = 0  # consecutive failures
        self._failures_log, self._drops_log = Throttle(), Throttle()  # a line per 30 s, not one per event
        self._thread: Optional[threading.Thread] = None

    def stats(self) -> dict:
        """{"published", "failed", "dropped"} for the pipeline's status()."""
        return self.counters.snapshot()

    def start(self, status: Callable[[], dict]) -> None:
        """Start the delivery thread."""
        super().start(status)
        self._thread = threading.Thread(target=self._run, name=f"edge-sink-{self.name}", daemon=True)
        self._thread.start()

    def publish(self, event: dict, frame: Optional[np.ndarray], detections: Detections) -> None:
        """Enqueue the event; never blocks (the oldest pending event is dropped and counted when full)."""
        with self._cond:
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self.counters.add("dropped")
                dropped = self._drops_log.due()
                if dropped:
                    log.warning("%s: queue full (%d events), dropped the oldest: %d since the last report",
                                self.name, self._queue_size, dropped)
            self._queue.append(event)
            self._cond.notify()

    @abstractmethod
    def _deliver(self, event: dict) -> None:
        """Send one event (worker thread); count it published or dropped, raise to count it failed."""

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue or self._abort.is_set():
                    return
                event = self._queue.popleft()
            try:
                self._deliver(event)
            except Exception as exc:  # a failing sink is isolated: logged, counted, and the next event is tried
                self.counters.add("failed")
                self._failing += 1
                failed = self._failures_log.due()
                if failed:
                    log.warning("%s: cannot deliver events: %s (%d failed since the last report, %d in a row; "
                                "will keep trying)", self.name, exc, failed, self._failing)
            else:
                if self._failing:
                    log.warning("%s: delivering again after %d failed events", self.name, self._failing)
                    self._failing = 0

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued within timeout, then stop; events still pending count as dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._abort.set()
                self._thread.join(1.0)
        with self._cond:
            if self._queue:
                log.warning("%s: %d events still pending at close, dropped", self.name, len(self._queue))
                self.counters.add("dropped", len(self._queue))
                self._queue.clear()
