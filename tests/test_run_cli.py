"""`edge run` as a user runs it: a video through a tiny ONNX model to JSON lines, bad input, clean stop."""
import json
import signal
import subprocess
import sys

import cv2
import jsonschema
import numpy as np
import pytest

from edge.stream.events import SCHEMA_VERSION, load_schema

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
    # A missing camera device is retried like a lost camera; --require-sources makes it an error at start.
    for args in (["nonsense://x"], [str(tmp_path / "missing.mp4")], ["/dev/video99", "--require-sources"]):
        result = edge("run", "--model", model, "--source", *args, "--jsonl", "-")
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
    assert all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in rest.splitlines())


def images(folder, count: int, bad: tuple = ()) -> str:
    """A folder of `count` small PNGs plus the named unreadable files (empty, or text named .jpg)."""
    folder.mkdir(exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    for name in bad:
        (folder / name).write_text("" if name.startswith("zero") else "not an image")
    return str(folder)


@pytest.mark.parametrize("name, why", [("zero.jpg", "empty file"), ("text.jpg", "not an image")])
def test_a_run_whose_only_input_is_unreadable_fails_with_one_line(tmp_path, name, why):
    model = tiny_model(tmp_path / "m.onnx")
    bad = tmp_path / name
    bad.write_text("" if name == "zero.jpg" else "hello")
    result = edge("run", "--model", model, "--source", bad, "--jsonl", "-")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"edge: error: {bad}: cannot read image ({why}") and \
        result.stderr.count("\n") == 1, result.stderr
    detect = edge("detect", model, bad)
    assert detect.returncode == 1 and f"edge: error: {bad}: cannot read image ({why}" in detect.stderr


def test_a_folder_with_some_unreadable_images_warns_per_file_and_runs_the_rest(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    folder = images(tmp_path / "pics", 3, bad=("text.jpg", "zero.jpg"))
    result = edge("run", "--model", model, "--source", folder, "--jsonl", "-")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("edge: warning: ")]
    assert warnings == [f"edge: warning: {folder}/text.jpg: cannot read image (not an image, or a format this OpenCV "
                        "build cannot decode); skipped",
                        f"edge: warning: {folder}/zero.jpg: cannot read image (empty file); skipped"]
    assert len(result.stdout.splitlines()) == 3 and "edge: error" not in result.stderr
    bench = edge("bench", model, "--images", folder, "--runs", 2, "--json")
    assert bench.returncode == 0 and json.loads(bench.stdout)["images"] == 3 and bench.stderr.count("; skipped") == 2


def test_a_folder_of_only_unreadable_images_fails(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    folder = images(tmp_path / "pics", 0, bad=("text.jpg", "zero.jpg"))
    result = edge("run", "--model", model, "--source", folder, "--jsonl", "-")
    assert result.returncode == 1 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"edge: error: {folder}: none of its 2 input(s) could be read (each is named above); "
                      "nothing inferred"], result.stderr
    bench = edge("bench", model, "--images", folder, "--runs", 2)
    assert bench.returncode == 1 and bench.stderr.splitlines()[-1].startswith(f"edge: error: {folder}: none of ")


def test_a_folder_gives_every_image_once_and_its_events_name_the_file(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    folder = images(tmp_path / "pics", 3)
    result = edge("run", "--model", model, "--source", folder, "--jsonl", "-")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["seq"], e["file"]) for e in events] == [(i, f"{folder}/{i}.png") for i in range(3)]
    assert events[0]["schema_version"] == SCHEMA_VERSION == 3 and "pics: 3 captured, 0 dropped" in result.stderr
    for event in events:
        jsonschema.validate(event, load_schema())


def test_every_frame_of_a_video_beside_a_folder_and_no_file_on_live_events(tmp_path):
    model, video = tiny_model(tmp_path / "m.onnx"), write_video(tmp_path / "clip.avi", 12)
    result = edge("run", "--model", model, "--source", video, "--source", images(tmp_path / "pics", 2), "--jsonl", "-")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["seq"], e["file"]) for e in events if e["source"] == "clip"] == [(i, video) for i in range(12)]
    assert [e["seq"] for e in events if e["source"] == "pics"] == [0, 1]
    live = edge("run", "--model", model, "--source", "synthetic:32x32@0", "--jsonl", "-", "--max-frames", 2)
    assert [("file" in json.loads(line)) for line in live.stdout.splitlines()] == [False, False]


def test_without_a_sink_events_go_to_stdout_and_stderr_says_so(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    result = edge("run", "--model", model, "--source", images(tmp_path / "pics", 2))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [0, 1]
    notices = [line for line in result.stderr.splitlines() if "no sink given" in line]
    assert notices == ["edge: no sink given (--jsonl, --mqtt, --http, --webhook or the config's sinks): printing the "
                       "events to stdout as JSON lines"]
    assert "with none, events are printed to stdout as JSON lines" in " ".join(edge("run", "--help").stdout.split())
