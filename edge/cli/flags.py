"""Command-line flags declared from the settings (edge/settings.py): the flag's dest is the config key path.

A flag left out is absent from the parsed namespace (argparse.SUPPRESS), so it never hides a config value; the
given ones are laid over the config's data and the result is validated once, by the same rules as the file.
"""
from __future__ import annotations

import argparse
import contextlib
from typing import Any, Iterator, Optional

from ..errors import ConfigError, FamilyMismatch
from ..settings import Config, ModelConfig, ThresholdsConfig
from ..typed import ValidationError, build, field_of, scalar_type, scalar_types

FLAG_OF: dict = {}  # config key path -> the flag that sets it, for error messages


def setting(group: Any, flag: str, path: str, **overrides: Any) -> None:
    """Add `flag` for the setting at `path` (e.g. `thresholds.conf`); help, type and choices come from its field."""
    hint, field = field_of(Config, path)
    kind, meta = scalar_type(hint), field.metadata
    options: dict = {"dest": path, "default": argparse.SUPPRESS, "help": meta["description"]}
    if kind is bool:
        nullable = field.default is None
        options["action"] = argparse.BooleanOptionalAction if nullable else "store_true"
    elif path.endswith("providers"):
        options["type"] = lambda text: [p for p in text.split(",") if p]
    elif set(scalar_types(hint)) == {str, int}:  # a word or a number (e.g. --batch auto, --batch 4)
        options["type"] = lambda text: int(text) if text.strip().isdigit() else text
    else:
        options["type"] = kind
        if meta["choices"]:
            options["choices"] = meta["choices"]
    options.update(overrides)
    group.add_argument(flag, **options)
    FLAG_OF[path] = flag


def given(args: argparse.Namespace) -> dict:
    """{config key path: value} of the setting flags on the command line."""
    return {k: v for k, v in vars(args).items() if "." in k}


def lay_over(data: dict, flags: dict) -> dict:
    """The config data with the flags' values set at their key paths (`sources.X` applies to every source)."""
    for path, value in flags.items():
        section, _, key = path.partition(".")
        if section == "sources":
            for source in data.get("sources") or []:
                if isinstance(source, dict):
                    source[key] = value
            continue
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


def flag_error(error: ConfigError, flags: dict) -> Optional[str]:
    """`--conf: must be at most 1.0, got 2.0` when a flag's value caused the error; None when the file did."""
    text = str(error)
    for path in sorted(flags, key=len, reverse=True):
        if text.startswith(path + ":") or (path.startswith("sources.") and text.startswith("sources[")
                                            and f".{path.split('.', 1)[1]}:" in text.split(" ", 1)[0]):
            flag = FLAG_OF.get(path, path)
            return f"{flag}:{text.split(':', 1)[1].replace(path, flag)}"
    return None


def model_flags(p: argparse.ArgumentParser, thresholds: bool = True, flag: bool = False) -> None:
    """The model flags every model command takes (plus the threshold flags where they apply)."""
    if flag:
        setting(p, "--model", "model.path", help="bundle directory, manifest.json, .onnx or .tflite file")
    else:
        p.add_argument("model.path", metavar="MODEL", help="bundle directory, manifest.json, .onnx or .tflite file")
    setting(p, "--family", "model.family")
    setting(p, "--names", "model.names")
    setting(p, "--backend", "model.backend")
    setting(p, "--providers", "model.providers", help="onnxruntime execution providers, comma-separated "
            "(default CPUExecutionProvider)")
    setting(p, "--threads", "model.threads")
    setting(p, "--spin", "model.spin")
    if thresholds:
        threshold_flags(p)


THRESHOLDS = ("conf", "iou", "max_det", "agnostic", "multi_label")


def threshold_flags(p: argparse.ArgumentParser, defaults: Optional[dict] = None, keys: tuple = THRESHOLDS) -> None:
    """--conf --iou --max-det --agnostic --multi-label (or those of `keys`); `defaults` names the command's own
    defaults in the help (otherwise: the deployment thresholds, README "Supported models")."""
    for key in keys:
        _, field = field_of(Config, f"thresholds.{key}")
        default = (defaults or {}).get(key)
        help_ = field.metadata["description"] + (f" (default {default})" if default is not None else
                                                 " (default: the bundle's deployment value, else the model "
                                                 "family's)" if key != "agnostic" else "")
        setting(p, "--" + key.replace("_", "-"), f"thresholds.{key}", help=help_)


@contextlib.contextmanager
def family_flag(parser: argparse.ArgumentParser) -> Iterator[None]:
    """A --family that contradicts the model's manifest, metadata or outputs is a usage error (exit 2)."""
    try:
        yield
    except FamilyMismatch as e:
        parser.error(e.text("--family"))


def detector_settings(args: argparse.Namespace, parser: argparse.ArgumentParser, model: bool = True,
                      **defaults: Any) -> tuple:
    """(ModelConfig, ThresholdsConfig) from the flags, range-checked like the config (usage error otherwise);
    model=False: (None, ThresholdsConfig) for a command without model flags."""
    data = lay_over({"model": {}, "thresholds": dict(defaults)}, given(args))
    try:
        return (build(ModelConfig, data["model"], "model") if model else None,
                build(ThresholdsConfig, data["thresholds"], "thresholds"))
    except ValidationError as e:
        parser.error(flag_error(ConfigError(str(e)), given(args)) or str(e))
        raise  # parser.error exits; this keeps type checkers content


def thresholds_used(detector: Any, flags: dict) -> tuple:
    """({conf, iou, max_det, multi_label, agnostic, from: {key: origin}}, one-line summary) of the thresholds a
    detector runs with, e.g. `thresholds conf 0.5 (--conf); iou 0.7, max_det 300, multi_label off (yolo11
    deployment default)`; a value the settings gave comes from its flag when one was given, else from the config."""
    values = {"conf": detector.conf, "iou": detector.iou, "max_det": detector.max_det,
              "multi_label": detector.multi_label}
    origins: dict = {}
    groups: dict = {}
    for key, value in values.items():
        path, origin = f"thresholds.{key}", detector.thresholds_from[key]
        origins[key] = (FLAG_OF.get(path, path) if path in flags else "config") if origin == "given" else origin
        shown = ("on" if value else "off") if isinstance(value, bool) else value
        groups.setdefault(origins[key], []).append(f"{key} {shown}")
    line = "thresholds " + "; ".join(f"{', '.join(items)} ({origin})" for origin, items in groups.items())
    if detector.agnostic:
        line += "; class-agnostic NMS"
    return {**values, "agnostic": detector.agnostic, "from": origins}, line
