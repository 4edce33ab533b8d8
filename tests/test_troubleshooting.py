"""The README's Troubleshooting section, reproduced: each common failure prints one line that says what to do.

Camera busy, RTSP credentials, MQTT broker down and a missing extra are here; a --family that contradicts the
model is in test_model_facts.py. The README quotes these lines.
"""
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest

from edge.demo import BUNDLE
from edge.errors import SourceError
from edge.stream.sources.network import NetworkSource, redact, rtsp_problem
from edge.stream.sources.v4l2 import V4L2Source

from .test_sinks_support import free_port

ROOT = Path(__file__).resolve().parents[1]


class FakeCamera:
    """An RTSP server on loopback that answers OPTIONS, and DESCRIBE of /stream only with Digest credentials
    admin:secret (401 otherwise, 404 for other paths); enough for FFmpeg and for the probe to give up on."""

    REALM, NONCE = "IP Camera", "4f2b7a"

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, credentials: str = "", path: str = "/stream") -> str:
        return f"rtsp://{credentials}127.0.0.1:{self.port}{path}"

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, uri, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                self.requests.append((method, uri, headers.get("authorization", "")))
                conn.sendall(self._answer(method, uri, headers).encode())

    def _answer(self, method: str, uri: str, headers: dict) -> str:
        cseq = headers.get("cseq", "1")
        if method == "OPTIONS":
            return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY\r\n\r\n"
        if not uri.endswith("/stream"):
            return f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        if self._authorized(headers.get("authorization", ""), uri):
            return f"RTSP/1.0 415 Unsupported Media Type\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        return (f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"{self.REALM}\"\r\n"
                f"WWW-Authenticate: Digest realm=\"{self.REALM}\", nonce=\"{self.NONCE}\"\r\n"
                "Content-Length: 0\r\n\r\n")

    def _authorized(self, header: str, uri: str) -> bool:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
        if not header.startswith("Digest") or fields.get("username") != "admin":
            return False

        def md5(text):
            return hashlib.md5(text.encode()).hexdigest()

        expected = md5(f"{md5(f'admin:{self.REALM}:secret')}:{self.NONCE}:{md5('DESCRIBE:' + fields.get('uri', ''))}")
        return fields.get("response") == expected

    def close(self):
        self.server.close()


@pytest.fixture
def camera():
    fake = FakeCamera()
    yield fake
    fake.close()


def test_rtsp_problem_names_the_cause(camera):
    assert rtsp_problem(camera.url()) == ("the camera wants a user name and password (401 Unauthorized): "
                                          "rtsp://USER:PASSWORD@host/path")
    assert rtsp_problem(camera.url("admin:wrong@")) == ("the camera refused the user name or password "
                                                        "(401 Unauthorized); check them in the URL")
    assert rtsp_problem(camera.url("admin:wrong@", "/live")).startswith("the camera has no stream at this path (404")
    assert rtsp_problem(camera.url("admin:secret@")) == "the camera answered RTSP status 415 to DESCRIBE"
    assert all("secret" not in auth and "wrong" not in auth for _, _, auth in camera.requests)  # digest, no password
    port = free_port()
    assert rtsp_problem(f"rtsp://127.0.0.1:{port}/x") == (
        f"nothing accepts connections at 127.0.0.1:{port} (camera off or rebooting, RTSP disabled, or wrong port)")


def test_rtsp_probe_gives_up_on_a_silent_host():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel's backlog) and never answers
    try:
        port = silent.getsockname()[1]
        assert rtsp_problem(f"rtsp://127.0.0.1:{port}/x", timeout=0.2).startswith(
            f"no answer from 127.0.0.1:{port} within 0.2 s")
    finally:
        silent.close()


def test_the_password_never_reaches_the_logs():
    assert redact("rtsp://admin:s%40cret@cam.local:554/h264") == "rtsp://admin:***@cam.local:554/h264"
    assert redact("rtsp://cam.local/h264") == "rtsp://cam.local/h264"
    source = NetworkSource("rtsp://admin:secret@127.0.0.1:9/x")
    assert source.uri == "rtsp://admin:***@127.0.0.1:9/x" and source.target == "rtsp://admin:secret@127.0.0.1:9/x"


def test_edge_run_says_the_camera_refused_the_password(camera, tmp_path):
    """RTSP auth failure, end to end: the retried source's line names the cause, without the password."""
    args = [sys.executable, "-m", "edge", "run", "--model", BUNDLE, "--source", f"door={camera.url('admin:wrong@')}",
            "--jsonl", str(tmp_path / "events.jsonl")]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stderr.readline()]
        while lines[-1] and "door:" not in lines[-1] and len(lines) < 20:  # after the start-up info lines
            lines.append(process.stderr.readline())
    finally:
        process.terminate()
        process.wait(30)
    assert lines[-1] == (f"edge: warning: door: rtsp://admin:***@127.0.0.1:{camera.port}/stream: the camera refused "
                        "the user name or password (401 Unauthorized); check them in the URL; retrying (the other "
                        "sources run) in 0.5 s\n"), lines


class ClosedCapture:
    """cv2.VideoCapture as it is when the device cannot be opened."""

    def __init__(self, *args):
        pass

    def isOpened(self):
        return False

    def release(self):
        pass


def test_a_camera_that_exists_but_does_not_open_is_busy_or_not_a_capture_node(tmp_path, monkeypatch):
    device = tmp_path / "video0"
    device.write_bytes(b"")
    monkeypatch.setattr(cv2, "VideoCapture", ClosedCapture)
    with pytest.raises(SourceError) as error:
        V4L2Source(str(device), str(device)).open()
    assert str(error.value) == (f"{device}: cannot open camera: in use by another program (fuser -v {device} names "
                                "it), or not a capture node (a USB camera's second node carries metadata only: "
                                "v4l2-ctl --list-devices)")
    if os.geteuid() != 0:  # root may open anything
        device.chmod(0)
        with pytest.raises(SourceError, match="no permission to use .* add the user to group video"):
            V4L2Source(str(device), str(device)).open()


def test_edge_run_keeps_running_while_the_broker_is_down(tmp_path):
    pytest.importorskip("paho.mqtt.client")
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--model", BUNDLE, "--source", "synthetic",
                             "--max-frames", "3", "--jsonl", "-", "--mqtt", f"mqtt://127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 3
    assert (f"edge: warning: mqtt: 127.0.0.1:{port}: cannot connect ([Errno 111] Connection refused); is the broker running "
            "and reachable from here? Retrying every 5 s at most, up to 1000 events queued meanwhile") in result.stderr


@pytest.mark.parametrize("module, extra, args", [
    ("onnxruntime", "onnx", ["detect", BUNDLE, "x.jpg"]),
    ("paho", "mqtt", ["run", "--model", BUNDLE, "--source", "synthetic", "--mqtt", "mqtt://127.0.0.1"]),
    ("prometheus_client", "http", ["run", "--model", BUNDLE, "--source", "synthetic", "--http", "127.0.0.1:0"]),
    ("yaml", "service", ["check-config", "examples/anywhere.yaml"]),
])
def test_a_missing_extra_names_the_pip_install(module, extra, args):
    """Each optional library, when missing, is one error line with the extra that installs it."""
    code = f"import sys; sys.modules[{module!r}] = None\nfrom edge.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: error: ") and f"pip install 'edge[{extra}]'" in lines[0]
