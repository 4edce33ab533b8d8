"""MQTT sink (paho-mqtt 2.x): a topic per source, retained availability with a last will, a bounded queue offline."""
from __future__ import annotations

import os
import re
import socket
import ssl
import threading
from typing import Callable, Optional
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from ...errors import SinkError
from ...settings import MqttConfig, secret
from .worker import QueuedSink, encode_event, log

USERNAME_ENV = "EDGE_MQTT_USERNAME"
PASSWORD_ENV = "EDGE_MQTT_PASSWORD"


def _topic_level(source: object) -> str:
    """A source id made safe as one MQTT topic level (no '/', '+', '#' or whitespace)."""
    return re.sub(r"[/+#\s]", "_", str(source)) or "_"


class MqttSink(QueuedSink):
    """Publishes each event to {prefix}/{source}/events; {prefix}/availability is retained 'online' / will 'offline'.

    Zone events go to {prefix}/{source}/zones/{zone}, line crossings to {prefix}/{source}/lines/{line}, and the
    current zone and line counts, retained, to {prefix}/{source}/counts whenever they change.
    """

    name = "mqtt"

    @classmethod
    def from_settings(cls, settings: MqttConfig, queue_size: int = 1000) -> "MqttSink":
        """The sink `sinks.mqtt` describes, its secrets read from the environment or systemd credentials."""
        s = settings
        return cls(s.url, qos=s.qos, topic_prefix=s.topic_prefix, client_id=s.client_id, ca_file=s.ca,
                   cert_file=s.cert, key_file=s.key, queue_size=queue_size, reconnect_delay=(1, s.reconnect_max),
                   username=s.username or secret(s.username_env, None, "sinks.mqtt.username"),
                   password=secret(s.password_env, s.password_credential, "sinks.mqtt.password"))

    def __init__(self, url: str, qos: int = 1, topic_prefix: Optional[str] = None, client_id: Optional[str] = None,
                 ca_file: Optional[str] = None, cert_file: Optional[str] = None, key_file: Optional[str] = None,
                 queue_size: int = 1000, keepalive: int = 30, connect_timeout: float = 10.0,
                 reconnect_delay: tuple[int, int] = (1, 5), username: Optional[str] = None,
                 password: Optional[str] = None) -> None:
        super().__init__(queue_size)
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1:
            raise SinkError(f"mqtt: {url!r} is not mqtt://[user:pass@]host[:port] or mqtts://...")
        tls = parts.scheme == "mqtts"
        if not tls and (ca_file or cert_file or key_file):
            raise SinkError("mqtt: CA, certificate and key options need an mqtts:// URL")
        if qos not in (0, 1, 2):
            raise SinkError(f"mqtt: QoS must be 0, 1 or 2, got {qos}")
        self.host, self.port, self.qos = parts.hostname, port or (8883 if tls else 1883), qos
        self.prefix = (topic_prefix or f"edge/{socket.gethostname()}").rstrip("/")
        if not self.prefix or re.search(r"[+#]", self.prefix):
            raise SinkError(f"mqtt: topic prefix {topic_prefix!r} must be non-empty, without '+' or '#'")
        self.availability_topic = f"{self.prefix}/availability"
        self.keepalive, self.connect_timeout, self.reconnect_max = keepalive, connect_timeout, reconnect_delay[1]
        self._connected = threading.Event()
        self._answered = threading.Event()  # start() waits no longer: later (re)connections and refusals are logged
        self._refused: Optional[str] = None  # why the broker refused the last connection attempt
        self._closed = False
        self._counts: dict = {}  # source topic -> the counts last published there

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=client_id or f"edge-{socket.gethostname()}-{os.getpid()}")
        username = username or (unquote(parts.username) if parts.username else os.environ.get(USERNAME_ENV))
        if password is None:
            password = unquote(parts.password) if parts.password is not None else os.environ.get(PASSWORD_ENV)
        if username:
            client.username_pw_set(username, password)
        if tls:
            for what, path in (("CA", ca_file), ("certificate", cert_file), ("key", key_file)):
                if path and not os.path.isfile(path):
                    raise SinkError(f"mqtt: {what} file {path} not found")
            try:
                client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise SinkError(f"mqtt: cannot use the TLS files: {exc}") from exc
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(*reconnect_delay)
        client.max_queued_messages_set(queue_size)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up now."""
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if self._answered.is_set():
                self.counters.add("failed")
                if self._refused is None:
                    log.error("mqtt: %s:%d refused the connection: %s (retrying)", self.host, self.port, reason_code)
            self._refused = str(reason_code)
            self._answered.set()
            return
        if self._answered.is_set():
            log.warning("mqtt: reconnected to %s:%d", self.host, self.port)
        self._refused = None
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self._connected.set()
        self._answered.set()

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closed:
            log.warning("mqtt: lost %s:%d (%s); keeping up to %d events while reconnecting",
                        self.host, self.port, reason_code, self._queue_size)

    def start(self, status: Callable[[], dict]) -> None:
        """Connect, then publish in the background. A broker that refuses (credentials, TLS) is a SinkError; one
        that is down or unreachable (it may boot after this device) is retried while events queue up."""
        where = f"mqtt: {self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, keepalive=self.keepalive)
        except (ssl.SSLError, ValueError) as exc:  # SSLError before OSError, its base: a TLS setup problem
            raise SinkError(f"{where}: cannot connect: {exc}") from exc
        except OSError as exc:
            log.warning("%s: cannot connect (%s); is the broker running and reachable from here? Retrying every "
                        "%d s at most, up to %d events queued meanwhile", where, exc, self.reconnect_max,
                        self._queue_size)
            self._answered.set()
            self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
            self._client.loop_start()  # paho's loop retries the first connection too
            super().start(status)
            return
        self._client.loop_start()
        if not self._answered.wait(self.connect_timeout) or self._refused:
            reason = self._refused or f"no answer within {self.connect_timeout:g} s"
            self._client.loop_stop()
            self._client.disconnect()
            raise SinkError(f"{where}: broker refused the connection: {reason}")
        super().start(status)

    def _deliver(self, event: dict) -> None:
        source = f"{self.prefix}/{_topic_level(event.get('source'))}"
        kind = event.get("type")
        if kind in ("zone_enter", "zone_exit"):
            topic = f"{source}/zones/{_topic_level(event.get('zone'))}"
        elif kind == "line_cross":
            topic = f"{source}/lines/{_topic_level(event.get('line'))}"
        else:
            topic = f"{source}/events"
        self.counters.add("published" if self._send(topic, encode_event(event)) else "dropped")
        counts = event.get("counts")
        if counts is not None and self._counts.get(source) != counts:  # retained, and only when they change
            if self._send(f"{source}/counts", encode_event(counts), retain=True):
                self._counts[source] = counts

    def _send(self, topic: str, payload: str, retain: bool = False) -> bool:
        """Publish, waiting out a full paho store or a dropped link; False when close() gave up."""
        while not self._abort.is_set():
            if not self._connected.wait(0.5):
                continue
            rc = self._client.publish(topic, payload, qos=self.qos, retain=retain).rc
            if rc == mqtt.MQTT_ERR_SUCCESS or (rc == mqtt.MQTT_ERR_NO_CONN and self.qos > 0):  # QoS>0: paho resends
                return True
            if rc not in (mqtt.MQTT_ERR_QUEUE_SIZE, mqtt.MQTT_ERR_NO_CONN):
                raise SinkError(f"mqtt: publish to {topic} failed: {mqtt.error_string(rc)}")
            self._abort.wait(0.05)  # paho's store of unacknowledged messages is full, or the link just dropped
        return False

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued, mark the availability topic 'offline', disconnect."""
        super().close(timeout)
        self._closed = True
        if self._connected.is_set():
            info = self._client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=min(timeout, 2.0))
            except (RuntimeError, ValueError) as exc:
                log.warning("mqtt: could not publish 'offline' at close: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
