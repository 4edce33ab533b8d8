"""Pipeline: capture threads -> one detector (round-robin over sources, or batches across them) -> events -> sinks.

With several sources and a model that takes a batch (`batch`, edge/stream/batching.py), the frames that are ready
on different sources at the same moment go through one inference (one frame per source, sources in turn, no
waiting for the others); each frame still gets its own event, in order per source.

Scheduling: a live source (camera, stream) keeps only its latest frame, a finite one (video file, image folder)
queues every frame, and `all_frames` makes live sources queue every frame too.

Start-up: live sources are opened by their capture threads, so one that is down at start is retried (capped
backoff) while the others run; `require_sources=True` opens every source before anything starts and raises on
the first that fails. Non-live sources (files, folders) are always opened at start: they cannot come back.

The frame loop wakes after each inferred frame and, with `events(idle=S)`, at least every S seconds when no
frame comes (it yields None then), so a caller such as the systemd watchdog sees the loop alive through a
camera outage; only a stuck detector or sink stops the loop.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .batching import use_batch
from .capture import CaptureWorker, FrameQueue
from .events import detections_event, model_identity
from .overlap import Overlap, Work, use_overlap
from .sinks.base import Sink
from .sources import Frame, Source

log = logging.getLogger("edge")

STAGES = ("preprocess", "inference", "postprocess", "capture_to_result")
_END = object()  # _next_frames: stopping, or every source has ended


class Rolling:
    """p50/p99 over the last `size` values."""

    def __init__(self, size: int = 512):
        self.values: deque = deque(maxlen=size)

    def add(self, value: float) -> None:
        """Record one value."""
        self.values.append(value)

    def summary(self) -> dict:
        """{"p50", "p99"} in the values' unit (None before the first value)."""
        if not self.values:
            return {"p50": None, "p99": None}
        p50, p99 = np.percentile(np.fromiter(self.values, float), (50, 99))
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


class SinkHandle:
    """One sink behind a guard: a raising publish is logged and counted, never propagated."""

    def __init__(self, sink: Sink, name: str):
        self.sink, self.name = sink, name
        self.published = self.failed = 0
        self._last_log = 0.0

    def publish(self, event: dict, frame: Optional[Frame], detections) -> None:
        """Hand the event to the sink (zone and line events come without a frame)."""
        try:
            self.sink.publish(event, None if frame is None else frame.image, detections)
            self.published += 1
        except Exception as e:
            self.failed += 1
            if time.monotonic() - self._last_log > 10.0:
                self._last_log = time.monotonic()
                log.warning("sink %s: publish failed (%s); %d failure(s) so far, other sinks go on", self.name, e,
                            self.failed)

    def stats(self) -> dict:
        """The sink's own counters when it keeps them, plus publish failures seen here."""
        own = {"published": self.published, "failed": 0, "dropped": 0, **self.sink.stats()}
        own["failed"] += self.failed
        return own


class Pipeline:
    """Runs a detector over one or more sources; iterate it for events (they also go to every sink)."""

    def __init__(self, detector, sources: Sequence[Source], sinks: Sequence[Sink] = (), *, all_frames: bool = False,
                 every: int = 1, max_fps: Optional[float] = None, drop: Optional[str] = None, queue_size: int = 8,
                 max_frames: Optional[int] = None, require_sources: bool = False, backoff: tuple = (0.5, 10.0),
                 window: int = 512, analytics: Sequence = (), media=None, overlap: str = "auto",
                 batch: Union[str, int] = "auto"):
        """analytics: a SourceAnalytics (edge/stream/analytics.py) or None per source, in the order of sources;
        media: an edge.stream.media.Media saving snapshots and clips of their events; overlap: auto|on|off, run
        preprocess and postprocess beside inference (edge/stream/overlap.py); batch: auto|on|off or the most
        frames per batch, batch frames across sources (edge/stream/batching.py)."""
        if not sources:
            raise ValueError("a pipeline needs at least one source")
        self.detector, self.sources = detector, list(sources)
        _unique_ids(self.sources)
        self.analytics = {s.id: a for s, a in zip(self.sources, analytics) if a is not None}
        self.media = media
        self.sinks = [SinkHandle(s, _unique(getattr(s, "name", "sink"), i, sinks)) for i, s in enumerate(sinks)]
        self.every, self.max_frames, self.require_sources = max(1, int(every)), max_frames, require_sources
        self.min_period = 1.0 / max_fps if max_fps else 0.0
        self._ready = threading.Condition()
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self.workers = [CaptureWorker(s, self._queue(s, all_frames, drop, queue_size), self._stopping, self.every,
                                      backoff) for s in self.sources]
        self._latest = any(w.queue.policy == "latest" for w in self.workers)
        self._by_id = {w.source.id: w for w in self.workers}
        self.model = model_identity(detector)
        self.overlapped = use_overlap(overlap, detector)
        self.batch_mode = batch
        self.batch_size = use_batch(batch, detector, len(self.sources))  # frames per inference, 1: one by one
        self.latency = {stage: Rolling(window) for stage in STAGES}
        self._done_times: deque = deque(maxlen=64)
        self.started_at: Optional[float] = None
        self.inferred = 0
        self._picks = [0, 0]  # inferences started, frames in them: how full batches are
        self._turn = 0
        self._running = False
        self._loop_thread: Optional[int] = None
        self._opened: list = []
        self._swaps: deque = deque(maxlen=1)  # (detector, identity, counted as a reload) to run from the next frame on
        self.last_frame: Optional[Frame] = None
        self.reloads: dict = {"succeeded": 0, "failed": 0, "last_error": None}

    def _queue(self, source: Source, all_frames: bool, drop: Optional[str], queue_size: int) -> FrameQueue:
        """A finite source (file, folder) or all_frames: every frame (block, queue_size deep); a live source: the
        latest frame only; `drop` overrides the policy for every source."""
        every_frame = all_frames or not source.live
        return FrameQueue(queue_size if every_frame else 1, drop or ("block" if every_frame else "latest"),
                          self._ready)

    def start(self) -> None:
        """Open the non-live sources (every source with require_sources) and start every sink: errors here are
        start-up errors; then start capturing (the capture threads open the live sources, retrying)."""
        try:
            for worker in self.workers:
                if self.require_sources or not worker.source.live:
                    worker.source.open()
                    self._opened.append(worker.source)
                    worker.opened()
            for handle in self.sinks:
                handle.sink.start(self.status)
        except BaseException:
            self._shutdown(1.0)
            raise
        self.started_at = time.time()
        for worker in self.workers:
            worker.start()

    def __iter__(self) -> Iterator[dict]:
        """Start (if needed) and yield one event per inferred frame until the sources end or stop() is called."""
        return (event for event in self.events() if event is not None)  # no idle ticks without events(idle=...)

    def events(self, idle: Optional[float] = None) -> Iterator[Optional[dict]]:
        """Like iterating the pipeline; with `idle`, also yield None after each `idle` seconds without a frame."""
        if self.started_at is None:
            self.start()
        self._running, self._loop_thread = True, threading.get_ident()
        try:
            yield from (self._overlapped(idle) if self.overlapped else self._one_by_one(idle))
        finally:
            self._running = False
            self._shutdown()

    def _one_by_one(self, idle: Optional[float]) -> Iterator[Optional[dict]]:
        """The sequential frame loop: pick (a frame, or a batch across sources), detect, emit."""
        next_at = 0.0
        while self.max_frames is None or self.inferred < self.max_frames:
            pause = next_at - time.monotonic()
            if pause > 0:
                if self._stopping.wait(pause if idle is None else min(pause, idle)):
                    break
                if idle is not None and time.monotonic() < next_at:
                    yield None
                    continue
            frames = self._next_frames(idle, self._room(0))
            if frames is _END:
                break
            if frames is None:
                yield None
                continue
            next_at = time.monotonic() + self.min_period
            yield from self._process(frames)

    def _overlapped(self, idle: Optional[float]) -> Iterator[Optional[dict]]:
        """The overlapped frame loop: frames are picked and prepared, and inferred, on two threads; this one
        finishes them in order, so sinks and analytics keep running on the caller's thread."""
        overlap = Overlap(self._next_frames, self._take, self._room, self._stopping, self.min_period,
                          just_in_time=self._latest)
        overlap.start()
        try:
            while self.max_frames is None or self.inferred < self.max_frames:
                work = overlap.next(idle)
                if work is None:
                    yield None
                    continue
                if not isinstance(work, Work):
                    break
                events = self._finish(work)
                overlap.done(work)
                yield from events
        finally:
            overlap.close()

    def run(self) -> int:
        """Run to the end (or stop()); returns the number of inferred frames."""
        for _ in self:
            pass
        return self.inferred

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing, finish the frame in flight, drain the sinks; from another thread, wait up to timeout."""
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        if not self._running:
            self._shutdown(timeout)
        elif threading.get_ident() != self._loop_thread:
            self._closed.wait(timeout + 1.0)

    def swap_detector(self, detector, reload: bool = True) -> None:
        """Run `detector` from the next frame on (any thread; the frame in flight finishes on the current one);
        `reload`: count it in model_reloads (False: the same model with other engine settings)."""
        self._swaps.append((detector, model_identity(detector), reload))

    def reload_failed(self, error: str) -> None:
        """Count a model reload that was refused (the running detector stays)."""
        self.reloads["failed"] += 1
        self.reloads["last_error"] = error

    def _next_frames(self, idle: Optional[float], room: Optional[int] = None):
        """The next queued frames to detect together: one from each source that has one ready, sources taken in
        turn, at most the batch size (and `room`) of them, at least one; None after `idle` seconds without any;
        _END when stopping or every source has ended. A pending model swap takes effect here."""
        if self._swaps:
            self.detector, self.model, reload = self._swaps.popleft()
            self.reloads["succeeded"] += reload
            self.batch_size = use_batch(self.batch_mode, self.detector, len(self.sources))
        limit = self.batch_size if room is None else max(1, min(self.batch_size, room))
        deadline = None if idle is None else time.monotonic() + idle
        with self._ready:
            while not self._stopping.is_set():
                n, start, frames = len(self.workers), self._turn, []
                for k in range(n):
                    i = (start + k) % n
                    frame = self.workers[i].queue.get_nowait()
                    if frame is not None:
                        frames.append(frame)
                        self._turn = i + 1
                        if len(frames) == limit:
                            break
                if frames:
                    return frames
                if all(w.done for w in self.workers):
                    return _END
                wait = 0.5 if deadline is None else deadline - time.monotonic()
                if wait <= 0:
                    return None
                self._ready.wait(min(0.5, wait))
        return _END

    def _take(self, frames: list) -> tuple:
        """(detector, model identity, batched) for frames picked to be detected together."""
        self.last_frame = frames[-1]
        self._picks[0] += 1
        self._picks[1] += len(frames)
        return self.detector, self.model, self.batch_size > 1

    def _room(self, in_flight: int) -> Optional[int]:
        """How many more frames may start with `in_flight` between picking and their event (None: no limit)."""
        return None if self.max_frames is None else self.max_frames - self.inferred - in_flight

    def _process(self, frames: list) -> list:
        """Detect, measure, build the events and fan them out; a detector fault is logged and the frames skipped."""
        detector, model, batched = self._take(frames)
        try:
            results = detector.batch([f.image for f in frames]) if batched else [detector(frames[0].image)]
        except Exception as e:
            for frame in frames:
                self._failed(frame, f"inference failed on frame {frame.seq}: {e}")
            return []
        timings = detector.timing_ms  # of the whole batch: what each of its frames waited for
        return [self._emit(f, d, dict(timings), model) for f, d in zip(frames, results)]

    def _finish(self, work: Work) -> list:
        """Decode and NMS the inferred frames of the overlapped loop, then emit them (or log their fault)."""
        if work.error is not None:
            for frame in work.frames:
                self._failed(frame, work.error)
            return []
        t0 = time.perf_counter()
        try:
            if work.batched:
                results = work.detector.finish_batch(work.outputs, work.transforms)
            else:
                results = [work.detector.finish(work.outputs, work.transforms[0])]
        except Exception as e:
            for frame in work.frames:
                self._failed(frame, f"postprocess failed on {work.describe()}: {e}")
            return []
        work.timings["postprocess"] = (time.perf_counter() - t0) * 1e3
        return [self._emit(f, d, dict(work.timings), work.model) for f, d in zip(work.frames, results)]

    def _failed(self, frame: Frame, error: str) -> None:
        """Record and log a detector fault; the frame is skipped."""
        worker = self._by_id[frame.source_id]
        worker.stats.error = error
        log.error("%s: %s", frame.source_id, error)

    def _emit(self, frame: Frame, detections, timings: dict, model: dict) -> dict:
        """Measure, run the source's analytics, build the event and fan it out to the sinks."""
        worker = self._by_id[frame.source_id]
        done = time.time()
        timings["capture_to_result"] = (done - frame.timestamp) * 1e3
        for stage in STAGES:
            self.latency[stage].add(timings[stage])
        self._done_times.append(done)
        self.inferred += 1
        worker.stats.inferred += 1
        area_events: list = []
        tracking = self.analytics.get(frame.source_id)
        if tracking is not None:
            detections, area_events = tracking(frame, detections)
        if self.media is not None:
            self.media.frame(frame)
            if area_events and tracking is not None:
                self.media.on_events(frame, detections, area_events, tracking.zones, tracking.lines)
        event = detections_event(frame, detections, model, timings, done, tracking and tracking.counts)
        for handle in self.sinks:
            handle.publish(event, frame, detections)
            for area_event in area_events:
                handle.publish(area_event, None, detections)
        return event

    def loop(self) -> dict:
        """How frames go through the detector: overlapped stages or one by one, the most frames per inference,
        inferences started and how many frames one held on average so far (None before the first)."""
        runs, frames = self._picks
        return {"overlap": self.overlapped, "batch": self.batch_size, "inferences": runs,
                "frames_per_inference": round(frames / runs, 2) if runs else None}

    def status(self) -> dict:
        """Snapshot of model, counters, rates and latencies (what sinks report as health and metrics)."""
        times = list(self._done_times)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return {
            "model": {"path": self.detector.model_path, "family": self.model["family"],
                      "backend": self.model["backend"]},
            "started_at": self.started_at,
            "inferred": self.inferred,
            "last_inference_at": times[-1] if times else None,
            "fps": round(fps, 2),
            "loop": self.loop(),
            "latency_ms": {stage: rolling.summary() for stage, rolling in self.latency.items()},
            "sources": {w.source.id: w.stats.snapshot() for w in self.workers},
            "sinks": {h.name: h.stats() for h in self.sinks},
            "model_reloads": dict(self.reloads),
            "analytics": {sid: a.status() for sid, a in self.analytics.items()},
            **({"media": self.media.stats()} if self.media is not None else {}),
        }

    def _shutdown(self, timeout: float = 5.0) -> None:
        """Stop capture threads, close sources, drain and close sinks (once)."""
        if self._closed.is_set():
            return
        self._stopping.set()
        with self._ready:
            self._ready.notify_all()
        for worker in self.workers:
            if worker.is_alive():
                worker.join(timeout)
        opened = self.sources if self.started_at is not None else self._opened  # capture threads opened the rest
        closers = [s.close for s in opened] + [lambda h=h: h.sink.close(timeout) for h in self.sinks]
        for closer in closers + ([lambda: self.media.close(timeout)] if self.media is not None else []):
            try:
                closer()
            except Exception as e:
                log.warning("while stopping: %s", e)
        self._closed.set()


def _unique_ids(sources: Sequence[Source]) -> None:
    """Suffix repeated source ids (-2, -3, ...) so events and status tell them apart."""
    seen: dict = {}
    for source in sources:
        seen[source.id] = seen.get(source.id, 0) + 1
        if seen[source.id] > 1:
            source.id = f"{source.id}-{seen[source.id]}"


def _unique(name: str, index: int, sinks: Sequence[Sink]) -> str:
    """A sink's name, suffixed when an earlier sink has the same one."""
    earlier = [getattr(s, "name", "sink") for s in sinks[:index]]
    return name if name not in earlier else f"{name}-{earlier.count(name) + 1}"
