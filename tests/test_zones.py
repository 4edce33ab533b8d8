"""Zones (inertia, dwell), lines (direction, hysteresis), parsers."""
import numpy as np
import pytest

from edge import Detections
from edge.track import Analytics, Line, Zone, anchor_points, parse_line, parse_zone

FPS = 10.0


def _walk(analytics, xs, y=50.0, track_id=1, name="person", frame_size=(100, 100)):
    """Feed one box whose bottom centre follows (x, y) frame by frame; returns all events."""
    events = []
    for f, x in enumerate(xs):
        if x is None:  # not detected this frame
            dets = Detections(np.zeros((0, 4)), [], [], [], [])
        else:
            dets = Detections([[x - 5, y - 20, x + 5, y]], [0.9], [0], [name], [track_id])
        events += analytics.update(dets, f / FPS, frame_size)
    return events


def test_zone_inertia_enter_exit_and_dwell_within_a_frame():
    zone = Zone("door", [(30, 0), (70, 0), (70, 100), (30, 100)])
    analytics = Analytics([zone], inertia=3)
    xs = [11 + 2 * f for f in range(40)]  # inside for x in (30, 70): frames 10..29 -> 20 frames = 2.0 s
    events = _walk(analytics, xs)
    enter, leave = events
    assert enter["type"] == "zone_enter" and enter["time"] == pytest.approx(12 / FPS)  # 3rd frame inside
    assert leave["type"] == "zone_exit" and leave["time"] == pytest.approx(32 / FPS)  # 3rd frame outside
    assert abs(leave["dwell_s"] - 20 / FPS) <= 1 / FPS
    assert {k: enter[k] for k in ("zone", "track_id", "class_id", "name")} == {
        "zone": "door", "track_id": 1, "class_id": 0, "name": "person"}


def test_zone_ignores_short_excursions_and_counts_presence():
    analytics = Analytics([Zone("z", [(0, 0), (50, 0), (50, 100), (0, 100)])], inertia=3)
    xs = [10, 10, 10, 10, 80, 80, 10, 10]  # two frames outside: still inside
    events = _walk(analytics, xs)
    assert [e["type"] for e in events] == ["zone_enter"]
    assert analytics.counts()["zones"]["z"] == {"count": 1, "classes": {"person": 1}}
    assert analytics.dwell("z", 0.8) == {1: pytest.approx(0.8)}


def test_zone_exit_when_the_track_disappears():
    analytics = Analytics([Zone("z", [(0, 0), (50, 0), (50, 100), (0, 100)])], max_missing=5)
    events = _walk(analytics, [10] * 10 + [None] * 7)
    assert [e["type"] for e in events] == ["zone_enter", "zone_exit"]
    assert events[1]["dwell_s"] == pytest.approx(0.9)  # from the first to the last frame it was seen inside
    assert analytics.counts()["zones"]["z"]["count"] == 0


def test_zone_class_filter_and_normalized_coordinates():
    zone = parse_zone("left=0,0,0.5,0,0.5,1,0,1:car")
    analytics = Analytics([zone])
    assert _walk(analytics, [100] * 5, y=150, name="person", frame_size=(400, 300)) == []
    events = _walk(analytics, [100] * 5, y=150, track_id=2, name="car", frame_size=(400, 300))
    assert [e["type"] for e in events] == ["zone_enter"]
    events = _walk(Analytics([zone]), [300] * 5, y=150, name="car", frame_size=(400, 300))
    assert events == []  # x=300 is right of 0.5 * 400


def test_line_counts_each_crossing_once_with_direction():
    line = Line("gate", [(50, 100), (50, 0)])  # drawn upwards: left-to-right movement is "in"
    analytics = Analytics(lines=[line])
    xs = list(range(20, 81, 3)) + list(range(80, 19, -3))
    events = _walk(analytics, xs)
    assert [e["direction"] for e in events] == ["in", "out"]
    assert analytics.counts()["lines"]["gate"] == {"in": 1, "out": 1, "classes": {"person": {"in": 1, "out": 1}}}


def test_line_jitter_on_the_line_counts_once():
    analytics = Analytics(lines=[Line("gate", [(50, 100), (50, 0)])], line_margin=4)
    rng = np.random.default_rng(0)
    xs = [30, 40] + list(50 + rng.uniform(-3.9, 3.9, 40)) + [52, 49, 60, 70] + list(50 + rng.uniform(-3.9, 3.9, 20))
    events = _walk(analytics, [float(x) for x in xs])
    assert [e["direction"] for e in events] == ["in"]


def test_line_needs_the_path_to_cut_the_segment():
    analytics = Analytics(lines=[Line("short", [(50, 60), (50, 40)])])
    assert _walk(analytics, list(range(20, 81, 5)), y=90) == []  # passes below the segment's end
    assert len(_walk(analytics, list(range(20, 81, 5)), y=50, track_id=2)) == 1
    assert len(_walk(analytics, [20, None, None, 80], y=50, track_id=3)) == 1  # crossed while undetected


def test_anchor_points():
    box = np.array([[10, 20, 30, 60]])
    expected = {"bottom_center": [20, 60], "center": [20, 40], "top_left": [10, 20], "top_right": [30, 20],
                "bottom_left": [10, 60], "bottom_right": [30, 60]}
    for anchor, point in expected.items():
        assert anchor_points(box, anchor).tolist() == [point]
    with pytest.raises(ValueError, match="unknown anchor"):
        anchor_points(box, "middle")


def test_parsers_accept_classes_and_reject_bad_input():
    zone = parse_zone(" dock = 0,0, 10,0, 10,10 : person, car")
    assert zone.name == "dock" and zone.points == ((0, 0), (10, 0), (10, 10)) and zone.classes == ("person", "car")
    assert parse_line("gate=1,2,3,4").points == ((1, 2), (3, 4))
    bad_zones = {
        "dock": "expected NAME=", "=0,0,1,0,1,1": "name", "a=0,0,1": "odd number", "a=0,0,1,1": "at least 3",
        "a=0,0,5,5,10,10": "zero area", "a=0,0,10,0,0,10,10,10,5,-1": ">= 0", "a=0,0,x,1,1,0": "numbers",
        "a=0,0,10,0,0,10,12,14": "cross",
    }
    for text, message in bad_zones.items():
        with pytest.raises(ValueError, match=message):
            parse_zone(text)
    for text, message in {"g=1,2,3,4,5,6": "exactly 2", "g=1,1,1,1": "zero length", "g=1,2": "exactly 2"}.items():
        with pytest.raises(ValueError, match=message):
            parse_line(text)
    with pytest.raises(ValueError, match="unique"):
        Analytics([parse_zone("a=0,0,1,0,1,1")], [parse_line("a=0,0,1,1")])
    with pytest.raises(ValueError, match="tracked detections"):
        Analytics().update(Detections.empty(), 0.0, (10, 10))
