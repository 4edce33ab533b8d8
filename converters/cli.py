"""edge-convert: a trained checkpoint, an ONNX file or an ONNX bundle -> a runtime bundle for one target."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from edge.bundle import is_bundle, read_bundle
from edge.contract import FAMILIES
from edge.errors import EdgeError
from edge.names import load_names
from models.registry import REGISTRY, damo_entry, lookup

from . import ConvertError
from .bundle import source_info
from .calibration import DEFAULT_COUNT
from .onnx_int8 import DEFAULT_METHOD, METHODS
from .targets import TARGETS, Source, build

CONFIGS = tuple(dict.fromkeys(e.config for e in REGISTRY.values() if e.config))  # unique, registry order
EXIT_MAX_DROP = 2  # the bundle was written but loses more accuracy than --max-drop allows


def build_parser() -> argparse.ArgumentParser:
    """The edge-convert argument parser."""
    p = argparse.ArgumentParser(prog="edge-convert", description=__doc__)
    p.add_argument("model", help="YOLO11 .pt, DAMO-YOLO .pth, an .onnx of either family, or an ONNX bundle directory")
    p.add_argument("--family", choices=FAMILIES, help="model family (inferred from official file names)")
    p.add_argument("--config", help=f"DAMO-YOLO config: {'|'.join(CONFIGS)} (inferred from official file names)")
    p.add_argument("--target", choices=TARGETS, default="onnx", help="what to build (default onnx, fp32)")
    p.add_argument("--imgsz", help="input size H or H,W (default: the model's)")
    p.add_argument("--names", help="class names (file or comma list); default COCO-80 for 80-class models")
    p.add_argument("--out", help="bundle directory to write (default ./<model name>_<target>)")
    q = p.add_argument_group("quantization and accuracy")
    q.add_argument("--calib", help="folder of images or a video: int8 calibration data (required for *-int8 "
                                   "unless the source is already an int8 ONNX)")
    q.add_argument("--calib-count", type=int, default=DEFAULT_COUNT,
                   help=f"images (or video frames) to calibrate on, spread evenly (default {DEFAULT_COUNT})")
    q.add_argument("--calib-method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"onnx-int8 activation ranges (default {DEFAULT_METHOD})")
    q.add_argument("--val", help="folder of validation images: measure mAP of the result against the fp32 source")
    q.add_argument("--annotations", help="ground truth for --val: COCO instances JSON or a folder of YOLO labels")
    q.add_argument("--max-drop", type=float, help="largest mAP50-95 loss accepted versus fp32 (default 0.5 for int8, "
                                                  "0.1 otherwise); onnx-int8 keeps sensitive layers float to meet it; "
                                                  f"exceeding it exits with status {EXIT_MAX_DROP}")
    p.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run edge-convert; one error line and exit status 1 on failure."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="edge-convert: %(message)s")
    try:
        out, report = convert(args)
    except (ConvertError, EdgeError) as e:
        print(f"edge-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(out)
    if report is not None and not report["within_max_drop"]:
        print(f"edge-convert: error: {out} was written but loses {report['drop']['map50_95']:.2f} mAP50-95 versus "
              f"fp32, more than --max-drop {report['max_drop']} (see {out}/accuracy.json)", file=sys.stderr)
        return EXIT_MAX_DROP
    return 0


def convert(args: argparse.Namespace) -> tuple:
    """Resolve the source, build the target; returns (bundle directory, accuracy report or None)."""
    if args.val and not args.annotations:
        raise ConvertError("--val needs --annotations (a COCO instances JSON or a folder of YOLO labels)")
    if args.max_drop is not None and args.max_drop < 0:
        raise ConvertError(f"--max-drop must be >= 0, got {args.max_drop}")
    source = resolve_source(args)
    stem = os.path.splitext(os.path.basename(os.path.normpath(args.model)))[0]
    out = args.out or f"{stem}_{args.target}"
    return build(source, args.target, out, args)


def resolve_source(args: argparse.Namespace) -> Source:
    """What the user gave: a checkpoint to export, an ONNX file, or an existing ONNX bundle."""
    path = args.model
    if is_bundle(path):
        if args.imgsz:
            raise ConvertError(f"{path}: --imgsz cannot resize an existing bundle; convert the checkpoint")
        bundle = read_bundle(path)
        if bundle.manifest.model.format != "onnx":
            raise ConvertError(f"{path}: a {bundle.manifest.model.format} bundle; convert from an ONNX bundle or the "
                               "checkpoint")
        contract = bundle.contract
        names = load_names(args.names) if args.names else None
        return Source(bundle.model_path, contract.family, names or contract.names, dict(contract.source),
                      bundle=path, precision=bundle.precision)
    if os.path.isdir(path):
        raise ConvertError(f"{path}: a directory but not a bundle (no manifest.json)")
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    entry = lookup(path)
    family = args.family or (entry.family if entry else None)
    is_onnx = path.lower().endswith(".onnx")
    if family is None and not is_onnx:  # the runtime infers an ONNX file's family from its outputs
        raise ConvertError(f"{path}: cannot tell the model family from the file name; pass --family yolo11|damo-yolo")
    names = load_names(args.names) if args.names else None
    imgsz = parse_imgsz(args.imgsz)
    if is_onnx and imgsz:
        raise ConvertError(f"{path}: --imgsz cannot resize an existing ONNX file; convert the checkpoint")
    if entry is not None and entry.family == family and not is_onnx:  # a known checkpoint needs no more flags
        names = names or entry.names
        imgsz = imgsz or (entry.input_size, entry.input_size)
    licence = entry.licence if entry and entry.family == family else None
    extra = {"licence": licence} if licence else {}
    config = damo_config(args, entry) if family == "damo-yolo" and not is_onnx else None
    return Source(path, family, names, source_info(path, **extra), checkpoint=not is_onnx, imgsz=imgsz, config=config)


def damo_config(args: argparse.Namespace, entry) -> str:
    """--config, else the config an official checkpoint name implies."""
    if args.config:
        try:
            return damo_entry(args.config).config
        except KeyError:
            raise ConvertError(f"--config {args.config!r}: expected one of {', '.join(CONFIGS)}") from None
    if entry is not None and entry.family == "damo-yolo":
        return entry.config
    raise ConvertError(f"{args.model}: cannot tell the DAMO-YOLO config from the file name; pass --config "
                       f"{'|'.join(CONFIGS)}")


def parse_imgsz(text: Optional[str]) -> Optional[tuple]:
    """'640' -> (640, 640); '480,640' -> (480, 640); None -> None."""
    if not text:
        return None
    try:
        sizes = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 2) or not all(0 < v <= 8192 for v in sizes):
        raise ConvertError(f"--imgsz {text!r}: expected H or H,W (positive integers)")
    return sizes * 2 if len(sizes) == 1 else sizes


if __name__ == "__main__":
    sys.exit(main())
