"""Tracking, zones and lines in `edge run`: events end to end, settings and flag errors, MQTT topics, metrics."""
import json
import re
import subprocess
import sys
import time

import jsonschema
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from edge.cli.demo import write_sample
from edge.demo import BUNDLE
from edge.detections import Detections
from edge.errors import ConfigError
from edge.service.config import EX_CONFIG, parse
from edge.service.metrics import StatusCollector
from edge.settings import TrackingConfig
from edge.stream.analytics import SourceAnalytics, source_analytics
from edge.stream.events import SCHEMA_VERSION, load_schema
from edge.stream.sources import Frame
from edge.track import parse_line, parse_zone

from .stream_helpers import tiny_model
from .test_sinks_mqtt import MOSQUITTO, PREFIX, broker_factory, make_sink, subscribers  # noqa: F401,F811
from .test_sinks_support import Status, event, wait_until

LINE = "mid=0,240,640,240"
ZONE = "bottom=0,240,640,240,640,480,0,480"


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=180)


def test_edge_run_writes_line_and_zone_events_that_match_the_schema(tmp_path):
    video, out = write_sample(str(tmp_path / "sample.avi"), 12), tmp_path / "events.jsonl"
    result = edge("run", "--model", BUNDLE, "--source", f"cam={video}", "--all-frames", "--conf", "0.4",
                  "--jsonl", out, "--line", LINE, "--zone", f"cam/{ZONE}")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    schema = load_schema()
    for e in events:
        jsonschema.validate(e, schema)
    kinds = [e["type"] for e in events]
    assert kinds.count("detections") == 12 and {"line_cross", "zone_enter", "zone_exit"} <= set(kinds), kinds
    frames = [e for e in events if e["type"] == "detections"]
    assert all("track_id" in d for e in frames for d in e["detections"]) and frames[0]["detections"]
    crossings = [e for e in events if e["type"] == "line_cross"]
    assert all(e["line"] == "mid" and e["source"] == "cam" and e["direction"] in ("in", "out") for e in crossings)
    last = frames[-1]["counts"]
    assert last["lines"]["mid"]["in"] + last["lines"]["mid"]["out"] == len(crossings)
    exits = [e for e in events if e["type"] == "zone_exit"]
    assert all(e["dwell_s"] >= 0 and e["zone"] == "bottom" for e in exits)
    # every exit follows an enter of the same track
    for e in exits:
        assert any(x["type"] == "zone_enter" and x["track_id"] == e["track_id"] and x["seq"] <= e["seq"]
                   for x in events)


def test_tracking_is_off_unless_asked_and_on_with_track(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    common = ("run", "--model", model, "--source", "synthetic:96x64", "--all-frames", "--max-frames", 3, "--jsonl", "-")
    plain = [json.loads(line) for line in edge(*common).stdout.splitlines()]
    tracked = [json.loads(line) for line in edge(*common, "--track").stdout.splitlines()]
    assert len(plain) == len(tracked) == 3
    assert all("track_id" not in d and "counts" not in e for e in plain for d in e["detections"])
    assert [d["track_id"] for e in tracked for d in e["detections"]] == [1, 1, 1]  # one dog, one id
    assert all("counts" not in e for e in tracked)  # no zones or lines: no counts


@pytest.mark.parametrize("flag, text", [
    ("--zone", "a=0,0,10,0"),  # 2 points
    ("--zone", "a=0,0,10,10,10,0,0,10"),  # bow tie
    ("--line", "a=5,5,5,5"),  # zero length
    ("--line", "a=0,0,x,1"),
    ("--zone", "a=0,0,10,0,10,10:horse"),  # the model has cat and dog
    ("--zone", "nocam/a=0,0,10,0,10,10"),
])
def test_bad_zone_or_line_flags_are_usage_errors(tmp_path, flag, text):
    model = tiny_model(tmp_path / "m.onnx")
    result = edge("run", "--model", model, "--source", "cam=synthetic:96x64", "--max-frames", 1, flag, text)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"edge: error: {flag} "), result.stderr


@pytest.mark.parametrize("zone, message", [
    ({"name": "a", "points": [[0, 0], [10, 0]]}, "sources[0].zones[0]: zone 'a': needs at least 3 points"),
    ({"name": "a", "points": [[0, 0], [10, 0], [10, 10]], "classes": ["horse"]},
     "sources[0].zones[0].classes: unknown class 'horse'"),
])
def test_bad_zones_in_a_config_file_exit_78(tmp_path, zone, message):
    config = tmp_path / "edge.yaml"
    config.write_text(json.dumps({"model": {"path": tiny_model(tmp_path / "m.onnx")},
                                  "sources": [{"uri": "synthetic:96x64", "zones": [zone]}]}))
    result = edge("run", "--config", config, "--max-frames", 1)
    assert result.returncode == EX_CONFIG and message in result.stderr, result.stderr


def test_settings_validate_zones_lines_and_tracking():
    base = {"model": {"path": "m.onnx"}, "sources": [{"uri": "synthetic"}]}
    config = parse({**base, "sources": [{"uri": "synthetic", "fps": 10.0,
                                         "lines": [{"name": "gate", "points": [[0.5, 0], [0.5, 1]],
                                                    "classes": ["dog"]}]}]})
    (tracking,) = source_analytics(config, ["cat", "dog"])
    assert tracking.lines[0].points == ((0.5, 0.0), (0.5, 1.0)) and tracking.tracker.max_lost == 10  # 30 * 10/30
    assert source_analytics(parse(base), ["cat"]) == [None]
    assert source_analytics(parse({**base, "tracking": {"enabled": True}}), ["cat"])[0].analytics is None
    for bad, message in [
        ({"tracking": {"enabled": False},
          "sources": [{"uri": "s", "lines": [{"name": "l", "points": [[0, 0], [1, 1]]}]}]},
         "tracking.enabled: zones and lines need tracking"),
        ({"tracking": {"high_thresh": 0.9}}, "tracking: needs low_thresh <= high_thresh <= new_track_thresh"),
        ({"tracking": {"anchor": "middle"}}, "tracking.anchor: must be"),
        ({"sources": [{"uri": "s", "lines": [{"name": "x", "points": [[0, 0], [1, 1]]}],
                       "zones": [{"name": "x", "points": [[0, 0], [1, 0], [1, 1]]}]}]}, "name 'x' is used twice"),
        ({"sources": [{"uri": "s", "lines": [{"name": "l", "points": [[0, 0], [-1, 1]]}]}]}, "must be finite and >= 0"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse({**base, **bad})


def moving_box(seq: int) -> Detections:
    """One dog moving down 10 px per frame."""
    y = 10.0 * seq
    return Detections(np.array([[40, y, 60, y + 20]], np.float32), np.array([0.9], np.float32), np.array([1]),
                      ["dog"])


def test_source_analytics_counts_a_crossing_and_reports_status():
    tracking = SourceAnalytics(TrackingConfig(inertia=1), [parse_zone("low=0,50,100,50,100,200,0,200")],
                               [parse_line("mid=0,50,100,50")], frame_rate=10)
    image = np.zeros((200, 100, 3), np.uint8)
    events = []
    for seq in range(8):
        tracked, new = tracking(Frame(image, seq, 100.0 + seq, "cam"), moving_box(seq))
        events += new
        assert tracked.track_ids.tolist() == [1]
    # the anchor (bottom centre) touches the zone's top edge at seq 3 and clears the line's 4 px margin at seq 4
    assert [(e["type"], e["seq"]) for e in events] == [("zone_enter", 3), ("line_cross", 4)]
    assert events[1]["direction"] == "in" and events[1]["time"] == 104.0  # down across a left-to-right line: in
    assert tracking.status() == {"tracks_active": 1, "zones": {"low": {"count": 1, "classes": {"dog": 1}}},
                                 "lines": {"mid": {"in": 1, "out": 0, "classes": {"dog": {"in": 1, "out": 0}}}}}
    for e in events:
        jsonschema.validate(e, load_schema())


def test_metrics_carry_line_zone_and_track_series():
    status = {"analytics": {"cam": {"tracks_active": 3, "zones": {"door": {"count": 2, "classes": {"person": 2}}},
                                    "lines": {"gate": {"in": 4, "out": 1,
                                                       "classes": {"person": {"in": 4, "out": 1}}}}}}}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(lambda: status))
    text = generate_latest(registry).decode()
    assert 'edge_line_crossings_total{class="person",direction="in",line="gate",source="cam"} 4.0' in text
    assert 'edge_line_crossings_total{class="person",direction="out",line="gate",source="cam"} 1.0' in text
    assert 'edge_zone_objects{class="person",source="cam",zone="door"} 2.0' in text
    assert 'edge_tracks_active{source="cam"} 3.0' in text


@pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto broker (apt-get install mosquitto)")
def test_mqtt_zone_line_topics_and_retained_counts(broker_factory, subscribers):  # noqa: F811 (fixtures)
    broker = broker_factory()
    watcher = subscribers(broker)
    sink = make_sink(broker.url)
    sink.start(Status())
    counts = {"zones": {"door": {"count": 1, "classes": {"dog": 1}}}, "lines": {}}
    frame_event = dict(event(0), counts=counts)
    zone = {"schema_version": SCHEMA_VERSION, "type": "zone_enter", "source": "cam0", "seq": 0, "zone": "door", "track_id": 1,
            "class_id": 1, "name": "dog", "time": time.time()}
    line = {**zone, "type": "line_cross", "line": "gate", "direction": "in"}
    del line["zone"]
    for e in (frame_event, zone, line, dict(event(1), counts=counts)):
        sink.publish(e, None, None)
    sink.close()
    assert wait_until(lambda: len(watcher.payloads(f"{PREFIX}/cam0/events")) == 2)
    assert [json.loads(p)["type"] for p in watcher.payloads(f"{PREFIX}/cam0/zones/door")] == ["zone_enter"]
    assert [json.loads(p)["direction"] for p in watcher.payloads(f"{PREFIX}/cam0/lines/gate")] == ["in"]
    assert [json.loads(p) for p in watcher.payloads(f"{PREFIX}/cam0/counts")] == [counts]  # unchanged: sent once
    late = subscribers(broker)  # retained: a new subscriber gets the counts at once
    assert wait_until(lambda: [json.loads(p) for p in late.payloads(f"{PREFIX}/cam0/counts")] == [counts])
