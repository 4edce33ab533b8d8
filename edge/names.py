"""Class-name tables: COCO-80 (both families' official models) and user-supplied lists."""
from __future__ import annotations

import ast
import json
import os

from .errors import ContractError

COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


def names_from_mapping(value) -> tuple:
    """{0: 'person', ...} (Ultralytics metadata, keys int or str) or a list -> tuple ordered by class id."""
    if isinstance(value, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in value.items())
        except (TypeError, ValueError, OverflowError):
            raise ContractError(f"class names must be keyed by integer ids, got keys {list(value)[:3]}") from None
        if [k for k, _ in items] != list(range(len(items))):
            raise ContractError("class-name ids must be 0..n-1 without gaps")
        return tuple(v for _, v in items)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ContractError(f"class names must be a list or an id->name mapping, got {type(value).__name__}")


def load_names(spec: str) -> tuple:
    """--names: a file (one name per line, or a JSON list / id->name object) or a comma-separated list."""
    if os.path.isfile(spec):
        try:
            with open(spec, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ContractError(f"--names {spec}: cannot read it as UTF-8 text ({e})") from None
        stripped = text.strip()
        if stripped.startswith(("[", "{")):
            return names_from_mapping(_literal(spec, stripped))
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    else:
        names = tuple(n.strip() for n in spec.split(",") if n.strip())
    if not names:
        raise ContractError(f"--names {spec!r} holds no class names")
    return names


def _literal(spec: str, text: str) -> object:
    """A JSON (or Python literal) list or mapping; ContractError when it is neither."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ContractError(f"--names {spec}: starts like a list or mapping but is not valid JSON") from None
