"""The ops HTTP server: health, readiness, Prometheus metrics, the latest event, an annotated MJPEG preview per
source and the device web page (edge/service/static) with the /api/status document it polls."""
from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Callable, Optional
from urllib.parse import parse_qs, unquote, urlsplit

import cv2
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..detections import Detections
from ..draw import draw_detections
from ..errors import SinkError
from ..settings import DEFAULT_HTTP, HttpConfig, secret
from ..stream.capture import describe_state
from ..stream.media import CONTENT_TYPES, media_file
from ..stream.sinks.base import Sink
from ..stream.sinks.worker import SinkStats, encode_event
from .connections import BoundedHTTPServer
from .metrics import StatusCollector
from .web import CSP, STATIC, InputRates, static_file, status_document

log = logging.getLogger("edge.http")

TOKEN_ENV = "EDGE_HTTP_TOKEN"
BOUNDARY = b"frame"
PATHS = ["/", "/api/status", "/healthz", "/readyz", "/metrics", "/latest", "/snapshot.jpg", "/stream.mjpg", "/media/"]


def parse_address(address: str) -> tuple[str, int]:
    """'host:port', '[v6]:port', ':port' or 'port' -> (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = "", address
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise SinkError(f"http: {address!r} is not HOST:PORT (for example {DEFAULT_HTTP})")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether host only accepts local connections ('localhost' or a loopback IP; other names count as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(BoundedHTTPServer):
    """The bounded server, knowing its sink."""

    sink: "HttpServer"


class _Server6(_Server):
    """The same over IPv6."""

    address_family = socket.AF_INET6


def _age(stamp: Optional[float], now: float) -> Optional[float]:
    """Seconds since an epoch timestamp, None when there is none."""
    return None if stamp is None else now - stamp


class _Handler(BaseHTTPRequestHandler):
    """One request: routes, token check, and the MJPEG stream."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        log.debug("http: %s %s", self.address_string(), format % args)

    def _send(self, code: int, body: bytes, content_type: str, headers: Optional[dict] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")  # a kept-alive idle socket would hold a worker
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        self.wfile.write(body)

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def _json(self, code: int, payload: dict, headers: Optional[dict] = None) -> None:
        self._send(code, json.dumps(payload).encode(), "application/json", headers)

    def do_GET(self) -> None:
        """Route one request (every path but the page's static files needs the bearer token when one is set)."""
        sink = self.server.sink
        url = urlsplit(self.path)
        path = url.path
        if path in STATIC:  # the page holds no data; it asks for the token and sends it with each request
            name, content_type = STATIC[path]
            self._send(200, static_file(name), content_type)
            return
        if sink.token and not hmac.compare_digest(self.headers.get("Authorization", "").encode(),
                                                  f"Bearer {sink.token}".encode()):
            self._json(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
            return
        source: Optional[str] = (parse_qs(url.query).get("source") or [""])[0] or None
        if path == "/healthz":
            self._json(200, {"status": "alive", "uptime_s": round(time.monotonic() - sink.started_monotonic, 3),
                             "sources": sink.source_states(), "loop": sink.status().get("loop")})
        elif path == "/readyz":
            reasons = sink.not_ready()
            self._json(503 if reasons else 200, {"ready": not reasons, "reasons": reasons})
        elif path == "/metrics":
            self._send(200, generate_latest(sink.registry), CONTENT_TYPE_LATEST)
        elif path == "/latest":
            event = sink.latest_event
            if event is None:
                self._json(404, {"error": "no event yet"})
            else:
                self._send(200, encode_event(event).encode(), "application/json")
        elif path == "/api/status":
            self._json(200, sink.status_document())
        elif path == "/snapshot.jpg":
            jpeg = sink.jpeg(0, wait=False, source=source)[1]
            if jpeg is None:
                self._json(404, {"error": "no frame yet"})
            else:
                self._send(200, jpeg, "image/jpeg")
        elif path == "/stream.mjpg":
            self._stream(sink, source)
        elif path.startswith("/media/"):
            self._media(sink, unquote(path[len("/media/"):]))
        else:
            self._json(404, {"error": f"no such path {path}", "paths": PATHS})

    def _media(self, sink: "HttpServer", relative: str) -> None:
        """A saved snapshot or clip, read-only; anything outside the media directory is a 404."""
        full = media_file(sink.media_dir, relative) if sink.media_dir else None
        if full is None:
            self._json(404, {"error": f"no media file {relative!r}"})
            return
        with open(full, "rb") as f:
            body = f.read()
        self._send(200, body, CONTENT_TYPES.get(os.path.splitext(full)[1], "application/octet-stream"))

    def _stream(self, sink: "HttpServer", source: Optional[str]) -> None:
        """multipart/x-mixed-replace: each newer annotated frame (of one source, or any) as one JPEG part, until the
        client leaves; beyond max_viewers a 503."""
        if not sink.viewers.acquire(blocking=False):
            self._json(503, {"error": f"too many preview viewers (at most {sink.max_viewers})"}, {"Retry-After": "5"})
            return
        try:
            self._parts(sink, source)
        finally:
            sink.viewers.release()

    def _parts(self, sink: "HttpServer", source: Optional[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seq, due = 0, 0.0
        try:
            while True:
                # at most preview_fps parts a second: each is a JPEG encoded here, on the device's CPU
                if sink.closing_within(due - time.monotonic()):
                    return
                seq, jpeg = sink.jpeg(seq, wait=True, source=source)
                if jpeg is None:
                    return
                due = time.monotonic() + sink.preview_period
                # three writes straight to the socket: every viewer sends the one shared JPEG, never a copy
                head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(jpeg))
                self.wfile.write(head)
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
        except (ConnectionError, TimeoutError, socket.timeout) as exc:
            log.debug("http: preview viewer %s left (%s)", self.address_string(), exc)


class HttpServer(Sink):
    """A small threaded HTTP server for probes, metrics and a preview; publish() only stores the latest event."""

    name = "http"

    @classmethod
    def from_settings(cls, settings: HttpConfig, media_dir: Optional[str] = None) -> "HttpServer":
        """The server `sinks.http` describes, its token read from the environment or a systemd credential."""
        token = settings.token or secret(settings.token_env, settings.token_credential, "sinks.http.token")
        return cls(settings.listen, token=token, max_age=settings.max_age, media_dir=media_dir,
                   preview_fps=settings.preview_fps)

    def __init__(self, address: str = DEFAULT_HTTP, token: Optional[str] = None, max_age: float = 10.0,
                 jpeg_quality: int = 80, max_viewers: int = 8, recent: int = 10,
                 media_dir: Optional[str] = None, preview_fps: float = 5.0) -> None:
        """media_dir: where edge.stream.media saves event files, served under /media/; preview_fps: the most MJPEG
        parts a second per viewer."""
        self.host, self.port = parse_address(address)
        self.token = token or os.environ.get(TOKEN_ENV) or None
        if not is_loopback(self.host) and not self.token:
            raise SinkError(f"http: {self.host} is reachable from other machines; set a bearer token "
                            f"(--http-token or {TOKEN_ENV}) or bind to 127.0.0.1")
        self.max_age, self.jpeg_quality, self.media_dir = max_age, jpeg_quality, media_dir
        self.preview_period = 1.0 / preview_fps
        self.counters = SinkStats()
        self.registry = CollectorRegistry(auto_describe=False)
        self.latest_event: Optional[dict] = None
        self.started_monotonic = time.monotonic()
        self.max_viewers = max_viewers
        self.viewers = threading.BoundedSemaphore(max_viewers)
        self.recent: deque = deque(maxlen=recent)  # the last events, newest first
        self.latest_by_source: dict = {}
        self.rates = InputRates()
        self._cond = threading.Condition()
        # latest (seq, frame, detections) per source, and under None the latest of any source; frames are not copied
        self._frames: dict = {}
        self._seq = 0
        self._closing = False
        self._encode_lock = threading.Lock()
        self._encoded: dict = {}  # source -> (seq, JPEG): viewers share one encoding per frame
        self._server: Optional[_Server] = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) being served (the real port when 0 was asked for)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stats(self) -> dict:
        """{"published", "failed", "dropped"} for the pipeline's status()."""
        return self.counters.snapshot()

    def start(self, status: Callable[[], dict]) -> None:
        """Bind and serve in a background thread; a port in use is a SinkError."""
        super().start(status)
        self.registry.register(StatusCollector(status))
        server_class = _Server6 if ":" in self.host else _Server
        try:
            self._server = server_class((self.host, self.port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SinkError(f"http: {self.host}:{self.port} is already in use; "
                                "pick another --http HOST:PORT") from exc
            raise SinkError(f"http: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self._server.sink = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="edge-sink-http", daemon=True).start()
        log.info("http: serving on http://%s:%d", *self.address)

    def publish(self, event: dict, frame: Optional[np.ndarray], detections: Detections) -> None:
        """Keep the event and (when given) the frame as the latest; nothing is encoded here."""
        with self._cond:
            if event.get("type") == "detections":  # frame events only: zone and line events have their own topics
                self.latest_event = event
                self.recent.appendleft(event)
                self.latest_by_source[event.get("source")] = event
            if frame is not None:
                self._seq += 1
                self._frames[None] = self._frames[event.get("source")] = (self._seq, frame, detections)
                self._cond.notify_all()
        self.counters.add("published")

    def jpeg(self, after: int, wait: bool, source: Optional[str] = None) -> tuple[int, Optional[bytes]]:
        """(seq, annotated JPEG) of the latest frame (of `source`, or of any source) newer than `after`, waiting for
        one if asked; None when there is none. Encoded on demand: nothing is encoded while nobody looks."""
        def newer() -> bool:
            return (self._frames.get(source) or (0,))[0] > after

        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._closing or newer())
            if self._closing or not newer():
                return after, None
            seq, frame, detections = self._frames[source]
        with self._encode_lock:
            done = next((e for e in self._encoded.values() if e[0] == seq), None)  # maybe encoded under the other key
            if done is None:
                ok, buf = cv2.imencode(".jpg", draw_detections(frame, detections),
                                       [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
                done = (seq, buf.tobytes() if ok else None)
            self._encoded[source] = done
            return done

    def closing_within(self, seconds: float) -> bool:
        """Wait up to `seconds` (none when <= 0); True when the server is closing."""
        with self._cond:
            if seconds > 0:
                self._cond.wait_for(lambda: self._closing, timeout=seconds)
            return self._closing

    def status_document(self) -> dict:
        """The /api/status document (edge/schema/status.schema.json)."""
        with self._cond:
            events, latest = list(self.recent), dict(self.latest_by_source)
        return status_document(self.status(), self.not_ready(), events, latest,
                               time.monotonic() - self.started_monotonic, self.rates)

    def not_ready(self) -> list[str]:
        """Why the pipeline is not ready (empty when every source and the inference are fresh)."""
        status, now, reasons = self.status(), time.time(), []
        sources = status.get("sources") or {}
        if not sources:
            reasons.append("no sources")
        for sid, src in sources.items():
            age = _age(src.get("last_frame_at"), now)
            if not src.get("connected"):
                attempts = f", {src['reconnects']} reconnect attempt(s)" if src.get("reconnects") else ""
                error = f" ({src['error']})" if src.get("error") else ""
                reasons.append(f"source {sid}: {describe_state(src)}{attempts}{error}")
            elif age is None or age > self.max_age:
                reasons.append(f"source {sid}: " + ("no frame yet" if age is None else
                                                    f"last frame {age:.1f} s ago (max {self.max_age:g} s)"))
        age = _age(status.get("last_inference_at"), now)
        if age is None or age > self.max_age:
            reasons.append("no inference yet" if age is None else
                           f"last inference {age:.1f} s ago (max {self.max_age:g} s)")
        return reasons

    def source_states(self) -> dict:
        """{source: {"state": up | connecting | ended | down since TIME, "error", "reconnects"}} for /healthz."""
        return {sid: {"state": describe_state(src), "error": src.get("error"), "reconnects": src.get("reconnects", 0)}
                for sid, src in (self.status().get("sources") or {}).items()}

    def close(self, timeout: float = 5.0) -> None:
        """End the preview streams and stop the server."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
