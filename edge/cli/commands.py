"""The `edge` command: detect, info, bench, eval, run."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from typing import NoReturn, Optional, Sequence

from .. import __version__
from ..errors import EdgeError
from ..progress import silenced
from ..service.systemd import setup_logging
from .demo import add_demo_parser
from .flags import detector_settings, family_flag, given, model_flags, threshold_flags, thresholds_used
from .models import add_models_parser
from .ops import add_ops_parsers
from .run import add_run_parser

log = logging.getLogger("edge")

EVAL_THRESHOLDS = {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True}  # Ultralytics val


def _detector(args, **defaults):
    """The Detector the model and threshold flags ask for (values range-checked like the config)."""
    from ..detector import load_detector

    model, thresholds = detector_settings(args, args.parser, **defaults)
    with family_flag(args.parser):
        return load_detector(model, thresholds)


def cmd_detect(args) -> int:
    """Run the model on images and print or save the detections; exit 1 when an image could not be read."""
    from ..draw import draw_detections
    from ..images import list_images, read_image

    detector = _detector(args)
    thresholds, line = thresholds_used(detector, given(args))
    log.info("%s", line)
    paths = []
    for source in args.sources:
        paths.extend(list_images(source) if os.path.isdir(source) else [source])
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    failures = 0
    saved: set = set()  # file names written to --save-dir
    for path in paths:
        try:
            frame = read_image(path)
        except EdgeError as e:
            log.error("%s", e)
            failures += 1
            continue
        dets = detector(frame)
        if args.json:
            record = {"source": path, "width": frame.shape[1], "height": frame.shape[0], "detections": dets.to_list(),
                      "timings_ms": {k: round(v, 3) for k, v in detector.timing_ms.items()}, "thresholds": thresholds}
            print(json.dumps(record), flush=True)
        else:
            t = detector.timing_ms
            summary = ", ".join(f"{n} {s:.2f}" for _, s, _, n in dets) or "no detections"
            print(f"{path} ({frame.shape[1]}x{frame.shape[0]}): {summary}  "
                  f"[{t['preprocess']:.1f} + {t['inference']:.1f} + {t['postprocess']:.1f} ms]")
        if args.save_dir:
            failures += not _save(saved, args.save_dir, path, draw_detections(frame, dets))
    if args.save_dir:
        log.info("wrote %d annotated image(s) to %s", len(saved), os.path.abspath(args.save_dir))
    return 1 if failures else 0


def _save(saved: set, folder: str, path: str, image) -> bool:
    """Write `image` under the source's file name (name_2.jpg, ... when two sources share one); False on failure."""
    import cv2

    stem, ext = os.path.splitext(os.path.basename(path))
    ext = ext if cv2.haveImageWriter(f"x{ext}") else ext + ".jpg"  # e.g. no extension, or one OpenCV cannot write
    name, n = stem + ext, 1
    while name in saved:
        n += 1
        name = f"{stem}_{n}{ext}"
    if not cv2.imwrite(os.path.join(folder, name), image):
        log.error("%s: cannot write the annotated image", os.path.join(folder, name))
        return False
    saved.add(name)
    return True


def cmd_info(args) -> int:
    """Print the resolved model contract."""
    detector = _detector(args)
    info = detector.info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    i = info["input"]
    print(f"model      {info['model']}")
    print(f"backend    {info['backend']}   family {info['family']}   precision {info['precision'] or 'unknown'} "
          f"({_io_dtypes(info)})")
    meta = info["metadata"]
    if meta.get("version") or meta.get("date"):
        print(f"version    {meta.get('version', '?')}" + (f" (exported {meta['date']})" if meta.get("date") else ""))
    quant = f" q(scale={i['quant_scale']:.6g}, zp={i['quant_zero_point']})" if i["quant_scale"] else ""
    print(f"input      {i['name']} {i['shape']} {i['layout']} {i['dtype']}{quant} {i['color']} "
          f"x{i['pixel_scale']:.6g} {i['resize']} pad={i['pad_value']}")
    for o in info["outputs"]:
        quant = f" q(scale={o['quantization']['scale']:.6g}, zp={o['quantization']['zero_point']})" if o["quantization"] else ""
        print(f"output     {o['name']} {o['shape']} {o['dtype']}{quant}")
    print(f"decode     {info['decode']['format']}{' (normalized boxes)' if info['decode']['normalized'] else ''}")
    print(thresholds_used(detector, given(args))[1])
    print(f"classes    {info['classes']}: {', '.join(info['names'][:8])}{', ...' if info['classes'] > 8 else ''}")
    return 0


def _io_dtypes(info: dict) -> str:
    """'float32 input/output', or 'uint8 input, float32 output' when they differ."""
    fed, returned = info["input"]["dtype"], "/".join(dict.fromkeys(o["dtype"] for o in info["outputs"]))
    return f"{fed} input/output" if fed == returned else f"{fed} input, {returned} output"


def cmd_bench(args) -> int:
    """Measure latency per stage, FPS, load time and peak RSS."""
    from ..bench import bench

    model, _ = detector_settings(args, args.parser)
    with family_flag(args.parser):
        result = bench(model.path, images=args.images, runs=args.runs, warmup=args.warmup, family=model.family,
                       backend=model.backend, threads=model.threads, providers=model.providers, spin=model.spin)
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

    detector = _detector(args, **EVAL_THRESHOLDS)
    result = evaluate(detector, args.images, args.annotations, limit=args.limit, metric=args.metric)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"mAP50-95 {result['map50_95']:.2f}   mAP50 {result['map50']:.2f}   [{result['metric']} metric] "
              f"({result['images']} images, {result['detections']} detections)")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors read `edge: error: ...` (after the usage line, exit 2) like every other error;
    subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and the error, exit 2."""
        self.print_usage(sys.stderr)
        self.exit(2, f"edge: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="edge", description="Run YOLO11 and DAMO-YOLO detectors on edge devices.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="detect objects in images")
    model_flags(p)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--save-dir", help="write annotated images here")
    p.set_defaults(func=cmd_detect, parser=p)

    p = sub.add_parser("info", help="show the model's resolved input/output contract")
    model_flags(p, thresholds=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info, parser=p)

    p = sub.add_parser("bench", help="measure latency, FPS, load time and peak memory")
    model_flags(p, thresholds=False)
    p.add_argument("--images", help="folder of images (default: one synthetic 1280x720 frame)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench, parser=p)

    p = sub.add_parser("eval", help="COCO mAP50-95 / mAP50 on an annotated image folder")
    model_flags(p, thresholds=False)
    p.add_argument("--images", required=True, help="folder with the images")
    p.add_argument("--annotations", required=True,
                   help="COCO instances JSON, or a folder of YOLO labels (<image stem>.txt: class cx cy w h, normalized)")
    threshold_flags(p, EVAL_THRESHOLDS)
    p.add_argument("--metric", choices=("coco", "ultralytics"), default="coco",
                   help="coco: official COCO protocol (faster-coco-eval); ultralytics: what Ultralytics val prints")
    p.add_argument("--limit", type=int, help="evaluate only the first N images")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval, parser=p)

    add_run_parser(sub)
    add_demo_parser(sub)
    add_ops_parsers(sub)
    add_models_parser(sub)
    _debug_everywhere(sub)
    return parser


def _debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """Accept --debug after the subcommand too (`edge run ... --debug`), at every level."""
    for command in set(sub.choices.values()):
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.debug else logging.INFO)
    try:
        with silenced() if getattr(args, "json", False) else contextlib.nullcontext():
            return args.func(args)
    except EdgeError as e:
        if args.debug:
            raise
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
