"""ONNX Runtime's spinning threads: `model.spin` / `--spin` reach the session, and a paced loop turns them off."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest

import edge.service.daemon as daemon_module
from edge import Detector
from edge.service.config import parse
from edge.service.daemon import Daemon
from edge.settings import Config, ModelConfig, PipelineConfig, SourceConfig

from .stream_helpers import tiny_model

SPINNING = "session.intra_op.allow_spinning"


def session_spin(detector: Detector) -> str:
    """What the ORT session was created with ('' when left to ORT's default)."""
    return detector.backend._session.get_session_options().get_session_config_entry(SPINNING)


@pytest.mark.parametrize("spin, entry", [(None, ""), (True, "1"), (False, "0")])
def test_spin_reaches_the_onnxruntime_session(tmp_path, spin, entry):
    if spin is None:  # ORT raises for an entry never set: the default is left alone
        with pytest.raises(Exception):
            session_spin(Detector.load(tiny_model(tmp_path / "m.onnx")))
    else:
        assert session_spin(Detector.load(tiny_model(tmp_path / "m.onnx"), spin=spin)) == entry


@pytest.mark.parametrize("spin, max_fps, loaded", [(None, None, None), (None, 5.0, False), (True, 5.0, True),
                                                   (False, None, False)])
def test_a_paced_loop_does_not_spin_unless_asked(spin, max_fps, loaded):
    config = Config(ModelConfig("m.onnx", spin=spin), [SourceConfig("synthetic")], pipeline=PipelineConfig(max_fps=max_fps))
    assert config.run_model().spin is loaded
    assert config.model.spin is spin  # the settings themselves are left as given


@pytest.mark.parametrize("flags, said", [((), "spin on until the loop turns out to wait for its frames"),
                                         (("--max-fps", "100"), "spin off"),
                                         (("--max-fps", "100", "--spin"), "spin on")])
def test_edge_run_says_whether_the_threads_spin(tmp_path, flags, said):
    model = tiny_model(tmp_path / "m.onnx")
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--model", model, "--source", "synthetic:64x48@30",
                             "--max-frames", "2", "--jsonl", str(tmp_path / "e.jsonl"), *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"onnxruntime threads {said} (--spin)" in result.stderr


def run_until(daemon, frames: int) -> None:
    """Run the daemon's frame loop until `frames` are inferred."""
    def stop_when_done():
        deadline = time.monotonic() + 60
        while daemon.pipeline.inferred < frames and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.pipeline.stop()

    stopper = threading.Thread(target=stop_when_done)
    stopper.start()
    assert daemon.run() == 0
    stopper.join()


@pytest.mark.parametrize("busy_limit, spin_after", [(daemon_module.SPIN_BUSY, "0"), (0.0, None)])
def test_a_loop_that_waits_for_its_frames_stops_spinning(tmp_path, caplog, monkeypatch, busy_limit, spin_after):
    monkeypatch.setattr(daemon_module, "SPIN_BUSY", busy_limit)  # 0: no loop counts as waiting
    config = parse({"model": {"path": tiny_model(tmp_path / "m.onnx")}, "sources": [{"uri": "synthetic:64x48@200"}]})
    daemon = Daemon(config, lambda: config)
    first = daemon.pipeline.detector
    with caplog.at_level(logging.INFO, logger="edge"):
        run_until(daemon, daemon_module.SPIN_CHECK_FRAMES + 40)  # a 64x48 model at 200 fps: inference ~1 % busy
    if spin_after is None:
        assert daemon.pipeline.detector is first and "no longer spin" not in caplog.text
    else:
        assert daemon.pipeline.detector is not first and session_spin(daemon.pipeline.detector) == spin_after
        assert "onnxruntime threads no longer spin between runs" in caplog.text
    assert daemon.pipeline.status()["model_reloads"]["succeeded"] == 0  # the same model: not a reload


def test_a_spin_setting_is_kept():
    config = parse({"model": {"path": "m.onnx", "spin": True}, "sources": [{"uri": "synthetic"}]})
    assert config.run_model().spin is True and daemon_module.inference_share(
        {"fps": 20.0, "loop": {"frames_per_inference": 2.0}, "latency_ms": {"inference": {"p50": 40.0}}}) == 0.4


@pytest.mark.parametrize("change", ["relinked", "rewritten"])
def test_the_spin_swap_reloads_the_file_that_is_running(tmp_path, caplog, change):
    first, other = tiny_model(tmp_path / "a.onnx"), tiny_model(tmp_path / "b.onnx")
    link = tmp_path / "current.onnx"
    link.symlink_to(first)
    config = parse({"model": {"path": str(link)}, "sources": [{"uri": "synthetic:64x48@200"}]})
    daemon = Daemon(config, lambda: config)

    def change_model():  # what `edge models install` without --reload, or a copy over the file, does meanwhile
        while daemon.pipeline.inferred < 20:
            time.sleep(0.01)
        if change == "relinked":
            (tmp_path / "next.onnx").symlink_to(other)
            os.replace(tmp_path / "next.onnx", link)
        else:
            os.utime(first, ns=(0, 0))

    changer = threading.Thread(target=change_model)
    changer.start()
    with caplog.at_level(logging.INFO, logger="edge"):
        run_until(daemon, daemon_module.SPIN_CHECK_FRAMES + 40)
    changer.join()
    if change == "relinked":  # the same file as before, without spinning; the new one waits for a reload
        assert daemon.pipeline.detector.model_path == os.path.realpath(first)
        assert session_spin(daemon.pipeline.detector) == "0"
    else:
        assert "keep spinning between runs: their reload failed" in caplog.text and "changed since it was loaded" in caplog.text
