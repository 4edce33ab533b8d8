"""The settings: one typed object (`Config`) from the command line or the YAML config to the code that uses it.

Every setting is declared once, here: its type, default, bounds and description. `edge run --config FILE` validates
the file into these dataclasses, command-line flags are declared from the same fields (edge/cli/flags.py), and the
JSON Schema (edge/schema/config.schema.json) is generated from them (edge/typed.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import List, Optional, Union

from .backends import BACKENDS
from .contract import FAMILIES
from .errors import ConfigError
from .track.zones import ANCHORS
from .typed import spec

NAME = r"[A-Za-z][\w-]*"
CREDENTIAL = r"[\w.@-]+"
DROP_POLICIES = ("latest", "oldest", "block")
OVERLAP_MODES = ("auto", "on", "off")
BATCH_MODES = OVERLAP_MODES  # pipeline.batch also takes a number: the most frames one batch holds
DEFAULT_HTTP = "127.0.0.1:8080"


@dataclass
class ModelConfig:
    """The model to run and how."""

    path: str = spec("bundle directory, manifest.json, .onnx or .tflite file; a link such as "
                     "/var/lib/edge/models/current is resolved at every start and reload")
    family: Optional[str] = spec("model family, when the file does not say", None, choices=FAMILIES)
    names: Optional[str] = spec("class names: a file (one per line or JSON) or a comma-separated list", None)
    backend: Optional[str] = spec("override the backend chosen by extension", None,
                                  choices=BACKENDS)
    providers: Optional[List[str]] = spec("onnxruntime execution providers in order (default CPUExecutionProvider)",
                                          None)
    threads: Optional[int] = spec("inference threads", None, minimum=1, maximum=1024)
    spin: Optional[bool] = spec("onnxruntime: its threads busy-wait for work after each run, faster back to back but "
                                "burning CPU while the loop waits for frames (default: off when pipeline.max_fps paces "
                                "the loop; else on, and edge run turns it off when the inference is busy less than "
                                "half the time over the first 100 frames)", None)


@dataclass
class ThresholdsConfig:
    """Post-processing thresholds (default: the model family's)."""

    conf: Optional[float] = spec("confidence threshold", None, minimum=0.0, maximum=1.0)
    iou: Optional[float] = spec("NMS IoU threshold", None, minimum=0.0, maximum=1.0)
    max_det: Optional[int] = spec("maximum detections per frame", None, minimum=1, maximum=100000)
    agnostic: bool = spec("class-agnostic NMS", False)
    multi_label: Optional[bool] = spec("allow several classes per anchor", None)


ZONE_NAME = r"[A-Za-z0-9_][\w.-]*"


@dataclass
class ZoneConfig:
    """A polygon zone: objects entering and leaving it are events, those inside are counted."""

    name: str = spec("zone name in events and topics", pattern=ZONE_NAME)
    points: List[List[float]] = spec("at least 3 [x, y] vertices in pixels, or all within 0..1 (fractions of the "
                                     "frame); edges must not cross")
    classes: List[str] = spec("class names counted (default: all)", default_factory=list)


@dataclass
class LineConfig:
    """A counting line: objects crossing it from its left to its right (looking from point 1 to 2) count as in."""

    name: str = spec("line name in events and topics", pattern=ZONE_NAME)
    points: List[List[float]] = spec("2 [x, y] end points in pixels, or both within 0..1")
    classes: List[str] = spec("class names counted (default: all)", default_factory=list)


@dataclass
class SourceConfig:
    """One frame source; several sources share the detector round-robin."""

    uri: str = spec("synthetic[:WxH[@fps]], video file, image folder, /dev/videoN, v4l2:N, rtsp://, http(s)://, "
                    "gst:PIPELINE or picamera2[:N]")
    name: Optional[str] = spec("source id in events and topics (default: derived from the URI)", None, pattern=NAME)
    width: Optional[int] = spec("capture width (cameras, synthetic)", None, minimum=1, maximum=16384)
    height: Optional[int] = spec("capture height (cameras, synthetic)", None, minimum=1, maximum=16384)
    fps: Optional[float] = spec("capture frame rate (cameras, synthetic)", None)
    fourcc: Optional[str] = spec("V4L2 pixel format, e.g. MJPG", None, pattern=r"[ -~]{4}")
    zones: List[ZoneConfig] = spec("polygon zones (turn tracking on)", default_factory=list)
    lines: List[LineConfig] = spec("counting lines (turn tracking on)", default_factory=list)


@dataclass
class TrackingConfig:
    """Object tracking (ByteTrack-style) giving detections a track_id; zones and lines need it."""

    enabled: Optional[bool] = spec("track objects (default: on when a source has zones or lines)", None)
    frame_rate: Optional[float] = spec("frames per second the tracker assumes (default: the source's fps "
                                       "setting, else 30)", None, exclusive_minimum=0.0)
    high_thresh: float = spec("detections at least this confident are matched first", 0.5, minimum=0.0, maximum=1.0)
    low_thresh: float = spec("weaker detections down to this score only keep existing tracks alive (needs conf at "
                             "most this low)", 0.1, minimum=0.0, maximum=1.0)
    new_track_thresh: float = spec("an unmatched detection this confident starts a track", 0.6, minimum=0.0,
                                   maximum=1.0)
    match_thresh: float = spec("largest 1 - IoU x score cost of a match", 0.9, minimum=0.0, maximum=1.0)
    track_buffer: int = spec("frames (at 30 fps) a lost track may come back with its id", 30, minimum=0)
    min_hits: int = spec("consecutive matched frames before a track gets an id", 2, minimum=1)
    class_agnostic: bool = spec("match tracks across classes", True)
    anchor: str = spec("box point tested against zones and lines", "bottom_center", choices=ANCHORS)
    inertia: int = spec("consecutive frames inside (outside) a zone to enter (leave) it", 3, minimum=1)


@dataclass
class MediaConfig:
    """Snapshots and clips of zone and line events, in a directory with retention limits (oldest removed first)."""

    dir: str = spec("directory the files go to (created when missing; must be writable)")
    snapshots: bool = spec("save a clean and an annotated JPEG of each event's frame", True)
    clip_seconds: float = spec("seconds after an event an MJPG .avi clip runs on (0: no clips)", 0.0, minimum=0.0)
    pre_roll_seconds: float = spec("seconds before the event a clip starts (kept in memory as small JPEGs while "
                                   "clips are on)", 2.0, minimum=0.0)
    max_files: int = spec("files kept at most", 1000, minimum=1)
    max_mb: float = spec("megabytes kept at most", 1000.0, exclusive_minimum=0.0)
    max_age_hours: Optional[float] = spec("remove files older than this (default: no age limit)", None,
                                          exclusive_minimum=0.0)
    queue: int = spec("events waiting to be written; beyond it an event gets no files (counted)", 32, minimum=1)


@dataclass
class PipelineConfig:
    """Frame scheduling between capture and inference."""

    all_frames: bool = spec("infer every frame of live sources too, instead of the latest (files and folders "
                            "always give every frame; with this, video files are not paced in real time)", False)
    every: int = spec("infer every Nth captured frame", 1, minimum=1)
    max_fps: Optional[float] = spec("cap the inference rate", None, exclusive_minimum=0.0)
    drop: Optional[str] = spec("full queue policy for every source (default: latest for live sources, block for "
                               "files, folders and with all_frames)", None, choices=DROP_POLICIES)
    queue_size: int = spec("frames queued per file or folder source (every source with all_frames)", 8, minimum=1,
                           maximum=1000)
    max_frames: Optional[int] = spec("stop after N inferred frames", None, minimum=1)
    overlap: str = spec("preprocess the next frame and postprocess the previous one while the backend runs: auto "
                        "(on with 3+ cores and a backend that releases the GIL), on or off", "auto",
                        choices=OVERLAP_MODES)
    batch: Union[str, int] = spec("with several sources, run the frames that are ready together as one batched "
                                  "inference where the model takes a batch (edge-convert --batch N): auto (on for a "
                                  "fixed-batch model and on TensorRT or a GPU execution provider; off on CPU, where "
                                  "it measured below 1.3x), on, off, or the most frames per batch", "auto",
                                  pattern="|".join(BATCH_MODES), pattern_hint="be auto, on, off or a number of frames",
                                  minimum=1, maximum=1024)
    require_sources: bool = spec("exit at start-up when a source cannot be opened (default: live sources that are "
                                 "down are retried while the others run)", False)


@dataclass
class JsonlConfig:
    """Events as JSON lines."""

    path: str = spec("file path, or '-' for stdout")
    max_bytes: int = spec("rotate the file past this many bytes (0: never)", 0, minimum=0)
    backups: int = spec("rotated files kept", 5, minimum=0, maximum=1000)


@dataclass
class MqttConfig:
    """Events to an MQTT broker: PREFIX/SOURCE/events, PREFIX/SOURCE/zones/NAME, PREFIX/SOURCE/lines/NAME,
    PREFIX/SOURCE/counts (retained) and PREFIX/availability."""

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
    reconnect_max: int = spec("longest wait between reconnection attempts, seconds (paho doubles from 1 s)", 5,
                              minimum=1, maximum=300)


@dataclass
class HttpConfig:
    """/healthz /readyz /metrics /latest /stream.mjpg /snapshot.jpg."""

    listen: str = spec("HOST:PORT to serve on; a non-loopback host needs a token", DEFAULT_HTTP,
                       pattern=r"(\[[0-9A-Fa-f:.]+\]|[^:\s]*):\d{1,5}")
    token: Optional[str] = spec("the bearer token itself (prefer token_env or token_credential: keep secrets out of "
                                "config files)", None)
    token_env: Optional[str] = spec("environment variable holding the bearer token", None, pattern=NAME)
    token_credential: Optional[str] = spec("systemd credential holding the bearer token", None, pattern=CREDENTIAL)
    max_age: float = spec("/readyz fails when the last frame or inference is older, seconds", 10.0,
                          exclusive_minimum=0.0)
    preview_fps: float = spec("most frames a second sent to each /stream.mjpg viewer (each is a JPEG encoded on the "
                              "device; newer frames in between are skipped)", 5.0, exclusive_minimum=0.0, maximum=1000.0)


@dataclass
class WebhookConfig:
    """POST each event to a URL."""

    url: str = spec("http(s) URL", pattern=r"https?://\S+")
    timeout: float = spec("seconds per POST", 5.0, exclusive_minimum=0.0)
    retries: int = spec("retries after a failed POST, with doubling backoff", 3, minimum=0, maximum=100)


@dataclass
class SinksConfig:
    """Where events go; a sink is on when its section is present."""

    jsonl: Optional[JsonlConfig] = spec("JSON lines sink", None)
    mqtt: Optional[MqttConfig] = spec("MQTT sink", None)
    http: Optional[HttpConfig] = spec("HTTP probes, metrics and preview", None)
    webhook: Optional[WebhookConfig] = spec("webhook sink", None)
    queue: int = spec("events each queued sink holds before dropping the oldest", 1000, minimum=1, maximum=1000000)

    def enabled(self) -> list:
        """The names of the sinks that are on (their section is present)."""
        return [f.name for f in fields(self) if f.name != "queue" and getattr(self, f.name) is not None]


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
    tracking: TrackingConfig = spec("object tracking, zones and lines", default_factory=TrackingConfig)
    sinks: SinksConfig = spec("event sinks", default_factory=SinksConfig)
    media: Optional[MediaConfig] = spec("event snapshots and clips (on when present)", None)
    logging: LoggingConfig = spec("logging", default_factory=LoggingConfig)

    def run_model(self) -> ModelConfig:
        """The model settings `edge run` loads: `spin` as set, else off when pipeline.max_fps paces the loop (the
        inference threads would spin while it waits: 3.3x the CPU per frame for the demo model at 5 fps)."""
        if self.model.spin is not None or not self.pipeline.max_fps:
            return self.model
        return replace(self.model, spin=False)


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
