"""The ops HTTP server under abuse, measured (prints one JSON line): a probe behind 200 idle sockets, a burst of
1000 concurrent /healthz with a 5 s client timeout, and RSS while 200 clients ask for /stream.mjpg at 30 fps.

Run from a checkout root: `python bench/http_abuse.py` (compare branches by running it in each).
"""
import http.client
import json
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.getcwd())
from edge.service.server import HttpServer  # noqa: E402
from tests.test_sinks_support import Status, detections, event, image  # noqa: E402


def rss_mb() -> float:
    """This process's resident memory in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def healthz(address, timeout: float):
    """The status code of GET /healthz, or the error's name."""
    try:
        conn = http.client.HTTPConnection(*address, timeout=timeout)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError as e:
        return type(e).__name__


def drain(sock: socket.socket) -> None:
    """Read a preview stream until it ends."""
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass


def main() -> None:
    sink = HttpServer("127.0.0.1:0")
    sink.start(Status())
    address, out = sink.address, {}
    idle = [socket.create_connection(address) for _ in range(200)]
    started = time.monotonic()
    out["healthz_behind_200_idle"] = [healthz(address, 15), round(time.monotonic() - started, 3)]
    for s in idle:
        s.close()
    time.sleep(1)
    with ThreadPoolExecutor(1000) as pool:
        codes = list(pool.map(lambda _: healthz(address, 5), range(1000)))
    out["burst_1000_timeout_5s"] = {str(c): codes.count(c) for c in set(codes)}
    time.sleep(1)
    stop = threading.Event()

    def feed() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            sink.publish(event(seq), image(seq, 640, 480), detections())
            time.sleep(1 / 30)

    threading.Thread(target=feed, daemon=True).start()
    out["rss_mb_before_viewers"] = round(rss_mb(), 1)
    for _ in range(200):
        s = socket.create_connection(address)
        s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        threading.Thread(target=drain, args=(s,), daemon=True).start()
    time.sleep(5)
    out["rss_mb_200_viewers_5s"] = round(rss_mb(), 1)
    stop.set()
    print(json.dumps(out), flush=True)
    os._exit(0)  # viewer threads are daemons; skip the orderly close


if __name__ == "__main__":
    main()
