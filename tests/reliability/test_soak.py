"""Soak: `edge run` with JSONL rotation and a SIGHUP reload every few seconds (alternating a good and a NaN model)
for EDGE_SOAK_SECONDS (default 60); memory and file descriptors must stay flat, nothing may fail.

    EDGE_SOAK_SECONDS=14400 python -m pytest -m slow tests/reliability/test_soak.py -s
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ..stream_helpers import tiny_model
from .test_daemon_hardening import nan_model


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.slow
def test_soak(tmp_path):
    seconds = float(os.environ.get("EDGE_SOAK_SECONDS", "60"))
    models = [tiny_model(tmp_path / "good.onnx"), nan_model(tmp_path / "nan.onnx")]
    config = tmp_path / "c.yaml"

    def write(model):
        config.write_text(yaml.safe_dump({
            "model": {"path": model}, "sources": [{"uri": "synthetic:320x240@30", "name": "cam"}],
            "sinks": {"jsonl": {"path": str(tmp_path / "events.jsonl"), "max_bytes": 200_000, "backups": 3}}}))

    write(models[0])
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True)
    samples, reloads = [], 0
    try:
        time.sleep(5)  # warm: model loaded, allocator settled
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            reloads += 1
            write(models[reloads % 2])
            proc.send_signal(signal.SIGHUP)
            time.sleep(3)
            assert proc.poll() is None, "the daemon died"
            samples.append((rss_kib(proc.pid), len(os.listdir(f"/proc/{proc.pid}/fd"))))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    print(f"soak: {seconds:.0f} s, {reloads} reloads, RSS {samples[0][0]} -> {samples[-1][0]} KiB "
          f"(max {max(s[0] for s in samples)}), fds {samples[0][1]} -> {samples[-1][1]}")
    assert proc.returncode == 0, err[-2000:]
    assert max(s[1] for s in samples) <= samples[0][1] + 4, samples  # no descriptor leak
    assert samples[-1][0] < samples[0][0] * 1.5 + 50_000, samples  # no unbounded growth
    assert "Traceback" not in err and "cannot deliver" not in err
    assert (tmp_path / "events.jsonl.1").exists()
