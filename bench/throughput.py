"""Throughput: raw backend loop vs Detector loop vs the edge run pipeline (overlap off and on), and live latency.

    python bench/throughput.py                      # everything found, writes docs/throughput.json + PNGs
    python bench/throughput.py --frames 60 --rounds 2 --models demo fake   # shorter

Models: `onnx` (../shared/models/yolo11n.onnx, 640), `tflite` (yolo11n_int8.tflite), `demo` (the bundled
DAMO-YOLO-Ns, 256) and `fake`: the demo model's real decode behind a backend that sleeps --fake-ms (releasing
the GIL), i.e. a fast accelerator whose pre+post is a large part of the frame time. The loops of one model
alternate within each round so the shared machine's noise hits them alike; the best round of each is kept and
the ratios come from the same run. Ultralytics predict(stream=True) is measured when it is importable.
Batching across sources is bench/batch_bench.py.
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

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edge import Detector  # noqa: E402
from edge.backends import Backend  # noqa: E402
from edge.demo import BUNDLE  # noqa: E402
from edge.progress import Progress  # noqa: E402
from edge.stream.pipeline import Pipeline  # noqa: E402
from edge.stream.sources.video import VideoFileSource  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from stream_bench import decoded_frames, make_video  # noqa: E402

SHARED = Path(os.environ.get("EDGE_SHARED") or ROOT.parent / "shared")
MODELS = {"onnx": SHARED / "models" / "yolo11n.onnx", "tflite": SHARED / "models" / "yolo11n_int8.tflite",
          "demo": Path(BUNDLE), "fake": Path(BUNDLE)}
LOOPS = ("raw", "detector", "pipeline_off", "pipeline_on")


class SleepBackend(Backend):
    """A fast accelerator stand-in: sleeps a fixed time (the GIL released) and returns fixed real outputs."""

    name = "sleep"
    releases_gil = True

    def __init__(self, like: Backend, outputs: list, seconds: float):
        self.inputs, self.outputs, self.metadata = like.inputs, like.outputs, like.metadata
        self._results, self.seconds = [o.copy() for o in outputs], seconds

    def run(self, tensor: np.ndarray) -> list:
        time.sleep(self.seconds)
        return self._results


def load(name: str, fake_ms: float, frame: np.ndarray) -> Detector:
    """The detector for one model name."""
    detector = Detector.load(str(MODELS[name]))
    if name != "fake":
        return detector
    outputs = detector.backend.run(detector.preprocess(frame)[0])
    return Detector(SleepBackend(detector.backend, outputs, fake_ms / 1e3), detector.contract, model_path="fake")


def fps_of(run: Callable[[], int]) -> float:
    """Frames per second of one call of run (which returns the frames it did)."""
    t0 = time.perf_counter()
    frames = run()
    return frames / (time.perf_counter() - t0)


def loops(detector: Detector, video: str, images: list) -> dict:
    """The four loops of one model, each a callable returning the frames done."""
    tensors = [detector.preprocess(image)[0].copy() for image in images]

    def raw() -> int:
        for tensor in tensors:
            detector.backend.run(tensor)
        return len(tensors)

    def det() -> int:
        for image in images:
            detector(image)
        return len(images)

    def pipe(mode: str) -> Callable[[], int]:
        return lambda: Pipeline(detector, [VideoFileSource(video, realtime=False)], all_frames=True,
                                overlap=mode).run()
    return {"raw": raw, "detector": det, "pipeline_off": pipe("off"), "pipeline_on": pipe("on")}


def stage_ms(detector: Detector, images: list) -> dict:
    """Median preprocess / inference / postprocess per frame of the Detector loop."""
    times = []
    for image in images[:30]:
        detector(image)
        times.append(detector.timing_ms)
    return {k: round(float(np.median([t[k] for t in times])), 3) for k in times[0]}


def live(detector: Detector, video: str, mode: str) -> dict:
    """The video paced at 30 fps, latest-frame policy: capture-to-result and inference percentiles, drops."""
    pipeline = Pipeline(detector, [VideoFileSource(video, realtime=True)], drop="latest", queue_size=1,
                        overlap=mode)  # played as a camera: the latest frame only
    pipeline.run()
    status = pipeline.status()
    source = next(iter(status["sources"].values()))
    return {"capture_to_result_ms": status["latency_ms"]["capture_to_result"],
            "inference_ms": status["latency_ms"]["inference"], "captured": source["captured"],
            "inferred": source["inferred"], "dropped": source["dropped"]}


def ultralytics(model: Path, video: str) -> dict:
    """Ultralytics predict(stream=True) on the same file and video, when it is importable."""
    try:
        from ultralytics import YOLO
    except ImportError:
        return {"skipped": "ultralytics is not importable in this environment"}
    yolo = YOLO(str(model), task="detect")
    next(iter(yolo.predict(source=video, stream=True, verbose=False, imgsz=640)))  # warm-up
    return {"fps": round(fps_of(lambda: sum(1 for _ in yolo.predict(source=video, stream=True, verbose=False,
                                                                      imgsz=640))), 2)}


def bench_model(name: str, video: str, images: list, rounds: int, fake_ms: float, progress: Progress) -> dict:
    """Every measurement of one model; the loops alternate within each round."""
    detector = load(name, fake_ms, images[0])
    runs = loops(detector, video, images)
    Pipeline(detector, [VideoFileSource(video, realtime=False)], all_frames=True, max_frames=5).run()  # warm-up
    fps: dict = {k: [] for k in LOOPS}
    cv2_other: list = []
    loaded = cv2.getNumThreads()  # what loading the detector left OpenCV with
    other = 1 if loaded != 1 else CV2_THREADS_AT_START
    for _ in range(rounds):
        for loop in LOOPS:
            fps[loop].append(fps_of(runs[loop]))
            progress.update()
        cv2.setNumThreads(other)  # the Detector loop again with the other OpenCV thread setting
        cv2_other.append(fps_of(runs["detector"]))
        cv2.setNumThreads(loaded)
        progress.update()
    best = {k: round(max(v), 2) for k, v in fps.items()}
    result = {"model": name, "backend": detector.backend.name, "stages_ms": stage_ms(detector, images),
              "fps": best, "fps_rounds": {k: [round(x, 2) for x in v] for k, v in fps.items()},
              "ratio_to_raw": {k: round(best[k] / best["raw"], 3) for k in LOOPS},
              "overlap_speedup": round(best["pipeline_on"] / best["pipeline_off"], 3),
              "detector_fps_by_cv2_threads": {str(other): round(max(cv2_other), 2), str(loaded): best["detector"]}}
    result["live_30fps"] = {}
    for mode in ("off", "on"):
        result["live_30fps"][mode] = live(detector, video, mode)
        progress.update()
    if name in ("onnx", "tflite"):
        result["ultralytics_predict_stream"] = ultralytics(MODELS[name], video)
    progress.update()
    return result


def plot(results: list, folder: Path) -> list:
    """docs/throughput.png (fps relative to the raw backend loop) and docs/latency.png (live p50/p99)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in results]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=90)
    labels = {"raw": "raw backend loop", "detector": "Detector loop", "pipeline_off": "edge run, overlap off",
              "pipeline_on": "edge run, overlap on"}
    width = 0.8 / len(LOOPS)
    for i, loop in enumerate(LOOPS):
        values = [r["ratio_to_raw"][loop] for r in results]
        bars = ax.bar(x + (i - 1.5) * width, values, width, label=labels[loop])
        ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=6)
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_xticks(x, [f"{n}\n{r['fps']['raw']:.0f} fps raw" for n, r in zip(names, results)], fontsize=8)
    ax.set_ylabel("throughput / raw backend loop")
    ax.set_title(f"--all-frames throughput, {os.cpu_count()} cores", fontsize=9)
    ax.set_ylim(0, max(1.25, max(max(r["ratio_to_raw"].values()) for r in results) + 0.15))
    ax.legend(fontsize=7, loc="upper center", ncol=4)
    fig.tight_layout()
    paths = [folder / "throughput.png"]
    fig.savefig(paths[0])
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    for i, mode in enumerate(("off", "on")):
        lat = [r["live_30fps"][mode]["capture_to_result_ms"] for r in results]
        p50, p99 = [v["p50"] or 0 for v in lat], [v["p99"] or 0 for v in lat]
        ax.bar(x + (i - 0.5) * 0.35, p99, 0.35, color=f"C{i}", alpha=0.35)
        ax.bar(x + (i - 0.5) * 0.35, p50, 0.35, color=f"C{i}", label=f"overlap {mode}: p50 (dark), p99 (light)")
    inference = [r["live_30fps"]["off"]["inference_ms"]["p50"] or 0 for r in results]
    ax.scatter(x, [v + 1e3 / 30 for v in inference], marker="_", s=400, color="k",
               label="inference p50 + one frame period (target for p50)")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("capture-to-result, ms")
    ax.set_title("live 30 fps source, latest-frame policy", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    paths.append(folder / "latency.png")
    fig.savefig(paths[1])
    return [str(p) for p in paths]


CV2_THREADS_AT_START = cv2.getNumThreads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--frames", type=int, default=60, help="frames of the 640x480 test video")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each loop is kept")
    parser.add_argument("--fake-ms", type=float, default=6.0, help="inference time of the fake backend")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for throughput.json and the PNGs")
    args = parser.parse_args()
    models = [m for m in args.models if MODELS[m].exists()]
    skipped = sorted(set(args.models) - set(models))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(os.path.join(tmp, "bench.avi"), None, args.frames)
        images = decoded_frames(video)
        total = len(models) * (args.rounds * (len(LOOPS) + 1) + 3)
        with Progress("throughput", total=total) as progress:
            for name in models:
                results.append(bench_model(name, video, images, args.rounds, args.fake_ms, progress))
    report = {"frames": args.frames, "rounds": args.rounds, "video": "640x480 MJPG 30 fps (synthetic scene)",
              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "fake_ms": args.fake_ms,
              "cv2_threads": {"at_start": CV2_THREADS_AT_START, "after_loading": cv2.getNumThreads()},
              "skipped": {m: f"{MODELS[m]} is absent" for m in skipped}, "results": results}
    report["plots"] = plot(results, out) if results else []
    (out / "throughput.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
