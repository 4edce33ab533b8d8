"""examples/anywhere.yaml, the README's "Examples" config, is accepted and runs on any machine from a checkout."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANYWHERE = "examples/anywhere.yaml"  # relative, as the README runs it from the checkout root

pytest.importorskip("yaml")


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_check_config_accepts_it():
    result = edge("check-config", ANYWHERE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{ANYWHERE}: ok (model edge/demo; 1 source(s); sinks: jsonl)")


def test_edge_run_runs_it_and_its_zone_and_line_produce_events(tmp_path):
    result = edge("run", "--config", ANYWHERE, "--max-frames", "40", "--all-frames",  # no drops: deterministic
                  "--media-dir", str(tmp_path / "media"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events].count("detections") == 40
    assert {e["source"] for e in events} == {"shapes"} and any(e["detections"] for e in events)
    assert {"zone_enter", "line_cross"} & {e["type"] for e in events}  # the shapes cross the middle of the frame
    assert "40 frames inferred" in result.stderr
