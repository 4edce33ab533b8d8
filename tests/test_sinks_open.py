"""open_sinks: which sinks the typed settings ask for, their options, and a missing optional library."""
import sys

import pytest

from edge.errors import SinkError
from edge.service.config import parse
from edge.service.server import HttpServer
from edge.settings import SinksConfig
from edge.stream.sinks import open_sinks
from edge.stream.sinks.jsonl import JsonlSink
from edge.stream.sinks.mqtt import MqttSink
from edge.stream.sinks.webhook import WebhookSink


def sinks(**sections) -> SinksConfig:
    """The sinks section of a validated config."""
    return parse({"model": {"path": "m.onnx"}, "sources": [{"uri": "synthetic"}], "sinks": sections}).sinks


def test_nothing_asked_nothing_opened():
    assert open_sinks(SinksConfig()) == []
    assert open_sinks(sinks(http={"listen": "127.0.0.1:0"})) == []  # the HTTP server is the service's own


def test_every_sink_with_its_options():
    config = sinks(jsonl={"path": "-", "max_bytes": 1000}, queue=7,
                   mqtt={"url": "mqtt://127.0.0.1:1999", "qos": 2, "topic_prefix": "site/cam"},
                   http={"listen": "127.0.0.1:8080", "token": "t", "max_age": 3.0},
                   webhook={"url": "http://127.0.0.1:1/hook", "retries": 0})
    jsonl, mqtt, webhook = open_sinks(config)
    assert isinstance(jsonl, JsonlSink) and jsonl.max_bytes == 0  # stdout never rotates
    assert isinstance(mqtt, MqttSink) and (mqtt.host, mqtt.port, mqtt.qos) == ("127.0.0.1", 1999, 2)
    assert mqtt.availability_topic == "site/cam/availability" and mqtt._queue_size == 7
    assert isinstance(webhook, WebhookSink) and webhook.retries == 0
    http = HttpServer.from_settings(config.http)
    assert (http.host, http.port, http.token, http.max_age) == ("127.0.0.1", 8080, "t", 3.0)


def test_missing_optional_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "paho", None)  # import of it now fails as if not installed
    monkeypatch.delitem(sys.modules, "edge.stream.sinks.mqtt", raising=False)
    with pytest.raises(SinkError, match=r"pip install 'edge\[mqtt\]'"):
        open_sinks(sinks(mqtt={"url": "mqtt://localhost"}))


def test_http_without_prometheus_client_names_the_extra(monkeypatch):
    from edge.service.daemon import open_server

    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "edge.service.server", raising=False)
    with pytest.raises(SinkError, match=r"pip install 'edge\[http\]'"):
        open_server(sinks(http={"listen": "127.0.0.1:0"}).http)
