"""Batching across sources in the pipeline: the same events as one frame at a time, per source and in order, with
overlap off and on; padding of a fixed batch; live sources, hot swap, faults and shutdown between batches."""
import logging
from dataclasses import replace

import cv2
import pytest

import edge
from edge.bundle import write_bundle
from edge.demo import BUNDLE
from edge.errors import ConfigError
from edge.scene import demo_frame
from edge.service.config import parse
from edge.stream.batching import use_batch
from edge.stream.pipeline import Pipeline
from edge.stream.sources import open_source

from .stream_helpers import ScriptedSource, consume_then_stop
from .test_batch import dynamic_copy, fixed_copy, same
from .test_overlap import comparable, stage_threads
from .test_pipeline import ListSink

NAMES = edge.Detector.load(BUNDLE).names
SIZES = [(320, 240), (256, 256), (400, 224), (288, 352)]  # each source letterboxes/stretches its own way


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory):
    return dynamic_copy(BUNDLE, tmp_path_factory.mktemp("dynamic") / "demo_dynamic.onnx")


def load(path, **options):
    """A detector whose backend records the batch of every run."""
    detector = edge.Detector.load(path, family="damo-yolo", names=NAMES, conf=0.05, **options)
    run, detector.runs = detector.backend.run, []
    detector.backend.run = lambda tensor: detector.runs.append(len(tensor)) or run(tensor)
    return detector


def videos(tmp_path, count: int, frames: int = 12) -> list:
    """`count` MJPG clips of the demo scene, each with its own size and scene seed."""
    paths = []
    for k in range(count):
        path = str(tmp_path / f"cam{k}.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, SIZES[k])
        for i in range(frames):
            writer.write(demo_frame(i, *SIZES[k], seed=k))
        writer.release()
        paths.append(path)
    return paths


def sources(paths: list) -> list:
    return [open_source(p, realtime=False, source_id=f"cam{k}") for k, p in enumerate(paths)]


def per_source(events: list) -> dict:
    out: dict = {}
    for event in events:
        out.setdefault(event["source"], []).append(comparable(event))
    return out


@pytest.mark.parametrize("count", [2, 4])
@pytest.mark.parametrize("overlap", ["off", "on"])
def test_batched_events_equal_one_by_one(dynamic, tmp_path, count, overlap):
    paths = videos(tmp_path, count)
    runs = {}
    for mode in ("off", "on"):
        detector = load(dynamic)
        pipeline = Pipeline(detector, sources(paths), all_frames=True, queue_size=4, overlap=overlap, batch=mode)
        assert pipeline.batch_size == (count if mode == "on" else 1)
        runs[mode] = (per_source(list(pipeline)), detector.runs)
    (one, one_runs), (batched, batched_runs) = runs["off"], runs["on"]
    assert sorted(one) == [f"cam{k}" for k in range(count)]
    for source, events in one.items():
        assert [e[1] for e in events] == list(range(12))  # one event per frame, in order
    assert batched == one and sum(len(e[2]) for s in one.values() for e in s) > 12 * count
    assert set(one_runs) == {1} and max(batched_runs) == count and sum(batched_runs) == 12 * count
    assert len(batched_runs) < len(one_runs)


def test_a_fixed_batch_model_pads_when_fewer_frames_are_ready(dynamic, tmp_path):
    fixed = load(fixed_copy(dynamic, tmp_path / "b4.onnx", 4))
    paths = videos(tmp_path, 2)
    pipeline = Pipeline(fixed, sources(paths), all_frames=True, batch="auto")
    assert pipeline.batch_size == 2  # auto: a fixed batch runs its whole batch anyway
    events = per_source(list(pipeline))
    assert set(fixed.runs) == {4} and len(fixed.runs) < 24  # two sources' frames per run of 4 (2 padding)
    single = load(dynamic)
    alone = per_source(list(Pipeline(single, sources(paths), all_frames=True, batch="off")))
    assert events == alone


def test_live_sources_batch_their_latest_frames(dynamic):
    detector = load(dynamic)
    live = [ScriptedSource(f"cam{k}", frames=400, period=0.005, source_id=f"cam{k}") for k in range(2)]
    pipeline = Pipeline(detector, live, max_frames=20, batch="on")
    events = list(pipeline)
    assert len(events) == 20 and max(detector.runs) == 2
    for k in range(2):
        seqs = [e["seq"] for e in events if e["source"] == f"cam{k}"]
        assert seqs == sorted(set(seqs)) and len(seqs) >= 5  # newest frames only, never one twice
    assert sum(pipeline.status()["sources"][f"cam{k}"]["dropped"] for k in range(2)) > 0


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_swap_takes_effect_between_batches(dynamic, tmp_path, overlap):
    other = load(dynamic_copy(BUNDLE, tmp_path / "other.onnx"))
    pipeline = Pipeline(load(dynamic), sources(videos(tmp_path, 2)), all_frames=True, overlap=overlap, batch="on")
    events = []
    for event in pipeline:
        events.append(event)
        if len(events) == 4:
            pipeline.swap_detector(other)
    models = [e["model"]["id"] for e in events]
    before = models.count("demo_dynamic.onnx")
    assert models == ["demo_dynamic.onnx"] * before + ["other.onnx"] * (24 - before) and 4 <= before < 24
    batches: dict = {}  # the frames of one batch share its stage timings
    for event in events:
        batches.setdefault((event["timings_ms"]["preprocess"], event["timings_ms"]["inference"]), set()).add(
            event["model"]["id"])
    assert all(len(ids) == 1 for ids in batches.values()) and len(batches) < 24  # never a batch of two models
    loop = pipeline.status()["loop"]
    assert 1 < loop["frames_per_inference"] <= 2  # two sources: batches of one or two frames
    assert 12 <= loop["inferences"] < 24 and loop["frames_per_inference"] == round(24 / loop["inferences"], 2)
    assert [[e[1] for e in v] for v in per_source(events).values()] == [list(range(12))] * 2  # every frame once


def test_a_failing_batch_skips_its_frames_only(dynamic, tmp_path, caplog):
    detector = load(dynamic)
    run = detector.backend.run
    calls = []

    def flaky(tensor):
        calls.append(len(tensor))
        if len(tensor) == 2 and calls.count(2) == 1:  # the first batch of two frames
            raise RuntimeError("engine hiccup")
        return run(tensor)

    detector.backend.run = flaky
    with caplog.at_level(logging.ERROR, logger="edge"):
        events = list(Pipeline(detector, sources(videos(tmp_path, 2, frames=6)), all_frames=True, batch="on"))
    assert len(events) == 10  # that batch's two frames (one of each source) are lost, nothing else
    assert caplog.text.count("engine hiccup") == 2 and {e["source"] for e in events} == {"cam0", "cam1"}


def test_stop_mid_stream_between_batches(dynamic):
    sink = ListSink()
    live = [ScriptedSource(f"cam{k}", frames=10_000, period=0.002, source_id=f"cam{k}") for k in range(2)]
    pipeline = Pipeline(load(dynamic), live, [sink], all_frames=True, overlap="on", batch="on")
    seen, alive = consume_then_stop(pipeline, after=6, timeout=20)
    assert not alive and sink.closed and sink.events == seen and stage_threads() == []
    for k in range(2):
        seqs = [e["seq"] for e in seen if e["source"] == f"cam{k}"]
        assert seqs == list(range(len(seqs)))  # in order, none lost before the stop


def test_max_frames_counts_every_frame_of_a_batch(dynamic, tmp_path):
    for overlap in ("off", "on"):
        pipeline = Pipeline(load(dynamic), sources(videos(tmp_path, 4)), all_frames=True, max_frames=7,
                            overlap=overlap, batch="on")
        assert len(list(pipeline)) == 7


def test_auto_batches_only_where_it_pays(dynamic, tmp_path, monkeypatch):
    contract = load(dynamic).contract
    bundle = write_bundle(str(tmp_path / "b3"), dynamic, replace(contract, input=replace(contract.input, batch=3)))
    detector = edge.Detector.load(bundle)
    assert detector.max_batch == 3 and not detector.backend.accelerated
    assert use_batch("auto", detector, 4) == 1  # ONNX Runtime on CPU
    monkeypatch.setattr(detector.backend, "accelerated", True)  # a GPU execution provider, TensorRT
    assert use_batch("auto", detector, 4) == 3 and use_batch("auto", detector, 2) == 2  # the manifest's most
    assert use_batch("on", detector, 1) == 1 and use_batch("off", detector, 4) == 1
    assert use_batch(2, detector, 4) == 2 and use_batch(8, detector, 4) == 3
    assert use_batch("on", load(dynamic), 6) == 6  # a raw dynamic ONNX declares no limit
    single = edge.Detector.load(BUNDLE)
    assert use_batch("on", single, 4) == 1 and use_batch("on", lambda image: None, 4) == 1
    with pytest.raises(ValueError, match="auto, on, off or a number"):
        use_batch("sometimes", detector, 2)


def test_the_setting_takes_a_word_or_a_number():
    def config(value):
        return parse({"model": {"path": "m.onnx"}, "sources": [{"uri": "synthetic"}], "pipeline": {"batch": value}})

    assert config("auto").pipeline.batch == "auto" and config(4).pipeline.batch == 4
    for value, problem in (("sometimes", "must be auto, on, off or a number of frames"), (0, "must be at least 1, got 0"),
                           (True, "must be a string or an integer")):
        with pytest.raises(ConfigError, match=f"pipeline.batch: {problem}"):
            config(value)


def test_each_frame_goes_to_its_own_source(dynamic):
    """Distinct images on each source come back as their own detections (a mix-up of batch rows would show)."""
    frames = [demo_frame(0, seed=k) for k in range(3)]
    single = edge.Detector.load(BUNDLE, conf=0.05)
    got = load(dynamic).batch(frames)
    assert all(same(g, single(f)) for g, f in zip(got, frames)) and not same(got[0], got[1])
