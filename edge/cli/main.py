"""The `edge` command: detect, info, bench, eval, run."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from .. import __version__
from .demo import add_demo_parser
from ..errors import EdgeError
from .models import add_models_parser
from .ops import add_ops_parsers
from .run import add_run_parser
from ..service.systemd import setup_logging

log = logging.getLogger("edge")


def _model_args(p: argparse.ArgumentParser, thresholds: bool = True, flag: bool = False) -> None:
    help_ = "bundle directory, manifest.json, .onnx or .tflite file"
    if flag:
        p.add_argument("--model", help=help_)
    else:
        p.add_argument("model", help=help_)
    p.add_argument("--family", choices=("yolo11", "damo-yolo"), help="model family, when the file does not say")
    p.add_argument("--names", help="class names: a file (one per line or JSON) or a comma-separated list")
    p.add_argument("--backend", choices=("onnxruntime", "tflite", "tensorrt"), help="override the backend chosen by extension")
    p.add_argument("--providers", help="onnxruntime execution providers, comma-separated (default CPUExecutionProvider)")
    p.add_argument("--threads", type=int, help="inference threads")
    if thresholds:
        p.add_argument("--conf", type=float, help="confidence threshold (default: the family's, 0.25 for YOLO11)")
        p.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7 for YOLO11)")
        p.add_argument("--max-det", type=int, help="maximum detections per image (default 300 for YOLO11)")
        p.add_argument("--agnostic", action="store_true", help="class-agnostic NMS")
        p.add_argument("--multi-label", action=argparse.BooleanOptionalAction, default=None,
                       help="allow several classes per anchor (default: the family's)")


def _load(args, **overrides):
    from ..detector import Detector
    from ..names import load_names

    thresholds = {k: getattr(args, k, None) for k in ("conf", "iou", "max_det", "multi_label")}
    thresholds.update(overrides)
    thresholds = {k: v for k, v in thresholds.items() if v is not None}
    return Detector.load(
        args.model, family=args.family, names=load_names(args.names) if args.names else None, backend=args.backend,
        providers=args.providers.split(",") if args.providers else None, threads=args.threads,
        agnostic=getattr(args, "agnostic", False), **thresholds,
    )


def cmd_detect(args) -> int:
    """Run the model on images and print or save the detections."""
    import cv2

    from ..images import list_images
    from ..draw import draw_detections

    detector = _load(args)
    paths = []
    for source in args.sources:
        paths.extend(list_images(source) if os.path.isdir(source) else [source])
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    failures = 0
    for path in paths:
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            log.error("%s: cannot read image (missing file or unsupported format)", path)
            failures += 1
            continue
        dets = detector(frame)
        if args.json:
            record = {"source": path, "width": frame.shape[1], "height": frame.shape[0], "detections": dets.to_list(),
                      "timing_ms": {k: round(v, 3) for k, v in detector.timing_ms.items()}}
            print(json.dumps(record), flush=True)
        else:
            t = detector.timing_ms
            summary = ", ".join(f"{n} {s:.2f}" for _, s, _, n in dets) or "no detections"
            print(f"{path} ({frame.shape[1]}x{frame.shape[0]}): {summary}  "
                  f"[{t['preprocess']:.1f} + {t['inference']:.1f} + {t['postprocess']:.1f} ms]")
        if args.save_dir:
            out = os.path.join(args.save_dir, os.path.basename(path))
            cv2.imwrite(out, draw_detections(frame, dets))
    return 1 if failures else 0


def cmd_info(args) -> int:
    """Print the resolved model contract."""
    info = _load(args).info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    i = info["input"]
    print(f"model      {info['model']}")
    print(f"backend    {info['backend']}   family {info['family']}   precision {info['precision']}")
    quant = f" q(scale={i['quant_scale']:.6g}, zp={i['quant_zero_point']})" if i["quant_scale"] else ""
    print(f"input      {i['name']} {i['shape']} {i['layout']} {i['dtype']}{quant} {i['color']} "
          f"x{i['pixel_scale']:.6g} {i['resize']} pad={i['pad_value']}")
    for o in info["outputs"]:
        quant = f" q(scale={o['quantization']['scale']:.6g}, zp={o['quantization']['zero_point']})" if o["quantization"] else ""
        print(f"output     {o['name']} {o['shape']} {o['dtype']}{quant}")
    print(f"decode     {info['decode']['format']}{' (normalized boxes)' if info['decode']['normalized'] else ''}")
    p = info["postprocess"]
    print(f"defaults   conf {p['conf']}  iou {p['iou']}  max_det {p['max_det']}  multi_label {p['multi_label']}")
    print(f"classes    {info['classes']}: {', '.join(info['names'][:8])}{', ...' if info['classes'] > 8 else ''}")
    return 0


def cmd_bench(args) -> int:
    """Measure latency per stage, FPS, load time and peak RSS."""
    from ..bench import bench

    result = bench(args.model, images=args.images, runs=args.runs, warmup=args.warmup, family=args.family,
                   backend=args.backend, threads=args.threads,
                   providers=args.providers.split(",") if args.providers else None)
    if args.json:
        print(json.dumps(result))
        return 0
    lat = result["latency_ms"]
    print(f"{result['model']} [{result['backend']}, {result['input'][0]}x{result['input'][1]}] "
          f"{result['frames']} frames over {result['images']} image(s)")
    for stage in ("preprocess", "inference", "postprocess", "total"):
        s = lat[stage]
        print(f"  {stage:<12} p50 {s['p50']:8.2f} ms   p90 {s['p90']:8.2f} ms   max {s['max']:8.2f} ms")
    print(f"  fps {result['fps']}   load {result['load_ms']} ms   peak RSS {result['peak_rss_mb']} MiB")
    return 0


def cmd_eval(args) -> int:
    """COCO mAP on an annotated image folder (Ultralytics val settings by default)."""
    from ..evaluate import evaluate

    detector = _load(args, conf=args.conf, iou=args.iou, max_det=args.max_det,
                     multi_label=True if args.multi_label is None else args.multi_label)
    result = evaluate(detector, args.images, args.annotations, limit=args.limit, metric=args.metric)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"mAP50-95 {result['map50_95']:.2f}   mAP50 {result['map50']:.2f}   [{result['metric']} metric] "
              f"({result['images']} images, {result['detections']} detections)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Run YOLO11 and DAMO-YOLO detectors on edge devices.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="detect objects in images")
    _model_args(p)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--save-dir", help="write annotated images here")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("info", help="show the model's resolved input/output contract")
    _model_args(p, thresholds=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="measure latency, FPS, load time and peak memory")
    _model_args(p, thresholds=False)
    p.add_argument("--images", help="folder of images (default: one synthetic 1280x720 frame)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("eval", help="COCO mAP50-95 / mAP50 on an annotated image folder")
    _model_args(p, thresholds=False)
    p.add_argument("--images", required=True, help="folder with the images")
    p.add_argument("--annotations", required=True,
                   help="COCO instances JSON, or a folder of YOLO labels (<image stem>.txt: class cx cy w h, normalized)")
    p.add_argument("--conf", type=float, default=0.001, help="default 0.001 (Ultralytics val)")
    p.add_argument("--iou", type=float, default=0.7, help="default 0.7 (Ultralytics val)")
    p.add_argument("--max-det", type=int, default=300)
    p.add_argument("--multi-label", action=argparse.BooleanOptionalAction, default=None, help="default on (Ultralytics val)")
    p.add_argument("--metric", choices=("coco", "ultralytics"), default="coco",
                   help="coco: official COCO protocol (faster-coco-eval); ultralytics: what Ultralytics val prints")
    p.add_argument("--limit", type=int, help="evaluate only the first N images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    add_run_parser(sub, _model_args)
    add_demo_parser(sub)
    add_ops_parsers(sub)
    add_models_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.debug else logging.INFO)
    try:
        return args.func(args)
    except EdgeError as e:
        if args.debug:
            raise
        log.error("error: %s", e)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
