"""The ops HTTP server under abuse, with real sockets: idle connections, too many connections or viewers, bursts,
resets."""
import http.client
import json
import logging
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge.service.server import HttpServer

from .test_sinks_support import Status, detections, event, image, wait_until


@pytest.fixture
def server():
    """Start HttpServer(**kwargs) on a free loopback port (server class attributes set first); closed afterwards."""
    sinks = []

    def start(**limits):
        sink = HttpServer("127.0.0.1:0", max_viewers=limits.pop("max_viewers", 8))
        sink.start(Status())
        for key, value in limits.items():
            setattr(sink._server, key, value)
        sinks.append(sink)
        return sink, sink.address
    yield start
    for sink in sinks:
        sink.close()


def healthz(address, timeout=10.0):
    """(status code, body) of GET /healthz over a fresh connection."""
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def idle_sockets(address, n):
    """n connected sockets that never send a byte (slowloris)."""
    return [socket.create_connection(address, timeout=10) for _ in range(n)]


def test_idle_connections_do_not_block_a_probe(server):
    sink, address = server()
    idle = idle_sockets(address, 200)
    try:
        wait_until(lambda: sink._server._open >= 200, timeout=10)
        started = time.monotonic()
        code, body = healthz(address)
        elapsed = time.monotonic() - started
        assert code == 200 and json.loads(body)["status"] == "alive"
        print(f"healthz behind 200 idle sockets: {elapsed * 1e3:.1f} ms")
        assert elapsed < sink._server.idle_timeout  # answered before any idle socket was timed out
    finally:
        for s in idle:
            s.close()


def test_connections_beyond_the_cap_get_503_and_idle_ones_time_out(server):
    sink, address = server(max_connections=20, idle_timeout=1.0)
    idle = idle_sockets(address, 20)
    try:
        wait_until(lambda: sink._server._open == 20, timeout=10)
        code, body = healthz(address)
        assert code == 503 and json.loads(body) == {"error": "too many open connections"}
        assert idle[0].recv(1) == b""  # the server closed the silent connection after idle_timeout
        assert wait_until(lambda: sink._server._open == 0, timeout=10)
        assert healthz(address)[0] == 200
    finally:
        for s in idle:
            s.close()


def test_preview_viewers_are_capped(server):
    sink, address = server(max_viewers=2)
    sink.publish(event(0), image(0), detections())
    viewers = []
    for _ in range(2):
        conn = http.client.HTTPConnection(*address, timeout=10)
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        assert response.status == 200 and response.readline() == b"--frame\r\n"
        viewers.append((conn, response))  # the response holds the socket: dropping it would make the viewer leave
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.request("GET", "/stream.mjpg")
    response = conn.getresponse()
    assert response.status == 503 and "at most 2" in json.loads(response.read())["error"]
    for half in viewers.pop():
        half.close()
    conn = http.client.HTTPConnection(*address, timeout=10)

    def third_viewer_gets_in() -> bool:
        sink.publish(event(1), image(1), detections())  # the next frame shows the viewer thread its client left
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        conn.close()
        return response.status == 200

    assert wait_until(third_viewer_gets_in, timeout=10, interval=0.2)  # a viewer slot frees when one leaves
    for viewer in viewers:
        for half in viewer:
            half.close()


def test_a_burst_of_probes_is_answered(server):
    sink, address = server()
    n = sink._server.max_connections - 16  # a burst under the connection cap (beyond it the answer is a quick 503)
    barrier = threading.Barrier(n)

    def probe(_):
        barrier.wait()
        try:
            return healthz(address, timeout=20)[0]
        except OSError as e:
            return type(e).__name__

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(probe, range(n)))
    assert codes.count(200) == n, {c: codes.count(c) for c in set(codes)}


def test_reset_connections_log_one_line_without_traceback(server, caplog):
    sink, address = server()
    sink.publish(event(0), image(0), detections())
    caplog.set_level(logging.DEBUG, logger="edge.http")
    for path in ("/stream.mjpg", "/healthz"):
        s = socket.create_connection(address, timeout=10)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if path == "/stream.mjpg":
            s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        s.close()
    for _ in range(3):  # keep publishing so the viewer thread writes into the reset socket
        time.sleep(0.2)
        sink.publish(event(1), image(1), detections())
    assert wait_until(lambda: any("left" in r.getMessage() or "aborted" in r.getMessage() for r in caplog.records))
    assert healthz(address)[0] == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
