"""Overlapped frame loop: preprocess frame N+1 and finish frame N-1 while the backend runs frame N.

Three stages, each on one thread, joined by one-slot hand-offs so frames stay in order (a unit of work is one
frame, or with batching the frames of one batched inference):

    pick + prepare (thread "edge-prepare") -> infer (thread "edge-infer") -> finish + sinks (the caller's loop)

The prepare stage waits for the inference stage to take the previous tensor before it picks a frame, so two
tensor slots suffice (the one the backend reads and the one being filled); with live sources (latest-frame
policy) it waits further, until the backend is about to be free, so the frame it picks is as fresh as in the
sequential loop. Model swaps and max_fps pacing are applied where frames are picked; max_frames counts frames
in flight.

It only pays when the backend releases the GIL while it runs (ONNX Runtime, LiteRT and TensorRT do) and there is
a core left for the other stages: `overlap="auto"` turns it on with 3+ cores; EDGE_OVERLAP=on|off overrides
"auto" (how the test suite runs the stream tests both ways).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..settings import OVERLAP_MODES

log = logging.getLogger("edge")

STAGE_METHODS = ("prepare", "infer", "finish")
_END = object()  # end of the stream of work


def use_overlap(mode: str, detector: Any) -> bool:
    """Whether `mode` (auto|on|off) runs this detector overlapped; a detector without stages never is."""
    if mode not in OVERLAP_MODES:
        raise ValueError(f"overlap must be one of {', '.join(OVERLAP_MODES)}, got {mode!r}")
    staged = all(callable(getattr(detector, m, None)) for m in STAGE_METHODS)
    if mode == "auto":
        mode = os.environ.get("EDGE_OVERLAP", "auto")
    if mode == "on" and not staged:
        log.info("overlap: the detector has no prepare/infer/finish stages; frames run one after another")
    if mode != "auto":
        return mode == "on" and staged
    backend = getattr(detector, "backend", None)
    return staged and (os.cpu_count() or 1) >= 3 and bool(getattr(backend, "releases_gil", False))


@dataclass
class Work:
    """The frames of one inference (one frame, or a batch from several sources) on their way through the stages."""

    frames: list
    detector: Any
    model: dict
    slot: int
    batched: bool = False  # the detector's batch stages (prepare_batch/finish_batch), else its per-frame ones
    tensor: Any = None
    transforms: list = field(default_factory=list)
    outputs: Optional[list] = None
    error: Optional[str] = None
    timings: dict = field(default_factory=dict)

    def describe(self) -> str:
        """`frame 12`, or `frames a:12, b:7` for a batch."""
        if len(self.frames) == 1:
            return f"frame {self.frames[0].seq}"
        return "frames " + ", ".join(f"{f.source_id}:{f.seq}" for f in self.frames)


class Handoff:
    """A one-item hand-off between two stage threads; `abort` ends every wait."""

    def __init__(self, abort: threading.Event):
        self._item: Any = None
        self._full = False
        self._cond = threading.Condition()
        self.abort = abort

    def put(self, item: Any) -> bool:
        """Wait for the slot to be free and fill it; False when aborted."""
        with self._cond:
            while self._full and not self.abort.is_set():
                self._cond.wait(0.1)
            if self.abort.is_set():
                return False
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: Optional[float] = None) -> Any:
        """The item (None after `timeout` seconds without one, or when aborted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full and not self.abort.is_set():
                wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if wait <= 0:
                    return None
                self._cond.wait(wait)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def wait_empty(self) -> bool:
        """Wait until the consumer took the item; False when aborted."""
        with self._cond:
            while self._full and not self.abort.is_set():
                self._cond.wait(0.1)
            return not self.abort.is_set()


class Overlap:
    """Runs the prepare and infer stages on their own threads; `next(idle)` hands inferred Work to the caller.

    pick(idle, room) returns a list of frames to infer together (at most `room` of them, None: no limit), None
    (no frame within idle seconds) or anything else for the end; take(frames) returns (detector, model identity,
    batched) for them; room(in_flight) says how many more frames may start (max_frames minus frames done and in
    flight; None: no limit).
    """

    def __init__(self, pick: Callable, take: Callable, room: Callable[[int], Optional[int]],
                 stopping: threading.Event, min_period: float = 0.0, just_in_time: bool = False):
        self.pick, self.take, self.room, self.stopping, self.min_period = pick, take, room, stopping, min_period
        self.just_in_time = just_in_time
        self._seconds = {"preprocess": 0.0, "inference": 0.0}  # running means of the two stages
        self._inferring_since: Optional[float] = None  # perf_counter() when the backend started the current frame
        self.abort = threading.Event()
        self._to_infer, self._to_finish = Handoff(self.abort), Handoff(self.abort)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.threads = [threading.Thread(target=self._guard, args=(self._prepare_loop,), name="edge-prepare",
                                         daemon=True),
                        threading.Thread(target=self._guard, args=(self._infer_loop,), name="edge-infer",
                                         daemon=True)]

    def start(self) -> None:
        """Start both stage threads."""
        for thread in self.threads:
            thread.start()

    def next(self, idle: Optional[float] = None) -> Any:
        """The next inferred Work in order; None after `idle` seconds without one while no frame is in a stage
        (waiting for cameras, as the sequential loop's idle wake-ups; a stuck stage gives none, so the watchdog
        sees it); _END when everything ended."""
        while True:
            item = self._to_finish.get(idle if idle is not None else 0.5)
            if item is None:
                if self.abort.is_set():
                    return _END
                if idle is not None and self.in_flight == 0:
                    return None
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def done(self, work: Work) -> None:
        """The caller finished (or dropped) this Work's frames."""
        with self._lock:
            self.in_flight -= len(work.frames)

    def close(self, timeout: float = 5.0) -> None:
        """End the stage threads (frames still in flight are dropped)."""
        self.abort.set()
        for thread in self.threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout)

    def _guard(self, loop: Callable[[], None]) -> None:
        """Run a stage loop; an unexpected error travels to the caller, which raises it."""
        try:
            loop()
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            self._to_finish.put(e)

    def _measured(self, stage: str, t0: float) -> float:
        """Milliseconds since t0; also updates the stage's running mean."""
        seconds, mean = time.perf_counter() - t0, self._seconds[stage]
        self._seconds[stage] = seconds if mean == 0.0 else mean + 0.2 * (seconds - mean)
        return seconds * 1e3

    def _until_backend_free(self) -> float:
        """Live sources: seconds to wait (the backend has just taken the previous frame) so that the next frame
        is picked only in time to be prepared when the backend is free; a frame picked at once would age by one
        inference in the hand-off, doubling capture-to-result."""
        since = self._inferring_since
        if not self.just_in_time or since is None:
            return 0.0
        free_at = since + self._seconds["inference"]
        return free_at - 1.5 * self._seconds["preprocess"] - 0.002 - time.perf_counter()

    def _prepare_loop(self) -> None:
        """Pick the freshest frames once the backend is free for the next run, preprocess them into the free slot."""
        next_at, count = 0.0, 0
        while self._to_infer.wait_empty():
            with self._lock:
                room, empty = self.room(self.in_flight), self.in_flight == 0
            if room is not None and room <= 0:  # max_frames reached unless a frame in flight fails
                if empty:
                    break
                self.stopping.wait(0.005)
                continue
            pause = max(next_at - time.monotonic(), self._until_backend_free())
            if pause > 0 and self.stopping.wait(pause):
                break
            frames = self.pick(0.5, room)
            if frames is None:
                continue
            if not isinstance(frames, list):
                break
            next_at = time.monotonic() + self.min_period
            with self._lock:
                self.in_flight += len(frames)
            detector, model, batched = self.take(frames)
            work = Work(frames, detector, model, slot=count % 2, batched=batched)
            count += 1
            t0 = time.perf_counter()
            try:
                if batched:
                    work.tensor, work.transforms = detector.prepare_batch([f.image for f in frames], work.slot)
                else:
                    work.tensor, transform = detector.prepare(frames[0].image, work.slot)
                    work.transforms = [transform]
            except Exception as e:
                work.error = f"preprocess failed on {work.describe()}: {e}"
            work.timings["preprocess"] = self._measured("preprocess", t0)
            if not self._to_infer.put(work):
                return
        self._to_infer.put(_END)

    def _infer_loop(self) -> None:
        """Run the backend on each prepared tensor; keep a copy of the outputs (the next run reuses them)."""
        while True:
            work = self._to_infer.get()
            if work is None:
                if self.abort.is_set():
                    return
                continue
            if work is _END:
                break
            if work.error is None:
                t0 = self._inferring_since = time.perf_counter()
                try:
                    work.outputs = [np.array(o, copy=True) for o in work.detector.infer(work.tensor)]
                except Exception as e:
                    work.error = f"inference failed on {work.describe()}: {e}"
                self._inferring_since = None
                work.timings["inference"] = self._measured("inference", t0)
            work.tensor = None  # the slot is free again
            if not self._to_finish.put(work):
                return
        self.abort.set()  # every frame was handed on: next() ends once the last one is taken
