"""edge-convert: a trained checkpoint, an ONNX file or an ONNX bundle -> a runtime bundle for one target."""
from __future__ import annotations

import argparse
import logging
import sys
import typing
from dataclasses import fields
from typing import Any, Optional, Sequence

from edge.errors import EdgeError, FamilyMismatch

from . import ConvertError
from .accuracy import format_report
from .api import ConvertOptions, convert, flag
from .targets import TARGETS

EXIT_MAX_DROP = 2  # the bundle was written but loses more accuracy than --max-drop allows
QUANTIZATION = ("calib", "calib_count", "calib_method", "val", "annotations", "max_drop")  # the flags' help group
HELP_EXTRA = {"max_drop": f"; exceeding it exits with status {EXIT_MAX_DROP}"}


def build_parser() -> argparse.ArgumentParser:
    """The edge-convert argument parser: one flag per ConvertOptions field, with its default and description."""
    p = argparse.ArgumentParser(prog="edge-convert", description=__doc__)
    p.add_argument("model", help="YOLO11 .pt, DAMO-YOLO .pth, an .onnx of either family, or an ONNX bundle directory")
    p.add_argument("--target", choices=TARGETS, default="onnx", help="what to build (default onnx, fp32)")
    p.add_argument("--out", help="bundle directory to write (default ./<model name>_<target>)")
    q = p.add_argument_group("quantization and accuracy")
    hints = typing.get_type_hints(ConvertOptions)
    for f in fields(ConvertOptions):
        options: dict = {"default": f.default, "help": f.metadata["description"] + HELP_EXTRA.get(f.name, "")}
        kind = _flag_type(hints[f.name])
        if kind is bool:
            options["action"] = "store_true"
        else:
            options["type"] = kind
        if f.metadata["choices"]:
            options["choices"] = f.metadata["choices"]
        (q if f.name in QUANTIZATION else p).add_argument(flag(f.name), **options)
    p.add_argument("-v", "--verbose", action="store_true", help="log each step")
    return p


def _flag_type(hint: Any) -> type:
    """The flag's value type: Optional[int] -> int; a union of several types (--imgsz, --names) -> str."""
    kinds = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is typing.Union \
        else [hint]
    return kinds[0] if len(kinds) == 1 and kinds[0] in (bool, int, float, str) else str


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run edge-convert; one error line and exit status 1 on failure."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="edge-convert: %(message)s")
    options = ConvertOptions(**{f.name: getattr(args, f.name) for f in fields(ConvertOptions)})
    try:
        result = convert(args.model, args.target, args.out, options)
    except FamilyMismatch as e:
        parser.error(e.text("--family"))
    except (ConvertError, EdgeError) as e:
        print(f"edge-convert: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result.report is not None:
        print(format_report(result.bundle.target, result.report))
    print(result.path)
    if not result.within_max_drop:
        assert result.report is not None
        print(f"edge-convert: error: {result.path} was written but loses {result.report['drop']['map50_95']:.2f} "
              f"mAP50-95 versus fp32, more than --max-drop {result.report['max_drop']} "
              f"(see {result.path}/accuracy.json)", file=sys.stderr)
        return EXIT_MAX_DROP
    return 0


if __name__ == "__main__":
    sys.exit(main())
