"""`edge doctor` on a faked device (paths, groups, libraries) and `edge health` against a real daemon and a stub."""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from edge.cli import main
from edge.service import doctor, health

from .stream_helpers import tiny_model


@pytest.fixture
def device(tmp_path, monkeypatch):
    """A fake Jetson-ish device: /dev with one camera the user may not open, L4T and board files, a state dir."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("video0", "media0"):
        (dev / name).touch()
        os.chmod(dev / name, 0o660)
    (tmp_path / "nv_tegra_release").write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n")
    (tmp_path / "model").write_text("NVIDIA Jetson Orin Nano Developer Kit\0")
    (tmp_path / "state").mkdir()
    for name, value in (("DEV_DIR", dev), ("TEGRA_RELEASE", tmp_path / "nv_tegra_release"),
                        ("PI_MODEL", tmp_path / "model"), ("STATE_DIR", tmp_path / "state"),
                        ("CONFIG_DIR", tmp_path / "etc")):
        monkeypatch.setattr(doctor, name, str(value))
    for name in ("STATE_DIRECTORY", "CONFIGURATION_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(doctor, "identity", lambda: (1000, {1000}, "pi"))
    return tmp_path


def doctor_json(capsys, *args):
    code = main(["doctor", "--json", *map(str, args)])
    return code, json.loads(capsys.readouterr().out)


def config(tmp_path, model, uri="v4l2:0", **model_options):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": {"path": str(model), **model_options}, "sources": [{"uri": uri}]}))
    return path


def test_doctor_reports_blocking_problems_with_one_fix_each(device, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "probe_module", lambda name: {"numpy": "2.0", "cv2": "4.10"}.get(name))
    monkeypatch.setattr(doctor, "gstreamer", lambda: False)
    monkeypatch.setattr(doctor, "MIN_FREE_MB", 1 << 40)
    code, report = doctor_json(capsys, "--config", config(device, device / "state" / "models" / "current"))
    assert code == 1 and not report["ok"]
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["jetson"]["detail"] == "L4T R35.4.1" and checks["board"]["detail"].startswith("NVIDIA Jetson Orin")
    assert checks["opencv"]["detail"] == "4.10, GStreamer no"
    camera = checks[f"camera {device}/dev/video0"]
    assert camera["status"] == "fail" and "pi is not in group" in camera["detail"]
    assert checks[f"camera {device}/dev/media0"]["status"] == "warn"  # not used by the config: not blocking
    fixes = report["fixes"]
    assert len(fixes) == 4, fixes  # no backend, camera group, no model, disk
    assert any(f.startswith("pip install 'edge[onnx]'") for f in fixes)
    assert any(f.startswith("sudo usermod -aG ") and " pi " in f for f in fixes)
    assert any("edge models install BUNDLE" in f for f in fixes) and any("free disk space" in f for f in fixes)


def test_doctor_passes_when_the_configured_model_has_its_backend(device, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "identity", lambda: (1000, {0, 1000}, "pi"))  # in the devices' group now
    monkeypatch.setattr(doctor, "MIN_FREE_MB", 1)
    model = tiny_model(tmp_path / "m.onnx")
    code, report = doctor_json(capsys, "--config", config(device, model))
    assert code == 0 and report["ok"] and report["fixes"] == [], report
    assert {c["name"]: c["status"] for c in report["checks"]}["model"] == "ok"
    code, report = doctor_json(capsys, "--config", config(device, model, providers=["NoSuchExecutionProvider"]))
    assert code == 1 and "NoSuchExecutionProvider" in json.dumps(report["checks"])


def test_doctor_text_output_ends_with_fix_lines(device, capsys, monkeypatch):
    monkeypatch.setattr(doctor, "MIN_FREE_MB", 1 << 40)
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("OK    python") and lines[-1].startswith("fix: free disk space")


def test_l4t_release_parsing():
    assert doctor.l4t_release("# R36 (release), REVISION: 3.0, GCID: 1\n") == "R36.3.0"
    assert doctor.l4t_release("") == "unknown"


class Stub(BaseHTTPRequestHandler):
    """/readyz answers what the server was told to."""

    def do_GET(self):
        code, body = self.server.answers.get(self.path, (404, {}))
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.answers = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_health_codes_from_a_stub(stub):
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    reasons = ["source cam: last frame 12.0 s ago (max 10 s)"]
    stub.answers["/readyz"] = (503, {"ready": False, "reasons": reasons})
    assert health.check(url) == (1, {"ok": False, "url": url, "reasons": reasons})
    stub.answers["/readyz"] = (401, {"error": "missing or wrong bearer token"})
    code, report = health.check(url)
    assert code == 3 and "EDGE_HTTP_TOKEN" in report["reasons"][0]
    stub.server_close()
    code, report = health.check(url, timeout=2)
    assert code == 3 and report["reasons"][0].startswith("not running or unreachable")


def test_health_against_a_running_daemon(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", model, "--source", "synthetic:64x48@15",
                             "--http", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "serving on" not in line:
            line = proc.stderr.readline()
            assert line, "the daemon exited before serving"
        url = line.split("serving on ")[1].strip()
        result = subprocess.run([sys.executable, "-m", "edge", "health", "--url", url, "--wait", "30", "--json"],
                                capture_output=True, text=True, timeout=60)
        report = json.loads(result.stdout)
        assert result.returncode == 0 and report["ok"], result
        assert report["latest"]["source"] == "synthetic" and report["latest"]["model"]["id"] == "m.onnx"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    result = subprocess.run([sys.executable, "-m", "edge", "health", "--url", url], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 3 and "not running" in result.stdout


def test_health_finds_the_url_and_token_in_the_config(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("model: {path: m.onnx}\nsources: [{uri: synthetic}]\n"
                      "sinks: {http: {listen: '0.0.0.0:9123', token_env: TEST_HEALTH_TOKEN}}\n")
    monkeypatch.setenv("TEST_HEALTH_TOKEN", "s3cret")
    assert health.url_from_config(str(config)) == ("http://127.0.0.1:9123", "s3cret")
    config.write_text("model: {path: m.onnx}\nsources: [{uri: synthetic}]\nsinks: {http: {listen: '[::]:80', token: t}}\n")
    assert health.url_from_config(str(config)) == ("http://[::1]:80", "t")
