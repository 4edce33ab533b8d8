"""Command-line flags declared from the settings (edge/settings.py): the flag's dest is the config key path.

A flag left out is absent from the parsed namespace (argparse.SUPPRESS), so it never hides a config value; the
given ones are laid over the config's data and the result is validated once, by the same rules as the file.
"""
from __future__ import annotations

import argparse
from typing import Any, Optional

from ..errors import ConfigError
from ..settings import Config, ModelConfig, ThresholdsConfig
from ..typed import ValidationError, build, field_of, scalar_type

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
            return f"{FLAG_OF.get(path, path)}:{text.split(':', 1)[1]}"
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
    if thresholds:
        threshold_flags(p)


def threshold_flags(p: argparse.ArgumentParser, **defaults: Any) -> None:
    """--conf --iou --max-det --agnostic --multi-label; `defaults` names the command's own defaults in the help."""
    for flag, key in (("--conf", "conf"), ("--iou", "iou"), ("--max-det", "max_det"), ("--agnostic", "agnostic"),
                      ("--multi-label", "multi_label")):
        _, field = field_of(Config, f"thresholds.{key}")
        default = defaults.get(key)
        help_ = field.metadata["description"] + (f" (default {default})" if default is not None else
                                                 " (default: the model family's)" if key != "agnostic" else "")
        setting(p, flag, f"thresholds.{key}", help=help_)


def detector_settings(args: argparse.Namespace, parser: argparse.ArgumentParser,
                      **defaults: Any) -> tuple:
    """(ModelConfig, ThresholdsConfig) from the flags, range-checked like the config (usage error otherwise)."""
    data = lay_over({"model": {}, "thresholds": dict(defaults)}, given(args))
    try:
        return build(ModelConfig, data["model"], "model"), build(ThresholdsConfig, data["thresholds"], "thresholds")
    except ValidationError as e:
        parser.error(flag_error(ConfigError(str(e)), given(args)) or str(e))
        raise  # parser.error exits; this keeps type checkers content
