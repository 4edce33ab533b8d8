"""A standard-library HTTP server that survives abuse: idle connections wait in one selector thread (no worker,
no request parsing) until they send something, a fixed pool of workers serves requests, connections beyond a cap
get a 503 at once, idle ones are closed after a timeout, and resets are logged once at debug level."""
from __future__ import annotations

import logging
import selectors
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import HTTPServer
from typing import Any, cast

log = logging.getLogger("edge.http")

BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 38\r\n"
        b"Retry-After: 1\r\nConnection: close\r\n\r\n{\"error\": \"too many open connections\"}")
ABORTED = (ConnectionError, TimeoutError, socket.timeout)


class BoundedHTTPServer(HTTPServer):
    """HTTPServer with bounded connections and workers; set `max_connections`, `workers`, `idle_timeout` first."""

    request_queue_size = 128  # the listen backlog (the standard library's 5 timed out bursts of probes)
    allow_reuse_port = False  # never share a port with another server (newer Pythons may default it on)
    max_connections = 256  # open connections, idle ones included; well under a default 1024 fd limit
    workers = 32  # threads serving requests (MJPEG viewers hold one each, so keep this above the viewer cap)
    idle_timeout = 10.0  # seconds a connection may stay silent (before a request or within one)

    def server_activate(self) -> None:
        """Listen, then start the worker pool and the waiting room."""
        super().server_activate()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edge-http")
        self._lock = threading.Lock()
        self._open = 0
        self._arrivals: deque = deque()
        self._waker_r, self._waker_w = socket.socketpair()
        self._stopped = False
        self._room = threading.Thread(target=self._wait_room, name="edge-http-idle", daemon=True)
        self._room.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Admit the connection to the waiting room, or answer 503 when the cap is reached."""
        with self._lock:
            admitted = self._open < self.max_connections
            self._open += admitted
        if not admitted:
            _refuse(request)
            return
        self._arrivals.append((request, client_address))
        self._waker_w.send(b"\0")

    def _wait_room(self) -> None:
        """Hand each connection that has bytes to read to a worker; close those silent past idle_timeout."""
        selector = selectors.DefaultSelector()
        selector.register(self._waker_r, selectors.EVENT_READ)
        deadlines: dict = {}
        while not self._stopped:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is self._waker_r:
                    self._waker_r.recv(4096)
                    while self._arrivals:
                        request, address = self._arrivals.popleft()
                        selector.register(request, selectors.EVENT_READ, address)
                        deadlines[request] = time.monotonic() + self.idle_timeout
                else:
                    selector.unregister(key.fileobj)
                    del deadlines[key.fileobj]
                    self._pool.submit(self._serve, cast(socket.socket, key.fileobj), key.data)
            now = time.monotonic()
            for request in [r for r, deadline in deadlines.items() if deadline < now]:
                selector.unregister(request)
                del deadlines[request]
                self._close(request)
        for request in deadlines:
            self._close(request)
        selector.close()

    def _serve(self, request: socket.socket, client_address) -> None:
        """One connection on a worker thread (as ThreadingMixIn does, with a read timeout)."""
        try:
            request.settimeout(self.idle_timeout)
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self._close(request)

    def _close(self, request: socket.socket) -> None:
        """Shut the connection and free its slot."""
        self.shutdown_request(request)
        with self._lock:
            self._open -= 1

    def handle_error(self, request, client_address) -> None:
        """A client that resets or times out is routine: one debug line, no traceback; anything else is logged."""
        error = sys.exc_info()[1]
        if isinstance(error, ABORTED):
            log.debug("http: %s: connection aborted (%s)", client_address[0], error)
        else:
            log.exception("http: error while serving %s", client_address[0])

    def server_close(self) -> None:
        """Stop listening, close the waiting connections and let the workers finish."""
        super().server_close()
        if getattr(self, "_room", None) is not None:
            self._stopped = True
            self._waker_w.send(b"\0")
            self._room.join(5.0)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._waker_r.close()
            self._waker_w.close()


def _refuse(request: socket.socket) -> None:
    """Answer 503 without reading the request or blocking, then close."""
    try:
        request.setblocking(False)
        request.send(BUSY)
        request.recv(65536)  # drop what the client already sent, so closing sends FIN rather than RST
    except OSError:
        pass
    finally:
        request.close()
