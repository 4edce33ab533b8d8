"""`edge run` as a user runs it: a video through a tiny ONNX model to JSON lines, bad input, clean stop."""
import json
import signal
import subprocess
import sys

import jsonschema
import pytest

from edge.stream.events import load_schema

from .stream_helpers import tiny_model, write_video


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_run_video_all_frames_to_jsonl(tmp_path):
    model, video, out = tiny_model(tmp_path / "m.onnx"), write_video(tmp_path / "clip.avi", 20), tmp_path / "events.jsonl"
    result = edge("run", "--model", model, "--source", video, "--all-frames", "--jsonl", out, "--max-frames", 15)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(15)) and {e["source"] for e in events} == {"clip"}
    schema = load_schema()
    for event in events:
        jsonschema.validate(event, schema)
    assert events[0]["detections"][0]["name"] == "dog" and "15 frames inferred" in result.stderr


def test_run_jsonl_to_stdout_with_two_named_sources(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    result = edge("run", "--model", model, "--source", "a=synthetic:64x48@0", "--source", "b=synthetic:32x32@0",
                  "--all-frames", "--jsonl", "-", "--max-frames", 60)
    assert result.returncode == 0, result.stderr
    sources = [json.loads(line)["source"] for line in result.stdout.splitlines()]
    # One capture thread may deliver a few frames before the other starts; over 60 frames both are served.
    assert len(sources) == 60 and set(sources) == {"a", "b"}


def test_bad_source_is_one_line_and_nonzero(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    for uri in ("nonsense://x", str(tmp_path / "missing.mp4"), "/dev/video99"):
        result = edge("run", "--model", model, "--source", uri, "--jsonl", "-")
        assert result.returncode != 0 and result.stdout == ""
        assert result.stderr.startswith("edge: error: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tmp_path, sig):
    model = tiny_model(tmp_path / "m.onnx")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", model, "--source", "synthetic:64x48@30",
                             "--jsonl", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.send_signal(sig)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(first)["type"] == "detections" and f"{sig.name}: stopping" in err
    assert all(json.loads(line)["schema_version"] == 2 for line in rest.splitlines())
