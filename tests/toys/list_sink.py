"""A toy sink in one file: keeps every event in a list; `sinks.memory` with a `limit` setting opens it."""
from dataclasses import dataclass

from edge.stream.sinks import Sink, register


@dataclass
class MemorySettings:
    """The toy's settings section."""

    limit: int = 100


class ListSink(Sink):
    """Events in memory, up to a limit."""

    name = "memory"

    def __init__(self, limit: int, queue_size: int):
        self.limit, self.queue_size, self.events = limit, queue_size, []

    @classmethod
    def from_settings(cls, settings: MemorySettings, queue_size: int = 1000) -> "ListSink":
        return cls(settings.limit, queue_size)

    def publish(self, event, frame, detections) -> None:
        if len(self.events) < self.limit:
            self.events.append(event)


register("memory", lambda: ListSink)
