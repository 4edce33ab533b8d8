"""ONNX Runtime's spinning threads: `model.spin` / `--spin` reach the session, and a paced loop turns them off."""
from __future__ import annotations

import subprocess
import sys

import pytest

from edge import Detector
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


@pytest.mark.parametrize("flags, said", [((), "spin on"), (("--max-fps", "100"), "spin off"),
                                         (("--max-fps", "100", "--spin"), "spin on")])
def test_edge_run_says_whether_the_threads_spin(tmp_path, flags, said):
    model = tiny_model(tmp_path / "m.onnx")
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--model", model, "--source", "synthetic:64x48@30",
                             "--max-frames", "2", "--jsonl", str(tmp_path / "e.jsonl"), *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"onnxruntime threads {said} (--spin)" in result.stderr
