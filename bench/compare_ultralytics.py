"""Side-by-side benchmark of edge against Ultralytics: backend floor, Detector end to end, YOLO.predict, cold start.

Everything warm runs in one process, alternating per image (all orders, with an untimed gap so one runtime's
spinning thread pool does not slow the next), so a noisy shared machine hits all three alike; compare the ratios,
not the absolute numbers. Run it from a venv with ultralytics (else only (a) and (b) are timed):

    YOLO_OFFLINE=1 python bench/compare_ultralytics.py --model yolo11n.onnx --images val2017 --rounds 4 --cold
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import edge  # noqa: E402

STAGES = ("preprocess", "inference", "postprocess")


def p50(values: list) -> float:
    """Median, NaN for an empty list."""
    return float(statistics.median(values)) if values else float("nan")


def image_paths(folder: str) -> list:
    """The .jpg/.png files of a folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def load_frames(folder: str, limit: int) -> list:
    """The first `limit` images of a folder (sorted), decoded as BGR frames."""
    frames = [(p.name, cv2.imread(str(p))) for p in image_paths(folder)[:limit or None]]
    return [(name, f) for name, f in frames if f is not None]


def load_ultralytics(model: str) -> Optional[Callable]:
    """A predict(frame) callable for Ultralytics' YOLO on the same file, or None if ultralytics is absent."""
    try:
        from ultralytics import YOLO
    except ImportError:
        return None
    yolo = YOLO(model, task="detect")

    def predict(frame: np.ndarray, imgsz: int):
        return yolo.predict(frame, imgsz=imgsz, conf=0.25, iou=0.7, verbose=False)[0]
    return predict


def bench_warm(args: argparse.Namespace) -> dict:
    """(a) backend.run floor, (b) Detector end to end, (c) YOLO.predict, alternating per image over N rounds."""
    frames = load_frames(args.images, args.limit)
    det = edge.Detector.load(args.model, conf=0.25, iou=0.7, threads=args.threads)
    imgsz = args.imgsz or det.contract.input.width
    tensors = [det.preprocess(f)[0].copy() for _, f in frames]  # (a) input, prepared once per image
    predict = load_ultralytics(args.model)

    def floor(i: int) -> tuple:
        det.backend.run(tensors[i])
        return None, None

    def ours(i: int) -> tuple:
        return len(det(frames[i][1])), det.timing_ms

    def ultra(i: int) -> tuple:
        result = predict(frames[i][1], imgsz)
        return len(result.boxes), result.speed

    calls = {"floor": floor, "ours": ours, "ultra": ultra}
    names = ["floor", "ours"] + (["ultra"] if predict else [])
    t = {k: [] for k in calls}
    stages = {k: {s: [] for s in STAGES} for k in ("ours", "ultra")}
    mismatched = []

    def timed(name: str, i: int) -> Optional[int]:
        """Run one variant on image i, record wall and stage times, return its detection count."""
        t0 = time.perf_counter()
        count, speed = calls[name](i)
        t[name].append((time.perf_counter() - t0) * 1e3)
        for s in STAGES if speed else ():
            stages[name][s].append(speed[s])
        return count

    for i in range(min(args.warmup, len(frames))):  # warm-up, then forget it
        for name in names:
            timed(name, i)
    for series in [*t.values(), *stages["ours"].values(), *stages["ultra"].values()]:
        series.clear()
    orders = list(itertools.permutations(names))  # every variant runs before and after every other equally often
    for r in range(args.rounds):
        for i in range(len(frames)):
            counts = {}
            for name in orders[(i + r) % len(orders)]:
                time.sleep(args.gap_ms / 1e3)  # let the previous runtime's spinning worker threads go idle
                counts[name] = timed(name, i)
            if predict and r == 0 and counts["ours"] != counts["ultra"]:
                mismatched.append(f"{frames[i][0]} ({counts['ours']} vs {counts['ultra']})")
    return summarize(args, det, imgsz, len(frames), t, stages, mismatched if predict else None)


def summarize(args: argparse.Namespace, det, imgsz: int, n_images: int, t: dict, stages: dict,
              mismatched: Optional[list]) -> dict:
    """Per-stage p50, FPS and the ratios the report asks for."""
    fps = {k: len(v) / (sum(v) / 1e3) if v else None for k, v in t.items()}
    ours_pp = [a + b for a, b in zip(stages["ours"]["preprocess"], stages["ours"]["postprocess"])]
    ultra_pp = [a + b for a, b in zip(stages["ultra"]["preprocess"], stages["ultra"]["postprocess"])]
    return {
        "model": args.model, "backend": det.backend.name, "imgsz": imgsz, "images": n_images, "rounds": args.rounds,
        "gap_ms": args.gap_ms,
        "versions": versions(),
        "p50_ms": {
            "floor_backend_run": p50(t["floor"]),
            "ours": {"end_to_end": p50(t["ours"]), **{s: p50(v) for s, v in stages["ours"].items()},
                     "pre_plus_post": p50(ours_pp)},
            "ultralytics": {"end_to_end": p50(t["ultra"]), **{s: p50(v) for s, v in stages["ultra"].items()},
                            "pre_plus_post": p50(ultra_pp)} if t["ultra"] else None,
        },
        "fps": {"floor": fps["floor"], "ours": fps["ours"], "ultralytics": fps["ultra"]},
        "ratios": {
            "ours_fps_over_floor_fps": fps["ours"] / fps["floor"],
            "ours_pre_post_over_ultralytics": p50(ours_pp) / p50(ultra_pp) if ultra_pp else None,
            "ours_fps_over_ultralytics_fps": fps["ours"] / fps["ultra"] if fps["ultra"] else None,
            "ours_inference_over_ultralytics": (p50(stages["ours"]["inference"]) / p50(stages["ultra"]["inference"])
                                                if t["ultra"] else None),
        },
        "detection_count_mismatches_round0": mismatched,
    }


def versions() -> dict:
    """Versions of the runtimes in this process."""
    found = {"edge": edge.__version__, "numpy": np.__version__, "opencv": cv2.__version__}
    for dist in ("onnxruntime", "ai-edge-litert", "ultralytics", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def timed_child(cmd: list, env: dict, cwd: str) -> tuple:
    """Run one process; return (wall seconds, peak RSS MiB, exit code)."""
    use_time = os.path.exists("/usr/bin/time")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    t0 = time.perf_counter()
    proc = subprocess.run((["/usr/bin/time", "-v"] if use_time else []) + cmd, env=env, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if use_time:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        rss = int(match.group(1)) / 1024 if match else float("nan")
    else:  # ru_maxrss is the max over all children so far: only a new maximum is this child's
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rss = after if after > before else float("nan")
    if proc.returncode:
        print(f"warning: {' '.join(cmd[:4])} exited {proc.returncode}: {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return wall, rss, proc.returncode


def bench_cold(args: argparse.Namespace, imgsz: int) -> dict:
    """(d) cold start to first detection and peak RSS: edge CLI vs yolo CLI, alternating, medians."""
    image = str(image_paths(args.images)[0])
    model = str(Path(args.model).resolve())
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, YOLO_OFFLINE="1", PYTHONPATH=path)
    yolo_bin = args.yolo_bin or shutil.which("yolo") or str(Path(sys.executable).with_name("yolo"))
    commands = {}
    if (ROOT / "edge" / "__main__.py").exists():
        commands["edge"] = [args.edge_python or sys.executable, "-m", "edge", "detect", model, image, "--json"]
    if os.path.exists(yolo_bin):
        commands["ultralytics"] = [yolo_bin, "predict", "task=detect", f"model={model}", f"source={image}",
                                   f"imgsz={imgsz}", "conf=0.25", "iou=0.7", "save=False", "verbose=False"]
    samples = {k: {"wall_s": [], "rss_mib": [], "failures": 0} for k in commands}
    with tempfile.TemporaryDirectory() as cwd:  # yolo writes runs/ and settings next to its cwd
        for r in range(args.cold_runs):
            for name in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
                wall, rss, rc = timed_child(commands[name], env, cwd)
                if rc:
                    samples[name]["failures"] += 1
                    continue
                samples[name]["wall_s"].append(wall)
                samples[name]["rss_mib"].append(rss)
    out = {"image": image, "commands": {k: " ".join(v) for k, v in commands.items()},
           "missing": [k for k in ("edge", "ultralytics") if k not in commands]}
    for name, s in samples.items():
        out[name] = {"cold_start_s_p50": p50(s["wall_s"]), "peak_rss_mib_p50": p50(s["rss_mib"]),
                     "runs": len(s["wall_s"]), "failures": s["failures"]}
    if all(samples.get(k, {}).get("wall_s") for k in ("edge", "ultralytics")):
        e, u = out["edge"], out["ultralytics"]
        out["ratios"] = {"cold_start_edge_over_ultralytics": e["cold_start_s_p50"] / u["cold_start_s_p50"],
                         "peak_rss_edge_over_ultralytics": e["peak_rss_mib_p50"] / u["peak_rss_mib_p50"]}
    return out


def report(result: dict) -> str:
    """Human-readable summary of the JSON result."""
    w = result["warm"]
    p, u = w["p50_ms"], w["p50_ms"]["ultralytics"] or {}
    lines = [f"{w['model']} ({w['backend']}, imgsz {w['imgsz']}), {w['images']} images x {w['rounds']} rounds",
             f"{'p50 ms':<14}{'edge':>9}{'ultralytics':>13}"]
    for key in ("preprocess", "inference", "postprocess", "pre_plus_post", "end_to_end"):
        lines.append(f"{key:<14}{p['ours'][key]:>9.2f}{u.get(key, float('nan')):>13.2f}")
    lines.append(f"{'backend floor':<14}{p['floor_backend_run']:>9.2f}")
    f, r = w["fps"], w["ratios"]
    ultra_fps = f"{f['ultralytics']:.2f}" if f["ultralytics"] else "n/a"
    lines.append(f"FPS: floor {f['floor']:.2f}  edge {f['ours']:.2f}  ultralytics {ultra_fps}")
    lines.append(f"edge FPS / floor FPS = {r['ours_fps_over_floor_fps']:.3f}")
    for key in ("ours_pre_post_over_ultralytics", "ours_fps_over_ultralytics_fps", "ours_inference_over_ultralytics"):
        if r[key] is not None:
            lines.append(f"{key.replace('ours', 'edge')} = {r[key]:.3f}")
    if w["detection_count_mismatches_round0"]:
        lines.append("detection counts differ (edge vs ultralytics): "
                     + ", ".join(w["detection_count_mismatches_round0"]))
    c = result.get("cold") or {"missing": []}
    for name in ("edge", "ultralytics"):
        if name in c:
            d = c[name]
            lines.append(f"cold {name}: {d['cold_start_s_p50']:.2f} s, peak RSS {d['peak_rss_mib_p50']:.0f} MiB "
                         f"({d['runs']} runs, {d['failures']} failed)")
    lines += [f"cold {name}: not measured (command not found)" for name in c["missing"]]
    lines += [f"{key} = {value:.3f}" for key, value in c.get("ratios", {}).items()]
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    """Parse flags, run the warm (and optionally cold) benchmark, print text and/or JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help=".onnx or .tflite file (the same file goes to Ultralytics)")
    ap.add_argument("--images", required=True, help="folder of .jpg/.png images")
    ap.add_argument("--imgsz", type=int, default=0, help="Ultralytics imgsz (default: the model's input width)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, help="edge inference threads (Ultralytics' TFLite uses min(8, cores-1))")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    ap.add_argument("--warmup", type=int, default=5, help="images run by every variant before timing")
    ap.add_argument("--gap-ms", type=float, default=50.0,
                    help="untimed pause before each call: ORT/OpenMP pools spin after a run and slow the next runtime")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="write JSON to PATH, or alone: JSON on stdout and the text summary on stderr")
    ap.add_argument("--cold", action="store_true", help="also time cold start + peak RSS of the two CLIs")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--edge-python", help="python that runs `-m edge` for --cold (default: this one)")
    ap.add_argument("--yolo-bin", help="the `yolo` executable for --cold (default: on PATH or beside this python)")
    args = ap.parse_args(argv)
    result = {"warm": bench_warm(args)}
    if args.cold:
        result["cold"] = bench_cold(args, result["warm"]["imgsz"])
    text = report(result)
    if args.json == "-":
        print(text, file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
