"""Webhook sink against a real local HTTP server: delivery, retries with backoff, failures counted."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge.errors import SinkError
from edge.stream.sinks.webhook import WebhookSink

from .test_sinks_support import Status, detections, event, free_port


class Receiver:
    """A loopback HTTP server answering POSTs with the next code of `codes` (then the last one), keeping bodies."""

    def __init__(self, codes=(200,)):
        self.codes, self.bodies, self.attempts = list(codes), [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = receiver.codes.pop(0) if len(receiver.codes) > 1 else receiver.codes[0]
                receiver.attempts += 1
                if code == 200:
                    assert self.headers["Content-Type"] == "application/json"
                    receiver.bodies.append(body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made = []

    def make(codes=(200,)):
        made.append(Receiver(codes))
        return made[-1]
    yield make
    for r in made:
        r.close()


def run(sink, events):
    sink.start(Status())
    for e in events:
        sink.publish(e, None, detections())
    sink.close(timeout=30)


def test_events_are_posted_in_order(receiver_factory):
    receiver = receiver_factory()
    events = [event(i) for i in range(5)]
    sink = WebhookSink(receiver.url)
    run(sink, events)
    assert [json.loads(b) for b in receiver.bodies] == events
    assert sink.stats() == {"published": 5, "failed": 0, "dropped": 0}


def test_transient_errors_are_retried(receiver_factory):
    receiver = receiver_factory(codes=(503, 429, 200))
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01)
    run(sink, [event(0)])
    assert receiver.attempts == 3 and len(receiver.bodies) == 1
    assert sink.stats() == {"published": 1, "failed": 0, "dropped": 0}


def test_a_failing_endpoint_is_counted_and_the_next_event_still_tried(receiver_factory, caplog):
    receiver = receiver_factory(codes=(500,))
    sink = WebhookSink(receiver.url, retries=2, backoff=0.01)
    run(sink, [event(0), event(1)])
    assert receiver.attempts == 2 * 3
    assert sink.stats() == {"published": 0, "failed": 2, "dropped": 0}
    assert "webhook: cannot deliver events" in caplog.text and "500" in caplog.text


def test_client_errors_are_not_retried(receiver_factory):
    receiver = receiver_factory(codes=(400,))
    sink = WebhookSink(receiver.url, retries=3, backoff=0.01)
    run(sink, [event(0)])
    assert receiver.attempts == 1 and sink.stats()["failed"] == 1


def test_unreachable_endpoint_is_counted():
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", retries=1, backoff=0.01, timeout=5)
    run(sink, [event(0), event(1)])
    assert sink.stats() == {"published": 0, "failed": 2, "dropped": 0}


def test_bad_url_is_rejected():
    with pytest.raises(SinkError, match="not an http"):
        WebhookSink("ftp://example/hook")
