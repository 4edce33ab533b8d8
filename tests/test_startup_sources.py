"""A camera that is down at start does not stop `edge run`: the real CLI in a subprocess keeps the working
sources running, retries the dead one until it comes up, feeds the watchdog meanwhile, and reports per-source
state on /healthz, /readyz and /metrics; --require-sources keeps the strict start-up."""
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from edge.stream.sources.synthetic import render

from .stream_helpers import tiny_model, write_video
from .test_daemon import NotifySocket, count, daemon_env, has


def free_port() -> int:
    """A local TCP port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MjpegServer:
    """A local HTTP MJPEG camera: multipart/x-mixed-replace JPEG parts at about 20 fps, as IP cameras serve them."""

    def __init__(self, port: int):
        closing = self.closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not closing.is_set():
                        jpeg = cv2.imencode(".jpg", render(i, 96, 64))[1].tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                         % (len(jpeg), jpeg))
                        self.wfile.flush()
                        i += 1
                        time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Lines:
    """Collects a subprocess's stdout lines (JSONL events) in a thread."""

    def __init__(self, stream):
        self.lines: list = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def sources(self) -> list:
        return [json.loads(line)["source"] for line in list(self.lines)]


def get(url):
    """(status, JSON body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(predicate, limit=20.0):
    """Poll until predicate() is true (returns True) or `limit` seconds pass (returns False)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_camera_down_at_start_comes_up_without_a_restart(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    clip = write_video(tmp_path / "clip.avi", 900)  # 30 s at 30 fps, played in real time: outlasts the test
    cam_port, http_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", model, "--source", f"clip={clip}",
                                 "--source", f"cam=http://127.0.0.1:{cam_port}/x", "--jsonl", "-",
                                 "--http", f"127.0.0.1:{http_port}"], stdout=subprocess.PIPE, stderr=err, text=True)
    events, camera = Lines(proc.stdout), None
    try:
        assert wait_for(lambda: events.sources().count("clip") >= 10), (tmp_path / "stderr.txt").read_text()
        assert wait_for(lambda: json.loads(get(base + "/healthz")[1])["sources"]["cam"]["reconnects"] >= 1)
        code, body = get(base + "/healthz")
        cam = json.loads(body)["sources"]["cam"]
        assert set(json.loads(body)["loop"]) == {"overlap", "batch", "inferences", "frames_per_inference"}
        assert code == 200 and cam["state"].startswith("down since ") and "cannot open stream" in cam["error"]
        code, body = get(base + "/readyz")
        reasons = json.loads(body)["reasons"]
        assert code == 503 and any(r.startswith("source cam: down since ") and "reconnect attempt" in r
                                   for r in reasons), reasons
        assert "cam" not in events.sources() and proc.poll() is None

        camera = MjpegServer(cam_port)  # the camera comes back: the next retry (backoff capped at 10 s) opens it
        assert wait_for(lambda: events.sources().count("cam") >= 5), (tmp_path / "stderr.txt").read_text()
        seen = len(events.lines)
        assert wait_for(lambda: {"clip", "cam"} <= set(events.sources()[seen:]))  # both keep flowing
        code, body = get(base + "/healthz")
        assert json.loads(body)["sources"]["cam"]["state"] == "up" and proc.poll() is None  # same process
        code, metrics = get(base + "/metrics")
        reconnects = next(line for line in metrics.splitlines()
                          if line.startswith('edge_source_reconnects_total{source="cam"}'))
        assert float(reconnects.split()[-1]) >= 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        if camera is not None:
            camera.close()
    log = (tmp_path / "stderr.txt").read_text()
    assert "retrying (the other sources run)" in log and "cam: opened after" in log, log


def test_the_watchdog_keeps_pinging_while_every_source_is_down(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    model = tiny_model(tmp_path / "m.onnx")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", model, "--source",
                             f"cam=rtsp://127.0.0.1:{free_port()}/x", "--jsonl", str(tmp_path / "events.jsonl")],
                            stderr=subprocess.PIPE, text=True, env=daemon_env(notify, WATCHDOG_USEC="400000"))
    try:
        messages = notify.collect(has("READY=1"), 20)
        ready = next(m for m in messages if "READY=1" in m)  # up while the camera is retried...
        assert any(line.startswith("STATUS=") and "source(s) down: cam" in line for line in ready), ready
        notify.messages = []
        messages = notify.collect(lambda m: count(m, "WATCHDOG=1") >= 8, 10)
        assert count(messages, "WATCHDOG=1") >= 8 and proc.poll() is None  # ...and the watchdog stays fed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        notify.close()
    assert proc.returncode == 0, err
    events = tmp_path / "events.jsonl"
    assert "cam: rtsp://" in err and "reconnect attempt" in err and not (events.exists() and events.read_text())


def test_require_sources_makes_start_up_strict(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    port = free_port()
    dead = f"rtsp://127.0.0.1:{port}/x"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "edge", "run", "--model", model, "--source", "synthetic:64x48@30",
                             "--source", dead, "--require-sources", "--jsonl", "-"], capture_output=True, text=True,
                            timeout=60)
    ours = [line for line in result.stderr.splitlines() if line.startswith("edge:")]  # FFmpeg may add its own
    assert result.returncode == 1 and result.stdout == "" and time.monotonic() - started < 30
    assert ours == [f"edge: error: {dead}: nothing accepts connections at 127.0.0.1:{port} (camera off or "
                    "rebooting, RTSP disabled, or wrong port)"], result.stderr
