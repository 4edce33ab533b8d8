"""Event sinks, one file each, registered here by their key under `sinks:` in the config (edge/settings.py).

Adding a sink: a file with a Sink subclass that has `from_settings(settings, queue_size)`, one `register` line here
(or in the caller) and, for the config file, a settings dataclass field in SinksConfig.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple, Optional

from ...errors import SinkError
from .base import Sink

__all__ = ["Sink", "SinkError", "open_sinks", "register", "SINKS"]


class SinkKind(NamedTuple):
    """Where a sink's class lives and the optional library (and extra) it needs."""

    load: Callable[[], type]
    needs: Optional[str] = None  # top-level module of the optional library
    extra: Optional[str] = None  # pip extra that installs it


SINKS: dict = {}


def register(key: str, load: Callable[[], type], needs: Optional[str] = None, extra: Optional[str] = None) -> None:
    """Make `sinks.<key>` open the class that `load()` returns."""
    SINKS[key] = SinkKind(load, needs, extra)


def _lazy(module: str, cls: str) -> Callable[[], type]:
    """Import edge.stream.sinks.<module>.<cls> only when the sink is asked for."""
    return lambda: getattr(importlib.import_module(f"{__name__}.{module}"), cls)


register("jsonl", _lazy("jsonl", "JsonlSink"))
register("mqtt", _lazy("mqtt", "MqttSink"), needs="paho", extra="mqtt")
register("webhook", _lazy("webhook", "WebhookSink"))


def sink_class(key: str) -> Any:
    """The registered class; a missing optional library is a one-line SinkError naming the extra."""
    kind = SINKS[key]
    try:
        return kind.load()
    except ModuleNotFoundError as exc:
        if kind.needs and exc.name and exc.name.split(".")[0] == kind.needs:
            raise SinkError(f"the {key} sink needs {kind.needs}: pip install 'edge[{kind.extra}]'") from exc
        raise


def open_sinks(settings: Any) -> list:
    """The sinks whose section is set in `settings` (a SinksConfig), in registration order; not started yet."""
    return [sink_class(key).from_settings(section, queue_size=settings.queue)
            for key in SINKS if (section := getattr(settings, key, None)) is not None]
