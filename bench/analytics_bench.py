"""Cost of tracking + zones + lines in the pipeline: the demo model on the demo video, analytics off vs on, one run.

    python bench/analytics_bench.py --frames 120 --repeats 3 [--json runs/analytics_bench.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge import Detector  # noqa: E402
from edge.cli.demo import FPS, write_sample  # noqa: E402
from edge.demo import BUNDLE  # noqa: E402
from edge.settings import TrackingConfig  # noqa: E402
from edge.stream.analytics import SourceAnalytics  # noqa: E402
from edge.stream.pipeline import Pipeline  # noqa: E402
from edge.stream.sources import open_source  # noqa: E402
from edge.track import parse_line, parse_zone  # noqa: E402


class Timed:
    """A SourceAnalytics whose calls are timed."""

    def __init__(self, inner: SourceAnalytics):
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    def __call__(self, frame, detections):
        start = time.perf_counter()
        out = self.inner(frame, detections)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def run(detector, video: str, analytics) -> float:
    """Wall seconds per frame of the whole pipeline (capture, inference, analytics, events)."""
    pipeline = Pipeline(detector, [open_source(video, realtime=False)], all_frames=True, analytics=[analytics])
    start = time.perf_counter()
    frames = pipeline.run()
    return (time.perf_counter() - start) / frames


def demo_setup(description: str, frames: int) -> tuple:
    """(arguments, the demo's sample video, the demo detector at its demo thresholds) for an on/off bench."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--frames", type=int, default=frames)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    video = write_sample(str(Path(tempfile.mkdtemp()) / "sample.avi"), args.frames)
    return args, video, Detector.load(BUNDLE, conf=0.4, multi_label=False, agnostic=True)


def report(result: dict, path) -> None:
    """Print the result as JSON, and write it to `path` when given."""
    print(json.dumps(result, indent=2))
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    args, video, detector = demo_setup(__doc__.splitlines()[0], 120)
    zones = [parse_zone("bottom=0,240,640,240,640,480,0,480"), parse_zone("left=0,0,320,0,320,480,0,480")]
    lines = [parse_line("mid=0,240,640,240"), parse_line("centre=320,0,320,480")]
    off, on, inside = [], [], []
    run(detector, video, None)  # warm-up
    for _ in range(args.repeats):  # interleaved so drift hits both sides alike
        off.append(run(detector, video, None))
        timed = Timed(SourceAnalytics(TrackingConfig(), zones, lines, frame_rate=FPS))
        on.append(run(detector, video, timed))
        inside.append(timed.seconds / timed.calls)
    best_off, best_on = min(off), min(on)
    result = {"frames": args.frames, "repeats": args.repeats, "zones": len(zones), "lines": len(lines),
              "objects_per_frame": 5, "frame_ms_off": round(best_off * 1e3, 3), "frame_ms_on": round(best_on * 1e3, 3),
              "ratio_on_off": round(best_on / best_off, 4), "analytics_ms_per_frame": round(min(inside) * 1e3, 4)}
    report(result, args.json)


if __name__ == "__main__":
    main()
