"""Batching across sources: how many frames from different sources one inference takes (`pipeline.batch`).

A batch holds at most one frame per source (the frames ready at the moment the loop picks, sources in turn; it
never waits for a late camera) and at most what the model takes: its fixed batch (a short batch is padded), or
the `batch` its manifest declares for a dynamic batch axis (edge-convert --batch N; a raw dynamic ONNX: any).

`auto` turns batching on where it pays: on TensorRT or an ONNX Runtime GPU execution provider, where a batch of N
costs little more than one frame, and for a fixed-batch model, which runs its whole batch for one frame anyway.
On CPU it stays off: ONNX Runtime already spreads one frame over every core, and bench/batch_bench.py measured
batches of 2 and 4 sources at 0.86-1.21x the round-robin throughput (medians of paired rounds 1.02-1.16x) on
this project's 2-core machine, below the 1.3x that would be worth the extra latency (every frame of a batch
waits for the whole batch).
"""
from __future__ import annotations

import logging
from typing import Any, Union

from ..settings import BATCH_MODES

log = logging.getLogger("edge")

STAGE_METHODS = ("batch", "prepare_batch", "finish_batch")


def use_batch(mode: Union[str, int], detector: Any, sources: int) -> int:
    """Frames per inference for `mode` (auto|on|off or the most frames a batch holds) with this detector and this
    many sources; 1 runs frames one by one."""
    if not (isinstance(mode, int) and not isinstance(mode, bool) and mode >= 1) and mode not in BATCH_MODES:
        raise ValueError(f"batch must be one of {', '.join(BATCH_MODES)} or a number of frames, got {mode!r}")
    batchable = all(callable(getattr(detector, m, None)) for m in STAGE_METHODS)
    largest = getattr(detector, "max_batch", 1) if batchable else 1
    fixed = getattr(detector, "fixed_batch", 1) if batchable else 1
    size = min(largest or sources, sources)  # 0: a dynamic batch without a declared limit
    if mode == "off" or size < 2:
        if fixed > 1 and sources > 1:
            log.info("batch: the model runs a fixed batch of %d, so each frame is padded to %d images; "
                     "--batch auto runs frames of up to %d sources in that one inference", fixed, fixed, fixed)
        elif mode not in ("off", "auto"):
            log.info("batch: %s; frames run one by one", "one source" if sources < 2 else
                     "the model takes one frame per inference (convert it with edge-convert --batch N)")
        return 1
    if mode == "auto":
        backend = getattr(detector, "backend", None)
        return size if fixed > 1 or getattr(backend, "accelerated", False) else 1
    return size if mode == "on" else min(int(mode), size)
