"""The daemon's start-up signals (SIGHUP during the model load is remembered, SIGTERM stops cleanly) and the reload
self-test (NaN raw outputs, or a model that finds nothing where the running one finds objects, are refused)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from edge import Detector
from edge.errors import ModelError
from edge.service.config import parse
from edge.service.daemon import Daemon, self_test

from ..onnx_models import constant_model, ultralytics_metadata, yolo11_output
from ..stream_helpers import tiny_model

IMAGE = np.full((48, 64, 3), 114, np.uint8)


def model_with(path, boxes, scores) -> str:
    """A 64x64 YOLO11 model whose output holds these anchors (NaN allowed)."""
    out = yolo11_output(boxes, scores, num_anchors=84)
    return constant_model(path, (1, 3, 64, 64), {"output0": out}, ultralytics_metadata(["cat", "dog"], (64, 64)))


def nan_model(path) -> str:
    out = np.full((1, 6, 84), np.nan, np.float32)
    return constant_model(path, (1, 3, 64, 64), {"output0": out}, ultralytics_metadata(["cat", "dog"], (64, 64)))


def test_nan_raw_outputs_fail_the_self_test(tmp_path):
    detector = Detector.load(nan_model(tmp_path / "nan.onnx"))
    assert len(detector(IMAGE)) == 0  # NaN scores never pass the threshold: the boxes alone look fine
    with pytest.raises(ModelError, match="NaN or infinite"):
        self_test(detector, IMAGE)


def test_a_model_that_finds_nothing_where_the_running_one_finds_objects_is_refused(tmp_path):
    blind = Detector.load(model_with(tmp_path / "blind.onnx", [[32, 32, 16, 8]], [[0.0, 0.0]]))
    self_test(blind, IMAGE, running_found=0)  # nothing to find: fine
    with pytest.raises(ModelError, match="finds nothing on the latest frame"):
        self_test(blind, IMAGE, running_found=1)
    self_test(Detector.load(tiny_model(tmp_path / "ok.onnx")), IMAGE, running_found=1)


def test_a_reload_to_a_nan_model_keeps_the_running_one(tmp_path):
    data = {"sources": [{"uri": "synthetic:64x48@50"}], "pipeline": {"max_frames": 100}}
    good = parse({"model": {"path": tiny_model(tmp_path / "m.onnx")}, **data})
    bad = parse({"model": {"path": nan_model(tmp_path / "nan.onnx")}, **data})
    configs = [good]
    daemon = Daemon(good, lambda: configs[-1])

    def hup():
        while daemon.pipeline.inferred < 5:
            time.sleep(0.01)
        configs.append(bad)
        os.kill(os.getpid(), signal.SIGHUP)

    threading.Thread(target=hup, daemon=True).start()
    assert daemon.run() == 0
    status = daemon.pipeline.status()
    assert status["model_reloads"]["failed"] == 1 and "NaN" in status["model_reloads"]["last_error"]
    assert status["model"]["path"].endswith("m.onnx")


STARTUP = """
import logging, os, signal, sys
import edge.service.daemon as d
from edge.service.config import parse
logging.basicConfig(level=logging.INFO)
real = d.load_detector
def load(*args, **kwargs):
    os.kill(os.getpid(), signal.{signal})  # arrives while the model loads
    return real(*args, **kwargs)
d.load_detector = load
config = parse({{"model": {{"path": {model!r}}}, "sources": [{{"uri": "synthetic:64x48@30"}}],
                "pipeline": {{"max_frames": 30}}}})
sys.exit(d.Daemon(config, lambda: config).run())
"""


@pytest.mark.parametrize("sig, said", [("SIGHUP", "reload: model unchanged"), ("SIGTERM", "stopped during start-up")])
def test_signals_during_the_model_load(tmp_path, sig, said):
    code = textwrap.dedent(STARTUP.format(signal=sig, model=tiny_model(tmp_path / "m.onnx")))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # was -1 (killed by SIGHUP)
    assert said in result.stderr, result.stderr


def test_models_install_refuses_a_nan_model_too(tmp_path):
    from edge.bundle import write_bundle
    from edge.service.store import Store

    model = nan_model(tmp_path / "nan.onnx")
    bundle = write_bundle(str(tmp_path / "nan-bundle"), model, Detector.load(model).contract)
    with pytest.raises(ModelError, match="self-test failed: self-test: output 0 of the model holds NaN"):
        Store(str(tmp_path / "state")).install(bundle)
    assert not (tmp_path / "state" / "current").exists()
