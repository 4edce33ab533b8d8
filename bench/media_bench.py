"""Cost of event snapshots and clips to the frame loop: the demo model on the demo video with a line and a zone,
media off vs snapshots + clips (a clip is being written most of the time), interleaved in one run.

    python bench/media_bench.py --frames 150 --repeats 3 [--json runs/media_bench.json]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analytics_bench import demo_setup, report  # noqa: E402

from edge.cli.demo import FPS  # noqa: E402
from edge.settings import MediaConfig, TrackingConfig  # noqa: E402
from edge.stream.analytics import SourceAnalytics  # noqa: E402
from edge.stream.media import Media  # noqa: E402
from edge.stream.pipeline import Pipeline  # noqa: E402
from edge.stream.sources import open_source  # noqa: E402
from edge.track import parse_line, parse_zone  # noqa: E402


def run(detector, video: str, media_dir) -> tuple[float, dict]:
    """(wall seconds per frame of the frame loop, media stats); the media writer is drained after the clock stops."""
    analytics = SourceAnalytics(TrackingConfig(), [parse_zone("bottom=0,240,640,240,640,480,0,480")],
                                [parse_line("mid=0,240,640,240")], frame_rate=FPS)
    media = None if media_dir is None else Media(MediaConfig(dir=media_dir, clip_seconds=2.0, pre_roll_seconds=2.0))
    pipeline = Pipeline(detector, [open_source(video, realtime=False)], all_frames=True, analytics=[analytics])
    pipeline.media = media  # closed by hand below, so that draining it is not timed
    frames, start = 0, time.perf_counter()
    for _ in pipeline:
        frames += 1
    seconds = (time.perf_counter() - start) / frames
    if media is not None:
        media.close(60)
    return seconds, media.stats() if media else {}


def main() -> None:
    args, video, detector = demo_setup(__doc__.splitlines()[0], 150)
    off, on, stats = [], [], {}
    run(detector, video, None)  # warm-up
    for _ in range(args.repeats):  # interleaved so drift hits both sides alike
        off.append(run(detector, video, None)[0])
        seconds, stats = run(detector, video, tempfile.mkdtemp())
        on.append(seconds)
    best_off, best_on = min(off), min(on)
    result = {"frames": args.frames, "repeats": args.repeats, "frame_ms_off": round(best_off * 1e3, 3),
              "frame_ms_media": round(best_on * 1e3, 3), "ratio_media_off": round(best_on / best_off, 4),
              "media_stats_last_run": stats}
    report(result, args.json)


if __name__ == "__main__":
    main()
