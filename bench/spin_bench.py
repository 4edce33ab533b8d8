"""ONNX Runtime's spinning threads (`--spin` / `--no-spin`): CPU per frame in a paced loop and FPS back to back.

Each measurement is a fresh process (the setting is fixed when the session is made) running `Detector` on one
640x480 frame: `paced` at --fps (sleeping until each frame is due, as `--max-fps` or a camera slower than the model
makes the loop wait), `full` back to back. Variants alternate per round; the table is the median over rounds.

    python bench/spin_bench.py --models ../shared/models/yolo11n.onnx edge/demo --json docs/spin.json
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(model: str, spin: bool, fps: float, frames: int) -> dict:
    """CPU seconds of this process per frame, frames per second and inference p50 for one setting."""
    from edge import Detector

    detector = Detector.load(model, spin=spin)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for _ in range(3):
        detector(frame)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, t0, inference = usage.ru_utime + usage.ru_stime, time.perf_counter(), []
    for k in range(frames):
        if fps:
            time.sleep(max(0.0, t0 + k / fps - time.perf_counter()))
        detector(frame)
        inference.append(detector.timing_ms["inference"])
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_ms_per_frame": (usage.ru_utime + usage.ru_stime - cpu0) / frames * 1e3, "fps": frames / wall,
            "inference_ms_p50": float(np.median(inference))}


def measure(model: str, rounds: int, fps: float, frames: int) -> dict:
    """Both spin settings, paced and back to back, alternating which goes first each round."""
    runs: dict = {}
    for r in range(rounds):
        for spin in ((True, False) if r % 2 == 0 else (False, True)):
            for pace in (fps, 0.0):
                cmd = [sys.executable, __file__, "--child", model, "--spin" if spin else "--no-spin",
                       "--fps", str(pace), "--frames", str(frames)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                runs.setdefault(f"{'spin' if spin else 'no-spin'} {'paced' if pace else 'full'}", []).append(
                    json.loads(out.strip().splitlines()[-1]))
    table = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    return {"model": model, "rounds": rounds, "paced_fps": fps, "frames": frames, "median": table,
            "cpu_ratio_paced": table["spin paced"]["cpu_ms_per_frame"] / table["no-spin paced"]["cpu_ms_per_frame"],
            "fps_ratio_full": table["spin full"]["fps"] / table["no-spin full"]["fps"]}


def main(argv: Optional[list] = None) -> int:
    """Measure each model; print the table (and write the JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[str(ROOT / "edge" / "demo")], help=".onnx files or bundles")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fps", type=float, default=5.0, help="rate of the paced loop")
    ap.add_argument("--frames", type=int, default=40, help="frames per measurement")
    ap.add_argument("--json", metavar="PATH", help="also write the JSON result here")
    ap.add_argument("--child", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--spin", action=argparse.BooleanOptionalAction, default=True, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.spin, args.fps, args.frames)))
        return 0
    results = []
    for model in args.models:
        results.append(measure(model, args.rounds, args.fps, args.frames))
        print(f"{model}: done", file=sys.stderr)
    print(f"{'model':<28}{'setting':<16}{'CPU ms/frame':>13}{'FPS':>8}{'inference p50':>15}")
    for r in results:
        for name, m in r["median"].items():
            print(f"{Path(r['model']).name:<28}{name:<16}{m['cpu_ms_per_frame']:>13.1f}{m['fps']:>8.2f}"
                  f"{m['inference_ms_p50']:>15.1f}")
        print(f"{'':<28}CPU per paced frame, spin / no-spin {r['cpu_ratio_paced']:.2f}; FPS back to back, spin / "
              f"no-spin {r['fps_ratio_full']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
