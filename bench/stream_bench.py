"""Streaming benchmark: (a) raw backend loop, (a2) Detector loop on decoded frames, (b) the pipeline with all_frames,
(c) Ultralytics predict(stream=True), and a live-paced 30 fps source through the latest-frame pipeline
(capture-to-result latency, drops). Prints JSON.

    PYTHONPATH=. python bench/stream_bench.py --models ../shared/models/yolo11n.onnx ../shared/models/yolo11n_int8.tflite \
        --images ../shared/coco/val2017 --frames 150 --ultralytics-python /work/ultra-venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edge import Detector  # noqa: E402
from edge.images import list_images  # noqa: E402
from edge.stream.pipeline import Pipeline  # noqa: E402
from edge.stream.sources.synthetic import render  # noqa: E402
from edge.stream.sources.video import VideoFileSource  # noqa: E402

ULTRALYTICS = """
import json, sys, time
from ultralytics import YOLO
model, video = sys.argv[1], sys.argv[2]
yolo = YOLO(model, task="detect")
for _ in yolo.predict(source=video, stream=True, verbose=False, imgsz=640):  # warm-up pass
    break
t0 = time.perf_counter(); n = sum(1 for _ in yolo.predict(source=video, stream=True, verbose=False, imgsz=640))
print(json.dumps({"frames": n, "fps": n / (time.perf_counter() - t0)}))
"""


def make_video(path: str, images: Optional[str], frames: int, size=(640, 480), fps: float = 30.0) -> str:
    """An MJPG .avi of COCO images (or the synthetic scene), resized to `size`."""
    files = list_images(images)[:frames] if images else []
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        image = cv2.imread(files[i % len(files)]) if files else render(i, *size)
        writer.write(cv2.resize(image, size))
    writer.release()
    return path


def measured(fn: Callable[[], int]) -> dict:
    """Run fn (returns frames done) and report fps, CPU% (all threads) and the process's RSS afterwards."""
    usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    frames = fn()
    wall, usage1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    return {"frames": frames, "seconds": round(wall, 3), "fps": round(frames / wall, 2),
            "cpu_percent": round(100 * cpu / wall, 1), "rss_mb": rss_mb()}


def rss_mb() -> float:
    """Current resident memory in MiB."""
    with open("/proc/self/status") as f:
        return round(next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024, 1)


def decoded_frames(video: str) -> list:
    """Every frame of the video, decoded up front."""
    capture, images = cv2.VideoCapture(video), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


def raw_loop(detector: Detector, video: str) -> Callable[[], int]:
    """(a): backend.run over tensors preprocessed up front from every decoded frame."""
    tensors = [detector.preprocess(image)[0].copy() for image in decoded_frames(video)]

    def run() -> int:
        for tensor in tensors:
            detector.backend.run(tensor)
        return len(tensors)
    return run


def detector_loop(detector: Detector, video: str) -> Callable[[], int]:
    """(a2): the full Detector (preprocess + inference + postprocess) over frames decoded up front, no threads."""
    images = decoded_frames(video)

    def run() -> int:
        for image in images:
            detector(image)
        return len(images)
    return run


def pipeline_all_frames(detector: Detector, video: str) -> Callable[[], int]:
    """(b): decode + preprocess + inference + postprocess + events through the pipeline, every frame."""
    return lambda: Pipeline(detector, [VideoFileSource(video, realtime=False)], all_frames=True).run()


def live(detector: Detector, video: str) -> dict:
    """The video paced at its 30 fps, latest-frame policy: latency percentiles and drops."""
    pipeline = Pipeline(detector, [VideoFileSource(video, realtime=True)], drop="latest", queue_size=1)  # a camera
    result = measured(pipeline.run)
    status = pipeline.status()
    source = next(iter(status["sources"].values()))
    return {**result, "capture_to_result_ms": status["latency_ms"]["capture_to_result"],
            "inference_ms": status["latency_ms"]["inference"],
            "captured": source["captured"], "inferred": source["inferred"], "dropped": source["dropped"]}


def ultralytics(python: str, model: str, video: str) -> dict:
    """(c) in the Ultralytics venv, on the same model file and video."""
    result = subprocess.run([python, "-c", ULTRALYTICS, model, video], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "YOLO_OFFLINE": "1"})
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def best(runs: list) -> dict:
    """The fastest of several runs (the least disturbed on a shared machine)."""
    return max(runs, key=lambda r: r["fps"])


def bench_model(model: str, video: str, python: Optional[str], rounds: int, threads: Optional[int] = None) -> dict:
    """All measurements for one model; (a) and (b) alternate for `rounds` rounds so noise hits both alike."""
    detector = Detector.load(model, threads=threads)
    Pipeline(detector, [VideoFileSource(video, realtime=False)], all_frames=True, max_frames=5).run()  # warm-up
    paced = live(detector, video)  # first, so its RSS is the pipeline's, not the preloaded frames'
    raw_run, det_run, raws, dets, pipes = raw_loop(detector, video), detector_loop(detector, video), [], [], []
    for _ in range(rounds):
        raws.append(measured(raw_run))
        dets.append(measured(det_run))
        pipes.append(measured(pipeline_all_frames(detector, video)))
    raw, det, piped = best(raws), best(dets), best(pipes)
    result = {"model": os.path.basename(model), "backend": detector.backend.name, "raw_inference_loop": raw,
              "detector_loop": det, "ratio_detector_over_raw": round(det["fps"] / raw["fps"], 3),
              "pipeline_all_frames": piped, "ratio_pipeline_over_raw": round(piped["fps"] / raw["fps"], 3),
              "live_30fps": paced}
    if python:
        ultra = ultralytics(python, model, video)
        result["ultralytics_predict_stream"] = ultra
        if "fps" in ultra:
            result["ratio_ultralytics_over_raw"] = round(ultra["fps"] / raw["fps"], 3)
            result["ratio_pipeline_over_ultralytics"] = round(piped["fps"] / ultra["fps"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help=".onnx / .tflite files or bundles")
    parser.add_argument("--images", help="image folder for the video (default: the synthetic scene)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (a) and (b); the best of each is kept")
    parser.add_argument("--ultralytics-python", help="python of a venv with ultralytics, for column (c)")
    parser.add_argument("--threads", type=int, help="inference threads (default: the backend's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(os.path.join(tmp, "bench.avi"), args.images, args.frames)
        results = [bench_model(m, video, args.ultralytics_python, args.rounds, args.threads) for m in args.models]
    print(json.dumps({"frames": args.frames, "rounds": args.rounds, "video": "640x480 MJPG 30 fps", "cpus": os.cpu_count(),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
