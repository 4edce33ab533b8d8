"""`edge demo`: the bundled shapes model on a generated sample video, through the streaming runtime (offline)."""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from ..demo import BUNDLE
from ..draw import draw_detections
from ..errors import EdgeError
from ..scene import CLASSES, demo_frame
from ..settings import TrackingConfig
from ..stream.analytics import SourceAnalytics
from ..stream.sinks.base import Sink
from ..stream.sources import Frame, Source
from ..track import parse_line, parse_zone
from .flags import detector_settings, threshold_flags

WIDTH, HEIGHT, FPS = 640, 480, 12
DEFAULT_LINE = f"middle=0,{HEIGHT // 2},{WIDTH},{HEIGHT // 2}"


def add_demo_parser(sub) -> None:
    """Register the `demo` subcommand."""
    p = sub.add_parser("demo", help="run the bundled DAMO-YOLO shapes model on a generated video (no network/camera)")
    p.add_argument("--out", default="edge-demo", help="folder for sample.avi and annotated.avi (default ./edge-demo)")
    p.add_argument("--frames", type=int, help="length of the sample video (default 36 frames)")
    threshold_flags(p, keys=("conf", "iou"))
    p.add_argument("--json", action="store_true", help="one event JSON object per frame on stdout")
    p.add_argument("--http", metavar="HOST:PORT", help="serve the web page and previews (e.g. 127.0.0.1:8080) and "
                   "loop the scene live until Ctrl-C (or --frames when given)")
    p.add_argument("--line", action="append", type=parse_line, metavar="NAME=x1,y1,x2,y2[:CLASSES]",
                   help=f"counting line(s) drawn and counted (default {DEFAULT_LINE})")
    p.add_argument("--zone", action="append", type=parse_zone, default=[], metavar="NAME=x1,y1,x2,y2,x3,y3,...",
                   help="zone(s) drawn and counted")
    p.set_defaults(func=cmd_demo, parser=p)


class VideoSink(Sink):
    """Writes every published frame, annotated with its detections (and zones and lines), to an MJPG .avi file."""

    name = "video"

    def __init__(self, path: str, size: tuple, fps: float = FPS, zones: Sequence = (), lines: Sequence = ()):
        self.path, self.zones, self.lines = path, zones, lines
        self.writer = _writer(path, size, fps)

    def publish(self, event: dict, frame: Optional[np.ndarray], detections) -> None:
        """Draw and append the frame."""
        if frame is not None:
            self.writer.write(draw_detections(frame, detections, self.zones, self.lines))

    def close(self, timeout: float = 5.0) -> None:
        """Finish the file."""
        self.writer.release()


def _writer(path: str, size: tuple, fps: float) -> cv2.VideoWriter:
    """An opened MJPG writer, or EdgeError."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise EdgeError(f"{path}: cannot write an MJPG video here")
    return writer


class DemoScene(Source):
    """The demo scene as a live camera at FPS, looping every `period` frames, ending after `frames` if given."""

    def __init__(self, period: int, frames: Optional[int] = None):
        super().__init__("demo", "demo")
        self.period, self.frames = max(1, period), frames
        self._next = 0.0

    def open(self) -> None:
        """Start the pacing clock."""
        self._next = time.monotonic()

    def read(self) -> Optional[Frame]:
        """The next frame at its time."""
        if self.frames is not None and self._seq >= self.frames:
            return None
        self._next += 1.0 / FPS
        time.sleep(max(0.0, self._next - time.monotonic()))
        return self.frame(demo_frame(self._seq % self.period, WIDTH, HEIGHT))

    def close(self) -> None:
        """Nothing to release."""


def write_sample(path: str, frames: int, width: int = WIDTH, height: int = HEIGHT) -> str:
    """Render the demo scene into an MJPG video at `path`; returns the path."""
    writer = _writer(path, (width, height), FPS)
    for seq in range(frames):
        writer.write(demo_frame(seq, width, height))
    writer.release()
    return path


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the sample video, stream it through the bundled model, print and annotate every frame's detections."""
    from ..detector import Detector
    from ..stream import stream

    if not os.path.isfile(os.path.join(BUNDLE, "manifest.json")):
        raise EdgeError(f"{BUNDLE}: the demo model is missing from this installation (manifest.json not found)")
    os.makedirs(args.out, exist_ok=True)
    length = max(1, args.frames or 36)
    sample = write_sample(os.path.join(args.out, "sample.avi"), length)
    _, thresholds = detector_settings(args, args.parser, model=False)
    detector = Detector.load(BUNDLE, preset="deployment", conf=thresholds.conf, iou=thresholds.iou,
                             agnostic=True)  # one label per object
    lines = args.line or [parse_line(DEFAULT_LINE)]
    tracking = SourceAnalytics(TrackingConfig(), args.zone, lines, frame_rate=FPS)
    sink = VideoSink(os.path.join(args.out, "annotated.avi"), (WIDTH, HEIGHT), zones=args.zone, lines=lines)
    sinks: list = [sink]
    source: Union[str, DemoScene] = sample
    if args.http:
        from ..service.server import HttpServer

        sinks.append(HttpServer(args.http))
        source = DemoScene(length, args.frames)
        print(f"serving http://{args.http} (Ctrl-C stops)", flush=True)
    counts: Counter = Counter()
    frames = 0
    try:
        events = stream(detector, source, all_frames=True, sinks=sinks, analytics=[tracking])
        for event in events:
            frames += 1
            counts.update(d["name"] for d in event["detections"])
            if args.json:
                print(json.dumps(event), flush=True)
            else:
                found = ", ".join(f"#{d['track_id']} {d['name']} {d['score']:.2f}" for d in event["detections"])
                print(f"frame {event['seq']:3d}: {found or 'no tracked objects'}", flush=True)
    except KeyboardInterrupt:
        events.close()  # stops the pipeline and closes the sinks
    if not args.json:
        per_class = ", ".join(f"{n} {counts[n]}" for n in CLASSES)
        print(f"{frames} frames; tracked detections per class: {per_class}")
        final = tracking.counts or {"lines": {}, "zones": {}}
        for name, c in final["lines"].items():
            print(f"line {name}: {c['in']} in, {c['out']} out")
        for name, c in final["zones"].items():
            print(f"zone {name}: {c['count']} inside now")
        print(f"sample video {sample}\nannotated video {sink.path}")
    return 0
