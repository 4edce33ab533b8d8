"""`edge run --config FILE`: the daemon's YAML configuration, validated into typed objects.

Why YAML rather than TOML: TOML needs `tomli` on Python 3.9/3.10 (tomllib is 3.11+) anyway, so neither is free;
YAML is what the fleet tooling speaks (Ansible templates and `to_nice_yaml` write it natively, no TOML filter),
keeps comments, and PyYAML is a small package (pure Python fallback, libyaml when present) shipped by every
distribution (python3-yaml). YAML's traps are closed here: safe_load only, duplicate keys are errors, and the
validator is strict about types (`no` is not a string, `"5"` is not a number).

Why no pydantic: pydantic-core is a ~5 MB compiled extension (more to install and seconds to import on a Pi
Zero) for ~40 settings; `edge.typed` (dataclasses + a small validator) gives the same typed objects, errors that
name the key path (`sinks.mqtt.qos: must be 0, 1 or 2, got 5`) and the JSON Schema from the same definitions.

Secrets are never needed in the file: a config names an environment variable (`password_env`) or a systemd
credential (`password_credential`, read from $CREDENTIALS_DIRECTORY/NAME), resolved when `edge run` starts.
PyYAML is imported only when a config is read (`pip install 'edge[service]'`); `import edge` never loads it.
Regenerate the committed schema: `python -m edge.service.config --schema > edge/schema/config.schema.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import List, Optional

from ..stream.capture import DROP_POLICIES
from ..errors import ConfigError
from ..schema import schema_path
from ..typed import ValidationError, build, schema, spec

EX_CONFIG = 78
SCHEMA_PATH = schema_path("config")
NAME = r"[A-Za-z][\w-]*"
CREDENTIAL = r"[\w.@-]+"


@dataclass
class ModelConfig:
    """The model to run and how."""

    path: str = spec("bundle directory, manifest.json, .onnx or .tflite file; a link such as "
                     "/var/lib/edge/models/current is resolved at every start and reload")
    family: Optional[str] = spec("model family, when the file does not say", None, choices=("yolo11", "damo-yolo"))
    names: Optional[str] = spec("class names: a file (one per line or JSON) or a comma-separated list", None)
    backend: Optional[str] = spec("override the backend chosen by extension", None,
                                  choices=("onnxruntime", "tflite", "tensorrt"))
    providers: Optional[List[str]] = spec("onnxruntime execution providers in order (default CPUExecutionProvider)",
                                          None)
    threads: Optional[int] = spec("inference threads", None, minimum=1)


@dataclass
class ThresholdsConfig:
    """Post-processing thresholds (default: the model family's)."""

    conf: Optional[float] = spec("confidence threshold", None, minimum=0.0, maximum=1.0)
    iou: Optional[float] = spec("NMS IoU threshold", None, minimum=0.0, maximum=1.0)
    max_det: Optional[int] = spec("maximum detections per frame", None, minimum=1)
    agnostic: bool = spec("class-agnostic NMS", False)
    multi_label: Optional[bool] = spec("allow several classes per anchor", None)


@dataclass
class SourceConfig:
    """One frame source; several sources share the detector round-robin."""

    uri: str = spec("synthetic[:WxH[@fps]], video file, image folder, /dev/videoN, v4l2:N, rtsp://, http(s)://, "
                    "gst:PIPELINE or picamera2[:N]")
    name: Optional[str] = spec("source id in events and topics (default: derived from the URI)", None, pattern=NAME)
    width: Optional[int] = spec("capture width (cameras, synthetic)", None, minimum=1)
    height: Optional[int] = spec("capture height (cameras, synthetic)", None, minimum=1)
    fps: Optional[float] = spec("capture frame rate (cameras, synthetic)", None, minimum=0.0)
    fourcc: Optional[str] = spec("V4L2 pixel format, e.g. MJPG", None, pattern=r"[ -~]{4}")


@dataclass
class PipelineConfig:
    """Frame scheduling between capture and inference."""

    all_frames: bool = spec("infer every frame (files: no real-time pacing) instead of the latest", False)
    every: int = spec("infer every Nth captured frame", 1, minimum=1)
    max_fps: Optional[float] = spec("cap the inference rate", None, exclusive_minimum=0.0)
    drop: Optional[str] = spec("full queue policy (default latest, or block with all_frames)", None,
                               choices=DROP_POLICIES)
    queue_size: int = spec("frames queued per source with all_frames", 8, minimum=1)
    max_frames: Optional[int] = spec("stop after N inferred frames", None, minimum=1)


@dataclass
class JsonlConfig:
    """Events as JSON lines."""

    path: str = spec("file path, or '-' for stdout")
    max_bytes: int = spec("rotate the file past this many bytes (0: never)", 0, minimum=0)
    backups: int = spec("rotated files kept", 5, minimum=0)


@dataclass
class MqttConfig:
    """Events to an MQTT broker, topics PREFIX/SOURCE/events and PREFIX/availability."""

    url: str = spec("mqtt://host[:port] or mqtts://host[:port]", pattern=r"mqtts?://[^/\s]+/?")
    qos: int = spec("MQTT QoS", 1, choices=(0, 1, 2))
    topic_prefix: Optional[str] = spec("topic prefix (default edge/HOSTNAME)", None, pattern=r"[^+#]+")
    client_id: Optional[str] = spec("client id (default edge-HOSTNAME-PID)", None)
    ca: Optional[str] = spec("CA file for mqtts://", None)
    cert: Optional[str] = spec("client certificate for mqtts://", None)
    key: Optional[str] = spec("client key for mqtts://", None)
    username: Optional[str] = spec("user name (not a secret)", None)
    username_env: Optional[str] = spec("environment variable holding the user name", None, pattern=NAME)
    password_env: Optional[str] = spec("environment variable holding the password", None, pattern=NAME)
    password_credential: Optional[str] = spec("systemd credential ($CREDENTIALS_DIRECTORY/NAME) holding the password",
                                              None, pattern=CREDENTIAL)


@dataclass
class HttpConfig:
    """/healthz /readyz /metrics /latest /stream.mjpg /snapshot.jpg."""

    listen: str = spec("HOST:PORT to serve on; a non-loopback host needs a token", "127.0.0.1:8080",
                       pattern=r"(\[[0-9A-Fa-f:.]+\]|[^:\s]*):\d{1,5}")
    token_env: Optional[str] = spec("environment variable holding the bearer token", None, pattern=NAME)
    token_credential: Optional[str] = spec("systemd credential holding the bearer token", None, pattern=CREDENTIAL)
    max_age: float = spec("/readyz fails when the last frame or inference is older, seconds", 10.0,
                          exclusive_minimum=0.0)


@dataclass
class WebhookConfig:
    """POST each event to a URL."""

    url: str = spec("http(s) URL", pattern=r"https?://\S+")
    timeout: float = spec("seconds per POST", 5.0, exclusive_minimum=0.0)
    retries: int = spec("retries after a failed POST, with doubling backoff", 3, minimum=0)


@dataclass
class SinksConfig:
    """Where events go; a sink is on when its section is present."""

    jsonl: Optional[JsonlConfig] = spec("JSON lines sink", None)
    mqtt: Optional[MqttConfig] = spec("MQTT sink", None)
    http: Optional[HttpConfig] = spec("HTTP probes, metrics and preview", None)
    webhook: Optional[WebhookConfig] = spec("webhook sink", None)
    queue: int = spec("events each queued sink holds before dropping the oldest", 1000, minimum=1)


@dataclass
class LoggingConfig:
    """Log output (stderr; syslog priority prefixes for journald under systemd)."""

    level: str = spec("least severe level logged", "info", choices=("debug", "info", "warning", "error"))


@dataclass
class Config:
    """edge run configuration."""

    model: ModelConfig = spec("the model")
    sources: List[SourceConfig] = spec("frame sources (at least one)")
    version: int = spec("config format version", 1, choices=(1,))
    thresholds: ThresholdsConfig = spec("post-processing thresholds", default_factory=ThresholdsConfig)
    pipeline: PipelineConfig = spec("frame scheduling", default_factory=PipelineConfig)
    sinks: SinksConfig = spec("event sinks", default_factory=SinksConfig)
    logging: LoggingConfig = spec("logging", default_factory=LoggingConfig)


def parse(data: object) -> Config:
    """A Config from plain data (what YAML gives); ConfigError names the key path and the problem."""
    try:
        config = build(Config, data)
    except ValidationError as e:
        raise ConfigError(str(e)) from None
    if not config.sources:
        raise ConfigError("sources: needs at least one source")
    names = [s.name for s in config.sources if s.name]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"sources: name {name!r} is used twice")
    mqtt, http = config.sinks.mqtt, config.sinks.http
    if mqtt and mqtt.password_env and mqtt.password_credential:
        raise ConfigError("sinks.mqtt: set password_env or password_credential, not both")
    if mqtt and mqtt.username and mqtt.username_env:
        raise ConfigError("sinks.mqtt: set username or username_env, not both")
    if http and http.token_env and http.token_credential:
        raise ConfigError("sinks.http: set token_env or token_credential, not both")
    return config


def load(path: str) -> Config:
    """Read and validate a YAML config file."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise ConfigError("reading a config needs PyYAML: pip install 'edge[service]' "
                          "(or apt install python3-yaml)") from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_loader(yaml))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"{path}: empty config (expected model: and sources:)")
    try:
        return parse(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _loader(yaml) -> type:
    """yaml's safe loader (libyaml when available) that rejects duplicate keys."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return Loader


def secret(env: Optional[str], credential: Optional[str], where: str) -> Optional[str]:
    """The value of an environment variable or a systemd credential; None when neither is named."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{where}_env: environment variable {env} is not set")
        return value
    if credential:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise ConfigError(f"{where}_credential: $CREDENTIALS_DIRECTORY is not set "
                              f"(add LoadCredential={credential}:/etc/edge/{credential} to the unit)")
        try:
            with open(os.path.join(folder, credential), encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            raise ConfigError(f"{where}_credential: cannot read credential {credential}: {e.strerror or e}") from None
    return None


def to_namespace(config: Config) -> argparse.Namespace:
    """The `edge run` namespace the config stands for (what the flags build), secrets resolved."""
    m, t, p, s = config.model, config.thresholds, config.pipeline, config.sinks
    ns = argparse.Namespace(
        model=m.path, family=m.family, names=m.names, backend=m.backend, threads=m.threads,
        providers=",".join(m.providers) if m.providers else None,
        conf=t.conf, iou=t.iou, max_det=t.max_det, agnostic=t.agnostic, multi_label=t.multi_label,
        source=None, sources=[(src.name, src.uri, {"width": src.width, "height": src.height, "fps": src.fps,
                                                    "fourcc": src.fourcc}) for src in config.sources],
        width=None, height=None, fps=None, fourcc=None,
        all_frames=p.all_frames, every=p.every, max_fps=p.max_fps, drop=p.drop, queue_size=p.queue_size,
        max_frames=p.max_frames, sink_queue=s.queue, log_level=config.logging.level)
    if s.jsonl:
        ns.jsonl, ns.jsonl_max_bytes, ns.jsonl_backups = s.jsonl.path, s.jsonl.max_bytes, s.jsonl.backups
    if s.mqtt:
        q = s.mqtt
        ns.mqtt, ns.mqtt_qos, ns.mqtt_topic_prefix, ns.mqtt_client_id = q.url, q.qos, q.topic_prefix, q.client_id
        ns.mqtt_ca, ns.mqtt_cert, ns.mqtt_key = q.ca, q.cert, q.key
        ns.mqtt_username = q.username or secret(q.username_env, None, "sinks.mqtt.username")
        ns.mqtt_password = secret(q.password_env, q.password_credential, "sinks.mqtt.password")
    if s.http:
        ns.http, ns.http_max_age = s.http.listen, s.http.max_age
        ns.http_token = secret(s.http.token_env, s.http.token_credential, "sinks.http.token")
    if s.webhook:
        ns.webhook, ns.webhook_timeout, ns.webhook_retries = s.webhook.url, s.webhook.timeout, s.webhook.retries
    return ns


def json_schema() -> dict:
    """The config's JSON Schema, generated from the dataclasses above."""
    return {"$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://github.com/edge/edge/schema/config.schema.json",
            "title": "edge run configuration", **schema(Config)}


def schema_text() -> str:
    """The schema exactly as committed at edge/schema/config.schema.json."""
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m edge.service.config --schema`: print the JSON Schema (validate a file with `edge check-config FILE`)."""
    parser = argparse.ArgumentParser(prog="python -m edge.service.config")
    parser.add_argument("--schema", action="store_true", required=True, help="print the JSON Schema")
    parser.parse_args(argv)
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
