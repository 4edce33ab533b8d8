"""Batching across sources on ONNX Runtime CPU: N sources batched vs round-robin single-frame inference.

    python bench/batch_bench.py                         # demo + YOLO11n 640, 2 and 4 sources, docs/batch_bench.json
    python bench/batch_bench.py --models demo --frames 24 --rounds 2      # shorter

Each model is converted by `edge-convert --batch 4` (converters.convert, the dynamic-batch export) and measured
two ways, the batched and the one-by-one run alternating within each round (best round of each kept, ratios from
the same run; `ratio_median_of_rounds` pairs each round's two adjacent runs, which a shared machine's load hits
alike): `inference`, the backend alone on preprocessed tensors (N frames as one batch vs N runs of one), and
`pipeline`, `edge run --all-frames` with N file sources, pipeline.batch on vs off (overlap off, so the ratio is
batching's alone), i.e. aggregate events per second as a deployment sees them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from stream_bench import decoded_frames, make_video  # noqa: E402

from converters import ConvertOptions, convert  # noqa: E402
from edge import Detector  # noqa: E402
from edge.demo import BUNDLE  # noqa: E402
from edge.progress import Progress, silenced  # noqa: E402
from edge.stream.pipeline import Pipeline  # noqa: E402
from edge.stream.sources.video import VideoFileSource  # noqa: E402

SHARED = Path(os.environ.get("EDGE_SHARED") or ROOT.parent / "shared")
MODELS = {"demo": Path(BUNDLE), "yolo11n": SHARED / "models" / "yolo11n.onnx"}
SOURCES = (2, 4)


def fps_of(run: Callable[[], int]) -> float:
    """Frames per second of one call of run (which returns the frames it did)."""
    t0 = time.perf_counter()
    frames = run()
    return frames / (time.perf_counter() - t0)


def batch_bundle(name: str, folder: str) -> str:
    """The model converted with a dynamic batch axis for up to the most sources measured."""
    with silenced():
        return convert(str(MODELS[name]), "onnx", os.path.join(folder, f"{name}-batch"),
                       ConvertOptions(batch=max(SOURCES), quiet=True)).path


def inference_loops(detector: Detector, images: list, sources: int, steps: int) -> dict:
    """The backend on preprocessed tensors: `steps` batches of `sources` frames vs as many single-frame runs."""
    singles = [detector.prepare(image)[0].copy() for image in images[:sources]]
    batch = detector.prepare_batch(images[:sources])[0].copy()

    def round_robin() -> int:
        for _ in range(steps):
            for tensor in singles:
                detector.backend.run(tensor)
        return steps * sources

    def batched() -> int:
        for _ in range(steps):
            detector.backend.run(batch)
        return steps * sources
    return {"off": round_robin, "on": batched}


def pipeline_loops(detector: Detector, video: str, sources: int) -> dict:
    """`edge run --all-frames` over `sources` copies of the video, batching off and on."""
    def run(mode: str) -> Callable[[], int]:
        return lambda: Pipeline(detector, [VideoFileSource(video, realtime=False, source_id=f"cam{k}")
                                           for k in range(sources)], all_frames=True, overlap="off",
                                batch=mode).run()
    return {"off": run("off"), "on": run("on")}


def bench_model(name: str, folder: str, video: str, images: list, rounds: int, progress: Progress) -> dict:
    """Both measurements for 2 and 4 sources; batched and one-by-one alternate within each round."""
    detector = Detector.load(batch_bundle(name, folder))
    spec = detector.contract.input
    result: dict = {"model": name, "input": [spec.height, spec.width], "max_batch": detector.max_batch, "sources": {}}
    for sources in SOURCES:
        loops = {"inference": inference_loops(detector, images, sources, max(2, 48 // sources)),
                 "pipeline": pipeline_loops(detector, video, sources)}
        for kind in loops.values():  # warm-up: the first run of each batch size binds its buffers
            kind["on"](), kind["off"]()
        fps: dict = {kind: {"off": [], "on": []} for kind in loops}
        for _ in range(rounds):
            for kind, pair in loops.items():
                for mode in ("off", "on"):
                    fps[kind][mode].append(fps_of(pair[mode]))
                progress.update()
        entry = {}
        for kind, by_mode in fps.items():
            off, on = max(by_mode["off"]), max(by_mode["on"])
            paired = sorted(b / a for a, b in zip(by_mode["off"], by_mode["on"]))  # adjacent runs, similar load
            entry[kind] = {"round_robin_fps": round(off, 2), "batched_fps": round(on, 2), "ratio": round(on / off, 3),
                           "ratio_median_of_rounds": round(paired[len(paired) // 2], 3),
                           "rounds": {m: [round(v, 2) for v in values] for m, values in by_mode.items()}}
        result["sources"][str(sources)] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--frames", type=int, default=24, help="frames of the 640x480 video each source plays")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each loop is kept")
    parser.add_argument("--out", default=str(ROOT / "docs" / "batch_bench.json"), help="the JSON report")
    args = parser.parse_args()
    import onnxruntime

    models = [m for m in args.models if MODELS[m].exists()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(os.path.join(tmp, "bench.avi"), None, args.frames)
        images = decoded_frames(video)
        with Progress("batch bench", total=len(models) * len(SOURCES) * args.rounds * 2) as progress:
            for name in models:
                results.append(bench_model(name, tmp, video, images, args.rounds, progress))
    report = {"backend": f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider", "cpus": os.cpu_count(),
              "load_average": [round(v, 2) for v in os.getloadavg()], "frames_per_source": args.frames,
              "rounds": args.rounds, "skipped": {m: f"{MODELS[m]} is absent" for m in set(args.models) - set(models)},
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    for r in results:
        for sources, entry in r["sources"].items():
            print(f"{r['model']:8} {sources} sources: inference {entry['inference']['ratio']:.2f}x, "
                  f"edge run {entry['pipeline']['ratio']:.2f}x batched / round-robin", file=sys.stderr)


if __name__ == "__main__":
    main()
