"""`edge.stream(detector, source)`: the pipeline as a generator of events."""
from __future__ import annotations

import os
from typing import Generator, Sequence, Union

from .pipeline import Pipeline
from .sources import Source, open_source, split_name

PIPELINE_OPTIONS = ("sinks", "every", "max_fps", "drop", "queue_size", "max_frames", "require_sources", "backoff",
                    "window", "analytics", "overlap", "batch")


def stream(detector, source: Union[str, Source, Sequence[Union[str, Source]]], *, all_frames: bool = False,
           **options) -> Generator[dict, None, None]:
    """Yield one event per inferred frame; `detector` is a Detector or a model path (loaded with the deployment
    thresholds, as `edge run` does), `source` a URI, a Source or a list.

    Pipeline options: sinks, every, max_fps, drop, queue_size, max_frames, require_sources, backoff, window,
    analytics, overlap, batch; the rest (width, height, fps, fourcc, model_size, ...) go to open_source. Breaking out of
    the loop stops everything.
    """
    if isinstance(detector, (str, os.PathLike)):
        from ..detector import Detector
        detector = Detector.load(str(detector), preset="deployment")
    pipeline_options = {k: options.pop(k) for k in PIPELINE_OPTIONS if k in options}
    specs = [source] if isinstance(source, (str, Source)) else list(source)
    sources = [s if isinstance(s, Source) else _open(s, realtime=not all_frames, **options) for s in specs]
    yield from Pipeline(detector, sources, all_frames=all_frames, **pipeline_options)


def _open(spec: str, **options) -> Source:
    """A Source from `URI` or `name=URI`."""
    name, uri = split_name(spec)
    return open_source(uri, source_id=name, **options)
