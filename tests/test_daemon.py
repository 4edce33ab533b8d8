"""`edge run` under systemd: the notify protocol on a real datagram socket, the watchdog fed by the frame loop
(through a camera outage, not through a hung detector), SIGTERM draining, journald priorities, and SIGHUP reloads
with a hot model swap that loses no frame."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import yaml

import edge.service.daemon
from edge.service.config import parse
from edge.service.daemon import Daemon
from edge.service.systemd import notify, watchdog_period
from edge.stream.sources import Source

from .stream_helpers import tiny_model, write_video


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def collect(self, until, limit=30.0):
        """Receive messages until until(messages) holds (or `limit` seconds pass); returns the messages."""
        deadline = time.monotonic() + limit
        while not until(self.messages) and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                break
        return self.messages

    def close(self):
        self.sock.close()


def has(key):
    return lambda messages: any(key in m for m in messages)


def count(messages, key):
    return sum(key in m for m in messages)


def daemon_env(notify, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS")}
    return {**env, "NOTIFY_SOCKET": notify.path, **extra}


def write_config(path, model, source, **sections):
    data = {"model": {"path": str(model)}, "sources": [{"uri": str(source), "name": "clip"}], **sections}
    path.write_text(yaml.safe_dump(data))
    return path


def test_notify_abstract_socket_and_watchdog_pid(monkeypatch):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"edge-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert notify("STATUS=hello") and sock.recv(100) == b"STATUS=hello"
    sock.close()
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period() == 1.5
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_period() is None
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify("READY=1")


def test_notify_sequence_watchdog_status_and_sigterm(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    config = write_config(tmp_path / "c.yaml", tiny_model(tmp_path / "m.onnx"), "synthetic:64x48@30",
                          sinks={"jsonl": {"path": str(tmp_path / "events.jsonl")}})
    read_end, write_end = os.pipe()
    st = os.fstat(write_end)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], stderr=write_end,
                            env=daemon_env(notify, WATCHDOG_USEC="100000", JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"))
    os.close(write_end)
    try:
        messages = notify.collect(lambda m: count(m, "WATCHDOG=1") >= 4)
        assert "READY=1" in messages[0], messages  # nothing is announced before the first inference...
        ready_status = next(line for line in messages[0] if line.startswith("STATUS="))
        assert " 1 frames" in ready_status and "fps" in ready_status  # ...which READY's status counts
        assert count(messages, "WATCHDOG=1") >= 4 and count(messages, "READY=1") == 1
        assert all(any(line.startswith("STATUS=") and "capture-to-result p50" in line for line in m) for m in messages)
        proc.send_signal(signal.SIGTERM)
        messages = notify.collect(has("STOPPING=1"))
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        notify.close()
    assert has("STOPPING=1")(messages)
    with os.fdopen(read_end) as f:
        err = f.read()
    assert "<6>edge: SIGTERM: stopping" in err and all(line.startswith("<") for line in err.splitlines()), err
    events = (tmp_path / "events.jsonl").read_text().splitlines()
    assert events and all(json.loads(line)["type"] == "detections" for line in events)  # drained, none cut off


class GatedSource(Source):
    """Delivers frames while `gate` is set, otherwise blocks in read() like a hung camera."""

    live = True

    def __init__(self):
        super().__init__("gated", "gated")
        self.gate, self.closed = threading.Event(), threading.Event()
        self.gate.set()

    def open(self):
        pass

    def read(self):
        while not self.gate.wait(0.05):
            if self.closed.is_set():
                return None
        time.sleep(0.01)
        return self.frame(np.full((48, 64, 3), 90, np.uint8))

    def close(self):
        self.closed.set()


class HangingDetector:
    """The real detector, except that it hangs (a wedged accelerator) while `hang` is set."""

    def __init__(self, detector):
        self.detector, self.hang, self.entered = detector, threading.Event(), threading.Event()

    def __call__(self, image):
        self._wait()
        return self.detector(image)

    def infer(self, tensor):  # the overlapped loop's inference stage
        self._wait()
        return self.detector.infer(tensor)

    def _wait(self):
        while self.hang.is_set():
            self.entered.set()
            time.sleep(0.01)

    def __getattr__(self, name):
        return getattr(self.detector, name)


def test_the_watchdog_follows_the_frame_loop_not_the_cameras(tmp_path, monkeypatch):
    notify = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping due every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    source = GatedSource()
    monkeypatch.setattr(edge.service.daemon, "open_source", lambda uri, **options: source)
    # spin set: the daemon's own swap to a non-spinning model (a loop waiting for frames) would replace the wrapper
    config = parse({"model": {"path": tiny_model(tmp_path / "m.onnx"), "spin": True}, "sources": [{"uri": "gated"}]})
    daemon = Daemon(config, lambda: config)
    hanging = HangingDetector(daemon.pipeline.detector)
    daemon.pipeline.swap_detector(hanging)
    seen = {}

    def pings(seconds):
        notify.messages = []
        return count(notify.collect(lambda m: False, seconds), "WATCHDOG=1")

    def watch():
        notify.collect(has("READY=1"), 20)
        source.gate.clear()  # the camera hangs: the frame loop still wakes and pings
        time.sleep(0.2)
        seen["camera hung"] = pings(1.0)
        hanging.hang.set()
        source.gate.set()  # the next frame wedges the detector: the frame loop stops, and so do the pings
        hanging.entered.wait(10)
        seen["detector hung"] = pings(1.0)
        hanging.hang.clear()
        daemon.pipeline.stop()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert daemon.run() == 0
    watcher.join(30)
    notify.close()
    assert seen["camera hung"] >= 5 and seen["detector hung"] == 0, seen


def test_sighup_hot_swaps_the_model_without_losing_frames(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    first, second = tiny_model(tmp_path / "first.onnx"), tiny_model(tmp_path / "second.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    frames, out = 200, tmp_path / "events.jsonl"
    video = write_video(tmp_path / "clip.avi", frames)
    sections = {"pipeline": {"all_frames": True, "max_fps": 40}, "sinks": {"jsonl": {"path": str(out)}}}
    config = write_config(tmp_path / "c.yaml", first, video, **sections)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], stderr=subprocess.PIPE,
                            text=True, env=daemon_env(notify))
    try:
        notify.collect(has("READY=1"))
        for model, outcome in ((broken, "reload failed"), (second, "reloaded; model second.onnx")):
            write_config(config, model, video, **sections)
            notify.messages = []
            proc.send_signal(signal.SIGHUP)
            messages = notify.collect(has("READY=1"))
            reloading = next(m for m in messages if "RELOADING=1" in m)  # a STATUS= update may come first
            assert messages.index(reloading) < len(messages) - 1
            assert any(line.startswith("MONOTONIC_USEC=") for line in reloading)
            assert any(line.startswith("STATUS=" + outcome) for line in messages[-1]), messages
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        notify.close()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(frames))  # every frame exactly once, across both reloads
    models = [e["model"]["id"] for e in events]
    switch = models.index("second.onnx")
    assert 0 < switch and set(models[:switch]) == {"first.onnx"} and set(models[switch:]) == {"second.onnx"}
    assert "reload failed, the running model stays" in err and "model reloads: 1 succeeded, 1 failed" in err
    assert re.search(r"reload: now running \S*second\.onnx \(conf [0-9.]+, iou [0-9.]+, max_det \d+", err), err
