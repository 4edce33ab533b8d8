"""The overlapped frame loop (edge/stream/overlap.py): same events as the sequential loop, in order, with real
overlap of the stages, clean shutdown, hot swap and idle ticks."""
import threading
import time

import numpy as np
import pytest

import edge
from edge.demo import BUNDLE
from edge.stream.overlap import use_overlap
from edge.stream.pipeline import Pipeline
from edge.stream.sources import open_source

from .stream_helpers import ScriptedSource, SlowDetector, consume_then_stop, tiny_detector, tiny_model, write_video
from .test_pipeline import ListSink


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_detector(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def demo():
    return edge.Detector.load(BUNDLE, conf=0.05)  # low threshold: many detections, different on every frame


def stage_threads() -> list:
    return [t for t in threading.enumerate() if t.name in ("edge-prepare", "edge-infer")]


def comparable(event: dict) -> tuple:
    """What must not depend on the loop: source, frame, detections."""
    dets = [(d["class_id"], round(d["score"], 5), tuple(round(v, 3) for v in d["box"])) for d in event["detections"]]
    return event["source"], event["seq"], tuple(dets)


def test_same_events_with_overlap_on_and_off(demo, tmp_path):
    video = write_video(tmp_path / "clip.avi", 30, size=(320, 240))
    runs = {}
    for mode in ("off", "on"):
        pipeline = Pipeline(demo, [open_source(video, realtime=False)], all_frames=True, overlap=mode)
        assert pipeline.overlapped == (mode == "on")
        assert pipeline.status()["loop"] == {"overlap": mode == "on", "batch": 1, "inferences": 0, "frames_per_inference": None}
        runs[mode] = [comparable(e) for e in pipeline]
        assert pipeline.status()["loop"]["frames_per_inference"] == 1.0  # what /healthz says
    assert [r[1] for r in runs["on"]] == list(range(30))  # one event per frame, in order
    assert runs["on"] == runs["off"] and sum(len(r[2]) for r in runs["on"]) > 30
    assert len({r[2] for r in runs["on"]}) > 10  # detections differ frame to frame, so a mix-up would show


def test_order_per_source_with_two_sources(tiny):
    sources = [ScriptedSource("a", frames=40, source_id="a"), ScriptedSource("b", frames=40, source_id="b")]
    sink = ListSink()
    events = list(Pipeline(SlowDetector(tiny, 0.001), sources, [sink], all_frames=True, queue_size=4, overlap="on"))
    for source in ("a", "b"):
        assert [e["seq"] for e in events if e["source"] == source] == list(range(40))
    assert sink.events == events and sink.closed and stage_threads() == []


class Handshake:
    """A detector whose inference of frame N waits for the preprocessing of frame N+1: it only completes
    without timing out when the stages really run side by side."""

    def __init__(self, detector):
        self.detector, self.prepared, self.overlapped = detector, threading.Semaphore(0), []

    def __getattr__(self, name):
        return getattr(self.detector, name)

    def prepare(self, image, slot=0):
        self.prepared.release()
        return self.detector.prepare(image, slot)

    def infer(self, tensor):
        self.prepared.acquire()  # this frame's own preparation
        self.overlapped.append(self.prepared.acquire(timeout=2.0))  # the next frame's, while this one "runs"
        self.prepared.release()
        return self.detector.infer(tensor)


def test_the_next_frame_is_prepared_while_the_backend_runs(tiny):
    detector = Handshake(tiny)
    events = list(Pipeline(detector, [open_source("synthetic:64x48@0", frames=6)], all_frames=True, overlap="on"))
    assert len(events) == 6 and detector.overlapped[:5] == [True] * 5


def test_stop_mid_stream_finishes_frames_in_flight(tiny):
    sink = ListSink()
    pipeline = Pipeline(SlowDetector(tiny, 0.005), [open_source("synthetic:32x32@0")], [sink], all_frames=True,
                        overlap="on")
    seen, alive = consume_then_stop(pipeline, after=5, timeout=10)
    assert not alive and sink.closed and sink.events == seen
    assert [e["seq"] for e in seen] == list(range(len(seen))) and 5 <= len(seen) <= 8
    assert stage_threads() == []


def test_breaking_out_stops_the_stage_threads(tiny):
    stream = edge.stream(tiny, "synthetic:32x32@0", all_frames=True, overlap="on")
    assert [next(stream)["seq"] for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert stage_threads() == []


def test_swap_mid_stream_keeps_every_frame(tiny, tmp_path):
    other = edge.Detector.load(tiny_model(tmp_path / "other.onnx"))
    pipeline = Pipeline(tiny, [open_source("synthetic:32x32@0", frames=20)], all_frames=True, overlap="on")
    models, seqs = [], []
    for event in pipeline:
        models.append(event["model"]["id"])
        seqs.append(event["seq"])
        if len(models) == 4:
            pipeline.swap_detector(other)
    before = models.count("tiny.onnx")
    assert seqs == list(range(20)) and 4 <= before <= 7
    assert models == ["tiny.onnx"] * before + ["other.onnx"] * (20 - before)
    assert pipeline.status()["model_reloads"]["succeeded"] == 1


def test_idle_ticks_while_no_frame_comes(tiny):
    pipeline = Pipeline(tiny, [ScriptedSource("cam", frames=2, period=0.3, source_id="cam")], overlap="on")
    items = list(pipeline.events(idle=0.05))
    assert [e["seq"] for e in items if e is not None] == [0, 1] and items.count(None) >= 3


def test_a_failing_inference_skips_only_that_frame(tiny):
    class Flaky(SlowDetector):
        def infer(self, tensor):
            if len(self.seen) == 3:
                raise RuntimeError("engine hiccup")
            return self.detector.infer(tensor)

    pipeline = Pipeline(Flaky(tiny, 0.0), [open_source("synthetic:32x32@0", frames=6)], all_frames=True, overlap="on")
    seqs = [e["seq"] for e in pipeline]
    assert len(seqs) == 5 and seqs == sorted(seqs)
    assert "engine hiccup" in pipeline.status()["sources"]["synthetic"]["error"]


def test_max_frames_counts_frames_in_flight(tiny):
    pipeline = Pipeline(tiny, [open_source("synthetic:32x32@0")], all_frames=True, max_frames=7, overlap="on")
    assert len(list(pipeline)) == 7 and pipeline.status()["sources"]["synthetic"]["inferred"] == 7


def test_auto_needs_cores_and_a_backend_that_releases_the_gil(tiny, monkeypatch):
    monkeypatch.delenv("EDGE_OVERLAP", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert use_overlap("auto", tiny) and not use_overlap("off", tiny)
    monkeypatch.setattr(tiny.backend, "releases_gil", False)
    assert not use_overlap("auto", tiny) and use_overlap("on", tiny)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(tiny.backend, "releases_gil", True)
    assert not use_overlap("auto", tiny)
    monkeypatch.setenv("EDGE_OVERLAP", "on")
    assert use_overlap("auto", tiny)
    assert not use_overlap("on", lambda image: None)  # a plain callable has no stages to overlap
    with pytest.raises(ValueError):
        use_overlap("sometimes", tiny)


def test_prepare_slots_do_not_share_a_tensor(tiny):
    image = np.zeros((48, 64, 3), np.uint8)
    a, _ = tiny.prepare(image, 0)
    b, _ = tiny.prepare(image, 1)
    assert a is not b and not np.shares_memory(a, b) and tiny.prepare(image)[0] is a


def test_no_idle_ticks_while_a_stage_is_stuck(tiny):
    entered, release = threading.Event(), threading.Event()

    class Stuck(SlowDetector):
        def infer(self, tensor):
            entered.set()
            release.wait(5)  # a wedged accelerator: the watchdog must stop being fed
            return self.detector.infer(tensor)

    pipeline = Pipeline(Stuck(tiny, 0.0), [open_source("synthetic:32x32@0", frames=1)], all_frames=True,
                        overlap="on")
    items: list = []
    thread = threading.Thread(target=lambda: items.extend(pipeline.events(idle=0.02)))
    thread.start()
    assert entered.wait(5)
    before = len(items)
    thread.join(0.4)  # 20 idle periods with the inference stage stuck
    ticks_while_stuck = len(items) - before
    release.set()
    thread.join(5)
    assert ticks_while_stuck == 0 and [e["seq"] for e in items if e is not None] == [0]


def test_live_sources_pick_the_next_frame_just_before_the_backend_is_free(tiny):
    class Recording(SlowDetector):
        def infer(self, tensor):
            started.append(time.time())
            return super().infer(tensor)

    started: list = []
    pipeline = Pipeline(Recording(tiny, 0.1), [open_source("synthetic:32x32@200")], max_frames=12, overlap="on")
    captured = [e["captured_at"] for e in pipeline]
    # once the stage times are learnt, frame N+1 is captured well after the backend started frame N (picked at
    # once, it would be a frame from the start of inference N and wait a whole inference in the hand-off)
    assert all(captured[i + 1] - started[i] > 0.05 for i in range(8, 11)), (captured, started)
