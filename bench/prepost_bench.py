"""Pre/post-processing benchmark: edge vs Ultralytics per image, DAMO-YOLO demo post-processing, Detector vs raw loop.

Each section runs in a process of its own (importing Ultralytics sets cv2 to one thread and starts torch's pools)
and alternates its variants per image, so a noisy shared machine hits them alike: compare ratios, not times.

    PYTHONPATH=/path/to/ultralytics/site YOLO_OFFLINE=1 python bench/prepost_bench.py --images ../shared/coco/val2017 \
        --models ../shared/models/yolo11n.onnx ../shared/models/yolo11n_int8.tflite --json prepost.json

Sections: `ultralytics` (per model; skipped without ultralytics), `raw` (per model) and `damo` (the bundled demo).
Without a CPU build of torchvision, Ultralytics runs its own TorchNMS (a stub stands in for the import it needs);
its post-processing is then also reported without the NMS call (`ultra_post_minus_nms`), the conservative bound.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from edge import Detector  # noqa: E402
from edge.images import list_images  # noqa: E402

# (purpose, conf, multi-label): deployment is single-label (the demo bundle's own deployment conf is 0.5), evaluation
# multi-label as DAMO-YOLO's configs evaluate (0.03 nano / 0.05); 0.02 gives about 1000 candidates per frame.
DAMO_SETTINGS = (("deploy", 0.3, False), ("deploy", 0.4, False), ("deploy", 0.5, False), ("eval", 0.03, True),
                 ("eval", 0.05, True), ("~1000 candidates", 0.02, True), ("eval", 0.001, True))
ACCURACY_CONFS = (0.03, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
TORCHVISION_STUB = '''"""Stand-in for a torchvision without a CPU build: Ultralytics' own TorchNMS does the NMS."""
from types import SimpleNamespace


def _nms(boxes, scores, iou_threshold):
    from ultralytics.utils.nms import TorchNMS
    return TorchNMS.nms(boxes, scores, iou_threshold)


ops = SimpleNamespace(nms=_nms)
__version__ = "0.0.0"
'''


def p50(values) -> float:
    """Median (NaN when empty)."""
    return float(np.median(values)) if len(values) else float("nan")


def summary(series: dict, count: int) -> dict:
    """Per series of rounds x `count` items: `p50` of every sample and `best`, the p50 over items of each item's
    fastest round (a busy machine only ever adds time to a call, so that is the steadier estimate)."""
    out = {}
    for name, values in series.items():
        a = np.asarray(values, np.float64).reshape(-1, count)
        out[name] = {"p50": float(np.median(a)), "best": float(np.median(a.min(axis=0)))}
    return out


def load_frames(folder: str, limit: int) -> list:
    """The first `limit` images of a folder as BGR frames."""
    frames = [cv2.imread(p, cv2.IMREAD_COLOR) for p in list_images(folder)[:limit or None]]
    return [f for f in frames if f is not None]


def alternate(calls: dict, count: int, rounds: int, warmup: int, gap_s: float) -> None:
    """Call every variant on each item, rotating which goes first; warm-up calls happen before."""
    names = list(calls)
    for i in range(min(warmup, count)):
        for name in names:
            calls[name](i, False)
    for r in range(rounds):
        for i in range(count):
            k = (i + r) % len(names)
            for name in names[k:] + names[:k]:
                time.sleep(gap_s)
                calls[name](i, True)


# ---------------------------------------------------------------------------------------------- sections
def section_ultralytics(args: argparse.Namespace) -> dict:
    """Pre, post and pre+post per image: Detector stages vs YOLO.predict's `speed`, alternating per image."""
    try:
        import torchvision  # noqa: F401
        nms_impl = "torchvision"
    except Exception:  # absent, or a CUDA-only build that cannot load next to CPU torch
        stub = Path(tempfile.mkdtemp()) / "torchvision"
        stub.mkdir()
        (stub / "__init__.py").write_text(TORCHVISION_STUB)
        (stub.parent / "torchvision-0.0.0.dist-info").mkdir()
        (stub.parent / "torchvision-0.0.0.dist-info" / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: torchvision\nVersion: 0.0.0\n")
        sys.path.insert(0, str(stub.parent))
        sys.modules.pop("torchvision", None)
        nms_impl = "ultralytics TorchNMS (no CPU torchvision)"
    try:
        import torchvision
        from ultralytics import YOLO
    except ImportError as e:
        return {"skipped": f"ultralytics not importable: {e}"}
    from importlib.metadata import version
    nms_ms: list = []
    original_nms = torchvision.ops.nms

    def timed_nms(*a, **k):
        t0 = time.perf_counter()
        result = original_nms(*a, **k)
        nms_ms.append((time.perf_counter() - t0) * 1e3)
        return result
    torchvision.ops.nms = timed_nms

    frames = load_frames(args.images, args.limit)
    det = Detector.load(args.model, conf=0.25, iou=0.7, threads=args.threads)
    yolo = YOLO(args.model, task="detect")
    imgsz = det.contract.input.width
    ours: dict = {"pre": [], "post": []}
    ultra: dict = {"pre": [], "post": [], "nms": []}
    counts: dict = {}

    def run_ours(i: int, keep: bool) -> None:
        n = len(det(frames[i]))
        if keep:
            ours["pre"].append(det.timing_ms["preprocess"])
            ours["post"].append(det.timing_ms["postprocess"])
            counts.setdefault(i, {})["ours"] = n

    def run_ultra(i: int, keep: bool) -> None:
        nms_ms.clear()
        result = yolo.predict(frames[i], imgsz=imgsz, conf=0.25, iou=0.7, verbose=False)[0]
        if keep:
            ultra["pre"].append(result.speed["preprocess"])
            ultra["post"].append(result.speed["postprocess"])
            ultra["nms"].append(sum(nms_ms))
            counts.setdefault(i, {})["ultra"] = len(result.boxes)

    alternate({"ours": run_ours, "ultra": run_ultra}, len(frames), args.rounds, args.warmup, args.gap_ms / 1e3)
    ours_pp, ultra_pp = np.add(ours["pre"], ours["post"]), np.add(ultra["pre"], ultra["post"])
    ms = summary({"ours_pre": ours["pre"], "ours_post": ours["post"], "ours_pre_post": ours_pp,
                  "ultra_pre": ultra["pre"], "ultra_post": ultra["post"], "ultra_nms": ultra["nms"],
                  "ultra_pre_post": ultra_pp, "ultra_pre_post_minus_nms": ultra_pp - np.asarray(ultra["nms"])},
                 len(frames))
    best = {k: v["best"] for k, v in ms.items()}
    return {
        "model": args.model, "backend": det.backend.name, "imgsz": imgsz, "images": len(frames), "rounds": args.rounds,
        "ultralytics": version("ultralytics"), "ultralytics_nms": nms_impl, "cv2_threads": cv2.getNumThreads(),
        "ms": ms,
        "ratio_pre_post": best["ours_pre_post"] / best["ultra_pre_post"],
        "ratio_pre_post_vs_ultra_without_nms": best["ours_pre_post"] / best["ultra_pre_post_minus_nms"],
        "detection_count_mismatches": sum(c.get("ours") != c.get("ultra") for c in counts.values()),
    }


def section_raw(args: argparse.Namespace) -> dict:
    """Detector end to end vs backend.run on the same frames' tensors (prepared once), alternating per image."""
    frames = load_frames(args.images, args.limit)
    det = Detector.load(args.model, conf=0.25, iou=0.7, threads=args.threads)
    tensors = [det.preprocess(f)[0].copy() for f in frames]
    t: dict = {"raw": [], "detector": [], "inference": [], "pre": [], "post": []}

    def run_raw(i: int, keep: bool) -> None:
        t0 = time.perf_counter()
        det.backend.run(tensors[i])
        if keep:
            t["raw"].append((time.perf_counter() - t0) * 1e3)

    def run_detector(i: int, keep: bool) -> None:
        t0 = time.perf_counter()
        det(frames[i])
        if keep:
            t["detector"].append((time.perf_counter() - t0) * 1e3)
            t["inference"].append(det.timing_ms["inference"])
            t["pre"].append(det.timing_ms["preprocess"])
            t["post"].append(det.timing_ms["postprocess"])

    alternate({"raw": run_raw, "detector": run_detector}, len(frames), args.rounds, args.warmup, args.gap_ms / 1e3)
    t["inference_minus_raw"] = np.subtract(t["inference"], t["raw"])  # paired: same image, same round
    fastest = {k: np.reshape(t[k], (-1, len(frames))).min(axis=0) for k in ("raw", "detector")}
    return {
        "model": args.model, "backend": det.backend.name, "images": len(frames), "rounds": args.rounds,
        "cv2_threads": cv2.getNumThreads(), "ms": summary(t, len(frames)),
        "fps_ratio_detector_over_raw": sum(t["raw"]) / sum(t["detector"]),
        "fps_ratio_best_rounds": float(fastest["raw"].sum() / fastest["detector"].sum()),
    }


def section_damo(args: argparse.Namespace) -> dict:
    """The bundled DAMO-YOLO demo: post-processing time per threshold, and accuracy per threshold."""
    from edge.demo import BUNDLE
    from edge.detections import Detections
    from edge.scene import demo_frame
    frames = [demo_frame(i) for i in range(args.damo_frames)]
    base = Detector.load(BUNDLE)
    prepared = []  # (outputs, transform) per frame; outputs copied since the backend reuses its buffers
    for f in frames:
        tensor, transform = base.preprocess(f)
        prepared.append(([o.copy() for o in base.backend.run(tensor)], transform))
    timing = []
    for purpose, conf, multi_label in DAMO_SETTINGS:
        det = base.with_thresholds(conf=conf, multi_label=multi_label)
        loop, wall, cpu, found = [], [], [], []
        for r in range(args.rounds + 1):  # the first round warms up
            for f in frames:
                found.append(len(det(f)))
                loop.append(det.timing_ms["postprocess"])
            for outputs, transform in prepared:  # the same stage alone: wall and this thread's CPU time
                t0, c0 = time.perf_counter(), time.thread_time()
                boxes, scores, class_ids = det.candidates(outputs)
                keep = det.select(boxes, scores, class_ids)
                Detections.from_arrays(transform.boxes_to_frame(boxes[keep]), scores[keep], class_ids[keep], det.names)
                wall.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.thread_time() - c0) * 1e3)
        n = len(frames)
        timing.append({"purpose": purpose, "conf": conf, "multi_label": multi_label,
                       "candidates_p50": p50([len(det.candidates(o)[0]) for o, _ in prepared]),
                       "detections_p50": p50(found), "in_loop_p90_ms": float(np.percentile(loop[n:], 90)),
                       "ms": summary({"in_loop": loop[n:], "alone": wall[n:], "alone_cpu": cpu[n:]}, n)})
    return {"model": BUNDLE, "settings": {"iou": base.iou, "max_det": base.max_det},
            "frames": len(frames), "post": timing,
            "accuracy": {"multi_label": damo_accuracy(base, args.damo_images),
                         "single_label": damo_accuracy(base.with_thresholds(multi_label=False), args.damo_images)}}


def damo_accuracy(base: Detector, images: int) -> dict:
    """Precision/recall at IoU 0.5 and mAP per threshold on fresh synthetic scenes the demo model never saw."""
    from edge.evaluate import _match, _xyxy, ultralytics_map
    from models.synthetic import image_rng, sample
    gt = {"images": [], "annotations": [], "categories": [{"id": k + 1} for k in range(len(base.names))]}
    scenes = []
    for index in range(images):
        image, objects = sample(image_rng(1234, "val", index), 320)
        scenes.append(image)
        gt["images"].append({"id": index})
        gt["annotations"] += [{"image_id": index, "category_id": c + 1, "bbox": box, "iscrowd": 0}
                              for c, box, _ in objects]
    truth = {i: [a for a in gt["annotations"] if a["image_id"] == i] for i in range(images)}
    rows = []
    for conf in (0.001, *ACCURACY_CONFS):
        det = base.with_thresholds(conf=conf)
        results, tp, n_dt = [], 0, 0
        for i, image in enumerate(scenes):
            d = det(image)
            boxes = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in d.xyxy]
            results += [{"image_id": i, "category_id": int(c) + 1, "bbox": b, "score": float(s)}
                        for b, s, c in zip(boxes, d.scores, d.class_ids)]
            order = np.argsort(-d.scores, kind="stable")
            t_cls = np.array([a["category_id"] for a in truth[i]], np.int64)
            correct = _match(t_cls, _xyxy([a["bbox"] for a in truth[i]]), d.class_ids[order] + 1,
                             _xyxy([boxes[k] for k in order]))
            tp += int(correct[:, 0].sum())
            n_dt += len(d)
        n_gt = len(gt["annotations"])
        m = ultralytics_map(gt, results, list(range(images)))
        precision, recall = tp / max(n_dt, 1), tp / n_gt
        rows.append({"conf": conf, "precision50": precision, "recall50": recall,
                     "f1": 2 * precision * recall / max(precision + recall, 1e-12),
                     "detections_per_image": n_dt / images, "map50_95": m["map50_95"], "map50": m["map50"]})
    return {"images": images, "objects": len(gt["annotations"]), "iou_match": 0.5, "rows": rows}


SECTIONS: dict = {"ultralytics": section_ultralytics, "raw": section_raw, "damo": section_damo}


# ---------------------------------------------------------------------------------------------- driver
def run_child(args: argparse.Namespace, section: str, model: Optional[str]) -> dict:
    """Run one section in a fresh interpreter and return its JSON."""
    cmd = [sys.executable, __file__, "--section", section, "--images", args.images, "--rounds", str(args.rounds),
           "--limit", str(args.limit), "--warmup", str(args.warmup), "--gap-ms", str(args.gap_ms),
           "--damo-frames", str(args.damo_frames), "--damo-images", str(args.damo_images)]
    cmd += ["--model", model] if model else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"failed": proc.stderr.strip()[-600:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(result: dict) -> str:
    """The tables, as text."""
    lines = ["pre+post per image, ms: p50 over images of each image's best round (ours vs YOLO.predict speed)",
             f"{'model':<28}{'ours pre':>9}{'post':>7}{'sum':>7}{'ultra pre':>10}{'post':>7}{'nms':>6}{'sum':>7}"
             f"{'ratio':>7}{'ratio*':>8}"]
    for r in result.get("ultralytics", []):
        if "ms" not in r:
            lines.append(f"{r.get('model', '?')}: {r.get('skipped') or r.get('failed')}")
            continue
        p = {k: v["best"] for k, v in r["ms"].items()}
        lines.append(f"{Path(r['model']).name + ' @' + str(r['imgsz']):<28}{p['ours_pre']:>9.2f}{p['ours_post']:>7.2f}"
                     f"{p['ours_pre_post']:>7.2f}{p['ultra_pre']:>10.2f}{p['ultra_post']:>7.2f}{p['ultra_nms']:>6.2f}"
                     f"{p['ultra_pre_post']:>7.2f}{r['ratio_pre_post']:>7.3f}{r['ratio_pre_post_vs_ultra_without_nms']:>8.3f}")
    lines.append("ratio* = ours / Ultralytics without its NMS call")
    lines += ["", "Detector vs raw backend.run loop, ms (per-image best round, p50); FPS Detector/raw (best, all)",
              f"{'model':<28}{'raw':>8}{'detector':>10}{'its inf.':>9}{'inf-raw':>8}{'pre':>6}{'post':>6}"
              f"{'fps best':>10}{'all':>8}"]
    for r in result.get("raw", []):
        if "ms" not in r:
            lines.append(f"{r.get('model', '?')}: {r.get('failed')}")
            continue
        p = {k: v["best"] for k, v in r["ms"].items()}
        p["inference_minus_raw"] = r["ms"]["inference_minus_raw"]["p50"]  # a difference: its p50, not its minimum
        lines.append(f"{Path(r['model']).name:<28}{p['raw']:>8.2f}{p['detector']:>10.2f}{p['inference']:>9.2f}"
                     f"{p['inference_minus_raw']:>8.2f}{p['pre']:>6.2f}{p['post']:>6.2f}"
                     f"{r['fps_ratio_best_rounds']:>10.3f}{r['fps_ratio_detector_over_raw']:>8.3f}")
    damo = result.get("damo")
    if damo and "post" in damo:
        lines += ["", f"DAMO-YOLO demo post-processing, ms (Detector stage in the loop, p50/p90; alone, wall/CPU best; "
                  f"{damo['settings']})",
                  f"{'purpose':<18}{'conf':>7}{'labels':>8}{'candidates':>11}{'detections':>11}{'loop p50':>9}{'p90':>8}{'alone':>7}"
                  f"{'cpu':>7}"]
        lines += [f"{r['purpose']:<18}{r['conf']:>7}{'multi' if r['multi_label'] else 'single':>8}"
                  f"{r['candidates_p50']:>11.0f}{r['detections_p50']:>11.0f}"
                  f"{r['ms']['in_loop']['p50']:>9.3f}{r['in_loop_p90_ms']:>8.3f}{r['ms']['alone']['best']:>7.3f}"
                  f"{r['ms']['alone_cpu']['best']:>7.3f}" for r in damo["post"]]
        for label, a in damo["accuracy"].items():
            lines += ["", f"DAMO-YOLO demo accuracy, {label}: {a['images']} fresh synthetic scenes, {a['objects']} "
                      f"objects, IoU {a['iou_match']} matches",
                      f"{'conf':>7}{'P':>7}{'R':>7}{'F1':>7}{'dets/img':>9}{'mAP50-95':>9}{'mAP50':>7}"]
            lines += [f"{r['conf']:>7}{r['precision50']:>7.3f}{r['recall50']:>7.3f}{r['f1']:>7.3f}"
                      f"{r['detections_per_image']:>9.2f}{r['map50_95']:>9.2f}{r['map50']:>7.2f}" for r in a["rows"]]
    elif damo:
        lines.append(f"damo: {damo.get('failed')}")
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    """Run the chosen sections (each in its own process) and print the tables and/or JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="folder of .jpg/.png images (e.g. ../shared/coco/val2017)")
    ap.add_argument("--models", nargs="*", default=[], help=".onnx / .tflite YOLO11 files")
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--gap-ms", type=float, default=0.0, help="untimed pause before each call")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0: the backend's default)")
    ap.add_argument("--damo-frames", type=int, default=24, help="demo video frames timed per threshold")
    ap.add_argument("--damo-images", type=int, default=100, help="synthetic scenes for the accuracy table")
    ap.add_argument("--json", metavar="PATH", help="also write the JSON result here")
    ap.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)  # child mode: one section
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.section:
        print(json.dumps(SECTIONS[args.section](args)))
        return 0
    result: dict = {}
    for section in args.sections:
        if section == "damo":
            result["damo"] = run_child(args, "damo", None)
        else:
            result[section] = [run_child(args, section, m) for m in args.models]
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
