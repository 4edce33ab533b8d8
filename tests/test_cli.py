"""The `edge` command as a user runs it: output formats, exit codes, one-line errors."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from .onnx_models import constant_model, ultralytics_metadata, yolo11_output


def edge(*args, check=False):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture
def model(tmp_path):
    out = yolo11_output([[320, 320, 100, 60]], [[0.0, 0.9]])
    return constant_model(tmp_path / "m.onnx", (1, 3, 640, 640), {"output0": out}, ultralytics_metadata(["cat", "dog"]))


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), np.full((480, 640, 3), 90, np.uint8))
    return path


def test_detect_json_lines(model, image, tmp_path):
    result = edge("detect", model, image, image, "--json", "--save-dir", tmp_path / "out", check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    record = lines[0]
    assert record["source"] == str(image) and (record["width"], record["height"]) == (640, 480)
    assert record["detections"] == [{"class_id": 1, "name": "dog", "score": 0.9, "box": [270.0, 210.0, 370.0, 270.0]}]
    assert set(record["timings_ms"]) == {"preprocess", "inference", "postprocess"}
    assert cv2.imread(str(tmp_path / "out" / "frame.jpg")).shape == (480, 640, 3)


def test_detect_thresholds_are_flags(model, image):
    record = json.loads(edge("detect", model, image, "--json", "--conf", "0.95", check=True).stdout)
    assert record["detections"] == []


def test_info_json(model):
    info = json.loads(edge("info", model, "--json", check=True).stdout)
    assert info["family"] == "yolo11" and info["input"]["shape"] == [1, 3, 640, 640]
    assert info["postprocess"] == {"conf": 0.25, "iou": 0.7, "max_det": 300, "multi_label": False, "agnostic": False}
    assert "family yolo11" in edge("info", model, check=True).stdout


def test_bench_json(model, image, tmp_path):
    result = json.loads(edge("bench", model, "--images", image.parent, "--runs", "3", "--json", check=True).stdout)
    assert result["frames"] == 3 and result["fps"] > 0 and result["peak_rss_mb"] > 0
    assert set(result["latency_ms"]) == {"preprocess", "inference", "postprocess", "total"}


def test_eval_json(model, image, tmp_path):
    annotations = tmp_path / "instances.json"
    annotations.write_text(json.dumps({
        "images": [{"id": 1, "file_name": image.name, "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [270, 210, 100, 60], "area": 6000, "iscrowd": 0}],
        "categories": [{"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]}))
    # One perfect detection: COCO gives 100; Ultralytics' trapezoid drops to 0 at the last recall point, 99.5.
    for metric, perfect in (("coco", 100.0), ("ultralytics", 99.5)):
        result = json.loads(edge("eval", model, "--images", image.parent, "--annotations", annotations, "--metric", metric,
                                 "--json", check=True).stdout)
        assert result["images"] == 1 and result["metric"] == metric
        assert result["map50"] == pytest.approx(perfect) and result["map50_95"] == pytest.approx(perfect)


@pytest.mark.parametrize("args", [("detect",), ("detect", "m.onnx"), ("bogus",), ("detect", "m.onnx", "x.jpg", "--conf", "high")])
def test_usage_errors_exit_2(args):
    assert edge(*args).returncode == 2


def test_bad_model_is_one_line_without_traceback(tmp_path, image):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    for path in (broken, tmp_path / "missing.onnx", tmp_path / "model.xyz"):
        result = edge("detect", path, image)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("edge: error: ")


def test_unreadable_image_is_reported_and_others_still_run(model, image, tmp_path):
    result = edge("detect", model, tmp_path / "nope.jpg", image, "--json")
    assert result.returncode == 1
    assert "nope.jpg" in result.stderr and len(result.stdout.splitlines()) == 1
