"""JSON lines sink: stdout, files, size-based rotation, draining at close."""
import json

import pytest

from edge.errors import SinkError
from edge.stream.sinks.jsonl import JsonlSink
from edge.stream.sinks.worker import encode_event

from .test_sinks_support import Status, detections, event, image


def test_stdout_gets_one_flushed_line_per_event(capsys):
    sink = JsonlSink("-")
    sink.start(Status())
    events = [event(i) for i in range(3)]
    for e in events:
        sink.publish(e, image(), detections())
    sink.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [encode_event(e) for e in events]
    assert [json.loads(line) for line in lines] == events
    assert sink.stats() == {"published": 3, "failed": 0, "dropped": 0}


def test_file_rotates_by_size_and_keeps_backups(tmp_path):
    path = tmp_path / "events.jsonl"
    line_bytes = len(encode_event(event(0))) + 1
    max_bytes = int(3.5 * line_bytes)  # three lines a file (lengths vary by a few bytes)
    sink = JsonlSink(str(path), max_bytes=max_bytes, backups=2)
    sink.start(Status())
    for i in range(20):
        sink.publish(event(i), None, detections())
    sink.close()
    files = [tmp_path / "events.jsonl.2", tmp_path / "events.jsonl.1", path]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)
    seqs = []
    for f in files:
        assert f.stat().st_size <= max_bytes
        seqs += [json.loads(line)["seq"] for line in f.read_text().splitlines()]
    assert seqs == list(range(20 - len(seqs), 20)) and len(seqs) >= 7
    assert sink.stats()["published"] == 20


def test_file_is_appended_to_and_without_backups_starts_afresh(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"old": true}\n')
    sink = JsonlSink(str(path), max_bytes=10_000, backups=0)
    sink.start(Status())
    first = event(0)
    sink.publish(first, None, detections())
    sink.close()
    assert path.read_text().splitlines() == ['{"old": true}', encode_event(first)]
    sink = JsonlSink(str(path), max_bytes=1, backups=0)
    sink.start(Status())
    sink.publish(event(7), None, detections())
    sink.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def test_unwritable_path_is_a_start_error(tmp_path):
    sink = JsonlSink(str(tmp_path / "missing-dir" / "events.jsonl"))
    with pytest.raises(SinkError, match="jsonl: cannot open .*missing-dir"):
        sink.start(Status())
