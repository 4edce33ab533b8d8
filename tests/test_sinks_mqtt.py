"""MQTT sink against a real mosquitto broker, watched by a real paho subscriber."""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading

import pytest

from edge.errors import SinkError
from edge.stream.sinks.mqtt import MqttSink
from edge.stream.sinks.worker import encode_event

from .test_sinks_support import Status, detections, edge_run, event, free_port, wait_until

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto broker (apt-get install mosquitto)")
PREFIX = "test/edge"


class Broker:
    """A mosquitto process on a free loopback port with a generated config (optionally a password file)."""

    def __init__(self, folder, users=None, tls=False):
        self.folder, self.port, self.process = folder, free_port(), None
        self.config = folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {folder}/",
                 f"user {pwd.getpwuid(os.getuid()).pw_name}", "log_dest stderr"]
        if users is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {folder / 'passwords'}"]
            self.set_users(users)
        if tls:
            self.make_certificates()
            lines += [f"cafile {folder / 'ca.crt'}", f"certfile {folder / 'server.crt'}", f"keyfile {folder / 'server.key'}"]
        self.config.write_text("\n".join(lines) + "\n")
        self.url = f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:{self.port}"

    def make_certificates(self):
        """A throw-away CA (ca.crt) and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
        def openssl(*args):
            subprocess.run(["openssl", *args], cwd=self.folder, check=True, capture_output=True)
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=edge-test-ca")
        openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (self.folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "1", "-extfile", "san.ext")

    def set_users(self, users):
        """Write the password file (takes effect at the next start)."""
        path = self.folder / "passwords"
        path.write_text("")
        for user, password in users.items():
            subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)

    def start(self):
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stderr=open(self.folder / "log", "a"))

        def listening():
            assert self.process.poll() is None, (self.folder / "log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        assert wait_until(listening), "mosquitto did not start listening"

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait(30)


@pytest.fixture
def broker_factory(tmp_path):
    brokers = []

    def make(users=None, tls=False):
        folder = tmp_path / f"broker{len(brokers)}"
        folder.mkdir()
        brokers.append(Broker(folder, users, tls))
        brokers[-1].start()
        return brokers[-1]
    yield make
    for b in brokers:
        if b.process.poll() is None:
            b.stop(signal.SIGKILL)


class Subscriber:
    """A paho client subscribed to PREFIX/# that records (topic, payload, retain); resubscribes on reconnect."""

    def __init__(self, broker, client_id=None, auth=None, ca_file=None):
        self.messages, self.lock = [], threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  clean_session=client_id is None)
        if auth:
            self.client.username_pw_set(*auth)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{PREFIX}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(30), "test subscriber never got its SUBACK"  # QoS 0 sent earlier would be lost

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload.decode(), message.retain))

    def payloads(self, topic):
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def events(self):
        return [json.loads(p) for p in self.payloads(f"{PREFIX}/cam0/events")]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribers():
    made = []

    def make(*args, **kwargs):
        made.append(Subscriber(*args, **kwargs))
        return made[-1]
    yield make
    for s in made:
        s.close()


def make_sink(url, **kwargs):
    kwargs.setdefault("topic_prefix", PREFIX)
    return MqttSink(url, reconnect_delay=(1, 1), **kwargs)


def test_events_and_availability_reach_a_subscriber(broker_factory, subscribers):
    broker = broker_factory()
    watcher = subscribers(broker)
    sink = make_sink(broker.url, qos=1)
    sink.start(Status())
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/availability") == ["online"])
    events = [event(i) for i in range(5)]
    for e in events:
        sink.publish(e, None, detections())
    assert wait_until(lambda: len(watcher.events()) == 5)
    assert watcher.events() == events
    assert watcher.payloads(f"{PREFIX}/cam0/events")[0] == encode_event(events[0])
    sink.close()
    assert sink.stats() == {"published": 5, "failed": 0, "dropped": 0}
    late = subscribers(broker)  # retained: a later subscriber sees the last availability
    assert wait_until(lambda: late.messages == [(f"{PREFIX}/availability", "offline", True)])


def test_topic_per_source_and_qos0(broker_factory, subscribers):
    broker = broker_factory()
    watcher = subscribers(broker)
    sink = make_sink(broker.url, qos=0)
    sink.start(Status())
    sink.publish(event(0, source="door"), None, detections())
    sink.publish(event(0, source="yard"), None, detections())
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/yard/events"))
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/door/events"))
    sink.close()


def test_last_will_marks_a_killed_process_offline(broker_factory, subscribers):
    broker = broker_factory()
    watcher = subscribers(broker)
    code = ("import sys, time; from edge.stream.sinks.mqtt import MqttSink\n"
            f"s = MqttSink({broker.url!r}, topic_prefix={PREFIX!r}); s.start(dict)\n"
            "print('started', flush=True); time.sleep(600)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout.readline() == "started\n"
        assert wait_until(lambda: watcher.payloads(f"{PREFIX}/availability") == ["online"])
    finally:
        child.kill()
        child.wait(30)
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/availability") == ["online", "offline"])


def test_broker_outage_queues_drops_and_resumes(broker_factory, subscribers):
    broker = broker_factory()
    # A persistent session (QoS 1, kept across the broker restart) so the subscriber misses nothing delivered.
    watcher = subscribers(broker, client_id="edge-test-watcher")
    sink = make_sink(broker.url, qos=1, queue_size=5)
    sink.start(Status())
    for i in range(3):
        sink.publish(event(i), None, detections())
    assert wait_until(lambda: len(watcher.events()) == 3)
    broker.stop()
    assert wait_until(lambda: not sink.connected)

    def outage():
        for i in range(3, 23):
            sink.publish(event(i), None, detections())
    publisher = threading.Thread(target=outage)
    publisher.start()
    publisher.join(30)
    assert not publisher.is_alive(), "publish() blocked while the broker was down"
    dropped = sink.stats()["dropped"]
    assert 20 - 5 - 1 <= dropped < 20  # the queue (5) and the event the worker holds survive
    broker.start()
    assert wait_until(lambda: sink.connected)
    # QoS 1 is at-least-once: messages in flight when the broker stopped may come twice
    seqs = lambda: list(dict.fromkeys(e["seq"] for e in watcher.events()))  # noqa: E731
    assert wait_until(lambda: len(seqs()) == 23 - dropped)
    got = seqs()  # the oldest were dropped: the newest five (and any one the worker held) arrive in order
    assert got[:3] == [0, 1, 2] and got[-5:] == list(range(18, 23)) and got == sorted(got)
    sink.publish(event(23), None, detections())
    assert wait_until(lambda: watcher.events()[-1]["seq"] == 23)
    sink.close()
    assert sink.stats() == {"published": 24 - dropped, "failed": 0, "dropped": dropped}


def test_credentials_and_refused_auth(broker_factory, subscribers, monkeypatch, caplog):
    broker = broker_factory(users={"edge": "right", "watcher": "w"})
    with pytest.raises(SinkError, match=rf"mqtt: 127.0.0.1:{broker.port}: broker refused the connection: .*"):
        make_sink(broker.url.replace("mqtt://", "mqtt://edge:wrong@")).start(Status())
    with pytest.raises(SinkError, match="refused the connection"):
        make_sink(broker.url).start(Status())  # anonymous
    watcher = subscribers(broker, auth=("watcher", "w"))
    monkeypatch.setenv("EDGE_MQTT_USERNAME", "edge")
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "right")
    sink = make_sink(broker.url)
    sink.start(Status())
    sink.publish(event(0), None, detections())
    assert wait_until(lambda: len(watcher.events()) == 1)
    broker.stop()
    broker.set_users({"edge": "rotated"})  # the broker comes back, now refusing the sink's password
    broker.start()
    assert wait_until(lambda: sink.stats()["failed"] >= 1)
    assert "refused the connection" in caplog.text
    sink.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_tls_with_a_private_ca(broker_factory, subscribers, tmp_path):
    broker = broker_factory(tls=True)
    ca = broker.folder / "ca.crt"
    watcher = subscribers(broker, ca_file=ca)
    with pytest.raises(SinkError, match="cannot connect: .*certificate verify failed"):
        make_sink(broker.url).start(Status())  # the system CAs do not know this one
    with pytest.raises(SinkError, match="CA file .*missing.pem not found"):
        make_sink(broker.url, ca_file=str(tmp_path / "missing.pem"))
    sink = make_sink(broker.url, ca_file=str(ca))
    sink.start(Status())
    sink.publish(event(0), None, detections())
    assert wait_until(lambda: len(watcher.events()) == 1)
    sink.close()


def test_a_broker_that_is_down_at_start_is_retried_while_events_queue(tmp_path, subscribers, caplog):
    """A broker that boots after the device (a site power cut) must not stop edge: systemd gives up on a unit
    that fails 5 times in 10 minutes. The events of the meantime wait in the bounded queue."""
    broker = Broker(tmp_path)
    broker.start()
    watcher = subscribers(broker, client_id="edge-test-watcher")  # a persistent session: it misses nothing
    broker.stop()
    sink = make_sink(broker.url, qos=1, queue_size=10)
    sink.start(Status())  # no SinkError
    assert f"mqtt: 127.0.0.1:{broker.port}: cannot connect" in caplog.text and "Retrying every 1 s" in caplog.text
    for i in range(3):
        sink.publish(event(i), None, detections())
    broker.start()
    assert wait_until(lambda: sink.connected)
    assert wait_until(lambda: sorted(e["seq"] for e in watcher.events()) == [0, 1, 2])
    sink.close()


def test_bad_urls_are_start_errors():
    for url in ("http://broker", "mqtt://", "mqtt://host:notaport"):
        with pytest.raises(SinkError, match="is not mqtt://"):
            MqttSink(url)
    with pytest.raises(SinkError, match="need an mqtts:// URL"):
        MqttSink("mqtt://broker", ca_file="ca.pem")
    with pytest.raises(SinkError, match="QoS"):
        MqttSink("mqtt://broker", qos=3)


def test_edge_run_publishes_the_same_events_as_jsonl(broker_factory, subscribers, tmp_path):
    broker = broker_factory()
    watcher = subscribers(broker)
    result = edge_run(tmp_path, "--mqtt", broker.url, "--mqtt-topic-prefix", PREFIX, "--jsonl", "-")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/cam0/events") == lines)  # byte-identical on both sinks
    assert wait_until(lambda: watcher.payloads(f"{PREFIX}/availability") == ["online", "offline"])


def test_edge_run_exits_when_the_broker_refuses(broker_factory, tmp_path):
    broker = broker_factory(users={"edge": "right"})
    result = edge_run(tmp_path, "--mqtt", broker.url.replace("mqtt://", "mqtt://edge:wrong@"), "--jsonl", "-")
    assert result.returncode != 0 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "refused the connection" in errors[0], result.stderr
