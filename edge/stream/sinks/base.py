"""Sink: where the pipeline sends each event (JSON lines, MQTT, HTTP, webhook)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Optional

import numpy as np

from ...detections import Detections
from ...errors import SinkError

__all__ = ["Sink", "SinkError"]


class Sink(ABC):
    """One event destination; the pipeline calls start once, publish per event, close at the end."""

    name: str = "sink"

    def start(self, status: Callable[[], dict]) -> None:
        """Called once before the first event; status() returns the pipeline snapshot."""
        self.status = status

    @abstractmethod
    def publish(self, event: dict, frame: Optional[np.ndarray], detections: Detections) -> None:
        """Send one event; must not block the caller for long (queue internally); may raise."""

    def close(self, timeout: float = 5.0) -> None:
        """Drain pending events, then stop."""

    def stats(self) -> dict:
        """The sink's own {"published", "failed", "dropped"} counters; empty when it keeps none."""
        return {}
