"""Deployment thresholds (issue 11, item 12): `edge run`, `detect` and `demo` use a per-family deployment default,
not the evaluation thresholds; flag > config > bundle manifest `deployment` > family default; `edge eval` keeps
Ultralytics val's settings; `edge detect` says which thresholds it used."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge import Detector
from edge.bundle import MANIFEST, write_bundle
from edge.cli.commands import EVAL_THRESHOLDS, _detector, build_parser
from edge.contract import deployment_defaults, family_defaults
from edge.demo import BUNDLE
from edge.detector import load_detector
from edge.scene import CLASSES, demo_frame
from edge.settings import ModelConfig

from .stream_helpers import tiny_model, write_video


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=120)


def thresholds_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("edge: thresholds "))


def test_family_deployment_defaults():
    assert deployment_defaults("yolo11", 640) == family_defaults("yolo11", 640)  # Ultralytics predict: 0.25 / 0.7
    for size, iou in ((640, 0.7), (416, 0.65)):  # the official demo: the config head's IoU, drawn from score 0.6
        damo = deployment_defaults("damo-yolo", size)
        assert (damo.conf, damo.iou, damo.multi_label) == (0.6, iou, False)
        assert family_defaults("damo-yolo", size).conf in (0.05, 0.03)  # the evaluation ones stay the reference


def test_the_demo_model_streams_about_its_five_shapes_not_the_evaluation_crowd():
    streaming = load_detector(ModelConfig(path=BUNDLE))
    reference = Detector.load(BUNDLE)  # the Python API's default: the reference (evaluation) thresholds
    assert (streaming.conf, streaming.thresholds_from["conf"]) == (0.5, "bundle manifest")
    assert (streaming.iou, streaming.multi_label, streaming.thresholds_from["iou"]) == \
        (0.65, False, "damo-yolo deployment default")
    for seq in range(0, 36, 5):
        frame = demo_frame(seq)
        found = streaming(frame)
        assert 5 <= len(found) <= 6 and set(found.names) == set(CLASSES), (seq, found.names)
        assert len(reference(frame)) > 50


def test_precedence_flag_over_config_over_manifest_over_family(tmp_path):
    pytest.importorskip("yaml")
    model = tiny_model(tmp_path / "m.onnx")
    bundle = write_bundle(str(tmp_path / "bundle"), model, Detector.load(model).contract)
    manifest_path = os.path.join(bundle, MANIFEST)
    manifest = json.loads(open(manifest_path).read())
    manifest["deployment"] = {"conf": 0.4}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    video = write_video(tmp_path / "clip.avi", 2)

    def used(model_path, *flags, config_conf=None):
        config = tmp_path / "config.yaml"
        config.write_text(f"model: {{path: {model_path}}}\nsources: [{{uri: {video}}}]\n"
                          + (f"thresholds: {{conf: {config_conf}}}\n" if config_conf is not None else ""))
        result = edge("run", "--config", config, "--max-frames", 1, "--jsonl", os.devnull, *flags)
        assert result.returncode == 0, result.stderr
        return thresholds_line(result.stderr)

    assert used(bundle, "--conf", 0.2, config_conf=0.3).startswith("edge: thresholds conf 0.2 (--conf); ")
    assert used(bundle, config_conf=0.3).startswith("edge: thresholds conf 0.3 (config); ")
    assert used(bundle) == ("edge: thresholds conf 0.4 (bundle manifest); iou 0.7, max_det 300, multi_label off "
                            "(yolo11 deployment default)")
    assert used(model) == "edge: thresholds conf 0.25, iou 0.7, max_det 300, multi_label off (yolo11 deployment default)"


def test_detect_says_which_thresholds_it_used(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    result = edge("detect", BUNDLE, image, "--json", "--iou", 0.5)
    assert result.returncode == 0, result.stderr
    assert thresholds_line(result.stderr) == ("edge: thresholds conf 0.5 (bundle manifest); iou 0.5 (--iou); max_det "
                                              "500, multi_label off (damo-yolo deployment default)")
    record = json.loads(result.stdout)
    assert record["thresholds"] == {"conf": 0.5, "iou": 0.5, "max_det": 500, "multi_label": False, "agnostic": False,
                                    "from": {"conf": "bundle manifest", "iou": "--iou",
                                             "max_det": "damo-yolo deployment default",
                                             "multi_label": "damo-yolo deployment default"}}


def test_eval_keeps_the_evaluation_thresholds():
    args = build_parser().parse_args(["eval", BUNDLE, "--images", ".", "--annotations", "x.json"])
    detector = _detector(args, **EVAL_THRESHOLDS)  # what cmd_eval loads
    assert (detector.conf, detector.iou, detector.max_det, detector.multi_label) == (0.001, 0.7, 300, True)
