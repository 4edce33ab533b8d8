"""Sinks under trouble: a JSONL file that cannot be reopened at rotation (no descriptors left) is retried with
backoff and never eats its backups; drops and failures are logged with counts, rate-limited."""
import errno
import json
import logging

import pytest

from edge.errors import SinkError
from edge.stream.sinks import jsonl as jsonl_module
from edge.stream.sinks.jsonl import JsonlSink
from edge.stream.sinks.worker import encode_event

from ..test_sinks_support import Status, detections, event


class FlakyOpen:
    """open() that fails with EMFILE for calls number first..first+times-1 (counted from 1)."""

    def __init__(self, first: int, times: int):
        self.first, self.times, self.calls = first, times, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.first <= self.calls < self.first + self.times:
            raise OSError(errno.EMFILE, "Too many open files")
        return open(*args, **kwargs)


def seqs_in(tmp_path) -> list:
    """The seq of every line kept, oldest file first."""
    files = sorted(tmp_path.glob("events.jsonl.*"), key=lambda p: -int(p.suffix[1:])) + [tmp_path / "events.jsonl"]
    return [json.loads(line)["seq"] for f in files if f.exists() for line in f.read_text().splitlines()]


def test_a_failed_reopen_at_rotation_is_retried_and_keeps_the_backups(tmp_path, monkeypatch, caplog):
    flaky = FlakyOpen(first=3, times=5)  # 1: start, 2: first rotation, 3..7: fail, 8: works again
    monkeypatch.setattr(jsonl_module, "open", flaky, raising=False)
    line_bytes = len(encode_event(event(0))) + 1
    sink = JsonlSink(str(tmp_path / "events.jsonl"), max_bytes=int(3.5 * line_bytes), backups=10)
    sink.RETRY_MIN = 0.0  # retry at every event: the test counts exactly which events fail
    sink.start(Status())
    with caplog.at_level(logging.WARNING):
        for i in range(30):
            sink.publish(event(i), None, detections())
        sink.close()
    assert sink.stats() == {"published": 25, "failed": 5, "dropped": 0}
    kept = seqs_in(tmp_path)
    assert kept == sorted(kept) and len(kept) == 25 and set(range(30)) - set(kept) == set(range(6, 11))
    warnings = [r.getMessage() for r in caplog.records if "cannot deliver" in r.getMessage()]
    assert len(warnings) == 1 and "1 failed since the last report" in warnings[0], warnings


def test_reopening_backs_off(tmp_path, monkeypatch):
    sink = JsonlSink(str(tmp_path / "events.jsonl"), max_bytes=1, backups=2)
    sink._file = sink._open()  # opened as start() does, driven here without the worker thread
    flaky = FlakyOpen(first=1, times=10**6)
    monkeypatch.setattr(jsonl_module, "open", flaky, raising=False)
    sink._deliver(event(0))  # the file was empty: no rotation yet
    with pytest.raises(SinkError):
        sink._deliver(event(1))  # rotation; the reopen fails
    for i in range(100):
        with pytest.raises(SinkError, match="next reopen in"):
            sink._deliver(event(2 + i))
    assert flaky.calls == 1  # 100 events in the backoff window: no new attempt, no rotation
    assert (tmp_path / "events.jsonl.1").exists() and not (tmp_path / "events.jsonl.2").exists()


def test_drops_are_logged_with_counts_rate_limited(caplog):
    sink = JsonlSink("-", queue_size=2)  # not started: nothing drains the queue
    with caplog.at_level(logging.WARNING):
        for i in range(50):
            sink.publish(event(i), None, detections())
    assert sink.stats()["dropped"] == 48
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert lines == ["jsonl: queue full (2 events), dropped the oldest: 1 since the last report"]


def test_an_empty_path_is_refused():
    with pytest.raises(SinkError, match="must not be empty"):
        JsonlSink("")


def test_mqtt_reconnects_soon_after_the_broker_is_back():
    from edge.service.config import parse
    from edge.stream.sinks.mqtt import MqttSink

    def client(section):
        config = parse({"model": {"path": "m"}, "sources": [{"uri": "synthetic"}], "sinks": {"mqtt": section}})
        return MqttSink.from_settings(config.sinks.mqtt)._client

    assert client({"url": "mqtt://broker"})._reconnect_max_delay == 5  # paho's own default waits up to 120 s
    assert client({"url": "mqtt://broker", "reconnect_max": 2})._reconnect_max_delay == 2
