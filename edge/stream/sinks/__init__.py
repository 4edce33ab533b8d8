"""Event sinks and `open_sinks(args)`, which builds the ones an `edge run` command line asks for.

open_sinks reads these attributes of the argparse namespace (a missing attribute means its default):
  jsonl                  '-' (stdout) or a file path; None: no JSON lines sink
  jsonl_max_bytes        rotate the file past this many bytes (0, the default: never)
  jsonl_backups          rotated files kept, path.1 .. path.N (default 5)
  mqtt                   mqtt://[user:pass@]host[:port] or mqtts://...; None: no MQTT sink
                         (username/password may instead come from EDGE_MQTT_USERNAME / EDGE_MQTT_PASSWORD)
  mqtt_username, mqtt_password   set by `edge run --config` from the config's secret references (no flags)
  mqtt_qos               0, 1 or 2 (default 1)
  mqtt_topic_prefix      topics are {prefix}/{source}/events and {prefix}/availability (default edge/{hostname})
  mqtt_client_id         default edge-{hostname}-{pid}
  mqtt_ca, mqtt_cert, mqtt_key   TLS files for mqtts:// (default: the system CAs, no client certificate)
  http                   HOST:PORT to serve on ('' means 127.0.0.1:8080); None: no HTTP sink
  http_token             bearer token (or EDGE_HTTP_TOKEN); required for a non-loopback HOST
  http_max_age           /readyz fails when the last frame or inference is older than this, seconds (default 10)
  webhook                http(s) URL to POST each event to; None: no webhook
  webhook_timeout        seconds per POST (default 5)
  webhook_retries        retries after a failed POST, with doubling backoff (default 3)
  sink_queue             events each queued sink (jsonl, mqtt, webhook) holds before dropping the oldest (default 1000)
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ...errors import SinkError
from .base import Sink

__all__ = ["Sink", "SinkError", "open_sinks"]


def _module(name: str, package: str, extra: str) -> ModuleType:
    """Import edge.stream.sinks.<name>; a missing optional library is a one-line SinkError naming the extra."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == package:
            raise SinkError(f"the {name} sink needs {package}: pip install 'edge[{extra}]'") from exc
        raise


def open_sinks(args) -> list[Sink]:
    """The sinks the namespace asks for (not started yet), in the order jsonl, mqtt, http, webhook."""
    def opt(name: str, default=None):
        value = getattr(args, name, None)
        return default if value is None else value

    queue_size = opt("sink_queue", 1000)
    sinks: list[Sink] = []
    if opt("jsonl") is not None:
        from .jsonl import JsonlSink
        sinks.append(JsonlSink(args.jsonl, max_bytes=opt("jsonl_max_bytes", 0), backups=opt("jsonl_backups", 5),
                               queue_size=queue_size))
    if opt("mqtt") is not None:
        mqtt = _module("mqtt", "paho", "mqtt")
        sinks.append(mqtt.MqttSink(args.mqtt, qos=opt("mqtt_qos", 1), topic_prefix=opt("mqtt_topic_prefix"),
                                   client_id=opt("mqtt_client_id"), ca_file=opt("mqtt_ca"),
                                   cert_file=opt("mqtt_cert"), key_file=opt("mqtt_key"), queue_size=queue_size,
                                   username=opt("mqtt_username"), password=opt("mqtt_password")))
    if opt("http") is not None:
        http = _module("http", "prometheus_client", "http")
        sinks.append(http.HttpSink(args.http or http.DEFAULT_ADDRESS, token=opt("http_token"),
                                   max_age=opt("http_max_age", 10.0)))
    if opt("webhook") is not None:
        from .webhook import WebhookSink
        sinks.append(WebhookSink(args.webhook, timeout=opt("webhook_timeout", 5.0),
                                 retries=opt("webhook_retries", 3), queue_size=queue_size))
    return sinks
