"""The streaming pipeline with the real Detector on a tiny ONNX model: frame policies, fairness, faults, events."""
import json
import threading
import time

import jsonschema
import pytest

import edge
from edge.stream.events import SCHEMA_VERSION, load_schema
from edge.stream.pipeline import Pipeline
from edge.stream.sinks.base import Sink
from edge.stream.sources import open_source

from .stream_helpers import ScriptedSource, SlowDetector, tiny_detector, tiny_model, write_video


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return tiny_detector(tmp_path_factory.mktemp("model"))


class ListSink(Sink):
    name = "list"

    def __init__(self):
        self.events, self.frames, self.closed = [], [], False

    def publish(self, event, frame, detections):
        self.events.append(event)
        self.frames.append(frame)

    def close(self, timeout=5.0):
        self.closed = True


class RaisingSink(Sink):
    name = "broken"

    def publish(self, event, frame, detections):
        raise ConnectionError("broker down")


def test_all_frames_delivers_every_frame_in_order(detector, tmp_path):
    source = open_source(write_video(tmp_path / "clip.avi", 25), realtime=False)
    sink = ListSink()
    pipeline = Pipeline(SlowDetector(detector, 0.002), [source], [sink], all_frames=True, queue_size=2)
    events = list(pipeline)
    assert [e["seq"] for e in events] == list(range(25)) and sink.events == events and sink.closed
    status = pipeline.status()["sources"]["clip"]
    assert status["captured"] == status["inferred"] == 25 and status["dropped"] == 0


def test_latest_frame_drops_instead_of_queueing(detector):
    slow = SlowDetector(detector, 0.03)
    source = open_source("synthetic:64x48@200", frames=60)
    pipeline = Pipeline(slow, [source])
    events = list(pipeline)
    stats = pipeline.status()["sources"]["synthetic"]
    assert stats["captured"] == 60 and stats["dropped"] > 0
    assert stats["inferred"] + stats["dropped"] <= 60 and stats["inferred"] == len(events)
    assert len(pipeline.workers[0].queue) == 0  # the hand-off never held more than one frame
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_drop_oldest_keeps_the_queued_frames(detector):
    pipeline = Pipeline(SlowDetector(detector, 0.02), [open_source("synthetic:32x32@0", frames=40)],
                        all_frames=True, drop="oldest", queue_size=3)
    events = list(pipeline)
    stats = pipeline.status()["sources"]["synthetic"]
    assert stats["dropped"] > 0 and stats["inferred"] + stats["dropped"] == 40
    assert events[0]["seq"] == 0


def test_two_sources_share_the_detector_round_robin(detector):
    sources = [ScriptedSource("a", frames=30, source_id="a"), ScriptedSource("b", frames=30, source_id="b")]
    events = list(Pipeline(SlowDetector(detector, 0.001), sources, all_frames=True, queue_size=4))
    order = [e["source"] for e in events]
    assert order.count("a") == order.count("b") == 30
    first = order[:40]  # while both have frames, neither gets more than its turn
    assert abs(first.count("a") - first.count("b")) <= 2


def test_every_and_max_frames(detector):
    events = list(Pipeline(detector, [open_source("synthetic:32x32@0", frames=30)], all_frames=True, every=3))
    assert [e["seq"] for e in events] == list(range(0, 30, 3))
    events = list(Pipeline(detector, [open_source("synthetic:32x32@0")], all_frames=True, max_frames=5))
    assert len(events) == 5


def test_lost_source_reconnects_with_backoff(detector, caplog):
    source = ScriptedSource("cam", frames=10, lose_after=4, fail_opens=3, source_id="cam")
    pipeline = Pipeline(detector, [source], all_frames=True, backoff=(0.01, 0.04))
    with caplog.at_level("INFO", logger="edge"):
        events = list(pipeline)
    stats = pipeline.status()["sources"]["cam"]
    assert [e["seq"] for e in events] == list(range(10))
    assert stats["reconnects"] == 4 and stats["error"] is None and stats["down_since"] is None and source.opens == 5
    assert stats["state"] == "ended" and not stats["connected"]  # reconnected, then the stream ended
    assert "stream lost; reconnecting" in caplog.text and "reconnected after 4 attempt(s)" in caplog.text


def test_a_lost_source_is_reported_while_down(detector):
    source = ScriptedSource("cam", frames=10, lose_after=2, fail_opens=10 ** 6, source_id="cam")
    pipeline = Pipeline(detector, [source], all_frames=True, backoff=(0.01, 0.02))
    events = iter(pipeline)
    assert [next(events)["seq"] for _ in range(2)] == [0, 1]
    stats = pipeline.status()["sources"]["cam"]
    while stats["reconnects"] < 3:
        pipeline.workers[0].join(0.01)
        stats = pipeline.status()["sources"]["cam"]
    assert not stats["connected"] and stats["state"] == "down" and "device gone" in stats["error"]
    assert stats["down_since"] <= time.time()
    pipeline.stop()
    assert list(events) == [] and source.closed.is_set()


def test_a_raising_sink_does_not_stop_the_others(detector, caplog):
    good = ListSink()
    pipeline = Pipeline(detector, [open_source("synthetic:32x32@0", frames=6)], [RaisingSink(), good], all_frames=True)
    with caplog.at_level("WARNING", logger="edge"):
        events = list(pipeline)
    assert len(events) == len(good.events) == 6
    sinks = pipeline.status()["sinks"]
    assert sinks["broken"]["failed"] == 6 and sinks["list"]["published"] == 6
    assert "sink broken: publish failed (broker down)" in caplog.text


def test_stop_from_another_thread_drains_sinks(detector):
    sink = ListSink()
    pipeline = Pipeline(detector, [open_source("synthetic:32x32@100")], [sink])
    seen = []

    def consume():
        for event in pipeline:
            seen.append(event)

    thread = threading.Thread(target=consume)
    thread.start()
    while len(seen) < 3:
        thread.join(0.01)
    pipeline.stop()
    thread.join(5)
    assert not thread.is_alive() and sink.closed and sink.events == seen


def test_events_match_the_schema_and_the_frame(detector):
    schema = load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    sink = ListSink()
    events = list(Pipeline(detector, [open_source("synthetic:96x64@0", frames=3)], [sink], all_frames=True))
    for event, frame in zip(events, sink.frames):
        jsonschema.validate(json.loads(json.dumps(event)), schema)
        assert event["frame"] == {"width": 96, "height": 64} and frame.shape == (64, 96, 3)
    det = events[0]["detections"][0]
    assert det["class_id"] == 1 and det["name"] == "dog" and det["score"] == pytest.approx(0.9)
    x1, y1, x2, y2 = det["box"]
    assert det["box_norm"] == pytest.approx([x1 / 96, y1 / 64, x2 / 96, y2 / 64], abs=1e-5)
    assert events[0]["model"] == {"id": "tiny.onnx", "family": "yolo11", "backend": "onnxruntime",
                                  "precision": events[0]["model"]["precision"], "version": None}
    assert set(events[0]["timings_ms"]) == {"preprocess", "inference", "postprocess", "capture_to_result"}
    assert events[0]["inferred_at"] >= events[0]["captured_at"]
    bad = dict(events[0], schema_version=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_event_schema_is_the_version_the_runtime_writes():
    schema = load_schema()
    versions = {kind: d["properties"]["schema_version"]["const"] for kind, d in schema["definitions"].items()
                if "schema_version" in d.get("properties", {})}
    assert versions == {"detections": SCHEMA_VERSION, "zone": SCHEMA_VERSION, "line": SCHEMA_VERSION}
    assert f"Version {SCHEMA_VERSION} (current)" in schema["description"]
    assert all("file" in schema["definitions"][kind]["properties"] for kind in versions)  # version 3's field


def test_status_snapshot_shape(detector):
    pipeline = Pipeline(detector, [open_source("synthetic:32x32@0", frames=4)], [ListSink()], all_frames=True)
    list(pipeline)
    status = pipeline.status()
    assert set(status) == {"model", "started_at", "inferred", "last_inference_at", "fps", "latency_ms", "sources",
                           "sinks", "model_reloads", "analytics", "loop"}
    assert status["model_reloads"] == {"succeeded": 0, "failed": 0, "last_error": None}
    assert status["inferred"] == 4 and status["model"]["family"] == "yolo11"
    assert set(status["latency_ms"]) == {"capture_to_result", "preprocess", "inference", "postprocess"}
    assert status["latency_ms"]["inference"]["p50"] >= 0
    assert set(status["sources"]["synthetic"]) == {"uri", "state", "down_since", "connected", "captured", "inferred",
                                                   "dropped", "reconnects", "skipped", "last_frame_at", "error"}
    assert status["sinks"]["list"] == {"published": 4, "failed": 0, "dropped": 0}
    json.dumps(status)


def test_swap_detector_takes_over_from_the_next_frame(detector, tmp_path):
    other = edge.Detector.load(tiny_model(tmp_path / "other.onnx"))
    pipeline = Pipeline(detector, [open_source("synthetic:32x32@0", frames=6)], all_frames=True)
    models = []
    for event in pipeline:
        models.append(event["model"]["id"])
        if len(models) == 2:
            pipeline.swap_detector(other)
    before = models.count("tiny.onnx")  # overlapped, frames already picked (up to 3) finish on the old model
    assert before == 2 or pipeline.overlapped and 2 <= before <= 5
    assert models == ["tiny.onnx"] * before + ["other.onnx"] * (6 - before) and pipeline.detector is other
    pipeline.reload_failed("bad bundle")
    assert pipeline.status()["model_reloads"] == {"succeeded": 1, "failed": 1, "last_error": "bad bundle"}


def test_edge_stream_generator(detector, tmp_path):
    video = write_video(tmp_path / "clip.avi", 8)
    events = list(edge.stream(detector, [video, "second=synthetic:32x32@0"], all_frames=True, max_frames=10))
    assert len(events) == 10 and {e["source"] for e in events} == {"clip", "second"}
    stream = edge.stream(detector, "synthetic:32x32@0")
    first = next(stream)
    stream.close()  # breaking out stops capture and closes the source
    assert first["source"] == "synthetic" and first["schema_version"] == SCHEMA_VERSION
