"""open_sinks: which sinks a command line asks for, their options, and a missing optional library."""
import sys
from argparse import Namespace

import pytest

from edge.errors import SinkError
from edge.stream.sinks import open_sinks
from edge.service.server import HttpSink
from edge.stream.sinks.jsonl import JsonlSink
from edge.stream.sinks.mqtt import MqttSink
from edge.stream.sinks.webhook import WebhookSink


def test_nothing_asked_nothing_opened():
    assert open_sinks(Namespace()) == []
    assert open_sinks(Namespace(jsonl=None, mqtt=None, http=None, webhook=None)) == []


def test_every_sink_with_its_options():
    args = Namespace(jsonl="-", jsonl_max_bytes=1000, mqtt="mqtt://127.0.0.1:1999", mqtt_qos=2,
                     mqtt_topic_prefix="site/cam", http="", http_token="t", http_max_age=3.0,
                     webhook="http://127.0.0.1:1/hook", webhook_retries=0, sink_queue=7)
    jsonl, mqtt, http, webhook = open_sinks(args)
    assert isinstance(jsonl, JsonlSink) and jsonl.max_bytes == 0  # stdout never rotates
    assert isinstance(mqtt, MqttSink) and (mqtt.host, mqtt.port, mqtt.qos) == ("127.0.0.1", 1999, 2)
    assert mqtt.availability_topic == "site/cam/availability" and mqtt._queue_size == 7
    assert isinstance(http, HttpSink) and (http.host, http.port, http.token, http.max_age) == ("127.0.0.1", 8080, "t", 3.0)
    assert isinstance(webhook, WebhookSink) and webhook.retries == 0


@pytest.mark.parametrize("attr, module, extra", [("mqtt", "paho", "mqtt"), ("http", "prometheus_client", "http")])
def test_missing_optional_library_names_the_extra(monkeypatch, attr, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails as if not installed
    monkeypatch.delitem(sys.modules, f"edge.stream.sinks.{attr}", raising=False)
    with pytest.raises(SinkError, match=rf"pip install 'edge\[{extra}\]'"):
        open_sinks(Namespace(**{attr: "mqtt://localhost" if attr == "mqtt" else ""}))
