"""edge-convert: a trained checkpoint (or an ONNX file) -> a runtime bundle, verified with edge.Detector."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional, Sequence

from edge.errors import EdgeError
from edge.names import load_names
from models.registry import REGISTRY, damo_entry, lookup

from . import ConvertError
from .bundle import bundle_model, source_info
from .damo import export_damo
from .yolo11 import export_yolo11

FAMILIES = ("yolo11", "damo-yolo")
CONFIGS = tuple(e.config for e in REGISTRY.values() if e.config)


def build_parser() -> argparse.ArgumentParser:
    """The edge-convert argument parser."""
    p = argparse.ArgumentParser(prog="edge-convert", description=__doc__)
    p.add_argument("model", help="YOLO11 .pt, DAMO-YOLO .pth, or an existing .onnx of either family")
    p.add_argument("--family", choices=FAMILIES, help="model family (inferred from official file names)")
    p.add_argument("--config", help=f"DAMO-YOLO config: {'|'.join(CONFIGS)} (inferred from official file names)")
    p.add_argument("--target", choices=("onnx",), default="onnx", help="what to build (default onnx, fp32)")
    p.add_argument("--imgsz", help="input size H or H,W (default: the model's)")
    p.add_argument("--names", help="class names (file or comma list); default COCO-80 for 80-class models")
    p.add_argument("--out", help="bundle directory to write (default ./<model name>_<target>)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run edge-convert; one error line and exit status 1 on failure."""
    args = build_parser().parse_args(argv)
    try:
        print(convert(args))
    except (ConvertError, EdgeError) as e:
        print(f"edge-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def convert(args: argparse.Namespace) -> str:
    """Export and bundle; returns the bundle directory."""
    if not os.path.isfile(args.model):
        raise ConvertError(f"{args.model}: no such file")
    entry = lookup(args.model)
    family = args.family or (entry.family if entry else None)
    is_onnx = args.model.lower().endswith(".onnx")
    if family is None and not is_onnx:  # the runtime infers an ONNX file's family from its outputs
        raise ConvertError(f"{args.model}: cannot tell the model family from the file name; pass --family yolo11|damo-yolo")
    names = load_names(args.names) if args.names else None
    imgsz = parse_imgsz(args.imgsz)
    if entry is not None and entry.family == family and not is_onnx:  # a known checkpoint needs no more flags
        names = names or entry.names
        imgsz = imgsz or (entry.input_size, entry.input_size)
    stem = os.path.splitext(os.path.basename(args.model))[0]
    out = args.out or f"{stem}_{args.target}"
    with tempfile.TemporaryDirectory(prefix="edge-convert-") as work:
        onnx_path = os.path.join(work, f"{stem}.onnx")
        if is_onnx:
            if imgsz:
                raise ConvertError(f"{args.model}: --imgsz cannot resize an existing ONNX file; convert the checkpoint")
            onnx_path, extra = args.model, {}
        elif family == "damo-yolo":
            extra = export_damo(args.model, damo_config(args, entry), onnx_path, imgsz, names)
        else:
            extra = export_yolo11(args.model, onnx_path, imgsz)
        licence = entry.licence if entry and entry.family == family else None
        source = source_info(args.model, **extra, **({"licence": licence} if licence else {}))
        return bundle_model(onnx_path, family, out, names, target=args.target, source=source)


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
