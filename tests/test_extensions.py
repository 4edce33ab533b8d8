"""Adding a source or a sink is one file plus one registration line (the toys live in tests/toys/)."""
import importlib
from dataclasses import dataclass

import pytest

from edge.errors import SourceError
from edge.stream import stream
from edge.stream.sinks import SINKS, open_sinks
from edge.stream.sources import SOURCES, open_source

from .stream_helpers import tiny_detector


@pytest.fixture
def toys():
    before_sources, before_sinks = list(SOURCES), dict(SINKS)
    yield [importlib.reload(importlib.import_module(f"tests.toys.{name}")) for name in ("counter_source", "list_sink")]
    SOURCES[:] = before_sources
    SINKS.clear()
    SINKS.update(before_sinks)


def test_a_registered_source_streams_through_the_pipeline(tmp_path, toys):
    counter_source, list_sink = toys

    @dataclass
    class Sinks:
        memory: object
        queue: int = 5

    (sink,) = open_sinks(Sinks(list_sink.MemorySettings(limit=2)))
    events = list(stream(tiny_detector(tmp_path), "count:4", all_frames=True, sinks=[sink]))
    assert [e["seq"] for e in events] == [0, 1, 2, 3]
    assert len(sink.events) == 2 and sink.queue_size == 5
    assert isinstance(open_source("count:2", width=32), counter_source.CounterSource)


def test_a_misspelled_option_is_an_error_naming_what_the_source_takes(toys):
    with pytest.raises(SourceError, match=r"unknown source option\(s\) widht; a counter source takes .*width"):
        open_source("count:2", widht=320)
