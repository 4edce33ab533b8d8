"""HTTP sink with a real urllib client: probes, Prometheus metrics, latest event, JPEG snapshot and MJPEG stream."""
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.errors import SinkError
from edge.service.server import HttpServer, parse_address
from edge.stream.sinks.worker import encode_event

from .test_sinks_support import Status, detections, edge_run, event, image


@pytest.fixture
def served():
    """Start HttpServer(**kwargs) on a free loopback port; closed afterwards."""
    sinks = []

    def start(**kwargs):
        sink = HttpServer("127.0.0.1:0", **kwargs)
        status = Status()
        sink.start(status)
        sinks.append(sink)
        return sink, status, "http://%s:%d" % sink.address
    yield start
    for sink in sinks:
        sink.close()


def get(url, token=None):
    """(status code, headers, body) of a GET, HTTP errors included."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_health_and_readiness_follow_freshness(served):
    sink, status, base = served(max_age=5.0)
    assert get(base + "/healthz")[0] == 200
    code, _, body = get(base + "/readyz")
    assert code == 503 and json.loads(body)["reasons"] == ["source cam0: no frame yet", "no inference yet"]
    now = time.time()
    status.snapshot["sources"]["cam0"]["last_frame_at"] = now
    status.snapshot["last_inference_at"] = now
    code, _, body = get(base + "/readyz")
    assert (code, json.loads(body)) == (200, {"ready": True, "reasons": []})
    status.snapshot["sources"]["cam0"]["last_frame_at"] = now - 60
    code, _, body = get(base + "/readyz")
    assert code == 503 and json.loads(body)["reasons"][0].startswith("source cam0: last frame 6")
    status.snapshot["sources"]["cam0"].update(connected=False, error="camera unplugged")
    code, _, body = get(base + "/readyz")
    assert code == 503 and json.loads(body)["reasons"] == ["source cam0: down (camera unplugged)"]
    assert get(base + "/healthz")[0] == 200


def test_metrics_are_prometheus_text(served):
    sink, status, base = served()
    status.snapshot["sources"]["cam0"].update(captured=12, inferred=10, dropped=2, reconnects=1)
    status.snapshot.update(inferred=10, fps=29.5, model_reloads={"succeeded": 2, "failed": 1, "last_error": "x"},
                           loop={"overlap": False, "batch": 2, "inferences": 6, "frames_per_inference": 1.67})
    status.snapshot["sinks"]["http"]["published"] = 10
    code, headers, body = get(base + "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("edge_source_frames_captured_total", (("source", "cam0"),))] == 12
    assert samples[("edge_source_frames_dropped_total", (("source", "cam0"),))] == 2
    assert samples[("edge_source_reconnects_total", (("source", "cam0"),))] == 1
    assert samples[("edge_source_connected", (("source", "cam0"),))] == 1
    assert samples[("edge_sink_events_published_total", (("sink", "http"),))] == 10
    assert samples[("edge_inferred_total", ())] == 10 and samples[("edge_fps", ())] == 29.5
    assert samples[("edge_inferences_total", ())] == 6  # batches of two: fewer runs than frames
    assert samples[("edge_model_reloads_total", (("result", "failed"),))] == 1
    assert samples[("edge_latency_seconds", (("quantile", "0.99"), ("stage", "capture_to_result")))] == 0.04
    assert samples[("edge_model_info", (("backend", "onnxruntime"), ("family", "yolo11"), ("path", "tiny.onnx")))] == 1


def test_latest_event_and_snapshot(served):
    sink, status, base = served()
    assert get(base + "/latest")[0] == 404 and get(base + "/snapshot.jpg")[0] == 404
    first, second = event(1), event(2)
    sink.publish(first, image(1), detections())
    sink.publish(second, None, detections())  # an event without a frame keeps the last frame
    code, headers, body = get(base + "/latest")
    assert code == 200 and headers["Content-Type"] == "application/json" and body == encode_event(second).encode()
    code, headers, body = get(base + "/snapshot.jpg")
    assert code == 200 and headers["Content-Type"] == "image/jpeg"
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == image(1).shape
    assert sink.stats() == {"published": 2, "failed": 0, "dropped": 0}


def read_part(stream) -> np.ndarray:
    """One JPEG part of a multipart/x-mixed-replace stream, decoded."""
    assert stream.readline() == b"--frame\r\n"
    headers = {}
    while (line := stream.readline()) != b"\r\n":
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    jpeg = stream.read(int(headers["content-length"]))
    assert stream.readline() == b"\r\n"
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def test_mjpeg_stream_sends_annotated_frames(served):
    sink, status, base = served()
    sink.publish(event(0), image(0), detections())
    with urllib.request.urlopen(base + "/stream.mjpg", timeout=30) as stream:
        assert stream.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        first = read_part(stream)
        assert first.shape == image(0).shape
        assert np.abs(first.astype(int) - image(0).astype(int)).mean() > 1  # boxes and labels drawn on it
        sink.publish(event(1), image(50), detections())
        second = read_part(stream)
        assert second.shape == first.shape and not np.array_equal(first, second)


def test_preview_rate_is_capped(served):
    """Frames published every 5 ms, preview_fps 10: parts still come at least 0.1 s apart (a slower machine only
    spaces them more), so the device encodes at most 10 JPEGs a second for this viewer."""
    sink, status, base = served(preview_fps=10)
    stop = threading.Event()

    def publish() -> None:
        n = 0
        while not stop.is_set():
            sink.publish(event(n), image(n % 200), detections())
            n += 1
            time.sleep(0.005)
    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        with urllib.request.urlopen(base + "/stream.mjpg", timeout=30) as stream:
            read_part(stream)
            t0 = time.monotonic()
            read_part(stream)
            read_part(stream)
            elapsed = time.monotonic() - t0
    finally:
        stop.set()
        publisher.join()
    assert elapsed >= 0.2 - 0.01  # two periods of 1/10 s (less a clock tick)
    assert sink.counters.snapshot()["published"] > 10  # frames were there to send: the cap spaced the parts


def test_close_ends_open_streams(served):
    sink, status, base = served()
    sink.publish(event(0), image(0), detections())
    stream = urllib.request.urlopen(base + "/stream.mjpg", timeout=30)
    read_part(stream)
    closer = threading.Thread(target=sink.close)
    closer.start()
    assert stream.read() == b""  # the server ends the stream instead of waiting for a frame
    closer.join(30)
    assert not closer.is_alive()
    stream.close()


def test_bearer_token_is_enforced(served):
    sink, status, base = served(token="s3cret")
    for path in ("/healthz", "/metrics", "/latest", "/stream.mjpg"):
        code, headers, _ = get(base + path)
        assert code == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert get(base + path, token="wrong")[0] == 401
    assert get(base + "/healthz", token="s3cret")[0] == 200


def test_token_from_environment(served, monkeypatch):
    monkeypatch.setenv("EDGE_HTTP_TOKEN", "from-env")
    sink, status, base = served()
    assert get(base + "/healthz")[0] == 401 and get(base + "/healthz", token="from-env")[0] == 200


def test_non_loopback_address_needs_a_token(monkeypatch):
    monkeypatch.delenv("EDGE_HTTP_TOKEN", raising=False)
    for address in ("0.0.0.0:8080", "192.168.1.10:8080", "camera.local:8080"):
        with pytest.raises(SinkError, match="set a bearer token"):
            HttpServer(address)
    assert HttpServer("0.0.0.0:8080", token="t").token == "t"  # allowed (not started: tests stay on loopback)
    assert HttpServer("localhost:8080").token is None and HttpServer("[::1]:8080").host == "::1"


def test_port_in_use_is_a_start_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sink = HttpServer(f"127.0.0.1:{port}")
        with pytest.raises(SinkError, match=f"127.0.0.1:{port} is already in use"):
            sink.start(Status())


def test_unknown_path_is_404(served):
    sink, status, base = served()
    code, _, body = get(base + "/nope")
    assert code == 404 and "/metrics" in json.loads(body)["paths"]


def test_parse_address():
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_address(":9000") == ("127.0.0.1", 9000) and parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("host:", "host:port", "1.2.3.4:70000"):
        with pytest.raises(SinkError, match="is not HOST:PORT"):
            parse_address(bad)


def test_edge_run_start_up_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_HTTP_TOKEN", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = edge_run(tmp_path, "--http", "127.0.0.1:%d" % busy.getsockname()[1])
    assert result.returncode != 0 and "is already in use" in result.stderr.strip().splitlines()[-1]
    result = edge_run(tmp_path, "--http", "0.0.0.0:8080")
    assert result.returncode != 0 and "set a bearer token" in result.stderr.strip().splitlines()[-1]
